package mvcc

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// Readers, a writer and compactions at once (run with -race). Every write
// transaction sets k0..k4 to one value or deletes them all, so any consistent
// read sees either none of them or all five with the same value and mod
// revision.
func TestConcurrentReadWriteCompact(t *testing.T) {
	e := newEnv(t, Options{CompactionBatchLimit: 7, CompactionSleepInterval: 1})
	const (
		txns    = 400
		readers = 4
	)
	var (
		stop   atomic.Bool
		wg     sync.WaitGroup
		errMu  sync.Mutex
		errOut error
	)
	fail := func(err error) {
		errMu.Lock()
		if errOut == nil {
			errOut = err
		}
		errMu.Unlock()
	}
	check := func(res *RangeResult) error {
		if len(res.KVs) == 0 {
			return nil
		}
		if len(res.KVs) != 5 || res.Count != 5 {
			return fmt.Errorf("saw %d keys (count %d), want 0 or 5", len(res.KVs), res.Count)
		}
		for _, kv := range res.KVs[1:] {
			if string(kv.Value) != string(res.KVs[0].Value) || kv.ModRevision != res.KVs[0].ModRevision {
				return fmt.Errorf("torn read: %q", kvsString(res.KVs))
			}
		}
		return nil
	}
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r := e.s.Read()
				res, err := r.Range([]byte("k"), []byte("l"), RangeOptions{})
				if err == nil {
					err = check(res)
				}
				if err == nil {
					old, oerr := r.Range([]byte("k"), []byte("l"), RangeOptions{Rev: r.Rev() - 3})
					if oerr == nil {
						err = check(old)
					} else if !errors.Is(oerr, ErrCompacted) {
						err = oerr
					}
				}
				r.End()
				if err == nil {
					if _, eerr := e.s.Events(e.s.CompactRev()+1, e.s.Rev()+1, 10); eerr != nil && !errors.Is(eerr, ErrCompacted) {
						err = eerr
					}
				}
				if err == nil {
					if _, kerr := e.s.KeyAt([]byte("k0"), e.s.Rev()); kerr != nil && !errors.Is(kerr, ErrCompacted) {
						err = kerr
					}
				}
				if err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	for n := 0; n < txns; n++ {
		e.txn(func(w *WriteTxn) {
			if n%7 == 6 {
				w.DeleteRange([]byte("k"), []byte("l"))
				return
			}
			for k := 0; k < 5; k++ {
				w.Put([]byte(fmt.Sprintf("k%d", k)), []byte(fmt.Sprint(n)), 0)
			}
		})
		if n%40 == 39 {
			tx := e.be.BatchTx()
			_, err := e.s.Compact(tx, e.s.Rev()-5)
			tx.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		if n%100 == 99 {
			if _, _, _, err := e.s.HashKV(0); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if errOut != nil {
		t.Fatal(errOut)
	}
	e.s.waitCompactions()
	if got := e.s.Rev(); got != txns+1 {
		t.Fatalf("Rev() = %d, want %d", got, txns+1)
	}
}
