package mvcc

import (
	"math"
	"unsafe"
)

// keyIndex is the in-memory record of one key: its revisions, oldest first.
//
// etcd keeps a slice of generations per key, each with its own slice of
// 16-byte revisions, a creation revision and a version. We keep only the
// revisions, packed into words (revision.go), and recover generations from
// the tombstone flags: a generation ends at a tombstone. Creation revision
// and version live in the stored value, which a Put reads anyway (see
// WriteTxn.Put); reads need nothing but the revision.
//
// Memory layout: the newest revision sits inline in last, so the common key
// with a single revision (every key right after a compaction) costs the
// 32-byte record plus its key bytes and no further allocation.
type keyIndex struct {
	key string
	// last is the newest revision in short form, or 0 when the key has no
	// revisions or its newest one needs the long form (it then ends *more).
	last uint64
	// more holds the older revisions (and a long-form newest), oldest first;
	// nil when there are none.
	more *[]uint64
}

// newKeyIndex returns an empty record for key. Keys of up to 128 bytes are
// copied into the record's own allocation, right after it: a lookup
// compares the probe with a record's key at every step of the search, and
// with the bytes beside the record each step touches one place in memory
// instead of two (at a million keys, a third less time per lookup). The
// allocation's size class is the one the record and a separate key would
// take together, so memory stays the same.
func newKeyIndex(key []byte) *keyIndex {
	if n := len(key); n > 0 && n <= 16*len(withKeyBySize) {
		return withKeyBySize[(n-1)/16](key)
	}
	return &keyIndex{key: string(key)}
}

// withKeyBySize holds withKey for arrays of 16, 32, … 128 bytes.
var withKeyBySize = [...]func([]byte) *keyIndex{
	withKey[[16]byte], withKey[[32]byte], withKey[[48]byte], withKey[[64]byte],
	withKey[[80]byte], withKey[[96]byte], withKey[[112]byte], withKey[[128]byte],
}

// withKey allocates a record followed by B, a byte array at least as long
// as key, and points the record's key at the copy in B. The string is
// never written through: Go strings are immutable, and so is the copy.
func withKey[B any](key []byte) *keyIndex {
	p := new(struct {
		ki  keyIndex
		buf B
	})
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&p.buf)), unsafe.Sizeof(p.buf))
	copy(buf, key)
	p.ki.key = unsafe.String(&buf[0], len(key))
	return &p.ki
}

func (ki *keyIndex) words() []uint64 {
	if ki.more == nil {
		return nil
	}
	return *ki.more
}

// add appends r, which must be newer than every revision of the key.
func (ki *keyIndex) add(r revision) {
	if ki.last == 0 && ki.more == nil && isShort(r) {
		ki.last = encodeShort(r)
		return
	}
	var ws []uint64
	if ki.more != nil {
		ws = *ki.more
	}
	if ki.last != 0 {
		ws = growWords(ws, 1)
		ws = append(ws, ki.last)
		ki.last = 0
	}
	if isShort(r) {
		ki.last = encodeShort(r)
	} else {
		ws = growWords(ws, 2)
		ws = appendWords(ws, r)
	}
	if ki.more == nil {
		ki.more = new([]uint64)
	}
	*ki.more = ws
}

// at returns the newest revision with main <= atRev. Reads are usually at
// or near the newest revision, so the scan starts from the end.
func (ki *keyIndex) at(atRev int64) (revision, bool) {
	if ki.last != 0 {
		if r := decodeShort(ki.last); r.main <= atRev {
			return r, true
		}
	}
	ws := ki.words()
	for i := len(ws); i > 0; {
		var r revision
		r, i = decodeBackward(ws, i)
		if r.main <= atRev {
			return r, true
		}
	}
	return revision{}, false
}

// newest returns the latest revision of the key.
func (ki *keyIndex) newest() (revision, bool) { return ki.at(math.MaxInt64) }

// visible returns the revision a read at atRev sees: the newest one at or
// before atRev, unless that is a tombstone (the key was deleted then).
func (ki *keyIndex) visible(atRev int64) (revision, bool) {
	r, ok := ki.at(atRev)
	if !ok || r.tomb {
		return revision{}, false
	}
	return r, true
}

// maxGenWalk bounds how many revisions generationAt walks before it gives
// up (the caller then reads the stored value): a key put many times since
// the last compaction must not make each of its puts slow.
const maxGenWalk = 64

