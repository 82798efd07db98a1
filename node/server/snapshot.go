package server

import (
	"io"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// maybeSnapshot takes a raft snapshot once --snapshot-count entries have been
// applied since the last one. The backend is committed first: a snapshot at
// index i promises that the backend on disk holds every entry up to i, which
// is what allows dropping the WAL before it.
func (s *Server) maybeSnapshot() {
	applied := s.appliedIndex.Load()
	if applied-s.snapshotIndex <= s.opts.SnapshotCount {
		return
	}
	start := time.Now()
	if err := s.be.ForceCommit(); err != nil {
		s.lg.Error("cannot commit the backend before a snapshot; will retry at the next apply", zap.Error(err))
		return
	}
	if err := s.storage.snapshot(applied, s.confState, s.opts.SnapshotCatchUpEntries); err != nil {
		s.lg.Error("cannot save a raft snapshot; the WAL keeps growing until this succeeds", zap.Uint64("index", applied), zap.Error(err))
		return
	}
	s.snapshotIndex = applied
	s.lg.Info("saved a raft snapshot and released older WAL segments",
		zap.Uint64("index", applied), zap.Duration("took", time.Since(start)))
}

// snapshotSource opens the backend to send along with a raft snapshot
// message, streamed: the db is never held in memory. The db is at least as
// new as the raft snapshot (its consistent index is at or past it); the
// receiver moves the snapshot up to the db's index (see receiveSnapshot).
func (s *Server) snapshotSource(*raftpb.Message) (io.ReadCloser, int64, error) {
	sn, err := s.be.Snapshot()
	if err != nil {
		return nil, 0, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := sn.WriteTo(pw)
		sn.Close()
		pw.CloseWithError(err)
	}()
	return pr, sn.Size(), nil
}
