package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// invalidWatchID marks a watch response that belongs to no watcher: a
// refused create, or a progress notification for the whole stream.
const invalidWatchID = -1

// ctrlBufLen bounds control responses (created/canceled) queued between
// the receive and send loops. They are rare; when the buffer is full the
// receive loop waits, which in turn stops reading the client's requests.
const ctrlBufLen = 16

// errEmptyWatcherRange is etcd's cancel reason for a range whose end is not
// after its start.
const errEmptyWatcherRange = "mvcc: watcher range is empty"

type watchService struct {
	etcdserverpb.UnimplementedWatchServer
	s  Server
	lg *zap.Logger
	// fragmentBytes is the response size above which a watcher that asked
	// for fragmentation gets its events split (etcd: max request bytes plus
	// gRPC overhead).
	fragmentBytes int
}

// ctrlMsg is a response the receive loop itself produces: a refusal of a
// create request that failed validation here.
type ctrlMsg struct {
	resp *etcdserverpb.WatchResponse
}

// watchConn is one client Watch stream: a receive loop (the stream's own
// goroutine) turns requests into WatchStream calls and control responses,
// and one send loop writes control responses and WatchStream responses to
// the client. A slow client therefore only backs up its own stream.
type watchConn struct {
	svc    *watchService
	stream etcdserverpb.Watch_WatchServer

	// mu serialises calls into ws and its Close: the receive loop can
	// outlive the handler (Recv only returns once the handler has), and the
	// WatchStream must not see calls after Close.
	mu     sync.Mutex
	closed bool
	ws     WatchStream
	// fragment holds the IDs of watchers that asked for fragmented
	// responses; recorded under mu in the same critical section as the
	// Watch call, so the send loop never sees a response of the watcher
	// before its flag.
	fragment map[int64]bool

	ctrl   chan ctrlMsg
	closec chan struct{}
}

func (w *watchService) Watch(stream etcdserverpb.Watch_WatchServer) error {
	c := &watchConn{
		svc:      w,
		stream:   stream,
		ws:       w.s.NewWatchStream(),
		fragment: map[int64]bool{},
		ctrl:     make(chan ctrlMsg, ctrlBufLen),
		closec:   make(chan struct{}),
	}
	sendDone := make(chan error, 1)
	go func() { sendDone <- c.sendLoop() }()
	recvDone := make(chan error, 1)
	go func() { recvDone <- c.recvLoop() }()

	ctx := stream.Context()
	var err error
	// A client that half-closes (EOF) keeps receiving events, as in etcd:
	// only a receive error, a send error or the end of the stream context
	// ends the stream.
	recv := recvDone
	for done := false; !done; {
		select {
		case err = <-recv:
			if err == nil {
				recv = nil // EOF: keep serving until the context ends
				continue
			}
			done = true
		case err = <-sendDone:
			sendDone = nil
			done = true
		case <-ctx.Done():
			err = ctx.Err()
			done = true
		}
	}
	if errors.Is(err, context.Canceled) {
		err = rpctypes.ErrGRPCWatchCanceled
	}
	c.close()
	if sendDone != nil {
		<-sendDone
	}
	return err
}

func (c *watchConn) close() {
	c.mu.Lock()
	c.closed = true
	c.ws.Close()
	c.mu.Unlock()
	close(c.closec)
}

// enqueue hands a control response to the send loop; false once the stream
// is closing.
func (c *watchConn) enqueue(m ctrlMsg) bool {
	select {
	case c.ctrl <- m:
		return true
	case <-c.closec:
		return false
	}
}

// watchRefusal is etcd's cancel reason for a watcher the caller may not
// create: the full text of the gRPC error ("rpc error: code = ... desc =
// ..."), permission denied for anything unexpected.
func watchRefusal(err error) string {
	switch {
	case errors.Is(err, rpctypes.ErrGRPCInvalidAuthToken),
		errors.Is(err, rpctypes.ErrGRPCAuthOldRevision),
		errors.Is(err, rpctypes.ErrGRPCUserEmpty):
		return err.Error()
	}
	return rpctypes.ErrGRPCPermissionDenied.Error()
}

func (c *watchConn) refuse(reason string) bool {
	return c.enqueue(ctrlMsg{resp: &etcdserverpb.WatchResponse{
		Header:       c.svc.s.Header(),
		WatchId:      invalidWatchID,
		Created:      true,
		Canceled:     true,
		CancelReason: reason,
	}})
}

