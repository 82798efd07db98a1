package server

import (
	"cmp"
	"context"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/auth"
	"github.com/ballastdb/ballast/node/lease"
)

// leaseOverheadBytes is what a lease costs in the quota check.
const leaseOverheadBytes = 64

// LeaseGrant needs a user when auth is on, any user.
func (s *Server) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := s.requireUser(ctx); err != nil {
		return nil, err
	}
	if r.GetTTL() > lease.MaxTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	if err := s.checkQuota(ctx, leaseOverheadBytes); err != nil {
		return nil, err
	}
	req := proto.Clone(r).(*pb.LeaseGrantRequest)
	// The ID is chosen here, before raft, so that every member grants the
	// same lease. Positive IDs only: client/v3 treats the ID as signed.
	for req.ID == 0 {
		id := int64(s.reqIDs.Next() & (1<<63 - 1))
		if s.lessor.Lookup(id) == nil {
			req.ID = id
		}
	}
	return proposeKV[*pb.LeaseGrantResponse](s, ctx, &pb.InternalRaftRequest{LeaseGrant: req})
}

// LeaseRevoke needs a user; whether it may delete the lease's keys is
// decided when the revocation is applied.
func (s *Server) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if err := s.requireUser(ctx); err != nil {
		return nil, err
	}
	return proposeKV[*pb.LeaseRevokeResponse](s, ctx, &pb.InternalRaftRequest{LeaseRevoke: r})
}

// LeaseRenew extends a lease's deadline. With auth on, the caller must be
// allowed to write every key on the lease (keeping them alive is writing
// them), checked here before the renewal goes to the leader.
func (s *Server) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	rev := s.auth.Revision()
	ai, err := s.authInfo(ctx)
	if err != nil {
		return 0, err
	}
	if s.auth.Enabled() {
		if err := s.auth.RequireUser(ai); err != nil {
			return 0, err
		}
		if err := s.auth.CheckLeaseWrite(ai, id, s.lessor.Keys); err != nil {
			return 0, err
		}
		if rev != s.auth.Revision() {
			return 0, rpctypes.ErrGRPCAuthOldRevision
		}
	}
	return s.renewLease(ctx, id)
}

// renewLease renews here or on the leader: only the leader's lessor keeps
// deadlines; it first applies everything committed, so a lease granted just
// before is known.
func (s *Server) renewLease(ctx context.Context, id int64) (int64, error) {
	if lead := s.rn.Leader(); lead != s.id {
		if lead == 0 {
			return 0, rpctypes.ErrGRPCNoLeader
		}
		var a leaseAnswer
		if err := s.callLeader(ctx, pathLeaseRenew, leaseCall{ID: id}, &a); err != nil {
			return 0, err
		}
		return a.TTL, nil
	}
	if err := s.waitAppliedCommitted(ctx); err != nil {
		return 0, err
	}
	ttl, err := s.lessor.Renew(id)
	if err != nil {
		return 0, toGRPCError(err)
	}
	return ttl, nil
}

// LeaseTimeToLive needs a user when auth is on; listing the attached keys
// needs read permission on each of them.
func (s *Server) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	ai, err := s.authInfo(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.auth.RequireUser(ai); err != nil {
		return nil, err
	}
	if !r.GetKeys() {
		return s.leaseTimeToLive(ctx, r)
	}
	rev := s.auth.Revision()
	if err := s.auth.CheckLeaseRead(ai, []int64{r.GetID()}, s.lessor.Keys); err != nil {
		return nil, err
	}
	resp, err := s.leaseTimeToLive(ctx, r)
	if err == nil && s.auth.Enabled() && rev != s.auth.Revision() {
		return nil, rpctypes.ErrGRPCAuthOldRevision
	}
	return resp, err
}

