package join

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestFind(t *testing.T) {
	a := &pb.Member{ID: 0xa, Name: "c-0", PeerURLs: []string{"http://c-0:2380"}}
	b := &pb.Member{ID: 0xb, PeerURLs: []string{"http://c-1:2380"}, IsLearner: true}
	two := &pb.Member{ID: 0xc, Name: "c-2", PeerURLs: []string{"https://c-2:2380", "http://c-2:2380"}}
	for _, tc := range []struct {
		name     string
		members  []*pb.Member
		peerURLs []string
		wantID   uint64
		want     state
	}{
		{"unstarted learner", []*pb.Member{a, b}, []string{"http://c-1:2380"}, 0xb, unstarted},
		{"started", []*pb.Member{a, b}, []string{"http://c-0:2380"}, 0xa, started},
		{"not added", []*pb.Member{a, b}, []string{"http://c-3:2380"}, 0, absent},
		{"no members", nil, []string{"http://c-3:2380"}, 0, absent},
		{"several URLs in any order", []*pb.Member{a, two}, []string{"http://c-2:2380", "https://c-2:2380"}, 0xc, started},
		{"a subset is not this member", []*pb.Member{a, two}, []string{"http://c-2:2380"}, 0xc, overlapping},
		{"a superset is not this member", []*pb.Member{a, b}, []string{"http://c-1:2380", "http://other:2380"}, 0xb, overlapping},
		{"no peer URLs match nothing", []*pb.Member{{ID: 0xd}}, nil, 0, absent},
	} {
		m, st := find(tc.members, tc.peerURLs)
		var id uint64
		if m != nil {
			id = m.ID
		}
		if st != tc.want || id != tc.wantID {
			t.Errorf("%s: find = %x, %v; want %x, %v", tc.name, id, st, tc.wantID, tc.want)
		}
	}
}

func TestInitialCluster(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []*pb.Member
		self    uint64
		selfAs  string
		want    string // format(), or "error: substr"
	}{
		{
			name: "started members by name, itself by --name",
			members: []*pb.Member{
				{ID: 1, Name: "c-0", PeerURLs: []string{"http://c-0:2380"}},
				{ID: 2, Name: "c-1", PeerURLs: []string{"http://c-1:2380"}},
				{ID: 3, PeerURLs: []string{"http://c-2:2380"}, IsLearner: true},
			},
			self: 3, selfAs: "c-2",
			want: "c-0=http://c-0:2380,c-1=http://c-1:2380,c-2=http://c-2:2380",
		},
		{
			name: "another unstarted member by its ID",
			members: []*pb.Member{
				{ID: 1, Name: "c-0", PeerURLs: []string{"http://c-0:2380"}},
				{ID: 0xab, PeerURLs: []string{"http://c-1:2380"}},
				{ID: 3, PeerURLs: []string{"http://c-2:2380"}},
			},
			self: 3, selfAs: "c-2",
			want: "ab=http://c-1:2380,c-0=http://c-0:2380,c-2=http://c-2:2380",
		},
		{
			name: "a started member with this member's name keeps it apart by ID",
			members: []*pb.Member{
				{ID: 0x1f, Name: "c-2", PeerURLs: []string{"http://old:2380"}},
				{ID: 3, PeerURLs: []string{"http://c-2:2380"}},
			},
			self: 3, selfAs: "c-2",
			want: "1f=http://old:2380,c-2=http://c-2:2380",
		},
		{
			name: "two members with one name",
			members: []*pb.Member{
				{ID: 0x10, Name: "x", PeerURLs: []string{"http://a:2380"}},
				{ID: 0x11, Name: "x", PeerURLs: []string{"http://b:2380"}},
				{ID: 3, PeerURLs: []string{"http://c:2380"}},
			},
			self: 3, selfAs: "c",
			want: "11=http://b:2380,c=http://c:2380,x=http://a:2380",
		},
		{
			name: "several peer URLs",
			members: []*pb.Member{
				{ID: 1, Name: "a", PeerURLs: []string{"http://a1:2380", "http://a2:2380"}},
				{ID: 3, PeerURLs: []string{"http://c:2380"}},
			},
			self: 3, selfAs: "c",
			want: "a=http://a1:2380,a=http://a2:2380,c=http://c:2380",
		},
		{
			name:    "self missing",
			members: []*pb.Member{{ID: 1, Name: "a", PeerURLs: []string{"http://a:2380"}}},
			self:    3, selfAs: "c",
			want: "error: not in the membership",
		},
	} {
		ic, err := initialCluster(tc.members, tc.self, tc.selfAs)
		if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: initialCluster = %v, %v; want an error containing %q", tc.name, ic, err, want)
			}
			continue
		}
		if err != nil || format(ic) != tc.want {
			t.Errorf("%s: initialCluster = %q, %v; want %q", tc.name, format(ic), err, tc.want)
		}
	}
}

func TestNeedsTLS(t *testing.T) {
	for _, tc := range []struct {
		eps  []string
		want bool
	}{
		{[]string{"http://a:2379"}, false},
		{[]string{"http://a:2379", "https://b:2379"}, true},
		{[]string{"unixs://sock"}, true},
		{[]string{"unix://sock"}, false},
	} {
		if got := needsTLS(tc.eps); got != tc.want {
			t.Errorf("needsTLS(%q) = %v, want %v", tc.eps, got, tc.want)
		}
	}
}

// TestInitialClusterWaitsUntilStopped: with nothing answering at the
// endpoint, InitialCluster says it is waiting, keeps trying, and gives up
// only when its context ends.
func TestInitialClusterWaitsUntilStopped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a port nobody listens on: connections are refused

	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := InitialCluster(ctx, Request{
			Endpoints: []string{"http://" + addr},
			Name:      "c-1",
			PeerURLs:  []string{"http://c-1:2380"},
			Logger:    zap.New(core),
		})
		done <- err
	}()
	deadline := time.After(30 * time.Second)
	for logs.FilterMessageSnippet("waiting to be added").Len() == 0 {
		select {
		case err := <-done:
			t.Fatalf("InitialCluster returned %v without waiting", err)
		case <-deadline:
			t.Fatalf("no waiting line within 30s; logs: %v", logs.All())
		case <-time.After(20 * time.Millisecond): // the observer has no notification
		}
	}
	line := logs.FilterMessageSnippet("waiting to be added").All()[0]
	fields := line.ContextMap()
	if fields["name"] != "c-1" || fields["error"] == nil {
		t.Errorf("waiting line lacks the member or the error: %v", fields)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("InitialCluster did not return after its context was cancelled")
	}
}
