package server

import (
	"encoding/json"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/apply"
	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/lease"
	"github.com/ballastdb/ballast/node/membership"
	"github.com/ballastdb/ballast/node/mvcc"
)

// applyLoop applies committed raft entries, in log order, to the state
// machine. It is the only writer of the state: every member runs the same
// entries through the same code and reaches the same state.
func (s *Server) applyLoop() {
	for c := range s.rn.Committed() {
		if c.WaitPersisted {
			<-c.Persisted
			if c.PersistErr != nil {
				return // raft stopped on it, and the member with it
			}
		}
		if c.Snapshot != nil {
			if !s.applySnapshot(c.Snapshot) {
				return // stopping: nothing after a snapshot that is not installed may be applied
			}
		}
		if len(c.Entries) > 0 {
			s.applyEntries(c.Entries)
		}
		c.Applied()
		s.maybeSnapshot()
	}
}

// applyEntries applies a batch under one backend batch transaction, so a
// backend commit never splits an entry from its consistent index: after a
// crash either both are on disk or neither is, and replay resumes exactly
// after the last applied entry (apply is idempotent across restarts).
//
// The consistent index is written once, for the last fresh entry: every
// write of the batch lands in the same backend commit, so recording each
// entry's index on the way would only be overwritten before anyone could
// read it from disk.
func (s *Server) applyEntries(ents []*raftpb.Entry) {
	tx := s.be.BatchTx()
	var last, lastFresh *raftpb.Entry
	for _, e := range ents {
		fresh := e.GetIndex() > s.consistentIndex
		switch e.GetType() {
		case raftpb.EntryNormal:
			if fresh {
				s.applyNormal(tx, e)
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			// Raft must learn every conf change again after a restart, even
			// ones already recorded in the backend.
			s.applyConfChange(tx, e, fresh)
		}
		if fresh {
			s.consistentIndex = e.GetIndex()
			lastFresh = e
		}
		last = e
	}
	if lastFresh != nil {
		backend.SetConsistentIndex(tx, lastFresh.GetIndex(), lastFresh.GetTerm())
	}
	tx.Unlock()
	s.appliedIndex.Store(last.GetIndex())
	s.applied.advance(last.GetIndex())
	s.metrics.proposalsApplied.Add(float64(len(ents)))
}

func (s *Server) applyNormal(tx *backend.BatchTx, e *raftpb.Entry) {
	if len(e.GetData()) == 0 {
		return // a new leader's empty entry
	}
	// A request this member proposed and still waits for need not be
	// decoded again: on a leader under load, decoding was a tenth of what a
	// put allocates.
	r := s.waits.proposed(headerID(e.GetData()), e.GetData())
	if r == nil {
		r = &pb.InternalRaftRequest{}
		if err := proto.Unmarshal(e.GetData(), r); err != nil {
			// Every member sees the same bytes, so every member skips it alike.
			s.lg.Error("skipping a raft entry that does not decode; this is a bug, please report it",
				zap.Uint64("index", e.GetIndex()), zap.Error(err))
			return
		}
	}
	id := r.GetHeader().GetID()
	if id == 0 {
		id = r.GetID()
	}
	res := s.applyRequest(tx, r, e.GetIndex())
	s.waits.trigger(id, res)
}

// applyRequest applies one request, the entry at raft index index. Errors
// that depend only on the replicated state (a missing lease, no space, a
// permission) are results, identical on every member.
func (s *Server) applyRequest(tx *backend.BatchTx, r *pb.InternalRaftRequest, index uint64) *result {
	if res := s.corruptRefusal(r); res != nil {
		return res
	}
	ai := entryAuthor(r)
	if needsAdmin(r) {
		if err := s.auth.IsAdmin(ai); err != nil {
			return &result{err: err}
		}
	}
	switch {
	case isAuthRequest(r):
		return s.applyAuth(tx, r, ai, index)
	case r.Put != nil:
		if s.alarms.noSpace() {
			return &result{err: rpctypes.ErrGRPCNoSpace}
		}
		if err := s.auth.CheckPut(ai, r.Put, s.lessor.Keys); err != nil {
			return &result{err: err}
		}
		return s.applyWrite(tx, func(w *mvcc.WriteTxn) (proto.Message, error) {
			return apply.Put(w, s.leaseView(), r.Put)
		})
	case r.DeleteRange != nil:
		if err := s.auth.CheckDeleteRange(ai, r.DeleteRange); err != nil {
			return &result{err: err}
		}
		return s.applyWrite(tx, func(w *mvcc.WriteTxn) (proto.Message, error) {
			return apply.DeleteRange(w, s.leaseView(), r.DeleteRange)
		})
	case r.Txn != nil:
		if s.alarms.noSpace() && txnHasPut(r.Txn) {
			return &result{err: rpctypes.ErrGRPCNoSpace}
		}
		if err := s.auth.CheckTxn(ai, r.Txn, s.lessor.Keys); err != nil {
			return &result{err: err}
		}
		return s.applyWrite(tx, func(w *mvcc.WriteTxn) (proto.Message, error) {
			return apply.Txn(w, s.leaseView(), r.Txn)
		})
	case r.Compaction != nil:
		done, err := s.kv.Compact(tx, r.Compaction.GetRevision())
		if err != nil {
			return &result{err: toGRPCError(err)}
		}
		return &result{resp: &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: s.kv.Rev()}}, compacted: done}
	case r.LeaseGrant != nil:
		if s.alarms.noSpace() {
			return &result{err: rpctypes.ErrGRPCNoSpace}
		}
		l, err := s.lessor.Grant(tx, r.LeaseGrant.GetID(), r.LeaseGrant.GetTTL())
		if err != nil {
			return &result{err: toGRPCError(err)}
		}
		return &result{resp: &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: s.kv.Rev()}, ID: l.ID, TTL: l.TTL}}
	case r.LeaseRevoke != nil:
		// Revoking deletes the lease's keys: the user must be allowed to.
		if err := s.auth.CheckLeaseWrite(ai, r.LeaseRevoke.GetID(), s.lessor.Keys); err != nil {
			return &result{err: err}
		}
		return s.applyLeaseRevoke(tx, r.LeaseRevoke.GetID())
	case r.Alarm != nil:
		resp, err := s.alarms.apply(tx, r.Alarm)
		if err == nil && r.Alarm.GetAction() == pb.AlarmRequest_ACTIVATE {
			s.lg.Warn("alarm raised", zap.String("alarm", r.Alarm.GetAlarm().String()),
				zap.String("member-id", membership.IDString(r.Alarm.GetMemberID())))
		}
		return &result{resp: resp, err: err}
	case r.ClusterMemberAttrSet != nil:
		s.applyMemberAttrs(tx, r)
		return &result{}
	case r.ClusterVersionSet != nil:
		s.cluster.SetVersion(tx, r.ClusterVersionSet.GetVer())
		s.reviewClusterVersion() // the storage version follows
		return &result{}
	case r.DowngradeInfoSet != nil:
		return s.applyDowngrade(tx, r.DowngradeInfoSet)
	}
	s.lg.Warn("skipping a raft request of a kind this version does not apply", zap.Stringer("request", r))
	return &result{err: rpctypes.ErrGRPCNotCapable}
}

