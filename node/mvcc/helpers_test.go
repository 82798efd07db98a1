package mvcc

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ballastdb/ballast/node/backend"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// env is a store over a real backend in a temporary directory.
type env struct {
	t    testing.TB
	path string
	opts Options
	be   *backend.Backend
	s    *Store
}

func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "db"), opts: o}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	e.t.Helper()
	be, err := backend.Open(backend.Options{Path: e.path, NoFsync: true, BatchInterval: time.Hour})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := New(be, e.opts)
	if err != nil {
		be.Close()
		e.t.Fatal(err)
	}
	e.be, e.s = be, s
}

func (e *env) close() {
	if e.s != nil {
		e.s.Close()
		e.s = nil
	}
	if e.be != nil {
		if err := e.be.Close(); err != nil {
			e.t.Error(err)
		}
		e.be = nil
	}
}

func (e *env) reopen() {
	e.t.Helper()
	e.close()
	e.open()
}

// txn runs fn in one write transaction and returns its events.
func (e *env) txn(fn func(w *WriteTxn)) []*mvccpb.Event {
	tx := e.be.BatchTx()
	w := e.s.Write(tx)
	fn(w)
	evs := w.End()
	tx.Unlock()
	return evs
}

func (e *env) put(key, val string) {
	e.txn(func(w *WriteTxn) { w.Put([]byte(key), []byte(val), 0) })
}

func (e *env) del(key string, end []byte) [][]byte {
	var keys [][]byte
	e.txn(func(w *WriteTxn) { keys = w.DeleteRange([]byte(key), end) })
	return keys
}

func (e *env) rng(key string, end []byte, o RangeOptions) (*RangeResult, error) {
	r := e.s.Read()
	defer r.End()
	return r.Range([]byte(key), end, o)
}

// compact compacts at rev and waits for the background work.
func (e *env) compact(rev int64) error {
	tx := e.be.BatchTx()
	done, err := e.s.Compact(tx, rev)
	tx.Unlock()
	if err != nil {
		return err
	}
	<-done
	return nil
}

// bucket lists the key bucket as "main_sub[t]=key".
func (e *env) bucket() []string {
	var out []string
	e.be.Range(backend.Key, []byte{}, []byte{0xff}, 0, func(k, v []byte) bool {
		r, err := parseRevBytes(k)
		if err != nil {
			e.t.Fatal(err)
		}
		h, err := parseKVHead(v)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, fmtRev(r)+"="+string(h.key))
		return true
	})
	return out
}

func fmtRev(r revision) string {
	s := fmt.Sprintf("%d_%d", r.main, r.sub)
	if r.tomb {
		s += "t"
	}
	return s
}

// dumpIndex renders the index as key -> revisions.
func dumpIndex(s *Store) map[string][]revision {
	out := map[string][]revision{}
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	s.idx.tree.Ascend(func(ki *keyIndex) bool {
		out[ki.key] = ki.appendRevisions(nil)
		return true
	})
	return out
}

// waitCompactions waits for every queued compaction job.
func (s *Store) waitCompactions() {
	s.cmu.Lock()
	done := s.lastDone
	s.cmu.Unlock()
	if done != nil {
		<-done
	}
}

func kvString(kv *mvccpb.KeyValue) string {
	return fmt.Sprintf("%s=%s c%d m%d v%d l%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease)
}

func kvsString(kvs []*mvccpb.KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kvString(kv))
	}
	return out
}

func evString(ev *mvccpb.Event) string {
	return ev.Type.String() + " " + kvString(ev.Kv)
}

func evsString(evs []*mvccpb.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, evString(ev))
	}
	return out
}

// park makes s's compactions stop at their first pause between batches
// (until Close) and returns a channel closed when one got there.
func park(s *Store) <-chan struct{} {
	parked := make(chan struct{})
	var once sync.Once
	s.sleepHook = func(time.Duration) <-chan time.Time {
		once.Do(func() { close(parked) })
		return nil
	}
	return parked
}

func readCompactRevs(e *env) (scheduled, finished int64) {
	return backend.ReadCompactRevs(e.be)
}

func setScheduledCompact(tx *backend.BatchTx, rev int64) {
	backend.SetScheduledCompact(tx, rev)
}
