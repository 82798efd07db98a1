package apply

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/mvcc"
)

// Both node/mvcc transactions must satisfy the views.
var (
	_ ReadView  = (*mvcc.ReadTxn)(nil)
	_ WriteView = (*mvcc.WriteTxn)(nil)
)

// realStore is node/mvcc over a node/backend in a temporary directory.
type realStore struct {
	t  testing.TB
	be *backend.Backend
	s  *mvcc.Store
}

func newRealStore(t testing.TB) testStore {
	t.Helper()
	be, err := backend.Open(backend.Options{Path: filepath.Join(t.TempDir(), "db"), NoFsync: true, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s, err := mvcc.New(be, mvcc.Options{})
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if err := be.Close(); err != nil {
			t.Error(err)
		}
	})
	return &realStore{t: t, be: be, s: s}
}

func (r *realStore) rev() int64 { return r.s.Rev() }

func (r *realStore) write(fn func(w WriteView)) {
	tx := r.be.BatchTx()
	defer tx.Unlock()
	w := r.s.Write(tx)
	defer w.End()
	fn(w)
}

func (r *realStore) read(fn func(v ReadView)) {
	t := r.s.Read()
	defer t.End()
	fn(t)
}

func (r *realStore) compact(rev int64) {
	tx := r.be.BatchTx()
	done, err := r.s.Compact(tx, rev)
	tx.Unlock()
	if err != nil {
		r.t.Fatalf("compact at %d: %v", rev, err)
	}
	<-done
}
