package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/join"
	"github.com/ballastdb/ballast/node/lease"
	"github.com/ballastdb/ballast/node/membership"
	"github.com/ballastdb/ballast/node/mvcc"
	"github.com/ballastdb/ballast/node/snap"
	"github.com/ballastdb/ballast/node/wal"
	"github.com/ballastdb/ballast/node/watch"
)

// walMetadata is stored once at the head of the WAL: who this member is and
// which cluster it belongs to.
type walMetadata struct {
	MemberID  string `json:"member_id"`
	ClusterID string `json:"cluster_id"`
}

func encodeWALMetadata(id, cid uint64) []byte {
	b, _ := json.Marshal(walMetadata{MemberID: membership.IDString(id), ClusterID: membership.IDString(cid)})
	return b
}

func decodeWALMetadata(b []byte) (id, cid uint64, err error) {
	var m walMetadata
	if err = json.Unmarshal(b, &m); err != nil {
		return 0, 0, fmt.Errorf("bad WAL metadata %q: %w", b, err)
	}
	if id, err = membership.ParseID(m.MemberID); err != nil {
		return 0, 0, fmt.Errorf("bad member ID in WAL metadata %q: %w", b, err)
	}
	if cid, err = membership.ParseID(m.ClusterID); err != nil {
		return 0, 0, fmt.Errorf("bad cluster ID in WAL metadata %q: %w", b, err)
	}
	return id, cid, nil
}

// bootstrap opens the storage and decides how raft starts:
//   - the WAL exists: restart from it (initial-* options are ignored);
//   - the backend already holds applied data but there is no WAL of ours
//     (a data dir restored from a snapshot, e.g. by etcdutl): start from the
//     backend as if from a raft snapshot at its consistent index;
//   - neither, with --join-endpoints and state existing: ask the running
//     cluster for the initial cluster, then join it;
//   - neither: bootstrap a new cluster from the initial cluster.
func (s *Server) bootstrap() error {
	o := &s.opts
	if err := os.MkdirAll(o.snapDir(), 0o700); err != nil {
		return fmt.Errorf("cannot create data dir %s: %w", o.snapDir(), err)
	}
	be, err := backend.Open(backend.Options{
		Path:          o.dbPath(),
		BatchInterval: o.BackendBatchInterval,
		BatchLimit:    o.BackendBatchLimit,
		NoFsync:       o.UnsafeNoFsync,
		Logger:        s.lg.Named("backend"),
		OnCommit:      s.metrics.observeBackendCommit,
	})
	if err != nil {
		return fmt.Errorf("cannot open the backend %s: %w", o.dbPath(), err)
	}
	s.be = be
	s.consistentIndex, _ = backend.ReadConsistentIndex(be)

	s.raftCfg = &raft.Config{
		ElectionTick:    o.electionTicks(),
		HeartbeatTick:   1,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 4096 / 8,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          newRaftLogger(s.lg),
	}
	mem := raft.NewMemoryStorage()
	s.raftCfg.Storage = mem
	s.storage = &raftStorage{mem: mem, snapDir: o.snapDir(), lg: s.lg}

	walOpts := wal.Options{NoFsync: o.UnsafeNoFsync, Logger: s.lg.Named("wal"), OnFsync: s.metrics.observeWALFsync}
	switch {
	case wal.Exist(o.walDir()) && !isForeignWAL(o.walDir()):
		err = s.restart(walOpts)
	case s.consistentIndex > 0:
		err = s.startFromBackend(walOpts)
	case o.Join != nil && o.InitialClusterState == "existing":
		err = s.startJoined(walOpts)
	default:
		err = s.startNewCluster(walOpts)
	}
	if err != nil {
		return err
	}
	s.raftCfg.ID = s.id
	return s.openState()
}

