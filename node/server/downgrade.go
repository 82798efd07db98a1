package server

import (
	"context"

	"github.com/coreos/go-semver/semver"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/membership"
	"github.com/ballastdb/ballast/node/version"
)

// Maintenance.Downgrade, as etcd answers it. A downgrade is a flag in the
// replicated cluster state ("downgrade" in the cluster bucket, applied
// through raft) naming a target one minor version below the cluster
// version. While it is set, the leader's version monitor
// (clusterversion.go) lowers the cluster version to the target once every
// member can run at it, and each member's storage version follows; once
// every member runs the target version the leader cancels the flag.
//
// What Ballast cannot do is run at the lower version itself: every Ballast
// binary implements one API version (version.APIVersion). The cluster
// version still moves, and the storage moves to the lower schema where
// Ballast knows it (3.6 → 3.5 removes meta/storageVersion, as etcd does),
// but the downgrade only completes when members are replaced by binaries of
// the target version.

// errUnknownMethod is etcd's answer to an action it does not know; its
// gRPC layer passes it on with code Unknown.
var errUnknownMethod = status.Error(codes.Unknown, "etcdserver: unknown method")

// Downgrade validates, enables or cancels a cluster downgrade. Only admins
// may (etcd's authMaintenanceServer).
func (s *Server) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	var (
		resp *pb.DowngradeResponse
		err  error
	)
	switch r.GetAction() {
	case pb.DowngradeRequest_VALIDATE:
		resp, err = s.downgradeValidate(ctx, r.GetVersion())
	case pb.DowngradeRequest_ENABLE:
		resp, err = s.downgradeEnable(ctx, r.GetVersion())
	case pb.DowngradeRequest_CANCEL:
		resp = s.downgradeCancel(ctx)
	default:
		return nil, errUnknownMethod
	}
	if err != nil {
		return nil, err
	}
	resp.Header = s.Header()
	return resp, nil
}

// downgradeValidate answers whether the cluster may downgrade to v now.
// The response's version is the cluster version (major.minor).
func (s *Server) downgradeValidate(ctx context.Context, v string) (*pb.DowngradeResponse, error) {
	target, ok := version.ParseTarget(v)
	if !ok {
		return nil, rpctypes.ErrGRPCWrongDowngradeVersionFormat
	}
	cv := s.clusterSemver()
	if cv == nil {
		return nil, rpctypes.ErrGRPCClusterVersionUnavailable
	}
	if err := s.checkDowngrade(ctx, target); err != nil {
		return nil, err
	}
	return &pb.DowngradeResponse{Version: version.Cluster(cv)}, nil
}

// checkDowngrade is etcd's validation, on current state: the target must
// be one minor below the cluster version, and no downgrade may be under
// way.
func (s *Server) checkDowngrade(ctx context.Context, target *semver.Version) error {
	if err := s.linearizableReadNotify(ctx); err != nil {
		return err
	}
	cv := s.clusterSemver()
	if cv == nil {
		return rpctypes.ErrGRPCClusterVersionUnavailable
	}
	if !target.Equal(*version.AllowedDowngrade(cv)) {
		return rpctypes.ErrGRPCInvalidDowngradeTargetVersion
	}
	if s.cluster.Downgrade().Enabled {
		return rpctypes.ErrGRPCDowngradeInProcess
	}
	return nil
}

// downgradeEnable validates, then records the downgrade through raft.
func (s *Server) downgradeEnable(ctx context.Context, v string) (*pb.DowngradeResponse, error) {
	target, ok := version.ParseTarget(v)
	if !ok {
		s.lg.Warn("refused a downgrade: the target version is not a version", zap.String("target-version", v))
		return nil, rpctypes.ErrGRPCWrongDowngradeVersionFormat
	}
	if err := s.checkDowngrade(ctx, target); err != nil {
		s.lg.Warn("refused a downgrade", zap.String("target-version", target.String()), zap.Error(err))
		return nil, err
	}
	if err := s.proposeDowngrade(ctx, membership.Downgrade{TargetVersion: target.String(), Enabled: true}); err != nil {
		s.lg.Warn("could not enable the downgrade", zap.String("target-version", target.String()), zap.Error(err))
		return nil, err
	}
	s.lg.Info("downgrade enabled; the leader lowers the cluster version once every member allows it; then replace each member with a binary of the target version",
		zap.String("target-version", target.String()))
	return &pb.DowngradeResponse{Version: version.Cluster(s.clusterSemver())}, nil
}

// downgradeCancel clears the downgrade. Like etcd 3.6 and 3.7 it answers
// success even when there was nothing to cancel or the cancellation
// failed; it only logs why.
func (s *Server) downgradeCancel(ctx context.Context) *pb.DowngradeResponse {
	err := s.linearizableReadNotify(ctx)
	switch {
	case err != nil:
	case !s.cluster.Downgrade().Enabled:
		err = rpctypes.ErrGRPCNoInflightDowngrade
	default:
		err = s.proposeDowngrade(ctx, membership.Downgrade{})
	}
	if err != nil {
		s.lg.Warn("failed to cancel downgrade", zap.Error(err))
	} else {
		s.lg.Info("downgrade cancelled; the leader raises the cluster version back to the lowest member version")
	}
	return &pb.DowngradeResponse{Version: version.Cluster(s.clusterSemver())}
}

func (s *Server) proposeDowngrade(ctx context.Context, d membership.Downgrade) error {
	res, err := s.propose(ctx, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{
		Enabled: d.Enabled, Ver: d.TargetVersion,
	}})
	if err != nil {
		return err
	}
	return res.err
}

// applyDowngrade records a DowngradeInfoSet entry. A cancellation keeps no
// target, as etcd's.
func (s *Server) applyDowngrade(tx *backend.BatchTx, r *membershippb.DowngradeInfoSetRequest) *result {
	d := membership.Downgrade{}
	if r.GetEnabled() {
		d = membership.Downgrade{TargetVersion: r.GetVer(), Enabled: true}
	}
	if err := s.cluster.SetDowngrade(tx, d); err != nil {
		s.lg.Error("cannot record the downgrade state", zap.Error(err))
	}
	return &result{}
}

// downgradeTarget is the target of the enabled downgrade, nil when none is
// enabled (or its target does not read as a version).
func (s *Server) downgradeTarget() *semver.Version {
	d := s.cluster.Downgrade()
	if !d.Enabled {
		return nil
	}
	v, err := semver.NewVersion(d.TargetVersion)
	if err != nil {
		return nil
	}
	return v
}

// downgradeInfo is the downgrade state as Status reports it.
func (s *Server) downgradeInfo() *pb.DowngradeInfo {
	d := s.cluster.Downgrade()
	return &pb.DowngradeInfo{Enabled: d.Enabled, TargetVersion: d.TargetVersion}
}
