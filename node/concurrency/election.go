package concurrency

import (
	"context"

	"github.com/ballastdb/ballast/node/concurrency/concurrencypb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

type electionServer struct {
	l *loopback
}

// Campaign puts the candidate's key "<name>/<lease>" with its value and
// waits until every older key under "<name>/" is gone. A lease that
// already campaigns keeps its place and has its value replaced.
func (s *electionServer) Campaign(ctx context.Context, r *concurrencypb.CampaignRequest) (*concurrencypb.CampaignResponse, error) {
	c, ctx, err := s.l.client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sess, err := session(ctx, c, r.Lease)
	if err != nil {
		return nil, err
	}
	e := concurrency.NewElection(sess, string(r.Name))
	if err := e.Campaign(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &concurrencypb.CampaignResponse{
		Header: e.Header(),
		Leader: &concurrencypb.LeaderKey{Name: r.Name, Key: []byte(e.Key()), Rev: e.Rev(), Lease: int64(sess.Lease())},
	}, nil
}

// Proclaim replaces the leader's value if its key still exists with the
// creation revision of the leader key; otherwise the caller is no longer
// the leader (concurrency.ErrElectionNotLeader).
func (s *electionServer) Proclaim(ctx context.Context, r *concurrencypb.ProclaimRequest) (*concurrencypb.ProclaimResponse, error) {
	if r.Leader == nil {
		return nil, ErrMissingLeaderKey
	}
	c, ctx, err := s.l.client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	e, err := resume(ctx, c, r.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Proclaim(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &concurrencypb.ProclaimResponse{Header: e.Header()}, nil
}

// Resign deletes the leader key if it is still the one given; resigning a
// leadership already lost succeeds, as in etcd.
func (s *electionServer) Resign(ctx context.Context, r *concurrencypb.ResignRequest) (*concurrencypb.ResignResponse, error) {
	if r.Leader == nil {
		return nil, ErrMissingLeaderKey
	}
	c, ctx, err := s.l.client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	e, err := resume(ctx, c, r.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Resign(ctx); err != nil {
		return nil, err
	}
	return &concurrencypb.ResignResponse{Header: e.Header()}, nil
}

// Leader answers the oldest key under "<name>/", or
// concurrency.ErrElectionNoLeader.
func (s *electionServer) Leader(ctx context.Context, r *concurrencypb.LeaderRequest) (*concurrencypb.LeaderResponse, error) {
	c, ctx, err := s.l.client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sess, err := session(ctx, c, noLease)
	if err != nil {
		return nil, err
	}
	resp, err := concurrency.NewElection(sess, string(r.Name)).Leader(ctx)
	if err != nil {
		return nil, err
	}
	return &concurrencypb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}, nil
}

// Observe sends the current leader (once there is one), each new value it
// proclaims, and each leader after it. The stream ends without error if
// the member stops answering the watch (a compaction past the observed
// revision, for one); the client then observes anew.
func (s *electionServer) Observe(r *concurrencypb.LeaderRequest, stream concurrencypb.ObserveServer) error {
	c, ctx, err := s.l.client(stream.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	sess, err := session(ctx, c, noLease)
	if err != nil {
		return err
	}
	ch := concurrency.NewElection(sess, string(r.Name)).Observe(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-ch:
			if !ok {
				return nil
			}
			if err := stream.Send(&concurrencypb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
				return err
			}
		}
	}
}

// resume is the election a LeaderKey stands for, on a session of its
// lease.
func resume(ctx context.Context, c *clientv3.Client, k *concurrencypb.LeaderKey) (*concurrency.Election, error) {
	sess, err := session(ctx, c, k.Lease)
	if err != nil {
		return nil, err
	}
	return concurrency.ResumeElection(sess, string(k.Name), string(k.Key), k.Rev), nil
}
