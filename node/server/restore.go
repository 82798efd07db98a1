package server

// Installing a raft snapshot sent by the leader, so that a follower whose
// missing entries were compacted from the leader's log (or a member just
// added) catches up.
//
// The leader streams its whole bbolt db with the MsgSnap (snapshotSource).
// The db's consistent index C is at or past the raft snapshot's index N: the
// leader kept applying entries after taking the raft snapshot.
//
//  1. receiveSnapshot (transport goroutine) stores the db durably as
//     member/snap/<term>-<index>.snap.db, term and index in 16 hex digits
//     like the .snap files, and checks that it is a whole db in etcd's
//     layout with C >= N. When the db records the term of entry C (every
//     Ballast db does), the message's snapshot metadata is moved up to
//     (C, term, the configuration as of C; see alignSnapshot):
//     entries N+1..C are in the db, so they are part of the snapshot. The
//     raft snapshot then describes exactly the db, and the WAL is never
//     behind the backend. Only then is the message handed to raft.
//  2. The raft loop persists the snapshot (the .snap file, then its WAL
//     marker, then the hard state) and loads it into the in-memory log.
//  3. applySnapshot (apply goroutine), once that is done, swaps the db in
//     place (backend.Replace renames the .snap.db over member/snap/db) and
//     rebuilds what is derived from it: leases, the MVCC index, membership,
//     alarms and the raft indexes; then it tells the watch hub.
//
// Crash safety: until the WAL marker of step 2 is written the snapshot does
// not exist for this member; a restart goes on from the old db and WAL, the
// leader sends a snapshot again, and leftover files are removed. Once it is
// written, a restart starts raft from the new snapshot and replays the WAL
// after it, so the backend must hold everything up to it:
// installSnapshotDBAtRestart, which restart calls once the WAL is read, does
// the swap of step 3 if the crash came before it. The swap itself is a
// rename, atomic, made durable before the new db is used.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/fileutil"
	"github.com/ballastdb/ballast/node/membership"
)

const (
	snapDBSuffix = ".snap.db"
	// partSuffix marks a db still being received. (The snap package's purge
	// removes "*.snap.*.tmp" files: these names must not look like that.)
	partSuffix = ".snap.db.part"
)

func snapDBName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", term, index, snapDBSuffix)
}

func parseSnapDBName(name string) (term, index uint64, ok bool) {
	base, found := strings.CutSuffix(name, snapDBSuffix)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	term, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	return term, index, err1 == nil && err2 == nil
}

func (s *Server) snapDBPath(term, index uint64) string {
	return filepath.Join(s.opts.snapDir(), snapDBName(term, index))
}

// receiveSnapshot stores the db that came with the MsgSnap m (step 1 above).
// It returns an error, and raft never sees m, unless the db is stored
// durably and complete.
func (s *Server) receiveSnapshot(m *raftpb.Message, body io.Reader) error {
	md := m.GetSnapshot().GetMetadata()
	if md.GetIndex() == 0 {
		return errors.New("the snapshot message carries no index")
	}
	start := time.Now()
	dir := s.opts.snapDir()
	// Databases received before and already installed, or that raft
	// ignored, are not needed any more.
	s.removeSnapshotDBs(s.appliedIndex.Load(), false)

	f, err := os.CreateTemp(dir, "incoming-*"+partSuffix)
	if err != nil {
		return fmt.Errorf("cannot store the snapshot's database: %w", err)
	}
	tmp := f.Name()
	stored := false
	defer func() {
		if !stored {
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, body)
	if err == nil && !s.opts.UnsafeNoFsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot store the snapshot's database (%d bytes received): %w", n, err)
	}
	info, err := backend.InspectFile(tmp)
	if err != nil {
		return fmt.Errorf("the database sent with the snapshot at index %d is unusable: %w", md.GetIndex(), err)
	}
	if info.ConsistentIndex < md.GetIndex() {
		return fmt.Errorf("the database sent with the snapshot at index %d holds raft entries up to %d only", md.GetIndex(), info.ConsistentIndex)
	}
	sentIndex := md.GetIndex()
	s.alignSnapshot(m.GetSnapshot(), info)
	path := s.snapDBPath(md.GetTerm(), md.GetIndex())
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot store the snapshot's database: %w", err)
	}
	stored = true
	if !s.opts.UnsafeNoFsync {
		if err := fileutil.SyncDir(dir); err != nil {
			os.Remove(path)
			return fmt.Errorf("cannot store the snapshot's database: %w", err)
		}
	}
	s.lg.Info("stored the database received with a raft snapshot",
		zap.String("from", membership.IDString(m.GetFrom())),
		zap.Uint64("snapshot-index", sentIndex),
		zap.Uint64("index", md.GetIndex()),
		zap.Uint64("term", md.GetTerm()),
		zap.Int64("bytes", n),
		zap.String("path", path),
		zap.Duration("took", time.Since(start)))
	return nil
}

