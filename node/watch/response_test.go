package watch

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

func TestFilters(t *testing.T) {
	tests := []struct {
		name    string
		filters []etcdserverpb.WatchCreateRequest_FilterType
		want    []string
	}{
		{"none", nil, []string{"PUT a@1", "PUT a@2", "DELETE a@2"}},
		{"noput", []etcdserverpb.WatchCreateRequest_FilterType{etcdserverpb.WatchCreateRequest_NOPUT}, []string{"DELETE a@2"}},
		{"nodelete", []etcdserverpb.WatchCreateRequest_FilterType{etcdserverpb.WatchCreateRequest_NODELETE}, []string{"PUT a@1", "PUT a@2"}},
		{"both", []etcdserverpb.WatchCreateRequest_FilterType{etcdserverpb.WatchCreateRequest_NOPUT, etcdserverpb.WatchCreateRequest_NODELETE}, nil},
	}
	for _, history := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/history=%v", tt.name, history), func(t *testing.T) {
				f := newFixture(t, Options{})
				s := f.h.NewStream()
				req := &etcdserverpb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte("b"), Filters: tt.filters}
				if history {
					f.write(put("a", "1"))
					f.write(put("a", "2"), put("a/", "x"), del("a"))
					req.StartRevision = 1
				}
				f.created(s, f.watch(s, req))
				if !history {
					f.write(put("a", "1"))
					f.write(put("a", "2"), put("a/", "x"), del("a"))
				}
				f.sync()
				var got []string
				for _, k := range eventKeys(drain(s)) {
					if !strings.Contains(k, "a/") {
						got = append(got, k)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			})
		}
	}
}

func TestPrevKV(t *testing.T) {
	for _, history := range []bool{false, true} {
		t.Run(fmt.Sprintf("history=%v", history), func(t *testing.T) {
			f := newFixture(t, Options{})
			s := f.h.NewStream()
			var withPrev, plain int64
			watch := func(start int64) {
				withPrev = f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a"), PrevKv: true, StartRevision: start})
				plain = f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a"), StartRevision: start})
			}
			if !history {
				watch(0)
			}
			var shared []*mvccpb.Event
			for _, ops := range [][]op{{put("a", "1")}, {put("a", "2")}, {del("a")}, {put("a", "3")}} {
				rev, evs := f.src.apply(ops...)
				shared = append(shared, evs...)
				f.h.Notify(rev, evs)
			}
			if history {
				watch(1)
				f.sync()
			}
			var gotPrev, gotPlain []*etcdserverpb.WatchResponse
			for _, r := range drain(s) {
				if r.Created {
					continue
				}
				switch r.WatchId {
				case withPrev:
					gotPrev = append(gotPrev, r)
				case plain:
					gotPlain = append(gotPlain, r)
				}
			}
			v1 := putEv("a", "1", 1, 1, 1)
			v2 := putEv("a", "2", 1, 2, 2)
			want := []*mvccpb.Event{
				v1, // a create has no prev_kv
				{Type: mvccpb.Event_PUT, Kv: v2.Kv, PrevKv: v1.Kv},
				{Type: mvccpb.Event_DELETE, Kv: delEv("a", 3).Kv, PrevKv: v2.Kv},
				putEv("a", "3", 4, 4, 1), // re-created after delete: no prev_kv
			}
			var evs []*mvccpb.Event
			for _, r := range gotPrev {
				evs = append(evs, r.Events...)
			}
			if len(evs) != len(want) {
				t.Fatalf("got %d events, want %d: %v", len(evs), len(want), evs)
			}
			for i := range want {
				if !proto.Equal(evs[i], want[i]) {
					t.Fatalf("event %d: got %v, want %v", i, evs[i], want[i])
				}
			}
			if len(gotPlain) == 0 {
				t.Fatal("watcher without prev_kv got nothing")
			}
			for _, r := range gotPlain {
				for _, ev := range r.Events {
					if ev.PrevKv != nil {
						t.Fatalf("watcher without prev_kv got %v", ev)
					}
				}
			}
			for _, ev := range shared {
				if ev.PrevKv != nil {
					t.Fatalf("Notify's shared event was modified: %v", ev)
				}
			}
		})
	}
}

func TestFragment(t *testing.T) {
	const limit = 400
	val := strings.Repeat("v", 100)
	tests := []struct {
		name     string
		keys     int
		fragment bool
		want     int // responses
	}{
		{"small response is not split", 2, true, 1},
		{"big response split", 10, true, 4},
		{"big response without fragment", 10, false, 1},
		{"single event is never split", 1, true, 1},
	}
	for _, tt := range tests {
		for _, history := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/history=%v", tt.name, history), func(t *testing.T) {
				f := newFixture(t, Options{MaxRequestBytes: limit})
				s := f.h.NewStream()
				req := &etcdserverpb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l"), Fragment: tt.fragment}
				if history {
					req.StartRevision = 1
				} else {
					f.created(s, f.watch(s, req))
				}
				var ops []op
				for i := 0; i < tt.keys; i++ {
					ops = append(ops, put(fmt.Sprintf("k%02d", i), val))
				}
				rev, evs := f.src.apply(ops...)
				f.h.Notify(rev, evs)
				if history {
					f.created(s, f.watch(s, req))
					f.sync()
				}
				got := drain(s)
				if len(got) != tt.want {
					t.Fatalf("got %d responses, want %d", len(got), tt.want)
				}
				var all []*mvccpb.Event
				for i, r := range got {
					if last := i == len(got)-1; r.Fragment == last {
						t.Fatalf("response %d of %d: Fragment=%v", i, len(got), r.Fragment)
					}
					if size := proto.Size(r); tt.fragment && len(r.Events) > 1 && size >= limit {
						t.Fatalf("fragment %d is %d bytes, limit %d", i, size, limit)
					}
					if r.Header.Revision != rev {
						t.Fatalf("fragment header %d, want %d", r.Header.Revision, rev)
					}
					all = append(all, r.Events...)
				}
				if len(all) != len(evs) {
					t.Fatalf("fragments carry %d events, want %d", len(all), len(evs))
				}
				for i := range evs {
					if !bytes.Equal(all[i].Kv.Key, evs[i].Kv.Key) {
						t.Fatalf("event %d out of order", i)
					}
				}
			})
		}
	}
}
