package watch

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// recv waits for the next response on a running (non-manual) hub.
func recv(t *testing.T, s *Stream) *etcdserverpb.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-s.Responses():
		if !ok {
			t.Fatal("Responses closed")
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no response within 10s")
	}
	return nil
}

func TestCancel(t *testing.T) {
	f := newFixture(t, Options{})
	s := f.h.NewStream()
	id := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a")})
	f.write(put("a", "1"))
	if err := s.Cancel(id); err != nil {
		t.Fatal(err)
	}
	f.write(put("a", "2"))
	wantResps(t, drain(s),
		&etcdserverpb.WatchResponse{Header: hdr(0), WatchId: id, Created: true},
		evResp(id, 1, putEv("a", "1", 1, 1, 1)),
		&etcdserverpb.WatchResponse{Header: hdr(1), WatchId: id, Canceled: true},
	)
	if err := s.Cancel(id); err != ErrWatcherNotExist {
		t.Fatalf("second Cancel = %v, want ErrWatcherNotExist", err)
	}
	if syn, unsyn := f.h.Stats(); syn+unsyn != 0 {
		t.Fatalf("Stats = %d, %d after cancel", syn, unsyn)
	}
	// The ID is free again.
	if got := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("a"), WatchId: id + 10}); got != id+10 {
		t.Fatalf("got id %d", got)
	}
}

func TestStreamClose(t *testing.T) {
	src := newMemSource()
	h := NewHub(src, Options{})
	s := h.NewStream()
	if _, err := s.Watch(&etcdserverpb.WatchCreateRequest{Key: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	for range s.Responses() {
		// Drain whatever the pump had in hand; the channel must close.
	}
	if _, err := s.Watch(&etcdserverpb.WatchCreateRequest{Key: []byte("a")}); err != ErrClosed {
		t.Fatalf("Watch after Close = %v", err)
	}
	if syn, unsyn := h.Stats(); syn+unsyn != 0 {
		t.Fatalf("Stats = %d, %d after Close", syn, unsyn)
	}
	s2 := h.NewStream()
	h.Close()
	for range s2.Responses() {
	}
	rev, evs := src.apply(put("a", "1"))
	h.Notify(rev, evs) // ignored after Close
}

// A stream nobody reads must not block Notify; once read, it gets every
// event exactly once and in order.
func TestSlowStreamCatchesUp(t *testing.T) {
	src := newMemSource()
	h := NewHub(src, Options{StreamBuffer: 4, SyncBatch: 37})
	defer h.Close()
	slow, fast := h.NewStream(), h.NewStream()
	defer slow.Close()
	defer fast.Close()
	for _, s := range []*Stream{slow, fast} {
		if _, err := s.Watch(&etcdserverpb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte("l")}); err != nil {
			t.Fatal(err)
		}
		recv(t, s)
	}
	const n = 2000
	fastDone := make(chan []*etcdserverpb.WatchResponse)
	go func() {
		var got []*etcdserverpb.WatchResponse
		for len(eventKeys(got)) < n+n/10 {
			got = append(got, recv(t, fast))
		}
		fastDone <- got
	}()
	for i := 1; i <= n; i++ {
		ops := []op{put("k", fmt.Sprint(i))}
		if i%10 == 0 {
			ops = append(ops, put("k2", "x")) // multi-event revisions too
		}
		rev, evs := src.apply(ops...)
		h.Notify(rev, evs) // would hang here if a full stream blocked it
	}
	if _, unsyn := h.Stats(); unsyn == 0 {
		t.Fatal("the unread stream's watcher should be a victim")
	}
	checkRevisions(t, <-fastDone, n)
	var got []*etcdserverpb.WatchResponse
	for len(eventKeys(got)) < n+n/10 {
		got = append(got, recv(t, slow))
	}
	checkRevisions(t, got, n)
	if syn, unsyn := h.Stats(); syn != 2 || unsyn != 0 {
		t.Fatalf("Stats = %d, %d; want both synced", syn, unsyn)
	}
}

// checkRevisions verifies events cover revisions 1..n once each, in order,
// with every revision's events in a single response.
func checkRevisions(t *testing.T, rs []*etcdserverpb.WatchResponse, n int64) {
	t.Helper()
	next := int64(1)
	for _, r := range rs {
		for i, ev := range r.Events {
			rev := ev.Kv.ModRevision
			if i > 0 && rev == r.Events[i-1].Kv.ModRevision {
				continue // same revision, same response
			}
			if rev != next {
				t.Fatalf("got revision %d, want %d", rev, next)
			}
			next++
		}
		if last := r.Events[len(r.Events)-1]; r.Header.Revision < last.Kv.ModRevision {
			t.Fatalf("header %d below event %d", r.Header.Revision, last.Kv.ModRevision)
		}
	}
	if next != n+1 {
		t.Fatalf("got revisions up to %d, want %d", next-1, n)
	}
}

// Concurrent writers, watch creation, slow random readers, cancels and
// progress requests; run with -race. Every watcher must see exactly the
// revisions of its key from its start, in order.
func TestConcurrentStress(t *testing.T) {
	for _, batch := range []int{16, 200} { // under the hub lock / mostly without it
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) { stress(t, batch) })
	}
}

func stress(t *testing.T, syncBatch int) {
	src := newMemSource()
	h := NewHub(src, Options{StreamBuffer: 8, SyncBatch: syncBatch, SyncInterval: time.Millisecond})
	defer h.Close()
	const (
		streams = 4
		writes  = 3000
		keys    = 5
	)
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; i < writes; i++ {
			rev, evs := src.apply(put(fmt.Sprint("k", i%keys), fmt.Sprint(i)))
			h.Notify(rev, evs)
		}
	}()
	var wg sync.WaitGroup
	for si := 0; si < streams; si++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			s := h.NewStream()
			defer s.Close()
			type want struct {
				key  string
				next int64 // lower bound of the next event's revision
				last int64 // last event's revision, 0 before the first
			}
			ws := map[int64]*want{}
			for k := 0; k < keys; k++ {
				start := int64(rng.Intn(writes / 2))
				key := fmt.Sprint("k", k)
				id, err := s.Watch(&etcdserverpb.WatchCreateRequest{Key: []byte(key), StartRevision: start})
				if err != nil {
					t.Error(err)
					return
				}
				ws[id] = &want{key: key, next: start}
				if rng.Intn(2) == 0 {
					s.RequestProgress()
				}
			}
			for seen := 0; seen < writes/2; {
				r := recv(t, s)
				if rng.Intn(50) == 0 {
					time.Sleep(time.Millisecond) // be slow now and then
				}
				w := ws[r.WatchId]
				for _, ev := range r.Events {
					// Key k is written at revisions k+1, k+1+keys, ...: a
					// watcher's first event is the first of those at or after
					// its start, and each next one is exactly keys later.
					rev := ev.Kv.ModRevision
					ok := string(ev.Kv.Key) == w.key && rev >= w.next
					if w.last == 0 {
						ok = ok && rev-w.next < keys
					} else {
						ok = ok && rev == w.last+keys
					}
					if !ok {
						t.Errorf("watch %d on %s: event %s@%d after %d (start bound %d)", r.WatchId, w.key, ev.Kv.Key, rev, w.last, w.next)
						return
					}
					w.last, w.next = rev, rev+1
					seen++
				}
			}
		}(int64(si))
	}
	wg.Wait()
	writer.Wait()
}
