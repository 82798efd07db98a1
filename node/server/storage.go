package server

import (
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/snap"
	"github.com/ballastdb/ballast/node/wal"
)

// raftStorage is raft's durable log (the WAL plus snapshot files) and its
// in-memory mirror. The raft loop saves through it; the apply loop takes
// snapshots and releases old log through it. The mutex serialises the two.
type raftStorage struct {
	mu      sync.Mutex
	w       *wal.WAL
	snapDir string
	mem     *raft.MemoryStorage
	lg      *zap.Logger
}

// Save implements raftnode.Persister.
func (r *raftStorage) Save(st *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.w.Save(st, ents, sync)
}

// SaveSnapshot implements raftnode.Persister: the marker in the WAL first,
// then the snapshot file. A crash between the two leaves a marker without a
// file; restart then opens the WAL at the newest snapshot file (an older
// one, whose marker is there) and the WAL still holds every entry after it,
// because segments are released only once both are written. The reverse
// order would leave a file the WAL does not know, and no way to start.
func (r *raftStorage) SaveSnapshot(s *raftpb.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.saveSnapshotLocked(s)
}

func (r *raftStorage) saveSnapshotLocked(s *raftpb.Snapshot) error {
	md := s.GetMetadata()
	if err := r.w.SaveSnapshot(wal.Snapshot{Index: md.GetIndex(), Term: md.GetTerm()}); err != nil {
		return err
	}
	return snap.Save(r.snapDir, s)
}

// snapshot records a snapshot of the applied state at index (the backend has
// been committed up to it), compacts the in-memory log, keeping catchUp
// entries for slow followers, and drops WAL segments the snapshot covers.
func (r *raftStorage) snapshot(index uint64, cs *raftpb.ConfState, catchUp uint64) error {
	s, err := r.mem.CreateSnapshot(index, cs, nil)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.saveSnapshotLocked(s); err != nil {
		return err
	}
	if index > catchUp {
		if err := r.mem.Compact(index - catchUp); err != nil && err != raft.ErrCompacted {
			return err
		}
	}
	if err := r.w.ReleaseTo(index); err != nil {
		return err
	}
	if err := snap.Purge(r.snapDir, 5); err != nil {
		r.lg.Warn("could not purge old snapshot files", zap.String("dir", r.snapDir), zap.Error(err))
	}
	return nil
}

func (r *raftStorage) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		return nil
	}
	err := r.w.Close()
	r.w = nil
	return err
}
