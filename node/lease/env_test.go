package lease

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ballastdb/ballast/node/backend"
)

// fakeClock only moves when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openBackend opens a real backend that commits only when told or on Close.
func openBackend(t testing.TB, path string) *backend.Backend {
	t.Helper()
	be, err := backend.Open(backend.Options{
		Path:            path,
		BatchInterval:   time.Hour,
		BatchLimit:      1 << 30,
		InitialMmapSize: 1 << 24,
	})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// env is a lessor over a real backend with a fake clock and no background
// checker: tests run the expiry check themselves with check().
type env struct {
	t     *testing.T
	path  string
	clock *fakeClock
	be    *backend.Backend
	l     *Lessor
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "member", "snap", "db"), clock: newFakeClock()}
	e.be = openBackend(t, e.path)
	t.Cleanup(func() { e.be.Close() })
	e.open(cfg)
	return e
}

func (e *env) open(cfg Config) {
	e.t.Helper()
	cfg.Clock = e.clock
	l, err := newLessor(e.be, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.l = l
}

// reopen simulates a restart: the backend is closed (committing everything)
// and opened again, and a fresh lessor restores from it.
func (e *env) reopen(cfg Config) {
	e.t.Helper()
	e.l.Stop()
	if err := e.be.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.be = openBackend(e.t, e.path)
	e.open(cfg)
}

func (e *env) grant(id, ttl int64) (*Lease, error) {
	tx := e.be.BatchTx()
	defer tx.Unlock()
	return e.l.Grant(tx, id, ttl)
}

func (e *env) mustGrant(id, ttl int64) *Lease {
	e.t.Helper()
	ls, err := e.grant(id, ttl)
	if err != nil {
		e.t.Fatalf("grant %d: %v", id, err)
	}
	return ls
}

func (e *env) revoke(id int64) error {
	tx := e.be.BatchTx()
	defer tx.Unlock()
	return e.l.Revoke(tx, id)
}

// get returns the stored record bytes of lease id.
func (e *env) get(id int64) ([]byte, bool) { return e.be.Get(backend.Lease, idKey(id)) }

// putRaw stores v as lease id's record, bypassing the lessor.
func (e *env) putRaw(id int64, v []byte) {
	tx := e.be.BatchTx()
	tx.Put(backend.Lease, idKey(id), v)
	tx.Unlock()
}

// check runs one expiry check and returns the batch it delivered, if any.
func (e *env) check() []*Lease {
	e.l.checkExpired()
	select {
	case b := <-e.l.Expired():
		return b
	default:
		return nil
	}
}

func ids(ls []*Lease) []int64 {
	out := make([]int64, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

// checkInvariants verifies the lessor's internal invariants.
func checkInvariants(t *testing.T, l *Lessor) {
	t.Helper()
	l.mu.RLock()
	defer l.mu.RUnlock()
	l.heapMu.Lock()
	defer l.heapMu.Unlock()
	n := 0
	for id, ls := range l.leases {
		if ls.ID != id {
			t.Fatalf("lease %d filed under %d", ls.ID, id)
		}
		for k := range ls.keys {
			n++
			if l.keys[k] != id {
				t.Fatalf("key %q in lease %d but maps to %d", k, id, l.keys[k])
			}
		}
		exp := ls.expiry.Load()
		if l.demoteC == nil {
			if exp != forever || ls.index != -1 {
				t.Fatalf("follower lease %d: expiry %d index %d", id, exp, ls.index)
			}
			continue
		}
		if ls.index < 0 || ls.index >= len(l.heap) || l.heap[ls.index] != ls {
			t.Fatalf("primary lease %d not in heap (index %d)", id, ls.index)
		}
		// A deadline past the expiry is only allowed for an expired lease
		// that was handed out and waits for its retry.
		if ls.deadline > exp && exp > ls.deadline-int64(retryInterval) {
			t.Fatalf("lease %d: heap deadline %d after expiry %d", id, ls.deadline, exp)
		}
	}
	if n != len(l.keys) {
		t.Fatalf("%d keys in leases, %d in key map", n, len(l.keys))
	}
	if l.demoteC != nil && len(l.heap) != len(l.leases) {
		t.Fatalf("heap holds %d leases, map %d", len(l.heap), len(l.leases))
	}
	if l.primary.Load() != (l.demoteC != nil) {
		t.Fatal("primary flag disagrees with demoteC")
	}
	checkHeap(t, l.heap)
}