// alignSnapshot moves the snapshot's metadata up to the consistent index of
// the db that came with it (see step 1 above). The db records the term of
// that entry, and the raft configuration as of it if any conf change was
// ever applied to it: every conf change applied writes it, so a db without
// one has the configuration of the snapshot. Otherwise (a db that does not
// record the term, or a configuration without this member, which raft
// refuses anyway) the snapshot stays at its index and the apply loop skips
// the entries the db already holds (applyEntries' consistent index check).
func (s *Server) alignSnapshot(sn *raftpb.Snapshot, info backend.FileInfo) {
	md := sn.GetMetadata()
	if info.ConsistentIndex == md.GetIndex() {
		return
	}
	conf := info.ConfState
	if conf == nil {
		conf = md.GetConfState()
	}
	if info.Term < md.GetTerm() || !inConfState(conf, s.id) {
		s.lg.Warn("the database sent with a raft snapshot is ahead of it but its last entry's term or configuration is unusable; the entries in between will be skipped when the leader sends them",
			zap.Uint64("snapshot-index", md.GetIndex()), zap.Uint64("snapshot-term", md.GetTerm()),
			zap.Uint64("db-index", info.ConsistentIndex), zap.Uint64("db-term", info.Term))
		return
	}
	md.Index = proto.Uint64(info.ConsistentIndex)
	md.Term = proto.Uint64(info.Term)
	md.ConfState = conf
}

func inConfState(cs *raftpb.ConfState, id uint64) bool {
	return slices.Contains(cs.GetVoters(), id) || slices.Contains(cs.GetLearners(), id) ||
		slices.Contains(cs.GetVotersOutgoing(), id)
}

// applySnapshot installs the snapshot raft handed to the apply loop, once
// the raft loop has persisted it. It reports false when the member cannot go
// on: it is then stopping, and nothing after the snapshot may be applied.
func (s *Server) applySnapshot(sn *raftpb.Snapshot) bool {
	if err := s.installSnapshot(sn); err != nil {
		s.lg.Error("cannot install the raft snapshot received from the leader; stopping. A restart retries the install; if it keeps failing, remove this member's data dir and add it again as a new member",
			zap.Uint64("index", sn.GetMetadata().GetIndex()), zap.Error(err))
		go s.stop()
		return false
	}
	return true
}

// installSnapshot is step 3 above.
func (s *Server) installSnapshot(sn *raftpb.Snapshot) error {
	md := sn.GetMetadata()
	index, term := md.GetIndex(), md.GetTerm()
	// The raft loop loads a snapshot into the in-memory log only after it
	// has persisted it; it closes Persisted also when persisting failed.
	if ms, err := s.storage.mem.Snapshot(); err != nil || ms.GetMetadata().GetIndex() < index {
		return fmt.Errorf("the snapshot at index %d was not persisted (the raft loop failed to write it)", index)
	}
	if index <= s.consistentIndex {
		// The backend already holds all of it (a restart before the hard
		// state recorded the commit): nothing to swap.
		s.lg.Info("the backend already holds the raft snapshot received from the leader; not replacing it",
			zap.Uint64("index", index), zap.Uint64("consistent-index", s.consistentIndex))
		s.snapshotIndex = index
		s.confState = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
		s.setApplied(index, term)
		s.removeSnapshotDBs(s.consistentIndex, false)
		return nil
	}

	start := time.Now()
	path := s.snapDBPath(term, index)
	info, err := backend.InspectFile(path)
	if err != nil {
		return fmt.Errorf("the database received with the snapshot: %w", err)
	}
	if info.ConsistentIndex < index {
		return fmt.Errorf("the database received with the snapshot at index %d holds raft entries up to %d only", index, info.ConsistentIndex)
	}
	oldRev, oldIndex := s.kv.Rev(), s.consistentIndex
	// Keys are re-attached to their leases as the MVCC index is rebuilt, so
	// the leases are reloaded first, while the store keeps readers out.
	err = s.kv.Restore(func() error {
		if err := s.be.Replace(path); err != nil {
			return err
		}
		return s.lessor.Restore(s.be, s.opts.ElectionTimeout)
	})
	if err != nil {
		return err
	}
	s.consistentIndex, _ = backend.ReadConsistentIndex(s.be)
	s.snapshotIndex = index
	s.confState = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
	if err := s.reloadMembership(); err != nil {
		return err
	}
	s.reloadAlarms()
	if err := s.auth.Reload(s.be); err != nil {
		return err
	}
	s.syncStorageVersion()
	s.setApplied(index, term)
	s.notifyWatchersRestored(oldRev)
	s.removeSnapshotDBs(s.consistentIndex, false)
	s.lg.Info("installed a raft snapshot from the leader",
		zap.Uint64("index", index),
		zap.Uint64("term", term),
		zap.Uint64("previous-consistent-index", oldIndex),
		zap.Uint64("consistent-index", s.consistentIndex),
		zap.Int64("previous-revision", oldRev),
		zap.Int64("revision", s.kv.Rev()),
		zap.Int64("compact-revision", s.kv.CompactRev()),
		zap.Int("leases", len(s.lessor.Leases())),
		zap.Int64("db-size-bytes", s.be.Size()),
		zap.Duration("took", time.Since(start)))
	return nil
}

