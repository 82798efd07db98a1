package mvcc

import (
	"time"

	"github.com/ballastdb/ballast/node/backend"
	"go.uber.org/zap"
)

// Compact discards the history before rev: afterwards reads below rev fail
// with ErrCompacted, and for every key only the newest revision at or before
// rev survives (gone entirely if that is a tombstone older than rev).
//
// The caller holds tx; Compact records scheduledCompactRev in it, so the
// compaction is durable with the caller's commit and resumes after a crash.
// It waits for open ReadTxns to end, then moves CompactRev. The index and
// the key bucket are compacted in the background, in short steps that let
// reads and writes through; done is closed when the key bucket is compacted
// and finishedCompactRev recorded (or when Close stopped the work, which the
// next New resumes). Compactions run one after another, in order.
//
// Errors: ErrCompacted if rev <= CompactRev(), ErrFutureRev if rev > Rev();
// done is nil then.
func (s *Store) Compact(tx *backend.BatchTx, rev int64) (done <-chan struct{}, err error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if rev <= s.compactRev.Load() && (rev > 0 || s.compacted.Load()) {
		return nil, ErrCompacted
	}
	if rev > s.rev.Load() {
		return nil, ErrFutureRev
	}
	backend.SetScheduledCompact(tx, rev)
	var hasher *compactHasher
	if s.opts.CompactionHashes {
		hasher = newCompactHasher(s.compactRev.Load(), rev)
	}
	s.gate.Lock()
	s.compactRev.Store(rev)
	s.compacted.Store(true)
	s.gate.Unlock()
	return s.startCompaction(rev, hasher), nil
}

// startCompaction queues the background work of a compaction at rev behind
// the previous one; hasher, if any, hashes what it scans. Caller holds cmu.
func (s *Store) startCompaction(rev int64, hasher *compactHasher) <-chan struct{} {
	prev := s.lastDone
	done := make(chan struct{})
	s.lastDone = done
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		defer close(done)
		if prev != nil {
			select {
			case <-prev:
			case <-s.stopc:
				return
			}
		}
		start := time.Now()
		s.idx.compact(rev)
		indexTook := time.Since(start)
		deleted, ok := s.compactBackend(rev, hasher)
		if !ok {
			return
		}
		if hasher != nil {
			s.keepCompactionHash(hasher.sum())
		}
		s.lg.Info("finished compaction",
			zap.Int64("compact-revision", rev),
			zap.Int("deleted-revisions", deleted),
			zap.Duration("index-took", indexTook),
			zap.Duration("took", time.Since(start)))
	}()
	return done
}

// compactBackend deletes from the key bucket every revision at or before rev
// that the (already compacted) index no longer holds, a batch at a time,
// each batch in its own BatchTx, then records finishedCompactRev. It reports
// false if Close interrupted it.
//
// Deciding by the index rather than by a set of kept revisions (etcd builds a
// map of every survivor) costs a key lookup per scanned revision but no
// memory. It is safe against concurrent writers: they only add revisions
// newer than rev. A later compaction only removes more, and it does not
// start before this one ends.
func (s *Store) compactBackend(rev int64, hasher *compactHasher) (deleted int, ok bool) {
	type entry struct {
		bk         []byte
		key        []byte
		rev        revision
		parseError bool
	}
	limit := s.opts.CompactionBatchLimit
	end := revBytes(revision{main: rev + 1}) // excludes everything newer than rev
	start := []byte{}
	batch := make([]entry, 0, limit)
	var del [][]byte
	for {
		batch = batch[:0]
		s.be.Range(backend.Key, start, end, limit, func(k, v []byte) bool {
			e := entry{bk: append([]byte(nil), k...)}
			r, err := parseRevBytes(k)
			h, herr := parseKVHead(v)
			if err != nil || herr != nil {
				e.parseError = true
			} else {
				e.key, e.rev = append([]byte(nil), h.key...), r
			}
			if hasher != nil {
				// Hashed here, in bucket order, rather than copying
				// values out. Lock order: backend read lock, then
				// index lock (as in HashKV).
				kept := true
				if !e.parseError {
					s.idx.mu.RLock()
					kept = s.idx.hasRevisionLocked(e.key, r.main, r.sub)
					s.idx.mu.RUnlock()
				}
				hasher.add(k, v, e.rev, kept)
			}
			batch = append(batch, e)
			return true
		})
		del = del[:0]
		s.idx.mu.RLock()
		for _, e := range batch {
			if e.parseError {
				continue // never delete what we cannot read; New reports it
			}
			if !s.idx.hasRevisionLocked(e.key, e.rev.main, e.rev.sub) {
				del = append(del, e.bk)
			}
		}
		s.idx.mu.RUnlock()
		last := len(batch) < limit
		if len(del) > 0 || last {
			tx := s.be.BatchTx()
			for _, bk := range del {
				tx.Delete(backend.Key, bk)
			}
			if last {
				backend.SetFinishedCompact(tx, rev)
			}
			tx.Unlock()
			deleted += len(del)
		}
		if last {
			return deleted, true
		}
		start = append(append(start[:0], batch[len(batch)-1].bk...), 0)
		if len(del) > 0 {
			select {
			case <-s.sleepHook(s.opts.CompactionSleepInterval):
			case <-s.stopc:
				return deleted, false
			}
		} else {
			select {
			case <-s.stopc:
				return deleted, false
			default:
			}
		}
	}
}
