package api

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

type clusterService struct {
	etcdserverpb.UnimplementedClusterServer
	s Server
}

func (c *clusterService) MemberList(ctx context.Context, r *etcdserverpb.MemberListRequest) (*etcdserverpb.MemberListResponse, error) {
	resp, err := c.s.MemberList(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = c.header()
	return resp, nil
}

// header is a member response's header: etcd's carry no revision, since
// membership is not in the key space.
func (c *clusterService) header() *etcdserverpb.ResponseHeader {
	h := c.s.Header()
	h.Revision = 0
	return h
}

func (c *clusterService) MemberAdd(ctx context.Context, r *etcdserverpb.MemberAddRequest) (*etcdserverpb.MemberAddResponse, error) {
	resp, err := c.s.MemberAdd(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = c.header()
	return resp, nil
}

func (c *clusterService) MemberRemove(ctx context.Context, r *etcdserverpb.MemberRemoveRequest) (*etcdserverpb.MemberRemoveResponse, error) {
	resp, err := c.s.MemberRemove(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = c.header()
	return resp, nil
}

func (c *clusterService) MemberUpdate(ctx context.Context, r *etcdserverpb.MemberUpdateRequest) (*etcdserverpb.MemberUpdateResponse, error) {
	resp, err := c.s.MemberUpdate(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = c.header()
	return resp, nil
}

func (c *clusterService) MemberPromote(ctx context.Context, r *etcdserverpb.MemberPromoteRequest) (*etcdserverpb.MemberPromoteResponse, error) {
	resp, err := c.s.MemberPromote(ctx, r)
	if err != nil {
		return nil, err
	}
	resp.Header = c.header()
	return resp, nil
}
