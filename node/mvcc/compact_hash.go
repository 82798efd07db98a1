package mvcc

import (
	"hash"
	"hash/crc32"
	"slices"
	"sync"

	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/backend"
)

// Compaction hashes (Options.CompactionHashes, etcd's CompactHashCheck): a
// compaction at rev, the previous one having been at prev, hashes what it
// scans of the key bucket — every revision up to rev — keeping the entries
// above prev and the older ones the compaction keeps, leaving out a
// tombstone at exactly prev (etcd's rule, see HashKV). Every member
// compacts at the same revisions of the same history, so healthy members
// store equal hashes; the leader compares them (node/hashcheck).
//
// The hash is taken on the compaction's own scan, so it costs a CRC of
// each scanned entry and nothing when the option is off.

// KeyValueHash is the hash of the key bucket up to Revision as it was
// when the store had been compacted at CompactRevision.
type KeyValueHash struct {
	Hash            uint32
	Revision        int64
	CompactRevision int64
}

// compactionHashesKept is how many compaction hashes a store keeps, as etcd.
const compactionHashesKept = 10

type compactionHashes struct {
	mu     sync.RWMutex
	hashes []KeyValueHash // by Revision, ascending
}

// CompactionHashes returns the kept compaction hashes, oldest first.
func (s *Store) CompactionHashes() []KeyValueHash {
	s.chashes.mu.RLock()
	defer s.chashes.mu.RUnlock()
	return slices.Clone(s.chashes.hashes)
}

// CompactionHash returns the kept hash of the compaction at rev.
func (s *Store) CompactionHash(rev int64) (KeyValueHash, bool) {
	s.chashes.mu.RLock()
	defer s.chashes.mu.RUnlock()
	for _, h := range s.chashes.hashes {
		if h.Revision == rev {
			return h, true
		}
	}
	return KeyValueHash{}, false
}

func (s *Store) keepCompactionHash(h KeyValueHash) {
	s.lg.Info("stored the compaction hash", zap.Uint32("hash", h.Hash),
		zap.Int64("revision", h.Revision), zap.Int64("compact-revision", h.CompactRevision))
	c := &s.chashes
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hashes = append(c.hashes, h)
	slices.SortFunc(c.hashes, func(a, b KeyValueHash) int { return int(sign(a.Revision - b.Revision)) })
	if len(c.hashes) > compactionHashesKept {
		c.hashes = slices.Delete(c.hashes, 0, len(c.hashes)-compactionHashesKept)
	}
}

func sign(n int64) int64 {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// compactHasher hashes the entries a compaction from prev to rev scans, in
// bucket order.
type compactHasher struct {
	h         hash.Hash32
	prev, rev int64
}

func newCompactHasher(prev, rev int64) *compactHasher {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	h.Write(backend.Key)
	return &compactHasher{h: h, prev: prev, rev: rev}
}

// add takes one scanned entry: k its bucket key (revision r), v its value,
// kept whether the compaction keeps it.
func (c *compactHasher) add(k, v []byte, r revision, kept bool) {
	if r.main <= c.prev && !kept {
		return
	}
	if r.main == c.prev && r.tomb {
		return
	}
	c.h.Write(k)
	c.h.Write(v)
}

func (c *compactHasher) sum() KeyValueHash {
	return KeyValueHash{Hash: c.h.Sum32(), Revision: c.rev, CompactRevision: c.prev}
}