// applyWrite runs f in one MVCC write transaction (one revision) and tells the
// watchers what changed.
func (s *Server) applyWrite(tx *backend.BatchTx, f func(w *mvcc.WriteTxn) (proto.Message, error)) *result {
	w := s.kv.Write(tx)
	resp, err := f(w)
	if evs := w.End(); len(evs) > 0 {
		s.hub.Notify(evs[0].GetKv().GetModRevision(), evs)
	}
	return &result{resp: resp, err: err}
}

// applyLeaseRevoke deletes a lease's keys in one revision, then the lease.
func (s *Server) applyLeaseRevoke(tx *backend.BatchTx, id int64) *result {
	if s.lessor.Lookup(id) == nil {
		return &result{err: rpctypes.ErrGRPCLeaseNotFound}
	}
	keys := s.lessor.Keys(id)
	res := s.applyWrite(tx, func(w *mvcc.WriteTxn) (proto.Message, error) {
		for _, k := range keys {
			w.DeleteRange(k, nil)
		}
		return nil, nil
	})
	if err := s.lessor.Revoke(tx, id); err != nil {
		return &result{err: toGRPCError(err)}
	}
	res.resp = &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: s.kv.Rev()}}
	return res
}

func (s *Server) applyMemberAttrs(tx *backend.BatchTx, r *pb.InternalRaftRequest) {
	a := r.ClusterMemberAttrSet
	m := s.cluster.Member(a.GetMember_ID())
	if m == nil {
		return
	}
	updated := *m
	updated.Name = a.GetMemberAttributes().GetName()
	updated.ClientURLs = a.GetMemberAttributes().GetClientUrls()
	if err := s.cluster.Add(tx, &updated); err != nil {
		s.lg.Error("cannot store member attributes", zap.Error(err))
	}
}

