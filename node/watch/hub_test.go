package watch

import (
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// fixture drives a manual hub: no goroutines, the test runs catch-up steps
// and progress ticks and pops responses straight from stream queues.
type fixture struct {
	t   *testing.T
	src *memSource
	h   *Hub
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	o.manual = true
	src := newMemSource()
	f := &fixture{t: t, src: src, h: NewHub(src, o)}
	t.Cleanup(f.h.Close)
	return f
}

// write commits ops as one revision and notifies the hub.
func (f *fixture) write(ops ...op) int64 {
	rev, evs := f.src.apply(ops...)
	f.h.Notify(rev, evs)
	return rev
}

func (f *fixture) watch(s *Stream, req *etcdserverpb.WatchCreateRequest) int64 {
	f.t.Helper()
	id, err := s.Watch(req)
	if err != nil {
		f.t.Fatalf("Watch(%v): %v", req, err)
	}
	return id
}

// sync runs catch-up steps until none moves anything.
func (f *fixture) sync() {
	for i := 0; f.h.syncRound(); i++ {
		if i > 10000 {
			f.t.Fatal("catch-up does not converge")
		}
	}
}

// drain pops every queued response of s.
func drain(s *Stream) []*etcdserverpb.WatchResponse {
	var out []*etcdserverpb.WatchResponse
	for r := s.pop(); r != nil; r = s.pop() {
		out = append(out, r)
	}
	return out
}

// created pops the next response and checks it is the created ack for id.
func (f *fixture) created(s *Stream, id int64) {
	f.t.Helper()
	r := s.pop()
	if r == nil || !r.Created || r.Canceled || r.WatchId != id {
		f.t.Fatalf("want created ack for %d, got %v", id, r)
	}
}

func wantResps(t *testing.T, got []*etcdserverpb.WatchResponse, want ...*etcdserverpb.WatchResponse) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d responses, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("response %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
}

func hdr(rev int64) *etcdserverpb.ResponseHeader { return &etcdserverpb.ResponseHeader{Revision: rev} }

func putEv(k, v string, create, mod, ver int64) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte(k), Value: []byte(v), CreateRevision: create, ModRevision: mod, Version: ver}}
}

func delEv(k string, mod int64) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte(k), ModRevision: mod}}
}

func evResp(id, rev int64, evs ...*mvccpb.Event) *etcdserverpb.WatchResponse {
	return &etcdserverpb.WatchResponse{Header: hdr(rev), WatchId: id, Events: evs}
}

// eventKeys flattens the events of responses into "type key@rev" strings.
func eventKeys(rs []*etcdserverpb.WatchResponse) []string {
	var out []string
	for _, r := range rs {
		for _, ev := range r.Events {
			out = append(out, fmt.Sprintf("%s %s@%d", ev.Type, ev.Kv.Key, ev.Kv.ModRevision))
		}
	}
	return out
}

