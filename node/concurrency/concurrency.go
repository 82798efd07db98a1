// Package concurrency serves etcd's concurrency API: the gRPC services
// v3lockpb.Lock (Lock, Unlock) and v3electionpb.Election (Campaign,
// Proclaim, Leader, Observe, Resign).
//
// As in etcd, these are not state machines of their own: each call runs
// client/v3's concurrency package (sessions on leases, mutexes, elections)
// against the member itself, through the same gRPC server and so the same
// validation, limits and interceptors as any client. A lock or a
// leadership is a key "<name>/<lease ID in hex>" attached to the caller's
// lease; the holder is the key with the lowest creation revision, and a
// waiter watches for the deletion of the key created just before its own.
// Keys, revisions, values and errors are therefore etcd's exactly.
package concurrency

import (
	"context"
	"errors"

	"github.com/ballastdb/ballast/node/concurrency/concurrencypb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// ErrMissingLeaderKey is etcd's answer to a Proclaim or Resign without a
// leader key (gRPC code Unknown, as etcd returns it).
var ErrMissingLeaderKey = errors.New(`"leader" field must be provided`)

// Register adds the Lock and Election services to g, and to every server
// in also (other transports of the same member). Their calls reach g over
// an in-memory connection, made on the first call and closed when g stops.
func Register(g *grpc.Server, lg *zap.Logger, also ...grpc.ServiceRegistrar) {
	if lg == nil {
		lg = zap.NewNop()
	}
	l := &loopback{g: g, lg: lg}
	for _, r := range append([]grpc.ServiceRegistrar{g}, also...) {
		concurrencypb.RegisterLockServer(r, &lockServer{l: l})
		concurrencypb.RegisterElectionServer(r, &electionServer{l: l})
	}
}

// Waits reports whether a method of these services waits for other
// clients (a lock being released, an election being won) rather than for
// the member, so that its duration says nothing about the member's health.
func Waits(fullMethod string) bool {
	switch fullMethod {
	case concurrencypb.LockMethod, concurrencypb.CampaignMethod, concurrencypb.ObserveMethod:
		return true
	}
	return false
}

// session opens a client/v3 session on lease (a new 60-second lease when
// lease is 0) and orphans it at once: the lease is the caller's to keep
// alive, as in etcd. It is the caller's lease, not the session, that
// holds a lock or a leadership.
func session(ctx context.Context, c *clientv3.Client, lease int64) (*concurrency.Session, error) {
	s, err := concurrency.NewSession(c, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	s.Orphan()
	return s, nil
}

// noLease opens a session for the calls that only read (Leader, Observe):
// an ID no lease has, so that none is granted.
const noLease = -1
