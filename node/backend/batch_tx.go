package backend

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// BatchTx is the single writer's handle. Backend.BatchTx locks it; every Put
// and Delete until Unlock lands in the same commit.
type BatchTx struct {
	b *Backend
	// The holder's reads (Get) reuse one bbolt cursor per bucket on the
	// shared read tx crtx, instead of allocating a cursor per lookup. A
	// commit or Defrag replaces the shared tx; Get then notices that
	// b.rtx is no longer crtx and starts over. Only the holder uses these.
	crtx    *bolt.Tx
	cursors [len(allBuckets)]*bolt.Cursor
}

// BatchTx takes the single-writer lock and returns the writer's handle. No
// commit can take the buffer until Unlock. While holding it, do not call
// ForceCommit, Snapshot, Hash, Defrag or Close (they wait for Unlock).
func (b *Backend) BatchTx() *BatchTx {
	b.wmu.Lock()
	return &b.btx
}

// Get passes bucket[key], as the holder sees it (its own writes included), to
// fn and reports whether it was found. fn runs under the backend's read
// lock: v is valid only during the call and must not be modified, and fn
// must not call back into the Backend or the BatchTx.
func (tx *BatchTx) Get(bucket, key []byte, fn func(v []byte)) bool {
	bi := mustBucketIndex(bucket)
	b := tx.b
	b.mu.RLock()
	defer b.mu.RUnlock()
	if v, found, ok := b.bufferedLocked(bi, key); ok {
		if found {
			fn(v)
		}
		return found
	}
	if b.rtx == nil {
		// A commit is writing: no shared read tx to keep a cursor on.
		return b.getLocked(bi, key, func(v []byte, _ bool) { fn(v) })
	}
	if tx.crtx != b.rtx {
		tx.crtx = b.rtx
		tx.cursors = [len(allBuckets)]*bolt.Cursor{}
	}
	c := tx.cursors[bi]
	if c == nil {
		if b.rbk[bi] == nil {
			return false
		}
		c = b.rbk[bi].Cursor()
		tx.cursors[bi] = c
	}
	if ck, v := c.Seek(key); v != nil && bytes.Equal(ck, key) {
		fn(v)
		return true
	}
	return false
}

// Put buffers bucket[key] = value. It is visible to Backend reads as soon as
// Put returns. The backend keeps key and value until they are committed: the
// caller must not modify them afterwards.
func (tx *BatchTx) Put(bucket, key, value []byte) {
	tx.write(bucket, entry{key: key, value: value})
}

// Delete buffers the removal of bucket[key]; visible to reads at once.
func (tx *BatchTx) Delete(bucket, key []byte) {
	tx.write(bucket, entry{key: key, deleted: true})
}

func (tx *BatchTx) write(bucket []byte, e entry) {
	bi := mustBucketIndex(bucket)
	b := tx.b
	b.mu.Lock()
	b.buf.put(bi, e)
	b.mu.Unlock()
	b.pending.Add(1)
}

// Unlock releases the writer lock. If BatchLimit writes are pending it
// commits them before returning (a commit error is logged and the writes stay
// buffered for the next attempt).
func (tx *BatchTx) Unlock() {
	b := tx.b
	full := b.pending.Load() >= int64(b.opts.BatchLimit)
	b.wmu.Unlock()
	if full {
		b.commitAndLog()
	}
}
