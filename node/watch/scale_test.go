package watch

import (
	"fmt"
	"runtime"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestTenThousandWatchersOneStream(t *testing.T) {
	const n = 10000
	f := newFixture(t, Options{})
	s := f.h.NewStream()
	ids := make(map[int64]string, n)
	acks := 0
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key/%05d", i)
		ids[f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte(k)})] = k
		if i%1000 == 0 {
			// Watch waits for the consumer once acks pile up past the
			// buffer plus ctrlSlack; this test is the consumer.
			acks += len(drain(s))
		}
	}
	prefix := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("key/"), RangeEnd: []byte("key0")})
	if got := acks + len(drain(s)); got != n+1 {
		t.Fatalf("got %d created acks, want %d", got, n+1)
	}
	if syn, unsyn := f.h.Stats(); syn != n+1 || unsyn != 0 {
		t.Fatalf("Stats = %d, %d", syn, unsyn)
	}
	// Write every key; keep the queue short by draining as we go (the
	// default buffer is 128 responses).
	got := make(map[int64]int, n+1)
	for i := 0; i < n; i++ {
		f.write(put(fmt.Sprintf("key/%05d", i), "v"))
		for _, r := range drain(s) {
			if r.WatchId != prefix && string(r.Events[0].Kv.Key) != ids[r.WatchId] {
				t.Fatalf("watch %d (%s) got %s", r.WatchId, ids[r.WatchId], r.Events[0].Kv.Key)
			}
			got[r.WatchId] += len(r.Events)
		}
	}
	for id := range ids {
		if got[id] != 1 {
			t.Fatalf("watch %d got %d events, want 1", id, got[id])
		}
	}
	if got[prefix] != n {
		t.Fatalf("prefix watch got %d events, want %d", got[prefix], n)
	}
}

// BenchmarkWatcherMemory reports the heap held per watcher with 10k
// single-key watchers on one stream (keys and requests excluded).
func BenchmarkWatcherMemory(b *testing.B) {
	const n = 10000
	reqs := make([]*etcdserverpb.WatchCreateRequest, n)
	for i := range reqs {
		reqs[i] = &etcdserverpb.WatchCreateRequest{Key: []byte(fmt.Sprintf("key/%05d", i))}
	}
	var per float64
	for i := 0; i < b.N; i++ {
		src := newMemSource()
		h := NewHub(src, Options{manual: true})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := h.NewStream()
		for _, r := range reqs {
			if _, err := s.Watch(r); err != nil {
				b.Fatal(err)
			}
			s.pop() // the created ack is transient
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s)
		h.Close()
	}
	b.ReportMetric(per, "B/watcher")
}

// BenchmarkNotify measures one write fanned out on a hub with 10k
// single-key watchers, one of which matches.
func BenchmarkNotify(b *testing.B) {
	const n = 10000
	src := newMemSource()
	h := NewHub(src, Options{manual: true, StreamBuffer: 1 << 30})
	defer h.Close()
	s := h.NewStream()
	for i := 0; i < n; i++ {
		if _, err := s.Watch(&etcdserverpb.WatchCreateRequest{Key: []byte(fmt.Sprintf("key/%05d", i))}); err != nil {
			b.Fatal(err)
		}
	}
	drain(s)
	rev, evs := src.apply(put("key/00042", "v"))
	h.Notify(rev, evs)
	s.pop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rev++
		evs[0].Kv.ModRevision = rev
		h.Notify(rev, evs)
		if s.pop() == nil {
			b.Fatal("the matching watcher got nothing")
		}
	}
}