// generationAt tells the creation revision and version of the key as of its
// revision r, which must be a live revision it holds (the visible one at some
// read revision, or the newest). They follow from the index alone when the
// key's generation up to r is wholly in it: the version is the number of
// revisions since the generation began, the creation revision its first.
//
// A generation is whole when its first revision left in the index is after
// compactRev: a compaction at c keeps each key's newest revision at or below
// c and drops only older ones, so a compaction that took a revision of the
// generation left a newer one at or below c in its place, or a compaction
// took that one too — either way the first revision left would be at or
// below compactRev. ok is false when that cannot be shown, or when more
// than maxGenWalk revisions would have to be counted.
func (ki *keyIndex) generationAt(r revision, compactRev int64) (create, version int64, ok bool) {
	var first revision
	n := int64(0)
	// visit sees the revisions newest first; it reports whether to go on.
	visit := func(x revision) bool {
		if x.main > r.main || (x.main == r.main && x.sub > r.sub) {
			return true // newer than r: not counted
		}
		if x.tomb {
			return false // the generation began after it
		}
		first = x
		n++
		return n <= maxGenWalk
	}
	more := true
	if ki.last != 0 {
		more = visit(decodeShort(ki.last))
	}
	ws := ki.words()
	for i := len(ws); more && i > 0; {
		var x revision
		x, i = decodeBackward(ws, i)
		more = visit(x)
	}
	if n == 0 || n > maxGenWalk || first.main <= compactRev {
		return 0, 0, false
	}
	return first.main, n, true
}

// has reports whether the key still holds revision (main, sub).
func (ki *keyIndex) has(main, sub int64) bool {
	if ki.last != 0 {
		r := decodeShort(ki.last)
		if r.main == main && r.sub == sub {
			return true
		}
		if r.main < main {
			return false
		}
	}
	ws := ki.words()
	for i := len(ws); i > 0; {
		var r revision
		r, i = decodeBackward(ws, i)
		if r.main == main && r.sub == sub {
			return true
		}
		if r.main < main {
			return false
		}
	}
	return false
}

// appendRevisions appends all revisions of the key, oldest first, to dst.
func (ki *keyIndex) appendRevisions(dst []revision) []revision {
	ws := ki.words()
	for i := 0; i < len(ws); {
		var r revision
		r, i = decodeForward(ws, i)
		dst = append(dst, r)
	}
	if ki.last != 0 {
		dst = append(dst, decodeShort(ki.last))
	}
	return dst
}

// compact drops the revisions a compaction at atRev makes unreachable and
// reports whether the key has none left (then it leaves the index).
//
// Kept, as in etcd (>= 3.5.16): every revision after atRev, and the newest
// revision at or before atRev, which is what a read at atRev sees, unless it
// is a tombstone older than atRev. A tombstone exactly at atRev stays, so
// that the compaction revision itself still shows the deletion; the next
// compaction past it removes it.
//
// scratch is reused between calls to avoid allocating per key.
func (ki *keyIndex) compact(atRev int64, scratch *[]revision) bool {
	if ki.more == nil {
		// Fast path: at most one revision, inline.
		if ki.last == 0 {
			return true
		}
		if r := decodeShort(ki.last); r.tomb && r.main < atRev {
			ki.last = 0
			return true
		}
		return false
	}
	revs := ki.appendRevisions((*scratch)[:0])
	*scratch = revs
	cut := -1 // index of the newest revision <= atRev
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].main <= atRev {
			cut = i
			break
		}
	}
	if cut < 0 {
		return false
	}
	if r := revs[cut]; r.tomb && r.main < atRev {
		cut++
	}
	if cut == 0 {
		return false
	}
	rest := revs[cut:]
	ki.last, ki.more = 0, nil
	if len(rest) == 0 {
		return true
	}
	// Rebuild at exact size: compaction is when a hot key gives back the
	// slack its appends accumulated.
	n := 0
	for _, r := range rest[:len(rest)-1] {
		n += wordsFor(r)
	}
	newest := rest[len(rest)-1]
	if !isShort(newest) {
		n += 2
	}
	if n > 0 {
		ws := make([]uint64, 0, n)
		for _, r := range rest[:len(rest)-1] {
			ws = appendWords(ws, r)
		}
		if !isShort(newest) {
			ws = appendWords(ws, newest)
		}
		ki.more = &ws
	}
	if isShort(newest) {
		ki.last = encodeShort(newest)
	}
	return false
}

// growWords makes room for need more words. It grows by a quarter instead of
// append's doubling: appends stay amortised O(1) while a hot key wastes at
// most about a quarter of its words (plus size-class rounding, which the
// capacity then uses) until the next compaction trims it.
func growWords(ws []uint64, need int) []uint64 {
	if cap(ws)-len(ws) >= need {
		return ws
	}
	n := len(ws) + need
	n += n / 4
	// Appending to nil rounds the capacity up to the allocator's size class.
	nw := append([]uint64(nil), make([]uint64, n)...)
	copy(nw, ws)
	return nw[:len(ws)]
}

func wordsFor(r revision) int {
	if isShort(r) {
		return 1
	}
	return 2
}
