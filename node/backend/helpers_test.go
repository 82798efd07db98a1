package backend

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// openTest opens a backend in a fresh directory that never commits on its own
// unless the test asks (long interval, huge limit), so tests control commits.
func openTest(t *testing.T, mod func(*Options)) (*Backend, Options) {
	t.Helper()
	o := Options{
		Path:            filepath.Join(t.TempDir(), "member", "snap", "db"),
		BatchInterval:   time.Hour,
		BatchLimit:      1 << 30,
		InitialMmapSize: 1 << 26,
	}
	if mod != nil {
		mod(&o)
	}
	b, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, o
}

func put(b *Backend, bucket []byte, kvs ...string) {
	tx := b.BatchTx()
	for i := 0; i+1 < len(kvs); i += 2 {
		tx.Put(bucket, []byte(kvs[i]), []byte(kvs[i+1]))
	}
	tx.Unlock()
}

func del(b *Backend, bucket []byte, keys ...string) {
	tx := b.BatchTx()
	for _, k := range keys {
		tx.Delete(bucket, []byte(k))
	}
	tx.Unlock()
}

func mustCommit(t *testing.T, b *Backend) {
	t.Helper()
	if err := b.ForceCommit(); err != nil {
		t.Fatal(err)
	}
}

// rangeAll collects Range's output as "k=v" strings.
func rangeAll(b *Backend, bucket []byte, start, end string, limit int) []string {
	var out []string
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	b.Range(bucket, []byte(start), e, limit, func(k, v []byte) bool {
		out = append(out, fmt.Sprintf("%s=%s", k, v))
		return true
	})
	return out
}

// stageFlushing puts b in the state it has while a commit is writing: the
// buffer moved to flushing and no shared read tx. finishStaged completes
// that commit. Together they let tests read in the middle of a commit
// deterministically.
func stageFlushing(t *testing.T, b *Backend) (finish func()) {
	t.Helper()
	b.cmu.Lock()
	b.wmu.Lock()
	b.mu.Lock()
	fl := b.buf
	b.buf, b.spare = b.spare, nil
	b.flushing = fl
	b.pending.Store(0)
	b.closeRtxLocked()
	b.mu.Unlock()
	b.wmu.Unlock()
	return func() {
		t.Helper()
		if _, err := b.write(fl); err != nil {
			t.Fatal(err)
		}
		b.mu.Lock()
		b.flushing = nil
		if err := b.openRtxLocked(); err != nil {
			t.Fatal(err)
		}
		b.mu.Unlock()
		fl.reset()
		b.spare = fl
		b.cmu.Unlock()
	}
}

// model is the expected content of one bucket.
type model map[string]string

func (m model) rangeOf(start, end string, limit int) []string {
	var keys []string
	for k := range m {
		if k >= start && (k < end || end == "" && k == start) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, k+"="+m[k])
	}
	return out
}
