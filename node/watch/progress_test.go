package watch

import (
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

func progressResp(id, rev int64) *etcdserverpb.WatchResponse {
	return &etcdserverpb.WatchResponse{Header: hdr(rev), WatchId: id}
}

func TestProgressNotify(t *testing.T) {
	f := newFixture(t, Options{})
	f.write(put("other", "0")) // 1
	s := f.h.NewStream()
	p := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("k"), ProgressNotify: true})
	f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("k")}) // no progress_notify
	drain(s)

	steps := []struct {
		name  string
		write []op
		want  []*etcdserverpb.WatchResponse
	}{
		{"quiet interval: notification", nil, []*etcdserverpb.WatchResponse{progressResp(p, 1)}},
		{"unrelated write: notification at the new revision", []op{put("other", "1")}, []*etcdserverpb.WatchResponse{progressResp(p, 2)}},
		{"events sent: notification elided", []op{put("k", "1")}, nil},
		{"quiet again: notification", nil, []*etcdserverpb.WatchResponse{progressResp(p, 3)}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.write != nil {
				f.write(st.write...)
			}
			var got []*etcdserverpb.WatchResponse
			for _, r := range drain(s) {
				if len(r.Events) == 0 {
					got = append(got, r)
				}
			}
			if len(got) != 0 {
				t.Fatalf("progress before the tick: %v", got)
			}
			f.h.progressTick()
			wantResps(t, drain(s), st.want...)
		})
	}

	t.Run("unsynced watcher gets none", func(t *testing.T) {
		s2 := f.h.NewStream()
		f.watch(s2, &etcdserverpb.WatchCreateRequest{Key: []byte("k"), ProgressNotify: true, StartRevision: 1})
		drain(s2)
		f.h.progressTick()
		if got := drain(s2); len(got) != 0 {
			t.Fatalf("unsynced watcher got %v", got)
		}
	})
}

func TestProgressNotifyTicker(t *testing.T) {
	src := newMemSource()
	h := NewHub(src, Options{ProgressInterval: 10 * time.Millisecond})
	defer h.Close()
	s := h.NewStream()
	defer s.Close()
	id, err := s.Watch(&etcdserverpb.WatchCreateRequest{Key: []byte("k"), ProgressNotify: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := recv(t, s); !r.Created {
		t.Fatalf("want created, got %v", r)
	}
	rev, evs := src.apply(put("x", "1"))
	h.Notify(rev, evs)
	if r := recv(t, s); !proto.Equal(r, progressResp(id, 1)) {
		t.Fatalf("got %v, want progress at 1", r)
	}
}

func TestRequestProgress(t *testing.T) {
	t.Run("all synced: immediate, WatchId -1, current revision", func(t *testing.T) {
		f := newFixture(t, Options{})
		f.write(put("x", "1"))
		s := f.h.NewStream()
		f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a")})
		f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("c")})
		drain(s)
		s.RequestProgress()
		wantResps(t, drain(s), progressResp(-1, 1))
	})
	t.Run("no watchers: nothing", func(t *testing.T) {
		f := newFixture(t, Options{})
		s := f.h.NewStream()
		s.RequestProgress()
		f.write(put("x", "1"))
		if got := drain(s); len(got) != 0 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("unsynced watcher defers it until caught up, after the events", func(t *testing.T) {
		f := newFixture(t, Options{})
		f.write(put("a", "1"))
		f.write(put("a", "2"))
		s := f.h.NewStream()
		live := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a")})
		hist := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a"), StartRevision: 1})
		drain(s)
		s.RequestProgress()
		s.RequestProgress() // collapses into one
		f.write(put("a", "3"))
		wantResps(t, drain(s), evResp(live, 3, putEv("a", "3", 1, 3, 3)))
		f.sync()
		wantResps(t, drain(s),
			evResp(hist, 3, putEv("a", "1", 1, 1, 1), putEv("a", "2", 1, 2, 2), putEv("a", "3", 1, 3, 3)),
			progressResp(-1, 3),
		)
	})
	t.Run("canceling the unsynced watcher releases it", func(t *testing.T) {
		f := newFixture(t, Options{})
		f.write(put("a", "1"))
		s := f.h.NewStream()
		f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a")})
		hist := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a"), StartRevision: 1})
		drain(s)
		s.RequestProgress()
		if got := drain(s); len(got) != 0 {
			t.Fatalf("progress while unsynced: %v", got)
		}
		if err := s.Cancel(hist); err != nil {
			t.Fatal(err)
		}
		wantResps(t, drain(s), &etcdserverpb.WatchResponse{Header: hdr(1), WatchId: hist, Canceled: true}, progressResp(-1, 1))
	})
}
