package mvcc

import (
	"hash/crc32"

	"github.com/ballastdb/ballast/node/backend"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// hashChunk is how many bucket entries HashKV reads per backend Range.
const hashChunk = 1000

// HashKV computes etcd's HashKV of the store at rev (0: the current
// revision), so members (Ballast or etcd) with the same history agree
// regardless of how far their compactions have progressed.
//
// The hash is CRC-32C over the bucket name "key" followed by every bucket
// entry (key bytes, then value bytes) in bucket order, keeping only entries
//   - with main revision <= rev, and
//   - after the compaction revision, or else visible to a read at rev (if
//     no key is visible at rev at all, etcd keeps them all), and
//   - not a tombstone exactly at the compaction revision (etcd before
//     3.5.16 deleted those during compaction; later versions keep them).
//
// It returns the hash, the revision hashed and the compaction revision.
// ErrCompacted if rev < CompactRev(), ErrFutureRev if rev > Rev().
func (s *Store) HashKV(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	compactRev, cur := s.compactRev.Load(), s.rev.Load()
	if rev > 0 && rev < compactRev {
		return 0, 0, compactRev, ErrCompacted
	}
	if rev > cur {
		return 0, 0, compactRev, ErrFutureRev
	}
	if rev <= 0 {
		rev = cur
	}
	keepAny := s.idx.anyVisible(rev)

	h := crc32.New(castagnoli)
	h.Write(backend.Key)
	start := []byte{}
	end := revBytes(revision{main: rev + 1})
	for err == nil {
		n := 0
		s.be.Range(backend.Key, start, end, hashChunk, func(k, v []byte) bool {
			n++
			start = append(append(start[:0], k...), 0)
			r, perr := parseRevBytes(k)
			if perr != nil {
				err = perr
				return false
			}
			if r.main <= compactRev && keepAny {
				kh, herr := parseKVHead(v)
				if herr != nil {
					err = herr
					return false
				}
				// Lock order: backend read lock, then index lock (as in New).
				vr, ok := s.idx.visible(kh.key, rev)
				if !ok || vr.main != r.main || vr.sub != r.sub || r.tomb {
					return true
				}
			}
			if r.main == compactRev && r.tomb {
				return true
			}
			h.Write(k)
			h.Write(v)
			return true
		})
		if n < hashChunk {
			break
		}
	}
	if err != nil {
		return 0, 0, compactRev, err
	}
	return h.Sum32(), rev, compactRev, nil
}
