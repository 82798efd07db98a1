package concurrency

import (
	"context"

	"github.com/ballastdb/ballast/node/concurrency/concurrencypb"
	"go.etcd.io/etcd/client/v3/concurrency"
)

type lockServer struct {
	l *loopback
}

// Lock waits until the caller holds the lock: its key "<name>/<lease>" is
// the oldest under "<name>/". If the wait is abandoned, the key is removed
// so that it does not hold up the waiters behind it.
func (s *lockServer) Lock(ctx context.Context, r *concurrencypb.LockRequest) (*concurrencypb.LockResponse, error) {
	c, ctx, err := s.l.client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sess, err := session(ctx, c, r.Lease)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(sess, string(r.Name))
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return &concurrencypb.LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

// Unlock deletes the lock key; the next waiter's watch sees the deletion.
func (s *lockServer) Unlock(ctx context.Context, r *concurrencypb.UnlockRequest) (*concurrencypb.UnlockResponse, error) {
	c, ctx, err := s.l.client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	resp, err := c.Delete(ctx, string(r.Key))
	if err != nil {
		return nil, err
	}
	return &concurrencypb.UnlockResponse{Header: resp.Header}, nil
}
