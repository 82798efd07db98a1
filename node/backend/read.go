package backend

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// bucketLocked returns the bbolt bucket to read for bucket index bi, per the
// read invariant on Backend. During a commit there is no shared read tx and
// the caller gets a private one to roll back when done. Caller holds mu.
func (b *Backend) bucketLocked(bi int) (bk *bolt.Bucket, private *bolt.Tx) {
	if b.rtx != nil {
		return b.rbk[bi], nil
	}
	tx, err := b.db.Begin(false)
	if err != nil {
		// Only after Close (or a failed Defrag reopen): nothing to read.
		return nil, nil
	}
	return tx.Bucket(allBuckets[bi]), tx
}

// getLocked passes bucket[key] from the merged view to use, reporting whether
// it was found. buffered tells use whether v is a buffered value (immutable,
// owned by the backend) or a bbolt one, valid only during the call because
// the read tx may end right after. Caller holds mu.
func (b *Backend) getLocked(bi int, key []byte, use func(v []byte, buffered bool)) bool {
	if v, found, ok := b.bufferedLocked(bi, key); ok {
		if found {
			use(v, true)
		}
		return found
	}
	bk, private := b.bucketLocked(bi)
	if private != nil {
		defer private.Rollback()
	}
	if bk == nil {
		return false
	}
	v := bk.Get(key)
	if v == nil {
		return false
	}
	use(v, false)
	return true
}

// Get returns bucket[key] from the merged view (buffered writes, then
// committed data). It is safe concurrently with a BatchTx holder. The
// returned slice must not be modified.
func (b *Backend) Get(bucket, key []byte) ([]byte, bool) {
	bi := mustBucketIndex(bucket)
	var out []byte
	b.mu.RLock()
	ok := b.getLocked(bi, key, func(v []byte, buffered bool) {
		if buffered {
			out = v
		} else {
			out = append([]byte(nil), v...)
		}
	})
	b.mu.RUnlock()
	return out, ok
}

// GetMany looks keys up in bucket, in the merged view, and calls fn(i, v)
// for each keys[i] that is found, in order. It is Get for many keys at once:
// one hold of the read lock per rangeChunk keys instead of one per key, and
// one bbolt cursor reused for all of them instead of a new one (and its
// search stack) per lookup. fn runs under the read lock: v is valid only
// during the call and must not be modified, and fn must not call back into
// the Backend.
func (b *Backend) GetMany(bucket []byte, keys [][]byte, fn func(i int, v []byte)) {
	bi := mustBucketIndex(bucket)
	for from := 0; from < len(keys); from += rangeChunk {
		to := min(from+rangeChunk, len(keys))
		b.mu.RLock()
		b.getManyLocked(bi, keys, from, to, fn)
		b.mu.RUnlock()
	}
}

func (b *Backend) getManyLocked(bi int, keys [][]byte, from, to int, fn func(i int, v []byte)) {
	var (
		c       *bolt.Cursor
		opened  bool
		private *bolt.Tx
	)
	defer func() {
		if private != nil {
			_ = private.Rollback()
		}
	}()
	for i := from; i < to; i++ {
		k := keys[i]
		if v, found, ok := b.bufferedLocked(bi, k); ok {
			if found {
				fn(i, v)
			}
			continue
		}
		if !opened {
			opened = true
			var bk *bolt.Bucket
			if bk, private = b.bucketLocked(bi); bk != nil {
				c = bk.Cursor()
			}
		}
		if c == nil {
			continue
		}
		// v is nil for a nested bucket, which the key-value buckets do not
		// have; Bucket.Get reports those as missing too.
		if ck, v := c.Seek(k); v != nil && bytes.Equal(ck, k) {
			fn(i, v)
		}
	}
}

// bufferedLocked looks key up in the write buffers (buf, then flushing).
// ok reports whether they decide it: found with v, or deleted. Caller holds
// mu.
func (b *Backend) bufferedLocked(bi int, key []byte) (v []byte, found, ok bool) {
	if e, ok := b.buf.get(bi, key); ok {
		return e.value, !e.deleted, true
	}
	if b.flushing != nil {
		if e, ok := b.flushing.get(bi, key); ok {
			return e.value, !e.deleted, true
		}
	}
	return nil, false, false
}

