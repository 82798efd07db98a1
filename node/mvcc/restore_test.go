package mvcc

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"
)

// snapshotTo writes src's committed backend to a file in dst's directory,
// as a leader streams its db to a follower.
func snapshotTo(t *testing.T, src, dst *env) string {
	t.Helper()
	sn, err := src.be.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	path := filepath.Join(filepath.Dir(dst.path), "received.snap.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sn.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// restoreFrom installs src's content in dst as a follower does.
func restoreFrom(t *testing.T, src, dst *env) {
	t.Helper()
	path := snapshotTo(t, src, dst)
	if err := dst.s.Restore(func() error { return dst.be.Replace(path) }); err != nil {
		t.Fatal(err)
	}
}

// sameStore checks that two stores answer alike.
func sameStore(t *testing.T, want, got *env) {
	t.Helper()
	if got.s.Rev() != want.s.Rev() || got.s.CompactRev() != want.s.CompactRev() {
		t.Errorf("Rev %d CompactRev %d, want %d %d", got.s.Rev(), got.s.CompactRev(), want.s.Rev(), want.s.CompactRev())
	}
	if g, w := dumpIndex(got.s), dumpIndex(want.s); !reflect.DeepEqual(g, w) {
		t.Errorf("index\n got %v\nwant %v", g, w)
	}
	hw, _, _, err := want.s.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	if hg, _, _, err := got.s.HashKV(0); err != nil || hg != hw {
		t.Errorf("HashKV %x, %v; want %x", hg, err, hw)
	}
	w, _ := want.rng("\x00", []byte{0}, RangeOptions{})
	g, err := got.rng("\x00", []byte{0}, RangeOptions{})
	if err != nil || !reflect.DeepEqual(kvsString(g.KVs), kvsString(w.KVs)) {
		t.Errorf("range %q, %v; want %q", kvsString(g.KVs), err, kvsString(w.KVs))
	}
}

func TestRestoreFromReplacedBackend(t *testing.T) {
	var restored []string
	leader := newEnv(t, Options{})
	follower := newEnv(t, Options{OnRestoreKey: func(key []byte, lease int64) {
		restored = append(restored, fmt.Sprintf("%s=%d", key, lease))
	}})
	// The follower has the beginning of the leader's history only.
	history(leader)
	history(follower)
	leader.txn(func(w *WriteTxn) {
		w.Put([]byte("l1"), []byte("v"), 1)
		w.Put([]byte("l2"), []byte("v"), 2)
	})
	leader.txn(func(w *WriteTxn) { w.DeleteRange([]byte("l2"), nil) })
	if err := leader.compact(11); err != nil {
		t.Fatal(err)
	}
	leader.put("after", "compaction")

	restored = nil
	restoreFrom(t, leader, follower)
	sameStore(t, leader, follower)
	if want := []string{"l1=1"}; !reflect.DeepEqual(restored, want) {
		t.Errorf("OnRestoreKey calls %q, want %q", restored, want)
	}
	// Writes and compactions go on from the restored state, alike.
	for _, e := range []*env{leader, follower} {
		e.put("a", "next")
		if err := e.compact(e.s.Rev()); err != nil {
			t.Fatal(err)
		}
	}
	sameStore(t, leader, follower)
	follower.reopen()
	sameStore(t, leader, follower)
}

// A compaction the leader had not finished when it sent its db is resumed by
// the follower; one the follower was running on its old content is stopped.
func TestRestoreResumesAndStopsCompactions(t *testing.T) {
	leader := newEnv(t, Options{})
	follower := newEnv(t, Options{CompactionBatchLimit: 1})
	history(leader)
	history(follower)
	tx := leader.be.BatchTx()
	setScheduledCompact(tx, 9) // scheduled, not done
	tx.Unlock()

	parked := park(follower.s)
	tx = follower.be.BatchTx()
	oldDone, err := follower.s.Compact(tx, 5)
	tx.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	<-parked
	follower.s.sleepHook = time.After
	restoreFrom(t, leader, follower)
	<-oldDone
	if follower.s.CompactRev() != 9 {
		t.Fatalf("CompactRev %d after restore, want 9", follower.s.CompactRev())
	}
	follower.s.waitCompactions()
	if scheduled, finished := readCompactRevs(follower); scheduled != 9 || finished != 9 {
		t.Fatalf("meta scheduled %d finished %d, want 9 9", scheduled, finished)
	}
	want := []string{"5_0=c", "6_0=b", "9_0=a", "10_0t=c"}
	if got := follower.bucket(); !reflect.DeepEqual(got, want) {
		t.Fatalf("bucket %q, want %q", got, want)
	}
}

// TestRestoreWhileReading restores under concurrent readers (run with
// -race): a read transaction sees the old content or the new, whole, and
// never an error.
func TestRestoreWhileReading(t *testing.T) {
	const keys, rounds, readers = 50, 3, 2
	follower := newEnv(t, Options{})
	fill := func(e *env, val string) {
		e.txn(func(w *WriteTxn) {
			for k := 0; k < keys; k++ {
				w.Put([]byte(fmt.Sprintf("k%02d", k)), []byte(val), 0)
			}
		})
	}
	fill(follower, "old")
	var leaders []*env
	for r := 0; r < rounds; r++ {
		l := newEnv(t, Options{})
		for i := 0; i <= r; i++ { // a newer leader has more revisions
			fill(l, fmt.Sprint("gen", r))
		}
		leaders = append(leaders, l)
	}

	stop := make(chan struct{})
	errc := make(chan error, readers)
	var wg sync.WaitGroup
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				runtime.Gosched()
				res, err := follower.rng("k", []byte("l"), RangeOptions{})
				if err != nil {
					errc <- err
					return
				}
				if len(res.KVs) != keys {
					errc <- fmt.Errorf("%d keys at revision %d", len(res.KVs), res.Rev)
					return
				}
				for _, kv := range res.KVs {
					if string(kv.Value) != string(res.KVs[0].Value) || kv.ModRevision != res.KVs[0].ModRevision {
						errc <- fmt.Errorf("a read mixes %s and %s", kvString(kv), kvString(res.KVs[0]))
						return
					}
				}
			}
		}()
	}
	for _, l := range leaders {
		time.Sleep(5 * time.Millisecond) // let readers run on each content; not synchronisation
		restoreFrom(t, l, follower)
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	sameStore(t, leaders[rounds-1], follower)
}

// A failing replace leaves the store as it was.
func TestRestoreReplaceFails(t *testing.T) {
	e := newEnv(t, Options{})
	history(e)
	before := dumpIndex(e.s)
	rev := e.s.Rev()
	err := e.s.Restore(func() error { return e.be.Replace(filepath.Join(t.TempDir(), "missing")) })
	if err == nil {
		t.Fatal("Restore succeeded with a missing file")
	}
	if got := dumpIndex(e.s); !reflect.DeepEqual(got, before) || e.s.Rev() != rev {
		t.Fatalf("store changed by a failed restore: rev %d, index %v", e.s.Rev(), got)
	}
}
