package backend

import (
	"bytes"
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// DefaultHashIgnores is etcd's schema.DefaultIgnores: the meta keys that
// differ between members for reasons outside the user's control
// (consistent_index, term, storageVersion) are left out of Hash.
func DefaultHashIgnores(bucket, key []byte) bool {
	return bytes.Equal(bucket, Meta) &&
		(bytes.Equal(key, metaTerm) || bytes.Equal(key, metaConsistentIndex) || bytes.Equal(key, metaStorageVersion))
}

// Hash commits pending writes and returns etcd's backend hash (the
// Maintenance.Hash RPC) of the committed data: CRC-32 (Castagnoli) over, for
// every bucket in bbolt's key order, the bucket name followed by each key and
// value in the bucket for which ignore returns false.
//
// Unlike etcd, a nil ignore hashes every key (etcd hashes only the bucket
// names then); servers pass DefaultHashIgnores. Writes committed concurrently
// may or may not be included: callers that need a hash at a precise point
// must stop writers first.
func (b *Backend) Hash(ignore func(bucket, key []byte) bool) (uint32, error) {
	if err := b.ForceCommit(); err != nil {
		return 0, err
	}
	b.mu.RLock()
	tx, err := b.db.Begin(false)
	b.mu.RUnlock()
	if err != nil {
		return 0, fmt.Errorf("backend: begin hash tx on %s: %w", b.opts.Path, err)
	}
	defer tx.Rollback()

	h := crc32.New(castagnoli)
	c := tx.Cursor()
	for name, _ := c.First(); name != nil; name, _ = c.Next() {
		bk := tx.Bucket(name)
		if bk == nil {
			return 0, fmt.Errorf("backend: cannot hash bucket %q: not a bucket", name)
		}
		h.Write(name)
		err := bk.ForEach(func(k, v []byte) error {
			if ignore == nil || !ignore(name, k) {
				h.Write(k)
				h.Write(v)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return h.Sum32(), nil
}
