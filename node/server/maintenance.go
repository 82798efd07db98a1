package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/api"
	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/version"
)

// Alarm: any user may list alarms; raising and disarming takes an admin.
func (s *Server) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	check := s.requireAdmin
	if r.GetAction() == pb.AlarmRequest_GET {
		check = s.requireUser
	}
	if err := check(ctx); err != nil {
		return nil, err
	}
	return proposeKV[*pb.AlarmResponse](s, ctx, &pb.InternalRaftRequest{Alarm: r})
}

func (s *Server) Status(ctx context.Context) (*pb.StatusResponse, error) {
	if err := s.requireUser(ctx); err != nil {
		return nil, err
	}
	resp := &pb.StatusResponse{
		Header:           s.Header(),
		Version:          version.APIVersion,
		DbSize:           s.be.Size(),
		DbSizeInUse:      s.be.SizeInUse(),
		DbSizeQuota:      s.opts.quota(),
		Leader:           s.rn.Leader(),
		RaftIndex:        s.rn.CommittedIndex(),
		RaftTerm:         s.rn.Term(),
		RaftAppliedIndex: s.appliedIndex.Load(),
		StorageVersion:   backend.ReadStorageVersion(s.be),
		Errors:           s.alarms.strings(),
		DowngradeInfo:    s.downgradeInfo(),
	}
	if m := s.cluster.Member(s.id); m != nil {
		resp.IsLearner = m.IsLearner
	}
	if resp.Leader == 0 {
		resp.Errors = append(resp.Errors, rpctypes.ErrGRPCNoLeader.Error())
	}
	return resp, nil
}

func (s *Server) Defragment(ctx context.Context) error {
	if err := s.requireAdmin(ctx); err != nil {
		return err
	}
	start := time.Now()
	before := s.be.Size()
	if err := s.be.Defrag(); err != nil {
		s.lg.Error("defragmentation failed", zap.Error(err))
		return err
	}
	s.lg.Info("defragmented the backend", zap.Int64("size-before", before),
		zap.Int64("size-after", s.be.Size()), zap.Duration("took", time.Since(start)))
	return nil
}

func (s *Server) Hash(ctx context.Context) (*pb.HashResponse, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := s.be.ForceCommit(); err != nil {
		return nil, err
	}
	h, err := s.be.Hash(backend.DefaultHashIgnores)
	if err != nil {
		return nil, err
	}
	return &pb.HashResponse{Header: s.Header(), Hash: h}, nil
}

func (s *Server) HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	h, hashRev, compactRev, err := s.kv.HashKV(rev)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if compactRev == 0 && !s.kv.Compacted() {
		compactRev = -1 // etcd's answer when the store was never compacted
	}
	return &pb.HashKVResponse{Header: s.Header(), Hash: h, CompactRevision: compactRev, HashRevision: hashRev}, nil
}

func (s *Server) Snapshot(ctx context.Context) (api.Snapshot, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	sn, err := s.be.Snapshot()
	if err != nil {
		return nil, err
	}
	s.lg.Info("sending a snapshot to a client", zap.Int64("size", sn.Size()))
	return sn, nil
}

func (s *Server) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if s.rn.Leader() != s.id {
		return nil, rpctypes.ErrGRPCNotLeader
	}
	if err := s.moveLeader(ctx, r.GetTargetID()); err != nil {
		return nil, err
	}
	return &pb.MoveLeaderResponse{Header: s.Header()}, nil
}

// moveLeader hands leadership to target, a voting member, and waits for it.
func (s *Server) moveLeader(ctx context.Context, target uint64) error {
	m := s.cluster.Member(target)
	if m == nil || m.IsLearner {
		return rpctypes.ErrGRPCBadLeaderTransferee
	}
	if target == s.id {
		return nil
	}
	s.lg.Info("transferring leadership", zap.String("to", idOrNone(target)))
	s.rn.TransferLeadership(ctx, s.id, target)
	for {
		changed := s.rn.LeaderChanged()
		if lead := s.rn.Leader(); lead == target {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return rpctypes.ErrGRPCTimeout
		case <-s.stopping:
			return rpctypes.ErrGRPCStopped
		}
	}
}

// Leader is this member's view of the leader, 0 when there is none.
func (s *Server) Leader() uint64 { return s.rn.Leader() }

// Alarms are the raised alarms, as this member has applied them.
func (s *Server) Alarms() []*pb.AlarmMember { return s.alarms.list(pb.AlarmType_NONE) }

func (s *Server) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.GetLinearizable() {
		if err := s.linearizableReadNotify(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.requireUser(ctx); err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Header: s.Header(), Members: s.pbMembers()}, nil
}

func (s *Server) Version() (server, cluster string) {
	cluster = s.cluster.Version()
	if cluster == "" {
		cluster = version.APIVersion
	}
	return version.APIVersion, cluster
}

func (s *Server) NewWatchStream() api.WatchStream { return s.hub.NewStream() }