func (s *Server) setApplied(index, term uint64) {
	s.appliedIndex.Store(index)
	s.applied.advance(index)
}

// notifyWatchersRestored tells the watch hub that the store jumped from
// oldRev to its current revision. The hub re-reads skipped revisions from the
// store for every watcher (or cancels watchers whose next revision was
// compacted), except when exactly one revision was skipped, which looks like
// an ordinary write to it: its events are then handed over as the apply loop
// would have.
func (s *Server) notifyWatchersRestored(oldRev int64) {
	rev := s.kv.Rev()
	switch {
	case rev == oldRev+1:
		evs, err := s.kv.Events(rev, rev+1, 0)
		if err != nil || len(evs) == 0 {
			s.lg.Error("cannot read the events of the revision a snapshot added; watchers may miss them",
				zap.Int64("revision", rev), zap.Int("events", len(evs)), zap.Error(err))
		}
		s.hub.Notify(rev, evs)
	case rev > oldRev+1:
		s.hub.Notify(rev, nil)
	case rev < oldRev:
		s.lg.Error("the snapshot from the leader is at an older revision than this member was; watchers may see revisions again",
			zap.Int64("revision", rev), zap.Int64("previous-revision", oldRev))
	}
}

// reloadMembership brings the membership to what the new backend records and
// tells the transport about members that came, changed or went. The Cluster
// is updated in place, since other goroutines hold it; its update methods
// also write to the backend, which already holds exactly those values, so
// only what differs is touched.
func (s *Server) reloadMembership() error {
	fresh, err := membership.Load(s.be, s.cluster.ID())
	if err != nil {
		return err
	}
	var removedIDs []uint64
	s.be.Range(backend.MembersRemoved, []byte{0}, []byte{0xff}, 0, func(k, _ []byte) bool {
		if id, err := membership.ParseID(string(k)); err == nil {
			removedIDs = append(removedIDs, id)
		}
		return true
	})
	var changed []*membership.Member
	for _, m := range fresh.Members() {
		if old := s.cluster.Member(m.ID); old == nil || !sameMember(old, m) {
			changed = append(changed, m)
		}
	}
	var removed []uint64
	for _, id := range removedIDs {
		if !s.cluster.IsRemoved(id) {
			removed = append(removed, id)
		}
	}
	for _, m := range s.cluster.Members() {
		if fresh.Member(m.ID) == nil && !fresh.IsRemoved(m.ID) {
			s.lg.Warn("a member known to this member is missing from the snapshot's membership; keeping it",
				zap.String("member-id", membership.IDString(m.ID)))
		}
	}
	s.cluster.LoadDowngrade(s.be)
	version := fresh.Version()
	if version == s.cluster.Version() {
		version = ""
	}
	if len(changed) > 0 || len(removed) > 0 || version != "" {
		tx := s.be.BatchTx()
		for _, m := range changed {
			if err := s.cluster.Add(tx, m); err != nil {
				tx.Unlock()
				return err
			}
		}
		for _, id := range removed {
			s.cluster.Remove(tx, id)
		}
		if version != "" {
			s.cluster.SetVersion(tx, version)
		}
		tx.Unlock()
	}
	for _, m := range changed {
		s.onMemberChanged(m)
	}
	for _, id := range removed {
		s.onMemberRemoved(id)
	}
	return nil
}

