package watch

import (
	"bytes"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// ctrlSlack is how far create/cancel acknowledgements may push a stream's
// queue past StreamBuffer before Watch and Cancel wait for the consumer
// (etcd blocks its receive loop the same way when its control channel of
// 128 is full).
const ctrlSlack = 1024

// Stream is one client watch stream: a set of watchers whose responses
// share one ordered queue. Watch, Cancel, RequestProgress and Close may be
// called from any goroutine.
type Stream struct {
	h *Hub

	// Guarded by h.mu.
	watchers map[int64]*watcher
	nextID   int64 // next automatic watch ID; IDs start at 0 like etcd's
	closed   bool
	progress int // watchers that asked for progress_notify

	// The queue. Guarded by mu; lock order is h.mu before mu.
	mu      sync.Mutex
	q       []*etcdserverpb.WatchResponse
	head    int
	qclosed bool

	// starved is set when an event delivery found the queue full; the pump
	// clears it and wakes the hub once the consumer has made room, so the
	// stream's unsynced watchers catch up without waiting for a tick.
	starved atomic.Bool
	wake    chan struct{} // queue became non-empty (pump)
	drained chan struct{} // queue shrank (Watch/Cancel waiting for room)
	done    chan struct{}
	out     chan *etcdserverpb.WatchResponse
}

func newStream(h *Hub) *Stream {
	s := &Stream{
		h:        h,
		watchers: make(map[int64]*watcher),
		wake:     make(chan struct{}, 1),
		drained:  make(chan struct{}, 1),
		done:     make(chan struct{}),
		out:      make(chan *etcdserverpb.WatchResponse),
	}
	return s
}

// Responses carries, in order: created acknowledgements (also failed ones,
// with WatchId -1 and a cancel reason), events, progress notifications,
// cancel acknowledgements and compaction cancellations. Each header carries
// only Revision; the consumer fills in the rest. Responses share events and
// key-values with each other: treat them as read-only. The channel is
// closed after Close.
func (s *Stream) Responses() <-chan *etcdserverpb.WatchResponse { return s.out }

// Watch creates a watcher and queues its created acknowledgement
// (Created=true, WatchId, Header.Revision = the hub revision) before any of
// its events. A rejected request (negative start revision, empty range,
// duplicate watch ID) queues etcd's failure acknowledgement instead
// (WatchId -1, Created and Canceled set, CancelReason = err.Error()) and
// returns (-1, err). A WatchId of 0 asks for an automatic ID.
//
// The stream keeps req.Key and req.RangeEnd; the caller must not modify
// them afterwards.
func (s *Stream) Watch(req *etcdserverpb.WatchCreateRequest) (int64, error) {
	s.waitRoom()
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return invalidID, ErrClosed
	}
	key, end := normalize(req.Key, req.RangeEnd)
	var err error
	id := req.WatchId
	switch {
	case req.StartRevision < 0:
		err = ErrCompacted
	case len(end) > 0 && bytes.Compare(key, end) >= 0:
		err = ErrEmptyRange
	case id == 0:
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		id = s.nextID
		s.nextID++
	case s.watchers[id] != nil:
		err = ErrDuplicateID
	}
	if err != nil {
		r := newResp(invalidID, h.rev)
		r.Created, r.Canceled, r.CancelReason = true, true, err.Error()
		s.push(r)
		return invalidID, err
	}

	w := newWatcher(s, id, key, end, req)
	r := newResp(id, h.rev)
	r.Created = true
	// The acknowledgement is queued before the watcher is indexed, under
	// h.mu: no event of this watcher can overtake it.
	s.push(r)
	s.watchers[id] = w
	if w.flags&fProgress != 0 {
		s.progress++
	}
	if req.StartRevision == 0 || req.StartRevision > h.rev {
		// Live or future start: Notify filters by minRev.
		w.minRev = max(h.rev+1, req.StartRevision)
		h.addSynced(w)
	} else {
		// History to replay first (or a compaction to report).
		w.minRev = req.StartRevision
		h.addUnsynced(w)
		h.kickSync()
	}
	return id, nil
}

