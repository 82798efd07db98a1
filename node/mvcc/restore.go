package mvcc

import "sync"

// Restore rebuilds the store from its backend after the backend's content
// was replaced wholesale (a follower installing the database its raft leader
// sent with a snapshot): the index, the current and compaction revisions, the
// lease attachments (reported to Options.OnRestoreKey, as in New) and an
// interrupted compaction recorded in the new content, which is resumed.
//
// replace, if not nil, is called first, once the store is quiet: a running
// background compaction has been stopped (its work belonged to the old
// content) and no read transaction is open. That is where the caller swaps
// the backend's file and reloads whatever OnRestoreKey needs (leases). New
// readers wait until the index is rebuilt, so none ever sees the new backend
// through the old index or a half-built one. If replace fails, the store is
// left as it was (without background compaction) and the error returned; if
// the rebuild fails, the new content is damaged and the store unusable.
// Either way the caller should stop.
//
// Restore must not run concurrently with a WriteTxn, Compact or Close (the
// server calls it from its apply loop, the only writer).
func (s *Store) Restore(replace func() error) error {
	s.stopJobs()
	s.gate.Lock()
	defer s.gate.Unlock()
	if replace != nil {
		if err := replace(); err != nil {
			return err
		}
	}
	s.idx = newIndex()
	return s.restore()
}

// stopJobs stops the background compactions and waits for them, then makes
// the store ready to run new ones. An interrupted compaction leaves its
// scheduled revision in the backend, which the next restore resumes.
func (s *Store) stopJobs() {
	s.stopOnce.Do(func() { close(s.stopc) })
	s.jobs.Wait()
	// No job runs now, and none starts before this returns (Compact is not
	// called concurrently): the fields may be reset.
	s.stopc = make(chan struct{})
	s.stopOnce = sync.Once{}
	s.cmu.Lock()
	s.lastDone = nil
	s.cmu.Unlock()
}
