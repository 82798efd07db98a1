package mvcc

import (
	"testing"

	"github.com/ballastdb/ballast/node/backend"
)

// TestCompactionHashes: members with the same history keep the same hash
// for each compaction, whatever their batch sizes; a member whose data
// differs keeps a different one; the option off keeps none.
func TestCompactionHashes(t *testing.T) {
	a := newEnv(t, Options{CompactionHashes: true})
	b := newEnv(t, Options{CompactionHashes: true, CompactionBatchLimit: 1})
	c := newEnv(t, Options{CompactionHashes: true})
	off := newEnv(t, Options{})
	for _, e := range []*env{a, b, c, off} {
		history(e)
	}
	// c's copy of revision 3 ("b"=1) was altered on disk.
	tamper(t, c, 3)
	for _, rev := range []int64{4, 8, 10} {
		for _, e := range []*env{a, b, c, off} {
			if err := e.compact(rev); err != nil {
				t.Fatal(err)
			}
		}
	}
	ha, hb, hc := a.s.CompactionHashes(), b.s.CompactionHashes(), c.s.CompactionHashes()
	if len(ha) != 3 || len(hb) != 3 || len(hc) != 3 {
		t.Fatalf("kept hashes: %v %v %v, want 3 each", ha, hb, hc)
	}
	prev := int64(0)
	for i, h := range ha {
		if h != hb[i] {
			t.Errorf("compaction %d: batch sizes changed the hash: %+v vs %+v", i, h, hb[i])
		}
		if h.CompactRevision != prev {
			t.Errorf("compaction %d: compact revision %d, want %d", i, h.CompactRevision, prev)
		}
		prev = h.Revision
	}
	// Revision 3 is in the range of the first compaction only: it is gone
	// after it.
	if ha[0].Hash == hc[0].Hash {
		t.Errorf("the altered member's first compaction hash equals the others'")
	}
	if ha[1] != hc[1] || ha[2] != hc[2] {
		t.Errorf("later compactions differ: %v vs %v", ha[1:], hc[1:])
	}
	if got, ok := a.s.CompactionHash(8); !ok || got != ha[1] {
		t.Errorf("CompactionHash(8) = %+v %v", got, ok)
	}
	if _, ok := a.s.CompactionHash(9); ok {
		t.Errorf("CompactionHash(9) found a hash of no compaction")
	}
	if got := off.s.CompactionHashes(); len(got) != 0 {
		t.Errorf("hashes kept with the option off: %v", got)
	}
}

func TestCompactionHashesKeepTen(t *testing.T) {
	e := newEnv(t, Options{CompactionHashes: true})
	for i := range 15 {
		e.put("k", "v")
		if err := e.compact(int64(i + 2)); err != nil {
			t.Fatal(err)
		}
	}
	hs := e.s.CompactionHashes()
	if len(hs) != compactionHashesKept || hs[0].Revision != 7 || hs[len(hs)-1].Revision != 16 {
		t.Fatalf("kept %d hashes, %d..%d; want the newest %d", len(hs), hs[0].Revision, hs[len(hs)-1].Revision, compactionHashesKept)
	}
}

// tamper flips the last byte of the value stored at revision main (sub 0).
func tamper(t *testing.T, e *env, main int64) {
	t.Helper()
	k := revBytes(revision{main: main})
	v, ok := e.be.Get(backend.Key, k)
	if !ok {
		t.Fatalf("no revision %d", main)
	}
	v = append([]byte(nil), v...)
	v[len(v)-1] ^= 0xff
	tx := e.be.BatchTx()
	tx.Put(backend.Key, k, v)
	tx.Unlock()
}
