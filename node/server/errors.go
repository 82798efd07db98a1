package server

import (
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/lease"
	"github.com/ballastdb/ballast/node/mvcc"
)

// toGRPCError maps internal errors to etcd's gRPC errors (same code and
// message), which client/v3 matches on.
func toGRPCError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mvcc.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, mvcc.ErrFutureRev):
		return rpctypes.ErrGRPCFutureRev
	case errors.Is(err, lease.ErrLeaseNotFound):
		return rpctypes.ErrGRPCLeaseNotFound
	case errors.Is(err, lease.ErrLeaseExists):
		return rpctypes.ErrGRPCLeaseExist
	case errors.Is(err, lease.ErrLeaseTTLTooLarge):
		return rpctypes.ErrGRPCLeaseTTLTooLarge
	case errors.Is(err, lease.ErrNotPrimary):
		return rpctypes.ErrGRPCNotLeader
	}
	return err
}

// headerOf returns the response header of any KV/lease response.
func headerOf(m proto.Message) *pb.ResponseHeader {
	switch r := m.(type) {
	case *pb.RangeResponse:
		return ensureHeader(&r.Header)
	case *pb.PutResponse:
		return ensureHeader(&r.Header)
	case *pb.DeleteRangeResponse:
		return ensureHeader(&r.Header)
	case *pb.TxnResponse:
		return ensureHeader(&r.Header)
	case *pb.CompactionResponse:
		return ensureHeader(&r.Header)
	case *pb.LeaseGrantResponse:
		return ensureHeader(&r.Header)
	case *pb.LeaseRevokeResponse:
		return ensureHeader(&r.Header)
	case *pb.AlarmResponse:
		return ensureHeader(&r.Header)
	}
	return nil
}

func ensureHeader(h **pb.ResponseHeader) *pb.ResponseHeader {
	if *h == nil {
		*h = &pb.ResponseHeader{}
	}
	return *h
}