// Cancel removes a watcher and queues its cancel acknowledgement
// (Canceled=true, WatchId=id). Nothing of the watcher follows it.
func (s *Stream) Cancel(id int64) error {
	s.waitRoom()
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	w := s.watchers[id]
	if w == nil || s.closed {
		return ErrWatcherNotExist
	}
	s.drop(w)
	r := newResp(id, h.rev)
	r.Canceled = true
	s.push(r)
	// The canceled watcher may have been what held back a requested
	// progress notification.
	h.flushProgress()
	return nil
}

// RequestProgress asks for a stream-wide progress notification: a response
// with WatchId -1, no events and Header.Revision = the hub revision. It is
// sent once every watcher of the stream is synced (and none waits for a
// future start revision); until then the request is remembered, and several
// requests made meanwhile are answered by one notification, as in etcd 3.6.
// A stream without watchers gets nothing.
func (s *Stream) RequestProgress() {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	h.pendingProgress[s] = struct{}{}
	h.flushProgress()
}

// Close cancels every watcher of the stream and releases it. Responses not
// yet received are dropped and the Responses channel is closed.
func (s *Stream) Close() {
	h := s.h
	h.mu.Lock()
	h.closeStream(s)
	h.mu.Unlock()
}

// drop removes w from the stream and the hub. Caller holds h.mu.
func (s *Stream) drop(w *watcher) {
	s.h.detach(w)
	delete(s.watchers, w.id)
	if w.flags&fProgress != 0 {
		s.progress--
	}
}

// push queues a response regardless of the buffer limit (control
// responses: acknowledgements must never be lost).
func (s *Stream) push(r *etcdserverpb.WatchResponse) {
	s.mu.Lock()
	if !s.qclosed {
		s.q = append(s.q, r)
		s.signal(s.wake)
	}
	s.mu.Unlock()
}

// offer queues all of rs, or none of them when the stream already holds
// StreamBuffer responses: the responses of one revision are never split
// across a full buffer. A closed stream accepts and drops everything.
func (s *Stream) offer(rs ...*etcdserverpb.WatchResponse) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.qclosed {
		return true
	}
	if len(s.q)-s.head >= s.h.o.StreamBuffer {
		s.starved.Store(true)
		return false
	}
	s.q = append(s.q, rs...)
	s.signal(s.wake)
	return true
}

// hasRoom reports whether offer would accept a response now.
func (s *Stream) hasRoom() bool {
	s.mu.Lock()
	ok := s.qclosed || len(s.q)-s.head < s.h.o.StreamBuffer
	s.mu.Unlock()
	if !ok {
		s.starved.Store(true)
	}
	return ok
}

// pop takes the oldest queued response, or nil.
func (s *Stream) pop() *etcdserverpb.WatchResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.q) {
		return nil
	}
	r := s.q[s.head]
	s.q[s.head] = nil
	s.head++
	switch n := len(s.q) - s.head; {
	case n == 0:
		s.q, s.head = s.q[:0], 0
	case s.head >= 64 && s.head >= n:
		// Reuse the front of the array instead of growing forever.
		copy(s.q, s.q[s.head:])
		clear(s.q[n:])
		s.q, s.head = s.q[:n], 0
	}
	s.signal(s.drained)
	if s.starved.Load() && len(s.q)-s.head <= s.h.o.StreamBuffer/2 {
		s.starved.Store(false)
		s.h.kickSync()
	}
	return r
}

func (s *Stream) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q) - s.head
}

// pump moves responses from the queue to the Responses channel, one at a
// time, so the queue length is exactly what the consumer has not taken.
func (s *Stream) pump() {
	defer close(s.out)
	for {
		r := s.pop()
		if r == nil {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.out <- r:
		case <-s.done:
			return
		}
	}
}

// waitRoom blocks Watch and Cancel while the consumer is far behind, so a
// client that creates watches without reading cannot grow the queue without
// bound.
func (s *Stream) waitRoom() {
	for s.queued() >= s.h.o.StreamBuffer+ctrlSlack {
		select {
		case <-s.drained:
		case <-s.done:
			return
		}
	}
}

func (s *Stream) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
