package server

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/apply"
	"github.com/ballastdb/ballast/node/auth"
)

// Header is the response header for the current state.
func (s *Server) Header() *pb.ResponseHeader {
	return &pb.ResponseHeader{
		ClusterId: s.cluster.ID(),
		MemberId:  s.id,
		RaftTerm:  s.rn.Term(),
		Revision:  s.kv.Rev(),
	}
}

// fillHeader completes a header whose Revision the apply path has set.
func (s *Server) fillHeader(h *pb.ResponseHeader) {
	if h == nil {
		return
	}
	h.ClusterId = s.cluster.ID()
	h.MemberId = s.id
	h.RaftTerm = s.rn.Term()
}

// Range reads from the local store. A linearizable read (the default) first
// makes sure this member has applied everything committed before the call.
func (s *Server) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if !r.GetSerializable() {
		if err := s.linearizableReadNotify(ctx); err != nil {
			return nil, err
		}
	}
	var resp *pb.RangeResponse
	err := s.checkedRead(ctx,
		func(ai *auth.Info) error { return s.auth.CheckRange(ai, r.GetKey(), r.GetRangeEnd()) },
		func() error {
			rt := s.kv.Read()
			defer rt.End()
			var err error
			resp, err = apply.Range(rt, r)
			return toGRPCError(err)
		})
	if err != nil {
		return nil, err
	}
	s.fillHeader(resp.Header)
	return resp, nil
}

func (s *Server) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := s.checkQuota(ctx, len(r.GetKey())+len(r.GetValue())); err != nil {
		return nil, err
	}
	return proposeKV[*pb.PutResponse](s, ctx, &pb.InternalRaftRequest{Put: r})
}

func (s *Server) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return proposeKV[*pb.DeleteRangeResponse](s, ctx, &pb.InternalRaftRequest{DeleteRange: r})
}

// Txn goes through raft unless it only reads: then it is served like a Range.
func (s *Server) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if apply.IsReadOnlyTxn(r) {
		if !txnSerializable(r) {
			if err := s.linearizableReadNotify(ctx); err != nil {
				return nil, err
			}
		}
		var resp *pb.TxnResponse
		err := s.checkedRead(ctx,
			func(ai *auth.Info) error { return s.auth.CheckTxn(ai, r, s.lessor.Keys) },
			func() error {
				rt := s.kv.Read()
				defer rt.End()
				var err error
				resp, err = apply.ReadOnlyTxn(rt, r)
				return toGRPCError(err)
			})
		if err != nil {
			return nil, err
		}
		s.fillHeader(resp.Header)
		return resp, nil
	}
	if txnHasPut(r) {
		if err := s.checkQuota(ctx, proto.Size(r)); err != nil {
			return nil, err
		}
	}
	return proposeKV[*pb.TxnResponse](s, ctx, &pb.InternalRaftRequest{Txn: r})
}

// txnSerializable: a read-only txn may skip the linearizable barrier only if
// every range in it asked to be serializable (etcd's rule).
func txnSerializable(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr != nil && !rr.GetSerializable() {
				return false
			}
			if t := op.GetRequestTxn(); t != nil && !txnSerializable(t) {
				return false
			}
		}
	}
	return true
}

// Compact proposes a compaction; with physical set it waits until the old
// revisions are really gone from the backend. Only admins may compact.
func (s *Server) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	res, err := s.propose(ctx, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, res.err
	}
	if r.GetPhysical() && res.compacted != nil {
		select {
		case <-res.compacted:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stopping:
			return nil, rpctypes.ErrGRPCStopped
		}
	}
	resp := res.resp.(*pb.CompactionResponse)
	s.fillHeader(resp.Header)
	return resp, nil
}
