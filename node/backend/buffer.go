package backend

import (
	"bytes"

	"github.com/google/btree"
)

// entry is one buffered write. A delete is kept as a tombstone so that it
// hides the committed value until the commit has removed it from bbolt.
type entry struct {
	key     []byte
	value   []byte
	deleted bool
}

func entryLess(a, b entry) bool { return bytes.Compare(a.key, b.key) < 0 }

// btreeDegree trades node size against depth; 32 keeps a 10k-entry batch
// three levels deep.
const btreeDegree = 32

// buffer holds the writes of one batch, one ordered tree per bucket (indexed
// like allBuckets). Trees are created lazily and kept across Reset so their
// nodes are reused batch after batch.
type buffer struct {
	trees [len(allBuckets)]*btree.BTreeG[entry]
	n     int // number of distinct keys buffered, over all buckets
}

func (bf *buffer) put(bi int, e entry) {
	t := bf.trees[bi]
	if t == nil {
		t = btree.NewG(btreeDegree, entryLess)
		bf.trees[bi] = t
	}
	if _, replaced := t.ReplaceOrInsert(e); !replaced {
		bf.n++
	}
}

// get reports the buffered entry for key, if any.
func (bf *buffer) get(bi int, key []byte) (entry, bool) {
	t := bf.trees[bi]
	if t == nil {
		return entry{}, false
	}
	return t.Get(entry{key: key})
}

// putIfAbsent inserts e unless the key is already buffered (used to give back
// the writes of a failed commit: anything written since is newer and wins).
func (bf *buffer) putIfAbsent(bi int, e entry) {
	if _, ok := bf.get(bi, e.key); !ok {
		bf.put(bi, e)
	}
}

func (bf *buffer) empty() bool { return bf.n == 0 }

// reset empties the buffer, returning tree nodes to each tree's free list.
func (bf *buffer) reset() {
	for _, t := range bf.trees {
		if t != nil {
			t.Clear(true)
		}
	}
	bf.n = 0
}

// iterChunk is how many entries a bufIter copies out of its tree per refill.
const iterChunk = 64

// bufIter walks the entries of one tree in [from, end) in ascending order.
// btree only offers push-style iteration, so the iterator copies small chunks
// and re-seeks after the last key it returned: O(log n) per chunk, no
// goroutines, and never the whole range at once (a limit-1 Range over a large
// buffer stays cheap).
type bufIter struct {
	t         *btree.BTreeG[entry]
	end       []byte // exclusive; nil means unbounded
	from      []byte // next seek position
	afterFrom bool   // skip an entry equal to from (it was already returned)
	exhausted bool
	chunk     []entry
	i         int
}

func newBufIter(t *btree.BTreeG[entry], start, end []byte) bufIter {
	return bufIter{t: t, end: end, from: start, exhausted: t == nil || t.Len() == 0}
}

// peek returns the current entry, refilling the chunk when needed.
func (it *bufIter) peek() (entry, bool) {
	if it.i < len(it.chunk) {
		return it.chunk[it.i], true
	}
	if it.exhausted {
		return entry{}, false
	}
	it.fill()
	if it.i < len(it.chunk) {
		return it.chunk[it.i], true
	}
	return entry{}, false
}

func (it *bufIter) next() { it.i++ }

func (it *bufIter) fill() {
	if it.chunk == nil {
		it.chunk = make([]entry, 0, iterChunk)
	}
	it.chunk, it.i = it.chunk[:0], 0
	it.t.AscendGreaterOrEqual(entry{key: it.from}, func(e entry) bool {
		if it.afterFrom && bytes.Equal(e.key, it.from) {
			return true
		}
		if it.end != nil && bytes.Compare(e.key, it.end) >= 0 {
			it.exhausted = true
			return false
		}
		it.chunk = append(it.chunk, e)
		return len(it.chunk) < iterChunk
	})
	if len(it.chunk) < iterChunk {
		it.exhausted = true
	}
	if n := len(it.chunk); n > 0 {
		it.from, it.afterFrom = it.chunk[n-1].key, true
	}
}