// applyConfChange tells raft about a membership change and, when the entry
// is new to the backend, records it in the membership.
func (s *Server) applyConfChange(tx *backend.BatchTx, e *raftpb.Entry, fresh bool) {
	var cc raftpb.ConfChangeI
	var ccID uint64
	var ctx []byte
	var typ raftpb.ConfChangeType
	var node uint64
	if e.GetType() == raftpb.EntryConfChange {
		c := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), c); err != nil {
			s.lg.Error("skipping a conf change that does not decode", zap.Uint64("index", e.GetIndex()), zap.Error(err))
			return
		}
		cc, ccID, ctx, typ, node = c, c.GetId(), c.GetContext(), c.GetType(), c.GetNodeId()
	} else {
		c := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), c); err != nil {
			s.lg.Error("skipping a conf change that does not decode", zap.Uint64("index", e.GetIndex()), zap.Error(err))
			return
		}
		cc, ctx = c, c.GetContext()
		if len(c.GetChanges()) == 1 {
			typ, node = c.GetChanges()[0].GetType(), c.GetChanges()[0].GetNodeId()
		}
	}
	s.confState = s.rn.ApplyConfChange(cc)
	if fresh {
		backend.SetConfState(tx, s.confState)
		s.recordMembership(tx, typ, node, ctx, e.GetIndex())
	}
	s.waits.trigger(ccID, &result{})
}

// recordMembership applies a conf change to the membership. The member in
// the change's context is the member as it will be (new, updated URLs, or
// promoted).
func (s *Server) recordMembership(tx *backend.BatchTx, typ raftpb.ConfChangeType, node uint64, ctx []byte, index uint64) {
	if typ == raftpb.ConfChangeRemoveNode {
		s.cluster.Remove(tx, node)
		s.onMemberRemoved(node)
		return
	}
	m := &membership.Member{}
	if err := json.Unmarshal(ctx, m); err != nil || m.ID != node {
		s.lg.Error("conf change without a valid member; membership not updated", zap.Uint64("index", index), zap.Error(err))
		return
	}
	if old := s.cluster.Member(node); old != nil {
		// Promotion and URL updates keep what the change does not carry.
		if m.Name == "" {
			m.Name = old.Name
		}
		if len(m.ClientURLs) == 0 {
			m.ClientURLs = old.ClientURLs
		}
	}
	switch typ {
	case raftpb.ConfChangeUpdateNode:
		if old := s.cluster.Member(node); old != nil {
			m.IsLearner = old.IsLearner
		}
	default:
		m.IsLearner = typ == raftpb.ConfChangeAddLearnerNode
	}
	if err := s.cluster.Add(tx, m); err != nil {
		s.lg.Error("cannot store member", zap.Error(err))
	}
	s.onMemberChanged(m)
}

// onMemberRemoved reacts to a removal: a removed member stops itself.
func (s *Server) onMemberRemoved(id uint64) {
	if id == s.id {
		s.lg.Warn("this member was removed from the cluster; stopping. To rejoin, remove its data dir and add it again as a new member")
		s.stopRemoved(s.removedStopDelay())
	}
	s.transport.RemovePeer(id)
}

// onMemberChanged tells the transport where a member is.
func (s *Server) onMemberChanged(m *membership.Member) {
	if m.ID != s.id {
		s.transport.UpdatePeer(m.ID, m.PeerURLs)
	}
}

// leaseView adapts the lessor to what node/apply needs.
func (s *Server) leaseView() apply.Leases { return leaseAdapter{s.lessor} }

type leaseAdapter struct{ l *lease.Lessor }

func (a leaseAdapter) Exists(id int64) bool              { return a.l.Lookup(id) != nil }
func (a leaseAdapter) GetLease(key []byte) int64         { return a.l.GetLease(key) }
func (a leaseAdapter) Attach(id int64, key []byte) error { return a.l.Attach(id, key) }
func (a leaseAdapter) Detach(id int64, key []byte)       { a.l.Detach(id, key) }

func txnHasPut(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.GetSuccess(), t.GetFailure()} {
		for _, op := range ops {
			if op.GetRequestPut() != nil {
				return true
			}
			if nested := op.GetRequestTxn(); nested != nil && txnHasPut(nested) {
				return true
			}
		}
	}
	return false
}
