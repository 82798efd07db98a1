package backend

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func revKey(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

// TestReadersWhileCommitting runs readers against a writer while the backend
// commits every millisecond and by count. The writer first puts keys 0..n-1
// in order, then deletes the even ones; readers check that nothing that was
// written (or deleted) before they looked is ever missing (or present), which
// is what breaks if a commit opens a window between the buffers and bbolt.
func TestReadersWhileCommitting(t *testing.T) {
	const n, readers = 1500, 2
	var commits atomic.Int32
	b, _ := openTest(t, func(o *Options) {
		o.BatchInterval = time.Millisecond
		o.BatchLimit = 97
		o.OnCommit = func(time.Duration) { commits.Add(1) }
	})
	var wrote, deleted atomic.Int64 // highest key put / deleted, +1
	stop := make(chan struct{})
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, w := int(deleted.Load()), int(wrote.Load())
				if w == 0 {
					continue
				}
				// Leave CPU to the writer on small machines: a reader
				// descheduled while holding the read lock stalls Puts.
				runtime.Gosched()
				if err := checkPoint(b, rng.Intn(w), d); err != nil {
					errc <- err
					return
				}
				// Spans longer than rangeChunk cross chunk boundaries.
				s := rng.Intn(w)
				if err := checkRange(b, s, min(w, s+3*rangeChunk), d); err != nil {
					errc <- err
					return
				}
			}
		}(int64(r))
	}
	for i := 0; i < n; i++ {
		tx := b.BatchTx()
		tx.Put(Key, revKey(i), []byte(fmt.Sprint(i)))
		tx.Unlock()
		wrote.Store(int64(i + 1))
	}
	for i := 0; i < n; i += 2 {
		tx := b.BatchTx()
		tx.Delete(Key, revKey(i))
		tx.Unlock()
		deleted.Store(int64(i + 1))
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if commits.Load() < 10 {
		t.Fatalf("only %d commits: the test did not exercise concurrent commits", commits.Load())
	}
}

// checkPoint: key i was put; if even and i < d it was deleted.
func checkPoint(b *Backend, i, d int) error {
	v, ok := b.Get(Key, revKey(i))
	switch {
	case i%2 == 0 && i < d:
		if ok {
			return fmt.Errorf("key %d visible after its delete", i)
		}
	case i%2 == 1:
		if !ok || string(v) != fmt.Sprint(i) {
			return fmt.Errorf("key %d = %q, %v; want it present", i, v, ok)
		}
	}
	return nil
}

// checkRange: every odd key in [s, w) is returned, in order, and no even key
// below d.
func checkRange(b *Backend, s, w, d int) error {
	next := s // next odd key that must appear
	if next%2 == 0 {
		next++
	}
	prev := -1
	var err error
	b.Range(Key, revKey(s), revKey(w), 0, func(k, v []byte) bool {
		i := int(binary.BigEndian.Uint64(k))
		switch {
		case i <= prev:
			err = fmt.Errorf("range out of order: %d after %d", i, prev)
		case i%2 == 0 && i < d:
			err = fmt.Errorf("range returned deleted key %d", i)
		case i%2 == 1 && i != next:
			err = fmt.Errorf("range skipped key %d (got %d)", next, i)
		case string(v) != fmt.Sprint(i):
			err = fmt.Errorf("range: key %d = %q", i, v)
		}
		if i%2 == 1 {
			next = i + 2
		}
		prev = i
		return err == nil
	})
	if err == nil && next < w {
		err = fmt.Errorf("range [%d, %d) stopped before key %d", s, w, next)
	}
	return err
}