// leaseTimeToLive answers here or asks the leader.
func (s *Server) leaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if lead := s.rn.Leader(); lead != s.id {
		// Remaining time is known only to the leader's lessor.
		if lead == 0 {
			return nil, rpctypes.ErrGRPCNoLeader
		}
		var a leaseAnswer
		if err := s.callLeader(ctx, pathLeaseTTL, leaseCall{ID: r.GetID(), Keys: r.GetKeys()}, &a); err != nil {
			return nil, err
		}
		return &pb.LeaseTimeToLiveResponse{Header: s.Header(), ID: r.GetID(), TTL: a.TTL, GrantedTTL: a.GrantedTTL, Keys: a.Keys}, nil
	}
	if err := s.waitAppliedCommitted(ctx); err != nil {
		return nil, err
	}
	l := s.lessor.Lookup(r.GetID())
	if l == nil {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	resp := &pb.LeaseTimeToLiveResponse{
		Header:     s.Header(),
		ID:         l.ID,
		TTL:        int64(l.Remaining().Seconds()),
		GrantedTTL: l.TTL,
	}
	if r.GetKeys() {
		resp.Keys = l.Keys()
	}
	return resp, nil
}

// LeaseLeases, with auth on, needs read permission on every key of every
// lease (admins excepted).
func (s *Server) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := s.waitAppliedCommitted(ctx); err != nil {
		return nil, err
	}
	ls := s.lessor.Leases()
	if s.auth.Enabled() {
		rev := s.auth.Revision()
		ai, err := s.authInfo(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.auth.RequireUser(ai); err != nil {
			return nil, err
		}
		ids := make([]int64, len(ls))
		for i, l := range ls {
			ids[i] = l.ID
		}
		if err := s.auth.CheckLeaseRead(ai, ids, s.lessor.Keys); err != nil {
			return nil, err
		}
		if rev != s.auth.Revision() {
			return nil, rpctypes.ErrGRPCAuthOldRevision
		}
	}
	// etcd lists leases by time left, soonest to expire first.
	slices.SortStableFunc(ls, func(a, b *lease.Lease) int { return cmp.Compare(a.Remaining(), b.Remaining()) })
	resp := &pb.LeaseLeasesResponse{Header: s.Header(), Leases: make([]*pb.LeaseStatus, 0, len(ls))}
	for _, l := range ls {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: l.ID})
	}
	return resp, nil
}

// waitAppliedCommitted waits until this member has applied what it knows to
// be committed.
func (s *Server) waitAppliedCommitted(ctx context.Context) error {
	select {
	case <-s.applied.wait(s.rn.CommittedIndex()):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopping:
		return rpctypes.ErrGRPCStopped
	}
}

// leaseExpiryLoop revokes, through raft, the leases the leader's lessor finds
// expired. A lease that fails to be revoked is handed out again later.
func (s *Server) leaseExpiryLoop() {
	sem := make(chan struct{}, 16)
	for {
		select {
		case leases := <-s.lessor.Expired():
			for _, l := range leases {
				select {
				case sem <- struct{}{}:
				case <-s.stopping:
					return
				}
				go func(id int64) {
					defer func() { <-sem }()
					ctx, cancel := context.WithTimeout(context.Background(), s.opts.requestTimeout())
					defer cancel()
					// As root: a lease expires whoever's keys it holds.
					_, err := s.propose(auth.WithRoot(ctx), &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
					if err != nil {
						s.lg.Warn("could not revoke an expired lease; will retry", zap.Int64("lease", id), zap.Error(err))
					}
				}(l.ID)
			}
		case <-s.stopping:
			return
		}
	}
}

// onLeaderChange runs in the raft loop when the leader changes. The new
// leader's lessor takes over expiry, extending every deadline by an election
// timeout so no lease expires just because leadership moved.
func (s *Server) onLeaderChange(lead uint64) {
	s.metrics.leaderChanges.Inc()
	if lead == s.id {
		s.lessor.Promote(s.opts.ElectionTimeout)
		s.reviewClusterVersion()
	} else if s.lessor.IsPrimary() {
		s.lessor.Demote()
	}
	if lead == 0 {
		s.metrics.hasLeader.Set(0)
	} else {
		s.metrics.hasLeader.Set(1)
	}
	s.lg.Info("leader changed", zap.String("leader", idOrNone(lead)), zap.Uint64("term", s.rn.Term()))
}
