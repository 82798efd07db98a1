package server

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/raftnode"
)

// propose replicates r through raft and waits until it is applied here,
// returning what applying it produced.
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest) (*result, error) {
	if s.rn.Leader() == 0 {
		// Fail fast so that client/v3 tries another member.
		return nil, rpctypes.ErrGRPCNoLeader
	}
	id := s.reqIDs.Next()
	r.Header = &pb.RequestHeader{ID: id}
	// The caller's identity travels in the entry: apply decides what it
	// may do (see apply_auth.go). Authenticate names its user itself.
	if r.Authenticate == nil {
		ai, err := s.authInfo(ctx)
		if err != nil {
			return nil, err
		}
		if ai != nil {
			r.Header.Username, r.Header.AuthRevision = ai.User, ai.Revision
		}
	}
	data, err := proto.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(data) > s.opts.MaxRequestBytes {
		return nil, rpctypes.ErrGRPCRequestTooLarge
	}
	ch := s.waits.registerProposal(id, r, data)
	s.metrics.proposalsPending.Inc()
	defer s.metrics.proposalsPending.Dec()
	// Propose does not wait: raft takes the entry or refuses it at once.
	if err := s.rn.Propose(ctx, data); err != nil {
		s.waits.trigger(id, nil)
		s.metrics.proposalsFailed.Inc()
		switch {
		case errors.Is(err, raft.ErrProposalDropped):
			return nil, rpctypes.ErrGRPCNoLeader
		case errors.Is(err, raftnode.ErrStopped):
			return nil, rpctypes.ErrGRPCStopped
		}
		return nil, err
	}
	// The request timeout is a pooled timer rather than a context.WithTimeout
	// per proposal: on the write path that context (its timer, its
	// registration with the parent, its channel) was a good part of what a
	// put allocates.
	timer := acquireTimer(s.opts.requestTimeout())
	defer releaseTimer(timer)
	select {
	case res := <-ch:
		s.metrics.proposalsCommitted.Inc()
		return res, nil
	case <-ctx.Done():
	case <-timer.C:
	case <-s.stopping:
		return nil, rpctypes.ErrGRPCStopped
	}
	s.waits.trigger(id, nil)
	s.metrics.proposalsFailed.Inc()
	return nil, s.waitError(ctx, ctx)
}

var timerPool sync.Pool

// acquireTimer returns a running timer that fires after d. Give it back with
// releaseTimer. (Since Go 1.23 a stopped timer delivers no stale value, so a
// pooled one is safe to Reset.)
func acquireTimer(d time.Duration) *time.Timer {
	if t, ok := timerPool.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func releaseTimer(t *time.Timer) {
	t.Stop()
	timerPool.Put(t)
}

// waitError tells a client's own cancellation apart from our timeout.
func (s *Server) waitError(parent, ctx context.Context) error {
	if s.isStopping() {
		return rpctypes.ErrGRPCStopped
	}
	if parent.Err() != nil {
		return parent.Err()
	}
	if s.rn.Leader() == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	return rpctypes.ErrGRPCTimeout
}

// proposeKV proposes and returns the response message typed as T.
func proposeKV[T proto.Message](s *Server, ctx context.Context, r *pb.InternalRaftRequest) (T, error) {
	var zero T
	res, err := s.propose(ctx, r)
	if err != nil {
		return zero, err
	}
	if res.err != nil {
		return zero, res.err
	}
	resp, ok := res.resp.(T)
	if !ok {
		return zero, rpctypes.ErrGRPCNotCapable
	}
	s.fillHeader(headerOf(resp))
	return resp, nil
}

// linearizableReadNotify returns once this member has applied everything
// committed when it was called: one raft ReadIndex round serves every read
// waiting at that moment.
func (s *Server) linearizableReadNotify(ctx context.Context) error {
	s.readMu.RLock()
	nc := s.readNotifier
	s.readMu.RUnlock()
	select {
	case s.readwaitc <- struct{}{}:
	default:
	}
	select {
	case <-nc.c:
		return nc.err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopping:
		return rpctypes.ErrGRPCStopped
	}
}

func (s *Server) linearizableReadLoop() {
	for {
		select {
		case <-s.readwaitc:
		case <-s.stopping:
			return
		}
		next := newNotifier()
		s.readMu.Lock()
		nc := s.readNotifier
		s.readNotifier = next
		s.readMu.Unlock()
		nc.notify(s.readIndex())
	}
}

// readIndex runs one ReadIndex round and waits until the read index is applied.
func (s *Server) readIndex() error {
	if s.rn.Leader() == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	id := s.reqIDs.Next()
	rctx := binary.BigEndian.AppendUint64(nil, id)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.requestTimeout())
	defer cancel()
	if err := s.rn.ReadIndex(ctx, rctx); err != nil {
		return s.waitError(context.Background(), ctx)
	}
	// The first round after an election waits until the leader has committed
	// an entry of its term; raft answers then. Retry if it drops the request
	// (a leader change in between).
	retry := s.opts.ElectionTimeout / 2
	timer := time.NewTimer(retry)
	defer timer.Stop()
	for {
		select {
		case rs := <-s.rn.ReadStates():
			if binary.BigEndian.Uint64(pad8(rs.RequestCtx)) != id {
				continue // an answer to an earlier round that timed out
			}
			select {
			case <-s.applied.wait(rs.Index):
				return nil
			case <-ctx.Done():
				return rpctypes.ErrGRPCTimeout
			case <-s.stopping:
				return rpctypes.ErrGRPCStopped
			}
		case <-timer.C:
			if err := s.rn.ReadIndex(ctx, rctx); err != nil {
				return s.waitError(context.Background(), ctx)
			}
			timer.Reset(retry)
		case <-ctx.Done():
			return s.waitError(context.Background(), ctx)
		case <-s.stopping:
			return rpctypes.ErrGRPCStopped
		}
	}
}

func pad8(b []byte) []byte {
	if len(b) >= 8 {
		return b[:8]
	}
	return append(make([]byte, 8-len(b)), b...)
}
