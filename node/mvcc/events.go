package mvcc

import (
	"github.com/ballastdb/ballast/node/backend"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// eventsChunk is how many bucket entries Events reads per backend Range.
const eventsChunk = 512

// Events returns the changes with from <= main revision < to, in revision
// order (what watchers catching up need). With limit > 0 it stops after
// about limit events, but never inside one revision: a transaction's events
// are delivered together. to is capped at Rev()+1.
//
// ErrCompacted if from < CompactRev(): the compaction may already have
// removed changes before it. Changes at the compaction revision itself are
// all kept (each is its key's newest revision at or below it, tombstones
// included), so watchers may resume from it exactly, as etcd allows.
func (s *Store) Events(from, to int64, limit int) ([]*mvccpb.Event, error) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	if from < s.compactRev.Load() {
		return nil, ErrCompacted
	}
	// Entries of a WriteTxn in progress are in the backend already; they
	// are not events yet.
	to = min(to, s.rev.Load()+1)
	if from >= to {
		return nil, nil
	}
	var (
		evs      []*mvccpb.Event
		err      error
		lastMain int64
		full     bool
	)
	start := revBytes(revision{main: from})
	end := revBytes(revision{main: to})
	for !full && err == nil {
		n := 0
		s.be.Range(backend.Key, start, end, eventsChunk, func(k, v []byte) bool {
			n++
			start = append(append(start[:0], k...), 0)
			r, perr := parseRevBytes(k)
			if perr != nil {
				err = perr
				return false
			}
			if limit > 0 && len(evs) >= limit && r.main != lastMain {
				full = true
				return false
			}
			lastMain = r.main
			kv, uerr := unmarshalKV(v)
			if uerr != nil {
				err = uerr
				return false
			}
			ev := &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv}
			if r.tomb {
				// A stored tombstone holds only the key; watchers need the
				// revision of the deletion.
				ev.Type = mvccpb.Event_DELETE
				kv.ModRevision = r.main
			}
			evs = append(evs, ev)
			return true
		})
		if n < eventsChunk {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return evs, nil
}

// KeyAt returns key's value as of rev, nil if the key did not exist then
// (watch's prev_kv). ErrCompacted if rev < CompactRev(), ErrFutureRev if
// rev > Rev().
func (s *Store) KeyAt(key []byte, rev int64) (*mvccpb.KeyValue, error) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	if rev > s.rev.Load() {
		return nil, ErrFutureRev
	}
	if rev < s.compactRev.Load() {
		return nil, ErrCompacted
	}
	r, ok := s.idx.visible(key, rev)
	if !ok {
		return nil, nil
	}
	return s.loadKV(r)
}