func (c *watchConn) recvLoop() error {
	for {
		req, err := c.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case req.GetCreateRequest() != nil:
			if !c.create(req.GetCreateRequest()) {
				return nil
			}
		case req.GetCancelRequest() != nil:
			if !c.cancel(req.GetCancelRequest().GetWatchId()) {
				return nil
			}
		case req.GetProgressRequest() != nil:
			c.mu.Lock()
			if !c.closed {
				c.ws.RequestProgress()
			}
			c.mu.Unlock()
		default:
			// etcd ignores requests it does not understand rather than
			// ending the stream.
			c.svc.lg.Debug("ignoring empty or unknown watch request")
		}
	}
}

func (c *watchConn) create(creq *etcdserverpb.WatchCreateRequest) bool {
	if len(creq.Key) == 0 {
		creq.Key = []byte{0} // the smallest key, as etcd
	}
	if creq.StartRevision < 0 {
		return c.refuse(rpctypes.ErrCompacted.Error())
	}
	if err := c.svc.s.WatchPermitted(c.stream.Context(), creq.Key, creq.RangeEnd); err != nil {
		return c.refuse(watchRefusal(err))
	}
	// A range end of "\x00" means "every key from Key on"; any other end
	// must sort after Key.
	if len(creq.RangeEnd) != 0 && !(len(creq.RangeEnd) == 1 && creq.RangeEnd[0] == 0) &&
		bytes.Compare(creq.Key, creq.RangeEnd) >= 0 {
		return c.refuse(errEmptyWatcherRange)
	}
	// The WatchStream queues the "created" acknowledgement (or the refusal)
	// itself, ahead of any event of the watcher, so none is sent here.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if id, err := c.ws.Watch(creq); err == nil && creq.Fragment {
		c.fragment[id] = true
	}
	return true
}

// cancel cancels a watcher; the WatchStream queues the acknowledgement.
// etcd answers nothing when the watcher does not exist.
func (c *watchConn) cancel(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	_ = c.ws.Cancel(id)
	return true
}

func (c *watchConn) sendLoop() error {
	resps := c.ws.Responses()
	for {
		select {
		case wr, ok := <-resps:
			if !ok {
				// The server ended the stream (it is stopping): tell the
				// client to go elsewhere rather than end cleanly.
				return rpctypes.ErrGRPCStopped
			}
			wr.Header = fillHeader(c.svc.s, wr.Header)
			if wr.CompactRevision != 0 {
				// Compaction ends the watcher; etcd's response carries no
				// revision then.
				wr.Canceled = true
				wr.Header.Revision = 0
			}
			c.mu.Lock()
			fragment := c.fragment[wr.WatchId]
			if wr.Canceled {
				delete(c.fragment, wr.WatchId)
			}
			c.mu.Unlock()
			if err := c.send(wr, fragment && !wr.Created); err != nil {
				return err
			}
		case m := <-c.ctrl:
			if err := c.stream.Send(m.resp); err != nil {
				return c.sendFailed(err)
			}
		case <-c.closec:
			return nil
		}
	}
}

func (c *watchConn) send(wr *etcdserverpb.WatchResponse, fragment bool) error {
	var err error
	if fragment {
		err = sendFragments(wr, c.svc.fragmentBytes, c.stream.Send)
	} else {
		err = c.stream.Send(wr)
	}
	if err != nil {
		return c.sendFailed(err)
	}
	return nil
}

func (c *watchConn) sendFailed(err error) error {
	if c.stream.Context().Err() == nil {
		c.svc.lg.Warn("failed to send a watch response; closing the watch stream", zap.Error(err))
	}
	return err
}

// sendFragments splits a response whose encoding reaches maxBytes into
// several with Fragment set on all but the last, each holding at least one
// event. Every fragment is a new message: Send may queue it, so none may be
// reused.
func sendFragments(wr *etcdserverpb.WatchResponse, maxBytes int, send func(*etcdserverpb.WatchResponse) error) error {
	if len(wr.Events) < 2 || proto.Size(wr) < maxBytes {
		return send(wr)
	}
	evs := wr.Events
	for len(evs) > 0 {
		cur := &etcdserverpb.WatchResponse{
			Header:          wr.Header,
			WatchId:         wr.WatchId,
			Created:         wr.Created,
			Canceled:        wr.Canceled,
			CompactRevision: wr.CompactRevision,
			CancelReason:    wr.CancelReason,
			Fragment:        true,
		}
		// Sizes add up field by field: the fragment without events, plus
		// per event its tag (field 11: one byte), length and body.
		size := proto.Size(cur)
		n := 0
		for n < len(evs) {
			size += 1 + protowire.SizeBytes(proto.Size(evs[n]))
			if n > 0 && size >= maxBytes {
				break
			}
			n++
		}
		cur.Events = evs[:n:n]
		evs = evs[n:]
		cur.Fragment = len(evs) > 0
		if err := send(cur); err != nil {
			return err
		}
	}
	return nil
}