func TestWatchCreate(t *testing.T) {
	f := newFixture(t, Options{})
	f.write(put("a", "1"))
	f.write(put("b", "1")) // rev 2
	s := f.h.NewStream()
	tests := []struct {
		name    string
		req     *etcdserverpb.WatchCreateRequest
		wantID  int64
		wantErr error
		want    *etcdserverpb.WatchResponse
	}{
		{"auto id starts at 0", &etcdserverpb.WatchCreateRequest{Key: []byte("a")}, 0, nil,
			&etcdserverpb.WatchResponse{Header: hdr(2), WatchId: 0, Created: true}},
		{"client id", &etcdserverpb.WatchCreateRequest{Key: []byte("a"), WatchId: 2}, 2, nil,
			&etcdserverpb.WatchResponse{Header: hdr(2), WatchId: 2, Created: true}},
		{"auto id", &etcdserverpb.WatchCreateRequest{Key: []byte("a")}, 1, nil,
			&etcdserverpb.WatchResponse{Header: hdr(2), WatchId: 1, Created: true}},
		{"auto id skips client id", &etcdserverpb.WatchCreateRequest{Key: []byte("a")}, 3, nil,
			&etcdserverpb.WatchResponse{Header: hdr(2), WatchId: 3, Created: true}},
		{"duplicate client id", &etcdserverpb.WatchCreateRequest{Key: []byte("a"), WatchId: 2}, -1, ErrDuplicateID,
			&etcdserverpb.WatchResponse{Header: hdr(2), WatchId: -1, Created: true, Canceled: true,
				CancelReason: "mvcc: duplicate watch ID provided on the WatchStream"}},
		{"negative start revision", &etcdserverpb.WatchCreateRequest{Key: []byte("a"), StartRevision: -1}, -1, ErrCompacted,
			&etcdserverpb.WatchResponse{Header: hdr(2), WatchId: -1, Created: true, Canceled: true,
				CancelReason: "etcdserver: mvcc: required revision has been compacted"}},
		{"empty range", &etcdserverpb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")}, -1, ErrEmptyRange,
			&etcdserverpb.WatchResponse{Header: hdr(2), WatchId: -1, Created: true, Canceled: true,
				CancelReason: "mvcc: watcher range is empty"}},
		{"history start is still a plain created ack", &etcdserverpb.WatchCreateRequest{Key: []byte("a"), StartRevision: 1}, 4, nil,
			&etcdserverpb.WatchResponse{Header: hdr(2), WatchId: 4, Created: true}},
		{"future start", &etcdserverpb.WatchCreateRequest{Key: []byte("a"), StartRevision: 100}, 5, nil,
			&etcdserverpb.WatchResponse{Header: hdr(2), WatchId: 5, Created: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := s.Watch(tt.req)
			if id != tt.wantID || err != tt.wantErr {
				t.Fatalf("Watch = %d, %v; want %d, %v", id, err, tt.wantID, tt.wantErr)
			}
			wantResps(t, drain(s), tt.want)
		})
	}
}

func TestEventsByKeyRangePrefix(t *testing.T) {
	f := newFixture(t, Options{})
	s := f.h.NewStream()
	watches := []struct {
		name string
		key  string
		end  string
		want []string
	}{
		{"single key", "b", "", []string{"PUT b@2", "DELETE b@6"}},
		{"range [b, d)", "b", "d", []string{"PUT b@2", "PUT c@3", "DELETE b@6"}},
		{"prefix foo", "foo", "fop", []string{"PUT foo@4", "PUT foo/bar@5"}},
		{"from key c", "c", "\x00", []string{"PUT c@3", "PUT foo@4", "PUT foo/bar@5", "PUT zz@7"}},
		{"all keys", "", "\x00", []string{"PUT a@1", "PUT b@2", "PUT c@3", "PUT foo@4", "PUT foo/bar@5", "DELETE b@6", "PUT zz@7"}},
		{"empty key means \\x00", "", "", nil},
		{"no match", "x", "y", nil},
	}
	ids := make([]int64, len(watches))
	for i, w := range watches {
		ids[i] = f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte(w.key), RangeEnd: []byte(w.end)})
	}
	drain(s)
	f.write(put("a", "1"))
	f.write(put("b", "1"))
	f.write(put("c", "1"))
	f.write(put("foo", "1"))
	f.write(put("foo/bar", "1"))
	f.write(del("b"))
	f.write(put("zz", "1"))
	byID := map[int64][]*etcdserverpb.WatchResponse{}
	for _, r := range drain(s) {
		if len(r.Events) != 1 || r.Header.Revision != r.Events[0].Kv.ModRevision {
			t.Fatalf("live response must carry its revision's event and header: %v", r)
		}
		byID[r.WatchId] = append(byID[r.WatchId], r)
	}
	for i, w := range watches {
		t.Run(w.name, func(t *testing.T) {
			if got := eventKeys(byID[ids[i]]); fmt.Sprint(got) != fmt.Sprint(w.want) {
				t.Fatalf("got %v, want %v", got, w.want)
			}
		})
	}
}

func TestTxnEventsAreOneResponse(t *testing.T) {
	f := newFixture(t, Options{})
	s := f.h.NewStream()
	id := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte("z")})
	single := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("b")})
	drain(s)
	f.write(put("a", "1"), put("b", "1"), put("zz", "1"), put("c", "1"))
	wantResps(t, drain(s),
		evResp(id, 1, putEv("a", "1", 1, 1, 1), putEv("b", "1", 1, 1, 1), putEv("c", "1", 1, 1, 1)),
		evResp(single, 1, putEv("b", "1", 1, 1, 1)),
	)
}