// openState opens the state machine on the backend: leases, then the MVCC
// store (which re-attaches keys to their leases), then the watch hub.
func (s *Server) openState() error {
	le, err := lease.New(s.be, lease.Config{
		MinTTL: s.minLeaseTTL(),
		Logger: s.lg.Named("lease"),
	})
	if err != nil {
		return fmt.Errorf("cannot restore leases: %w", err)
	}
	s.lessor = le
	kv, err := mvcc.New(s.be, mvcc.Options{
		Logger:           s.lg.Named("mvcc"),
		CompactionHashes: s.opts.CompactHashCheck,
		OnRestoreKey: func(key []byte, id int64) {
			if err := le.Attach(id, key); err != nil {
				s.lg.Warn("a key refers to a lease that does not exist; the key will not expire",
					zap.ByteString("key", key), zap.Int64("lease", id), zap.Error(err))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("cannot restore the key-value store: %w", err)
	}
	s.kv = kv
	s.hub = watch.NewHub(kv, watch.Options{
		// etcd fragments at the request limit plus gRPC's overhead.
		MaxRequestBytes:  s.opts.MaxRequestBytes + grpcOverheadBytes,
		ProgressInterval: s.opts.WatchProgressInterval,
		Logger:           s.lg.Named("watch"),
	})
	s.alarms = loadAlarms(s.be)
	if err := s.auth.Load(s.be); err != nil {
		return fmt.Errorf("cannot load the authentication state: %w", err)
	}
	s.initSchema()
	s.applied.advance(s.consistentIndex)
	s.appliedIndex.Store(s.consistentIndex)
	s.lg.Info("opened the member's state",
		zap.String("member-id", membership.IDString(s.id)),
		zap.String("cluster-id", membership.IDString(s.cluster.ID())),
		zap.Int64("revision", kv.Rev()),
		zap.Int64("compact-revision", kv.CompactRev()),
		zap.Uint64("consistent-index", s.consistentIndex),
		zap.Int("leases", len(le.Leases())),
	)
	return nil
}

// initSchema writes the storage version into a fresh backend, as etcd does
// (auth.Load writes the auth revision), or the one its cluster version
// calls for (clusterversion.go).
func (s *Server) initSchema() { s.syncStorageVersion() }

// grpcOverheadBytes is the room etcd leaves above --max-request-bytes for
// gRPC framing.
const grpcOverheadBytes = 512 * 1024

// minLeaseTTL is etcd's: a lease must outlive an election, so that a new
// leader has time to learn of it, ceil(3 * election timeout / 2) seconds.
func (s *Server) minLeaseTTL() int64 {
	ms := s.opts.ElectionTimeout.Milliseconds() * 3 / 2
	return (ms + 999) / 1000
}

func (s *Server) startNewCluster(walOpts wal.Options) error {
	o := &s.opts
	names := make([]string, 0, len(o.InitialCluster))
	for name := range o.InitialCluster {
		names = append(names, name)
	}
	sort.Strings(names)
	var members []*membership.Member
	var ids []uint64
	for _, name := range names {
		urls := o.InitialCluster[name]
		m := &membership.Member{ID: membership.ComputeMemberID(urls, o.InitialClusterToken, nil), Name: name, PeerURLs: urls}
		if slices.Contains(ids, m.ID) {
			return fmt.Errorf("--initial-cluster has two members with the same peer URLs %v", urls)
		}
		members = append(members, m)
		ids = append(ids, m.ID)
	}
	var self *membership.Member
	for _, m := range members {
		if m.Name == o.Name {
			self = m
		}
	}
	if self == nil {
		return fmt.Errorf("couldn't find local name %q in the initial cluster configuration %v: add %s=<peer URL> to --initial-cluster or fix --name", o.Name, o.InitialCluster, o.Name)
	}
	if len(o.AdvertisePeerURLs) > 0 && !sameURLs(o.AdvertisePeerURLs, self.PeerURLs) {
		return fmt.Errorf("--initial-cluster has %s=%v but --initial-advertise-peer-urls is %v: they must match", o.Name, self.PeerURLs, o.AdvertisePeerURLs)
	}
	if o.InitialClusterState == "existing" {
		return s.joinCluster(walOpts, members)
	}
	s.id = self.ID
	cid := membership.ComputeClusterID(ids)
	s.cluster = membership.New(cid, nil) // members arrive through the conf changes below
	s.initialPeers = map[uint64][]string{}
	for _, m := range members {
		s.initialPeers[m.ID] = m.PeerURLs
	}
	for _, m := range members {
		ctx, err := json.Marshal(m)
		if err != nil {
			return err
		}
		s.bootPeers = append(s.bootPeers, raft.Peer{ID: m.ID, Context: ctx})
	}
	w, err := wal.Create(o.walDir(), encodeWALMetadata(s.id, cid), walOpts)
	if err != nil {
		return fmt.Errorf("cannot create the WAL in %s: %w", o.walDir(), err)
	}
	s.storage.w = w
	s.confState = &raftpb.ConfState{}
	s.lg.Info("starting a new cluster",
		zap.String("member-id", membership.IDString(s.id)),
		zap.String("cluster-id", membership.IDString(cid)),
		zap.Strings("initial-cluster", names))
	return nil
}

func (s *Server) restart(walOpts wal.Options) error {
	o := &s.opts
	var walSnap wal.Snapshot
	sn, err := snap.LoadNewestWithLogger(o.snapDir(), s.lg.Named("snap"))
	switch {
	case errors.Is(err, snap.ErrNoSnapshot):
		sn = nil
	case err != nil:
		return fmt.Errorf("cannot load the raft snapshot from %s: %w", o.snapDir(), err)
	default:
		walSnap = wal.Snapshot{Index: sn.GetMetadata().GetIndex(), Term: sn.GetMetadata().GetTerm()}
	}
	w, err := wal.Open(o.walDir(), walSnap, walOpts)
	if err != nil {
		return fmt.Errorf("cannot open the WAL in %s: %w", o.walDir(), err)
	}
	s.storage.w = w
	meta, hs, ents, err := w.ReadAll()
	if err != nil {
		return fmt.Errorf("cannot read the WAL in %s: %w", o.walDir(), err)
	}
	if err := s.installSnapshotDBAtRestart(sn, hs); err != nil {
		return err
	}
	id, cid, err := decodeWALMetadata(meta)
	if err != nil {
		return err
	}
	s.id = id
	if s.cluster, err = membership.Load(s.be, cid); err != nil {
		return err
	}
	mem := s.storage.mem
	s.confState = &raftpb.ConfState{}
	if sn != nil {
		if err := mem.ApplySnapshot(sn); err != nil {
			return fmt.Errorf("cannot load raft snapshot at index %d: %w", walSnap.Index, err)
		}
		s.confState = proto.Clone(sn.GetMetadata().GetConfState()).(*raftpb.ConfState)
		s.snapshotIndex = walSnap.Index
	}
	if hs != nil {
		if err := mem.SetHardState(hs); err != nil {
			return err
		}
	}
	if o.ForceNewCluster {
		if hs, ents, err = s.forceNewCluster(w, hs, ents); err != nil {
			return err
		}
		if err := mem.SetHardState(hs); err != nil {
			return err
		}
	}
	if err := mem.Append(ents); err != nil {
		return err
	}
	// The backend only ever holds applied entries, which the WAL had before
	// they were applied. A backend ahead of the WAL means the WAL lost data.
	if last, _ := mem.LastIndex(); s.consistentIndex > last {
		return fmt.Errorf("the backend has applied raft index %d but the WAL in %s ends at %d: the WAL lost entries it had acknowledged; restore this member from a snapshot or remove it and add it back", s.consistentIndex, o.walDir(), last)
	}
	s.initialPeers = map[uint64][]string{}
	for _, m := range s.cluster.Members() {
		s.initialPeers[m.ID] = m.PeerURLs
	}
	if s.cluster.IsRemoved(id) {
		return join.RemovedError(membership.IDString(id), o.DataDir)
	}
	s.lg.Info("restarting the member from its WAL (initial-cluster options are ignored)",
		zap.String("member-id", membership.IDString(id)),
		zap.String("cluster-id", membership.IDString(cid)),
		zap.Uint64("snapshot-index", walSnap.Index),
		zap.Int("wal-entries", len(ents)),
		zap.Uint64("commit-index", hs.GetCommit()))
	return nil
}

// startFromBackend starts a member whose backend holds state but which has no
// WAL of ours: a data dir restored from a snapshot (etcdutl snapshot restore
// writes the db with the membership and a consistent index). Raft starts as if
// it had received a snapshot at the backend's consistent index.
func (s *Server) startFromBackend(walOpts wal.Options) error {
	o := &s.opts
	if wal.Exist(o.walDir()) {
		aside := o.walDir() + ".etcd"
		if err := os.Rename(o.walDir(), aside); err != nil {
			return fmt.Errorf("cannot move the foreign WAL %s aside: %w", o.walDir(), err)
		}
		s.lg.Info("moved a WAL not written by Ballast aside; starting from the restored backend",
			zap.String("from", o.walDir()), zap.String("to", aside))
	}
	cl, err := membership.Load(s.be, 0)
	if err != nil {
		return err
	}
	members := cl.Members()
	if len(members) == 0 {
		return fmt.Errorf("the backend %s holds data (consistent index %d) but no members, and there is no WAL: restore it with etcdutl snapshot restore or ballast's restore, which write the membership", o.dbPath(), s.consistentIndex)
	}
	var ids, voters, learners []uint64
	var self *membership.Member
	for _, m := range members {
		ids = append(ids, m.ID)
		if m.IsLearner {
			learners = append(learners, m.ID)
		} else {
			voters = append(voters, m.ID)
		}
		if m.Name == o.Name || (self == nil && len(o.AdvertisePeerURLs) > 0 && sameURLs(m.PeerURLs, o.AdvertisePeerURLs)) {
			self = m
		}
	}
	if self == nil {
		return fmt.Errorf("the restored backend %s has no member named %q: pass the --name used at restore", o.dbPath(), o.Name)
	}
	s.id = self.ID
	cid := membership.ComputeClusterID(ids)
	cl.SetID(cid)
	s.cluster = cl
	s.initialPeers = map[uint64][]string{}
	for _, m := range members {
		s.initialPeers[m.ID] = m.PeerURLs
	}
	_, term := backend.ReadConsistentIndex(s.be)
	if term == 0 {
		term = 1
	}
	cs := &raftpb.ConfState{Voters: voters, Learners: learners}
	sn := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(s.consistentIndex), Term: proto.Uint64(term), ConfState: cs}}
	w, err := wal.Create(o.walDir(), encodeWALMetadata(s.id, cid), walOpts)
	if err != nil {
		return fmt.Errorf("cannot create the WAL in %s: %w", o.walDir(), err)
	}
	s.storage.w = w
	if err := s.storage.SaveSnapshot(sn); err != nil {
		return err
	}
	hs := &raftpb.HardState{Term: proto.Uint64(term), Commit: proto.Uint64(s.consistentIndex)}
	if err := w.Save(hs, nil, true); err != nil {
		return err
	}
	if err := s.storage.mem.ApplySnapshot(sn); err != nil {
		return err
	}
	if err := s.storage.mem.SetHardState(hs); err != nil {
		return err
	}
	s.confState = cs
	s.snapshotIndex = s.consistentIndex
	s.lg.Info("starting from a restored backend",
		zap.String("member-id", membership.IDString(s.id)),
		zap.String("cluster-id", membership.IDString(cid)),
		zap.Uint64("consistent-index", s.consistentIndex),
		zap.Int("members", len(members)))
	return nil
}

// forceNewCluster turns this member into a one-member cluster that keeps
// its data (--force-new-cluster, for a cluster that lost its quorum for
// good): entries never committed are dropped, and committed conf changes
// removing every other voter and learner are appended to the WAL, so raft
// and the membership both end up with this member alone.
func (s *Server) forceNewCluster(w *wal.WAL, hs *raftpb.HardState, ents []*raftpb.Entry) (*raftpb.HardState, []*raftpb.Entry, error) {
	commit := hs.GetCommit()
	for len(ents) > 0 && ents[len(ents)-1].GetIndex() > commit {
		ents = ents[:len(ents)-1]
	}
	others := map[uint64]bool{}
	for _, id := range append(slices.Clone(s.confState.GetVoters()), s.confState.GetLearners()...) {
		others[id] = true
	}
	for _, m := range s.cluster.Members() {
		others[m.ID] = true
	}
	// Conf changes still in the log (not yet in the backend) count too.
	for _, e := range ents {
		if e.GetType() != raftpb.EntryConfChange {
			continue
		}
		cc := &raftpb.ConfChange{}
		if proto.Unmarshal(e.GetData(), cc) != nil {
			continue
		}
		switch cc.GetType() {
		case raftpb.ConfChangeRemoveNode:
			delete(others, cc.GetNodeId())
		default:
			others[cc.GetNodeId()] = true
		}
	}
	delete(others, s.id)
	ids := make([]uint64, 0, len(others))
	for id := range others {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	next := commit + 1
	if len(ents) > 0 {
		next = ents[len(ents)-1].GetIndex() + 1
	}
	var added []*raftpb.Entry
	for _, id := range ids {
		data, err := proto.Marshal(&raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)})
		if err != nil {
			return nil, nil, err
		}
		added = append(added, &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Term: proto.Uint64(hs.GetTerm()), Index: proto.Uint64(next), Data: data})
		next++
	}
	newHS := &raftpb.HardState{Term: proto.Uint64(hs.GetTerm()), Vote: proto.Uint64(hs.GetVote()), Commit: proto.Uint64(next - 1)}
	if err := w.Save(newHS, added, true); err != nil {
		return nil, nil, err
	}
	s.lg.Warn("forcing a new one-member cluster from this member's data (--force-new-cluster); restart without the flag once it runs, and add members back with 'etcdctl member add'",
		zap.Int("removed-members", len(ids)), zap.Uint64("commit-index", next-1))
	return newHS, append(ents, added...), nil
}