func sameMember(a, b *membership.Member) bool {
	return a.ID == b.ID && a.Name == b.Name && a.IsLearner == b.IsLearner &&
		slices.Equal(a.PeerURLs, b.PeerURLs) && slices.Equal(a.ClientURLs, b.ClientURLs)
}

// reloadAlarms replaces the raised alarms with the new backend's.
func (s *Server) reloadAlarms() {
	fresh := loadAlarms(s.be)
	s.alarms.mu.Lock()
	s.alarms.alarms = fresh.alarms
	s.alarms.mu.Unlock()
}

// installSnapshotDBAtRestart finishes an install that a crash interrupted.
// restart calls it once the WAL has been read from the raft snapshot sn,
// with the hard state hs read from it, before the state is opened:
//   - if the backend is older than sn, the db received with sn is moved
//     into place now (a crash came between persisting sn and the swap);
//   - if hs records a commit index below sn (a crash came between the
//     snapshot's WAL marker and the hard state after it), the commit index
//     is raised to sn's: a snapshot holds committed entries only, and raft
//     refuses to start with a commit index below its snapshot.
//
// Leftover received dbs are removed.
func (s *Server) installSnapshotDBAtRestart(sn *raftpb.Snapshot, hs *raftpb.HardState) error {
	index, term := sn.GetMetadata().GetIndex(), sn.GetMetadata().GetTerm()
	if hs.GetTerm() > 0 && hs.GetCommit() < index {
		s.lg.Info("raising the commit index of the WAL's hard state to its newest raft snapshot (the last run stopped between writing them)",
			zap.Uint64("commit-index", hs.GetCommit()), zap.Uint64("snapshot-index", index))
		hs.Commit = proto.Uint64(index)
	}
	if sn == nil || index <= s.consistentIndex {
		s.removeSnapshotDBs(s.consistentIndex, true)
		return nil
	}
	path := s.snapDBPath(term, index)
	info, err := backend.InspectFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the backend %s holds raft entries up to %d, older than the raft snapshot at %d, and the database received with that snapshot (%s) is missing: entries in between are lost (was the data dir partly restored, or run with --unsafe-no-fsync?); remove this member's data dir and add it again as a new member",
			s.opts.dbPath(), s.consistentIndex, index, path)
	}
	if err != nil {
		return fmt.Errorf("cannot install the database received with the raft snapshot at %d: %w", index, err)
	}
	if info.ConsistentIndex < index {
		return fmt.Errorf("cannot install %s: it holds raft entries up to %d only, before the raft snapshot at %d", path, info.ConsistentIndex, index)
	}
	if err := s.be.Replace(path); err != nil {
		return fmt.Errorf("cannot install the database received with the raft snapshot at %d: %w", index, err)
	}
	old := s.consistentIndex
	s.consistentIndex, _ = backend.ReadConsistentIndex(s.be)
	s.lg.Info("installed the database received with a raft snapshot before the last stop",
		zap.Uint64("index", index), zap.Uint64("term", term),
		zap.Uint64("previous-consistent-index", old), zap.Uint64("consistent-index", s.consistentIndex),
		zap.Int64("db-size-bytes", s.be.Size()))
	s.removeSnapshotDBs(s.consistentIndex, true)
	return nil
}

// removeSnapshotDBs removes the received databases at or below index, which
// the backend already holds (or which raft ignored), and with partial the
// unfinished downloads too (only when no download can be running).
func (s *Server) removeSnapshotDBs(index uint64, partial bool) {
	dir := s.opts.snapDir()
	des, err := os.ReadDir(dir)
	if err != nil {
		s.lg.Warn("cannot list the snapshot directory", zap.String("dir", dir), zap.Error(err))
		return
	}
	for _, de := range des {
		name := de.Name()
		_, i, ok := parseSnapDBName(name)
		if !(ok && i <= index) && !(partial && strings.HasSuffix(name, partSuffix)) {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.lg.Warn("cannot remove an obsolete snapshot database", zap.String("path", path), zap.Error(err))
			continue
		}
		s.lg.Info("removed an obsolete snapshot database", zap.String("path", path))
	}
}
