package server

import (
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
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
	m  map[uint64]chan *result
}

func newWaitRegistry() *waitRegistry {
	w := &waitRegistry{}
	for i := range w.shards {
		w.shards[i].m = make(map[uint64]chan *result)
	}
	return w
}

func (w *waitRegistry) shard(id uint64) *waitShard { return &w.shards[id%uint64(len(w.shards))] }

// register returns the channel on which id's result arrives (buffered: the
// apply loop never blocks on a proposer that gave up).
func (w *waitRegistry) register(id uint64) <-chan *result {
	s := w.shard(id)
	ch := make(chan *result, 1)
	s.mu.Lock()
	s.m[id] = ch
	s.mu.Unlock()
	return ch
}

// trigger delivers r to id's waiter, if it is still waiting.
func (w *waitRegistry) trigger(id uint64, r *result) {
	s := w.shard(id)
	s.mu.Lock()
	ch := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ch != nil && r != nil {
		ch <- r
	}
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
