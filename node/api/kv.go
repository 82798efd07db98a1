package api

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fillHeader completes a response header from the server's current one:
// cluster, member and term always; the revision only when the server left
// it zero, because a revision the server set belongs to the read or write
// it answers and must not move.
func fillHeader(s Server, h *etcdserverpb.ResponseHeader) *etcdserverpb.ResponseHeader {
	cur := s.Header()
	if h == nil {
		return cur
	}
	h.ClusterId = cur.ClusterId
	h.MemberId = cur.MemberId
	h.RaftTerm = cur.RaftTerm
	if h.Revision == 0 {
		h.Revision = cur.Revision
	}
	return h
}

type kvService struct {
	etcdserverpb.UnimplementedKVServer
	s   Server
	lim Limits
}

func (k *kvService) Range(ctx context.Context, r *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error) {
	if err := ValidateRange(r); err != nil {
		return nil, err
	}
	resp, err := k.s.Range(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(k.s, resp.Header)
	return resp, nil
}

func (k *kvService) RangeStream(*etcdserverpb.RangeRequest, grpc.ServerStreamingServer[etcdserverpb.RangeStreamResponse]) error {
	return status.Error(codes.Unimplemented, "ballast: KV.RangeStream is not supported yet; use KV.Range")
}

func (k *kvService) Put(ctx context.Context, r *etcdserverpb.PutRequest) (*etcdserverpb.PutResponse, error) {
	if err := checkSize(r, k.lim.MaxRequestBytes); err != nil {
		return nil, err
	}
	if err := ValidatePut(r); err != nil {
		return nil, err
	}
	resp, err := k.s.Put(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(k.s, resp.Header)
	return resp, nil
}

func (k *kvService) DeleteRange(ctx context.Context, r *etcdserverpb.DeleteRangeRequest) (*etcdserverpb.DeleteRangeResponse, error) {
	if err := checkSize(r, k.lim.MaxRequestBytes); err != nil {
		return nil, err
	}
	if err := ValidateDeleteRange(r); err != nil {
		return nil, err
	}
	resp, err := k.s.DeleteRange(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(k.s, resp.Header)
	return resp, nil
}

func (k *kvService) Txn(ctx context.Context, r *etcdserverpb.TxnRequest) (*etcdserverpb.TxnResponse, error) {
	// Size first: it is linear and bounds the work of the overlap check.
	if err := checkSize(r, k.lim.MaxRequestBytes); err != nil {
		return nil, err
	}
	if err := ValidateTxn(r, k.lim.MaxTxnOps); err != nil {
		return nil, err
	}
	resp, err := k.s.Txn(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(k.s, resp.Header)
	return resp, nil
}

func (k *kvService) Compact(ctx context.Context, r *etcdserverpb.CompactionRequest) (*etcdserverpb.CompactionResponse, error) {
	if err := ValidateCompact(r); err != nil {
		return nil, err
	}
	resp, err := k.s.Compact(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(k.s, resp.Header)
	return resp, nil
}