// rangeChunk bounds the entries (tombstones included) one Range visits per
// hold of the read lock. A writer's Put waits for the readers in front of it,
// so a long scan must not hold the lock for its whole length.
const rangeChunk = 128

// Range calls fn for each key in [start, end) of bucket in ascending order,
// over the merged view. end == nil means just the key start. limit <= 0 means
// no limit; fn returns false to stop early.
//
// Each key is visited at most once and in order, but a Range longer than
// rangeChunk entries is not one point-in-time view: between chunks it lets
// writers and commits in, so writes made meanwhile to keys it has not reached
// yet may be seen. (For the key bucket this is harmless: a revision, once
// written, never changes.)
//
// fn runs under the backend's read lock: k and v are valid only during the
// call and must not be modified, and fn must not call back into the Backend
// or its BatchTx.
func (b *Backend) Range(bucket, start, end []byte, limit int, fn func(k, v []byte) bool) {
	bi := mustBucketIndex(bucket)
	if len(end) == 0 {
		b.mu.RLock()
		b.getLocked(bi, start, func(v []byte, _ bool) { fn(start, v) })
		b.mu.RUnlock()
		return
	}
	if bytes.Compare(start, end) >= 0 {
		return
	}
	r := ranger{bi: bi, from: start, end: end, limit: limit, fn: fn}
	for {
		b.mu.RLock()
		more := r.chunkLocked(b)
		b.mu.RUnlock()
		if !more {
			return
		}
	}
}

// ranger is the state of one Range carried across chunks.
type ranger struct {
	bi        int
	from      []byte // resume position
	afterFrom bool   // from itself was already visited
	end       []byte
	limit     int
	n         int // keys passed to fn so far
	fn        func(k, v []byte) bool
}

// chunkLocked merges buf, flushing and bbolt (in that priority) for up to
// rangeChunk entries from r.from, and reports whether the Range must go on.
// Caller holds mu.
func (r *ranger) chunkLocked(b *Backend) bool {
	bufIt := newBufIter(b.buf.trees[r.bi], r.from, r.end)
	bufIt.afterFrom = r.afterFrom
	var flIt bufIter
	if b.flushing != nil {
		flIt = newBufIter(b.flushing.trees[r.bi], r.from, r.end)
		flIt.afterFrom = r.afterFrom
	} else {
		flIt.exhausted = true
	}
	var ck, cv []byte
	var c *bolt.Cursor
	bk, private := b.bucketLocked(r.bi)
	if private != nil {
		defer private.Rollback()
	}
	if bk != nil {
		c = bk.Cursor()
		ck, cv = c.Seek(r.from)
		if r.afterFrom && ck != nil && bytes.Equal(ck, r.from) {
			ck, cv = c.Next()
		}
	}
	for visited := 0; ; visited++ {
		if ck != nil && bytes.Compare(ck, r.end) >= 0 {
			ck = nil
		}
		be, bok := bufIt.peek()
		fe, fok := flIt.peek()
		if !bok && !fok && ck == nil {
			return false
		}
		// Pick the smallest key; on ties buf beats flushing beats bbolt.
		var k, v []byte
		deleted := false
		switch {
		case bok && (!fok || bytes.Compare(be.key, fe.key) <= 0) && (ck == nil || bytes.Compare(be.key, ck) <= 0):
			k, v, deleted = be.key, be.value, be.deleted
		case fok && (ck == nil || bytes.Compare(fe.key, ck) <= 0):
			k, v, deleted = fe.key, fe.value, fe.deleted
		default:
			k, v = ck, cv
		}
		if visited == rangeChunk {
			// Resume at k next time. It may point into bbolt's mmap, which
			// is only valid under the lock: copy it.
			r.from, r.afterFrom = append([]byte(nil), k...), false
			return true
		}
		// Advance every source positioned at k.
		if bok && bytes.Equal(be.key, k) {
			bufIt.next()
		}
		if fok && bytes.Equal(fe.key, k) {
			flIt.next()
		}
		if ck != nil && bytes.Equal(ck, k) {
			ck, cv = c.Next()
		}
		if deleted {
			continue
		}
		if !r.fn(k, v) {
			return false
		}
		r.n++
		if r.limit > 0 && r.n >= r.limit {
			return false
		}
	}
}