// joinCluster starts a member that was added to a running cluster with
// MemberAdd (--initial-cluster-state=existing): it asks the other members
// for the cluster's ID and membership, checks that --initial-cluster agrees
// with it, finds its own ID by its peer URLs, and starts raft with an empty
// log; the leader then sends the log or a snapshot.
func (s *Server) joinCluster(walOpts wal.Options, local []*membership.Member) error {
	o := &s.opts
	var urls []string
	for _, m := range local {
		if m.Name != o.Name {
			urls = append(urls, m.PeerURLs...)
		}
	}
	if len(urls) == 0 {
		return fmt.Errorf("--initial-cluster-state=existing, but --initial-cluster names no other member to join")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := s.fetchCluster(ctx, urls)
	if err != nil {
		return fmt.Errorf("cannot join the existing cluster: %w", err)
	}
	if diff := membershipDiff(local, info.Members); diff != "" {
		return fmt.Errorf("--initial-cluster does not match the running cluster's membership: %s; use 'etcdctl member add' first and pass the ETCD_INITIAL_CLUSTER it prints", diff)
	}
	cid, err := membership.ParseID(info.ClusterID)
	if err != nil {
		return fmt.Errorf("bad cluster ID %q from the running cluster: %w", info.ClusterID, err)
	}
	var self *membership.Member
	for _, m := range info.Members {
		if sameURLs(m.PeerURLs, o.AdvertisePeerURLs) {
			self = m
		}
	}
	if self == nil {
		return fmt.Errorf("this member's peer URLs %v are not in the running cluster: add it with 'etcdctl member add %s --peer-urls=...' first", o.AdvertisePeerURLs, o.Name)
	}
	s.id = self.ID
	s.cluster = membership.New(cid, info.Members)
	s.initialPeers = map[uint64][]string{}
	for _, m := range info.Members {
		s.initialPeers[m.ID] = m.PeerURLs
	}
	w, err := wal.Create(o.walDir(), encodeWALMetadata(s.id, cid), walOpts)
	if err != nil {
		return fmt.Errorf("cannot create the WAL in %s: %w", o.walDir(), err)
	}
	s.storage.w = w
	s.confState = &raftpb.ConfState{}
	s.lg.Info("joining a running cluster",
		zap.String("member-id", membership.IDString(s.id)),
		zap.String("cluster-id", membership.IDString(cid)),
		zap.Int("members", len(info.Members)))
	return nil
}

// membershipDiff says how --initial-cluster differs from the running
// membership, by peer URLs ("" when they agree). Members added but never
// started have no name in the running cluster, so names are not compared.
func membershipDiff(local, running []*membership.Member) string {
	key := func(m *membership.Member) string {
		u := slices.Clone(m.PeerURLs)
		slices.Sort(u)
		return strings.Join(u, ",")
	}
	have := map[string]bool{}
	for _, m := range running {
		have[key(m)] = true
	}
	want := map[string]bool{}
	var diffs []string
	for _, m := range local {
		want[key(m)] = true
		if !have[key(m)] {
			diffs = append(diffs, fmt.Sprintf("%s=%s is not a member", m.Name, key(m)))
		}
	}
	for _, m := range running {
		if !want[key(m)] {
			diffs = append(diffs, fmt.Sprintf("member %s (%s) is missing from --initial-cluster", membership.IDString(m.ID), key(m)))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

func sameURLs(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// isForeignWAL tells a WAL directory written by another program (etcd's, left
// by etcdutl snapshot restore) from ours.
func isForeignWAL(dir string) bool { return !wal.Recognize(dir) }
