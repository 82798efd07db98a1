package mvcc

import (
	"sync"
	"unsafe"

	"github.com/google/btree"
)

// indexDegree: nodes of up to 63 records; the same as etcd's tree index.
const indexDegree = 32

// index maps keys to their keyIndex records, ordered by key.
//
// Locking: readers hold mu shared while they walk the tree and copy out the
// revisions they need, never while reading values from the backend. The
// writer and the compactor hold it exclusively for one key update, one
// transaction's tombstones or one compaction chunk.
type index struct {
	mu   sync.RWMutex
	tree *btree.BTreeG[*keyIndex]
}

func newIndex() *index {
	return &index{tree: btree.NewG(indexDegree, func(a, b *keyIndex) bool { return a.key < b.key })}
}

// probe returns a search record for key without copying it. The record must
// not outlive the call it is passed to: its key aliases the caller's bytes.
func probe(key []byte) *keyIndex {
	return &keyIndex{key: unsafe.String(unsafe.SliceData(key), len(key))}
}

// getLocked returns the record of key, or nil. Caller holds mu.
func (x *index) getLocked(key []byte) *keyIndex {
	ki, _ := x.tree.Get(probe(key))
	return ki
}

// addLocked appends r to key's record, creating it if needed. Caller holds
// mu exclusively.
func (x *index) addLocked(key []byte, r revision) {
	ki := x.getLocked(key)
	if ki == nil {
		ki = newKeyIndex(key)
		x.tree.ReplaceOrInsert(ki)
	}
	ki.add(r)
}

// isUnbounded reports whether end means "no upper bound": etcd's "\x00" end
// (every key >= key), or the empty non-nil end the API layer may pass for it.
func isUnbounded(end []byte) bool {
	return end != nil && (len(end) == 0 || (len(end) == 1 && end[0] == 0))
}

// ascendLocked calls fn for every record in etcd's key range, in key order,
// until fn returns false:
//
//	end == nil          just key
//	end == "\x00"       every key >= key (key "\x00" then means all keys)
//	otherwise           [key, end), empty when end <= key
//
// Caller holds mu.
func (x *index) ascendLocked(key, end []byte, fn func(ki *keyIndex) bool) {
	if end == nil {
		if ki := x.getLocked(key); ki != nil {
			fn(ki)
		}
		return
	}
	unbounded := isUnbounded(end)
	if !unbounded && string(end) <= string(key) {
		return
	}
	x.tree.AscendGreaterOrEqual(probe(key), func(ki *keyIndex) bool {
		if !unbounded && ki.key >= string(end) {
			return false
		}
		return fn(ki)
	})
}

// revisions returns the revisions visible at atRev in the range, at most
// limit of them (limit <= 0: all), and how many keys are visible in total.
func (x *index) revisions(key, end []byte, atRev int64, limit int) ([]revision, int64) {
	var (
		revs  []revision
		total int64
	)
	x.mu.RLock()
	x.ascendLocked(key, end, func(ki *keyIndex) bool {
		if r, ok := ki.visible(atRev); ok {
			if limit <= 0 || len(revs) < limit {
				revs = append(revs, r)
			}
			total++
		}
		return true
	})
	x.mu.RUnlock()
	return revs, total
}

// keyHead is what a keys-only read returns for one key: its key, the
// revision visible, and its creation revision and version when the index can
// tell them (known; see keyIndex.generationAt).
type keyHead struct {
	key             string
	mod             revision
	create, version int64
	known           bool
}

// heads is revisions for a keys-only read: the keys visible at atRev in the
// range, at most limit of them (limit <= 0: all), with what the index knows
// of each, and how many keys are visible in total.
func (x *index) heads(key, end []byte, atRev int64, limit int, compactRev int64) ([]keyHead, int64) {
	var (
		hs    []keyHead
		total int64
	)
	x.mu.RLock()
	x.ascendLocked(key, end, func(ki *keyIndex) bool {
		if r, ok := ki.visible(atRev); ok {
			if limit <= 0 || len(hs) < limit {
				h := keyHead{key: ki.key, mod: r}
				h.create, h.version, h.known = ki.generationAt(r, compactRev)
				hs = append(hs, h)
			}
			total++
		}
		return true
	})
	x.mu.RUnlock()
	return hs, total
}

// keys returns the keys visible at atRev in the range.
func (x *index) keys(key, end []byte, atRev int64) [][]byte {
	var keys [][]byte
	x.mu.RLock()
	x.ascendLocked(key, end, func(ki *keyIndex) bool {
		if _, ok := ki.visible(atRev); ok {
			keys = append(keys, []byte(ki.key))
		}
		return true
	})
	x.mu.RUnlock()
	return keys
}

// visible returns the revision of key a read at atRev sees.
func (x *index) visible(key []byte, atRev int64) (revision, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if ki := x.getLocked(key); ki != nil {
		return ki.visible(atRev)
	}
	return revision{}, false
}

// compactChunkKeys bounds how long one compaction step holds mu: about a
// millisecond of work, so reads and writes interleave with compaction.
const compactChunkKeys = 1000

// compact applies keyIndex.compact at atRev to every record, a chunk at a
// time, removing records left empty. Between chunks the writer may add
// revisions; they are newer than atRev and compaction leaves them alone.
func (x *index) compact(atRev int64) {
	var (
		scratch []revision
		empties []*keyIndex
		from    string
		started bool
	)
	for {
		done := true
		n := 0
		x.mu.Lock()
		visit := func(ki *keyIndex) bool {
			if started && ki.key == from {
				return true // finished in the previous chunk
			}
			if n == compactChunkKeys {
				done = false
				return false
			}
			n++
			from = ki.key
			if ki.compact(atRev, &scratch) {
				empties = append(empties, ki)
			}
			return true
		}
		if started {
			x.tree.AscendGreaterOrEqual(&keyIndex{key: from}, visit)
		} else {
			x.tree.Ascend(visit)
		}
		for _, ki := range empties {
			x.tree.Delete(ki)
		}
		x.mu.Unlock()
		clear(empties)
		empties = empties[:0]
		started = true
		if done {
			return
		}
	}
}

// hasRevisionLocked reports whether key still holds revision (main, sub): the
// test the backend compaction uses to decide what to delete. Caller holds mu.
func (x *index) hasRevisionLocked(key []byte, main, sub int64) bool {
	ki := x.getLocked(key)
	return ki != nil && ki.has(main, sub)
}

// len returns the number of records (keys with at least one revision,
// including keys whose newest revision is a tombstone).
func (x *index) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.tree.Len()
}

// count returns how many keys in the range are visible at atRev.
func (x *index) count(key, end []byte, atRev int64) int64 {
	var n int64
	x.mu.RLock()
	x.ascendLocked(key, end, func(ki *keyIndex) bool {
		if _, ok := ki.visible(atRev); ok {
			n++
		}
		return true
	})
	x.mu.RUnlock()
	return n
}

// anyVisible reports whether some key is visible at atRev.
func (x *index) anyVisible(atRev int64) bool {
	found := false
	x.mu.RLock()
	x.tree.Ascend(func(ki *keyIndex) bool {
		_, found = ki.visible(atRev)
		return !found
	})
	x.mu.RUnlock()
	return found
}
