package api

import (
	"context"
	"errors"
	"io"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
)

type leaseService struct {
	etcdserverpb.UnimplementedLeaseServer
	s  Server
	lg *zap.Logger
}

func (l *leaseService) LeaseGrant(ctx context.Context, r *etcdserverpb.LeaseGrantRequest) (*etcdserverpb.LeaseGrantResponse, error) {
	resp, err := l.s.LeaseGrant(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(l.s, resp.Header)
	return resp, nil
}

func (l *leaseService) LeaseRevoke(ctx context.Context, r *etcdserverpb.LeaseRevokeRequest) (*etcdserverpb.LeaseRevokeResponse, error) {
	resp, err := l.s.LeaseRevoke(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(l.s, resp.Header)
	return resp, nil
}

// LeaseTimeToLive answers a missing lease with TTL -1 rather than an error,
// as etcd does (clients print "lease ... already expired").
func (l *leaseService) LeaseTimeToLive(ctx context.Context, r *etcdserverpb.LeaseTimeToLiveRequest) (*etcdserverpb.LeaseTimeToLiveResponse, error) {
	resp, err := l.s.LeaseTimeToLive(ctx, r)
	if errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
		resp, err = &etcdserverpb.LeaseTimeToLiveResponse{ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(l.s, resp.Header)
	return resp, nil
}

func (l *leaseService) LeaseLeases(ctx context.Context, r *etcdserverpb.LeaseLeasesRequest) (*etcdserverpb.LeaseLeasesResponse, error) {
	resp, err := l.s.LeaseLeases(ctx, r)
	if errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
		resp, err = &etcdserverpb.LeaseLeasesResponse{Leases: []*etcdserverpb.LeaseStatus{}}, nil
	}
	if err != nil {
		return nil, err
	}
	resp.Header = fillHeader(l.s, resp.Header)
	return resp, nil
}

// LeaseKeepAlive renews one lease per request and answers each in order. A
// lease that does not exist (any more) is answered with TTL 0, which is how
// clients learn it expired; any other renewal error ends the stream.
func (l *leaseService) LeaseKeepAlive(stream etcdserverpb.Lease_LeaseKeepAliveServer) error {
	// Recv cannot be interrupted, so the loop runs on its own goroutine and
	// the handler returns as soon as the stream's context ends.
	errc := make(chan error, 1)
	go func() { errc <- l.keepAlive(stream) }()
	select {
	case err := <-errc:
		return err
	case <-stream.Context().Done():
		return stream.Context().Err()
	}
}

func (l *leaseService) keepAlive(stream etcdserverpb.Lease_LeaseKeepAliveServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		// The header is taken before the renewal so that its revision is
		// not after the renewal: a client must never see a keep-alive
		// succeed at a revision after the one that revoked the lease.
		resp := &etcdserverpb.LeaseKeepAliveResponse{Header: l.s.Header(), ID: req.ID}
		ttl, err := l.s.LeaseRenew(ctx, req.ID)
		switch {
		case errors.Is(err, rpctypes.ErrGRPCLeaseNotFound):
			ttl = 0
		case err != nil:
			return err
		}
		resp.TTL = ttl
		if err := stream.Send(resp); err != nil {
			if ctx.Err() == nil {
				l.lg.Warn("failed to send a lease keep-alive response; closing the stream", zap.Error(err))
			}
			return err
		}
	}
}
