package server

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/protoscan"
)

// result is what applying one proposal produced.
type result struct {
	resp proto.Message
	err  error
	// compacted is closed once a compaction's physical deletion is done
	// (CompactionRequest.physical waits for it).
	compacted <-chan struct{}
}

// waitRegistry matches proposals to their apply results by request ID. A
// proposal registers before it is handed to raft; the apply loop triggers it.
// Shards keep concurrent proposers off one lock.
type waitRegistry struct {
	shards [16]waitShard
}

type waitShard struct {
	mu sync.Mutex
	m  map[uint64]waiter
}

// waiter is one registered proposal.
type waiter struct {
	ch chan *result
	// req and data, when set, are the request as proposed and its
	// encoding, the entry's data. req is never modified once registered.
	req  *pb.InternalRaftRequest
	data []byte
}

func newWaitRegistry() *waitRegistry {
	w := &waitRegistry{}
	for i := range w.shards {
		w.shards[i].m = make(map[uint64]waiter)
	}
	return w
}

func (w *waitRegistry) shard(id uint64) *waitShard { return &w.shards[id%uint64(len(w.shards))] }

// register returns the channel on which id's result arrives (buffered: the
// apply loop never blocks on a proposer that gave up).
func (w *waitRegistry) register(id uint64) <-chan *result {
	return w.registerProposal(id, nil, nil)
}

// registerProposal is register for a request proposed as data (its
// encoding), which the apply loop may then use instead of decoding the
// entry again (see proposed).
func (w *waitRegistry) registerProposal(id uint64, req *pb.InternalRaftRequest, data []byte) <-chan *result {
	s := w.shard(id)
	ch := make(chan *result, 1)
	s.mu.Lock()
	s.m[id] = waiter{ch: ch, req: req, data: data}
	s.mu.Unlock()
	return ch
}

// proposed returns the request registered under id if it was proposed as
// exactly data, nil otherwise. The leader applies its own proposals this
// way without decoding them again. Equal bytes decode to an equal request,
// so what is applied is the same as on a member that decodes the entry.
func (w *waitRegistry) proposed(id uint64, data []byte) *pb.InternalRaftRequest {
	if id == 0 {
		return nil
	}
	s := w.shard(id)
	s.mu.Lock()
	wt := s.m[id]
	s.mu.Unlock()
	if wt.req == nil || !bytes.Equal(wt.data, data) {
		return nil
	}
	return wt.req
}

// trigger delivers r to id's waiter, if it is still waiting.
func (w *waitRegistry) trigger(id uint64, r *result) {
	s := w.shard(id)
	s.mu.Lock()
	wt, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ok && r != nil {
		wt.ch <- r
	}
}

// Field numbers of etcdserverpb.InternalRaftRequest.header and of
// RequestHeader.ID.
const (
	internalRequestHeaderField = 100
	requestHeaderIDField       = 1
)

// headerID reads header.ID from an encoded InternalRaftRequest without
// decoding the rest: 0 if it has none or does not parse.
func headerID(data []byte) uint64 {
	id, _ := protoscan.NestedVarint(data, internalRequestHeaderField, requestHeaderIDField)
	return id
}

// idGenerator makes IDs unique across members and restarts: the low 16 bits
// of the member ID, then the start time in milliseconds (40 bits), then a
// counter that starts there. The counter may run into the time bits, which
// keeps IDs increasing as long as fewer than one ID a millisecond is taken on
// average since start; even then they stay unique within this process.
type idGenerator struct {
	prefix uint64
	next   atomic.Uint64
}

func newIDGenerator(memberID uint64, now time.Time) *idGenerator {
	g := &idGenerator{prefix: (memberID & 0xffff) << 48}
	ms := uint64(now.UnixMilli()) & (1<<40 - 1)
	g.next.Store(ms << 8)
	return g
}

func (g *idGenerator) Next() uint64 {
	return g.prefix | (g.next.Add(1) & (1<<48 - 1))
}
