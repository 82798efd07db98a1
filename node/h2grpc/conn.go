package h2grpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/peer"
)

// clientPreface starts every HTTP/2 connection (RFC 9113 §3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

const (
	ioBufferBytes = 32 << 10
	// maxPingStrikes is how many pings inside KeepaliveMinTime a client may
	// send before we disconnect it (grpc-go's rule).
	maxPingStrikes = 2
	// idlePingMinTime is the least ping interval without open calls.
	idlePingMinTime = 2 * time.Hour
	// maxQueuedControl bounds the frames the reader has queued and the
	// flusher not written yet: a client that floods us with pings or
	// settings while not reading our answers is disconnected.
	maxQueuedControl = 1 << 14
	// maxHeaderListBytes bounds a call's decoded headers (grpc-go's default).
	maxHeaderListBytes = 16 << 20
	// goAwayWriteTimeout bounds the write of a final GOAWAY.
	goAwayWriteTimeout = time.Second
)

// ctrlKind is a frame the reader asks the flusher to write.
type ctrlKind uint8

const (
	ctrlSettingsAck ctrlKind = iota
	ctrlPingAck
	ctrlPing
	ctrlWindowUpdate
	ctrlRSTStream
	ctrlGoAway
	ctrlTableSize
	ctrlEarlyAbort // fields as a trailers-only answer; val 1: then RST_STREAM NO_ERROR
)

type ctrlFrame struct {
	kind   ctrlKind
	stream uint32
	val    uint32 // window increment, error code or table size
	data   [8]byte
	fields []hpack.HeaderField
}

// conn is one client connection.
type conn struct {
	s  *Server
	nc net.Conn
	// ctx is every call's parent: it carries the peer. It is never
	// cancelled: close cancels each call itself, which spares every call
	// the registration of its context with a cancellable parent.
	ctx context.Context

	// Write side: the framer, its buffer and the HPACK encoder.
	wmu  sync.Mutex
	bw   *bufio.Writer
	wfr  *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer

	flushc       chan struct{} // wakes the flusher; one token is enough
	flushPending atomic.Bool
	ctrlMu       sync.Mutex
	ctrl         []ctrlFrame
	// ackTimer wakes the flusher for PING answers that no other write
	// took along within Options.pingAckDelay; ackTimerSet says it is
	// running. Both change under ctrlMu, with the queue, so that no answer
	// is ever left queued without the timer running.
	ackTimer    *time.Timer
	ackTimerSet bool

	// Send flow control.
	fcMu         sync.Mutex
	fcCond       *sync.Cond
	connSendWin  int64
	peerInitWin  int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	fcClosed     bool
	peerMaxFrame atomic.Uint32

	// The streams in progress.
	smu          sync.Mutex
	streams      map[uint32]*stream
	lastStreamID uint32
	goingAway    bool
	drained      chan struct{} // closed when going away and no stream is left
	drainOnce    sync.Once

	// Reader-only state.
	fr          *http2.Framer
	connUnacked uint32
	pingStrikes int
	lastPing    time.Time

	// resetPings is set whenever we send headers or data: a client that
	// pings after receiving them is not counted as abusive (grpc-go's BDP
	// pings follow data).
	resetPings atomic.Bool
	// activity is set by every frame read; the keepalive pinger clears it.
	activity atomic.Bool

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:           s,
		nc:          nc,
		bw:          bufio.NewWriterSize(nc, ioBufferBytes),
		flushc:      make(chan struct{}, 1),
		connSendWin: initialWindow,
		peerInitWin: initialWindow,
		streams:     map[uint32]*stream{},
		drained:     make(chan struct{}),
		done:        make(chan struct{}),
	}
	c.fcCond = sync.NewCond(&c.fcMu)
	c.ackTimer = time.AfterFunc(time.Hour, c.wakeFlusher)
	c.ackTimer.Stop()
	c.peerMaxFrame.Store(16384)
	c.wfr = http2.NewFramer(c.bw, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	p := &peer.Peer{Addr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr()}
	if s.opts.Handshake != nil {
		p.AuthInfo = s.opts.Handshake(nc)
	}
	c.ctx = peer.NewContext(context.Background(), p)
	return c
}

// serve reads the connection until it ends.
func (c *conn) serve() {
	defer c.close(io.EOF)
	br := bufio.NewReaderSize(c.nc, ioBufferBytes)
	var preface [len(clientPreface)]byte
	if _, err := io.ReadFull(br, preface[:]); err != nil || string(preface[:]) != clientPreface {
		return
	}
	c.fr = http2.NewFramer(nil, br)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = maxHeaderListBytes
	o := &c.s.opts
	c.wmu.Lock()
	_ = c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1<<31 - 1},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: o.StreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderListBytes},
	)
	if o.ConnWindow > initialWindow {
		_ = c.wfr.WriteWindowUpdate(0, o.ConnWindow-initialWindow)
	}
	err := c.bw.Flush()
	c.wmu.Unlock()
	if err != nil {
		return
	}
	go c.flusher()
	go c.keepalive()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.resetStream(se.StreamID, se.Code)
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				c.fatal(http2.ErrCode(ce), "", err)
			}
			return
		}
		c.activity.Store(true)
		if err := c.handleFrame(f); err != nil {
			return
		}
	}
}

// handleFrame acts on one frame; an error ends the connection.
func (c *conn) handleFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.onHeaders(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.PingFrame:
		return c.onPing(f)
	case *http2.RSTStreamFrame:
		if st := c.stream(f.StreamID); st != nil {
			st.abort(errStreamReset)
		}
	case *http2.GoAwayFrame:
		return errors.New("the client sent GOAWAY")
	}
	return nil // PRIORITY and unknown frames are ignored
}

func (c *conn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if st := c.stream(id); st != nil {
		// Trailers from the client: gRPC clients send none, but they
		// would end the client's side of the stream. A second HEADERS
		// that does not end the stream is malformed (RFC 9113 §8.1).
		if !f.StreamEnded() {
			c.resetStream(id, http2.ErrCodeProtocol)
			return nil
		}
		st.deliverData(nil, 0, true)
		return nil
	}
	if id%2 == 0 || id <= c.lastStreamID {
		return c.fatal(http2.ErrCodeProtocol, "", fmt.Errorf("invalid stream ID %d after %d", id, c.lastStreamID))
	}
	st, ab := c.newStream(f)
	c.smu.Lock()
	c.lastStreamID = id
	refuse := c.goingAway || c.closeErr != nil
	if !refuse && st != nil {
		c.streams[id] = st
	}
	c.smu.Unlock()
	switch {
	case refuse:
		if st != nil {
			st.cancel()
		}
		c.queue(ctrlFrame{kind: ctrlRSTStream, stream: id, val: uint32(http2.ErrCodeRefusedStream)})
	case st == nil:
		// A request that is not a well-formed gRPC call gets an HTTP status
		// and a gRPC status, as grpc-go answers it; if the client is still
		// sending, RST_STREAM NO_ERROR tells it to stop.
		c.s.opts.Logger.Debug("refused an HTTP/2 stream", zap.String("reason", ab.st.Message()))
		abort := ctrlFrame{kind: ctrlEarlyAbort, stream: id, fields: ab.fields()}
		if !f.StreamEnded() {
			abort.val = 1
		}
		c.queue(abort)
	default:
		if f.StreamEnded() {
			st.deliverData(nil, 0, true)
		}
		c.s.run(st.serve)
	}
	return nil
}

func (c *conn) onData(f *http2.DataFrame) error {
	// The whole frame, padding included, counts against the connection
	// window; it is given back at once.
	c.connUnacked += f.Length
	if c.connUnacked >= c.s.opts.ConnWindow/4 {
		c.queue(ctrlFrame{kind: ctrlWindowUpdate, val: c.connUnacked})
		c.connUnacked = 0
	}
	st := c.stream(f.StreamID)
	if st == nil {
		return nil // a stream we reset or finished: its data is dropped
	}
	data := f.Data()
	if !st.deliverData(data, f.Length-uint32(len(data)), f.StreamEnded()) {
		// More than the window we granted: the client ignores flow control.
		c.resetStream(st.id, http2.ErrCodeFlowControl)
	}
	return nil
}

func (c *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			c.fcMu.Lock()
			delta := int64(s.Val) - c.peerInitWin
			c.peerInitWin = int64(s.Val)
			c.smu.Lock()
			for _, st := range c.streams {
				st.sendWin += delta
			}
			c.smu.Unlock()
			c.fcCond.Broadcast()
			c.fcMu.Unlock()
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame.Store(s.Val)
		case http2.SettingHeaderTableSize:
			c.queue(ctrlFrame{kind: ctrlTableSize, val: s.Val})
		}
		return nil
	})
	if err != nil {
		var ce http2.ConnectionError
		code := http2.ErrCodeProtocol
		if errors.As(err, &ce) {
			code = http2.ErrCode(ce)
		}
		return c.fatal(code, "", err)
	}
	c.queue(ctrlFrame{kind: ctrlSettingsAck})
	return nil
}

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.fcMu.Lock()
	defer c.fcMu.Unlock()
	if f.StreamID == 0 {
		c.connSendWin += int64(f.Increment)
	} else if st := c.stream(f.StreamID); st != nil {
		st.sendWin += int64(f.Increment)
	}
	c.fcCond.Broadcast()
	return nil
}

func (c *conn) onPing(f *http2.PingFrame) error {
	if f.IsAck() {
		return nil // the keepalive pinger watches activity, not acks
	}
	if c.resetPings.Swap(false) {
		c.pingStrikes = 0
		c.lastPing = time.Time{}
	}
	now := time.Now()
	if !c.lastPing.IsZero() {
		least := c.s.opts.KeepaliveMinTime
		c.smu.Lock()
		idle := len(c.streams) == 0
		c.smu.Unlock()
		if idle {
			least = idlePingMinTime
		}
		if now.Sub(c.lastPing) < least {
			c.pingStrikes++
		}
	}
	c.lastPing = now
	if c.pingStrikes > maxPingStrikes {
		c.s.opts.Logger.Warn("disconnected a client that pings too often; raise its keepalive interval or lower --grpc-keepalive-min-time",
			zap.Stringer("remote-addr", c.nc.RemoteAddr()), zap.Duration("min-time", c.s.opts.KeepaliveMinTime))
		return c.fatal(http2.ErrCodeEnhanceYourCalm, "too_many_pings", errors.New("too many pings"))
	}
	// The answer waits, briefly, for the next write. grpc-go clients ping
	// after every response they receive (to estimate the bandwidth-delay
	// product) and send their next call right behind the ping, so the
	// answer usually leaves with that call's response, in the same
	// segment, rather than costing a write of its own and the client a
	// wake-up to read it (a single client's puts: one socket write each
	// instead of two, about 5% more of them per second).
	// RFC 9113 §6.7 asks for prompt answers; a few milliseconds are
	// prompt for keepalive timeouts (seconds) and BDP estimation.
	c.enqueue(ctrlFrame{kind: ctrlPingAck, data: f.Data})
	return nil
}

// fatal ends the connection with a GOAWAY carrying code and debug.
func (c *conn) fatal(code http2.ErrCode, debug string, err error) error {
	c.smu.Lock()
	last := c.lastStreamID
	c.smu.Unlock()
	go func() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(goAwayWriteTimeout))
		c.wmu.Lock()
		_ = c.wfr.WriteGoAway(last, code, []byte(debug))
		_ = c.bw.Flush()
		c.wmu.Unlock()
		c.close(err)
	}()
	<-c.done
	return err
}

// drain sends GOAWAY, waits for the calls in progress, and closes.
func (c *conn) drain() {
	c.smu.Lock()
	c.goingAway = true
	last := c.lastStreamID
	empty := len(c.streams) == 0
	c.smu.Unlock()
	c.queue(ctrlFrame{kind: ctrlGoAway, stream: last})
	if empty {
		c.drainOnce.Do(func() { close(c.drained) })
	}
	select {
	case <-c.drained:
		// Write the last trailers and the GOAWAY here: close stops the
		// flusher.
		c.wmu.Lock()
		c.writeControl()
		_ = c.bw.Flush()
		c.wmu.Unlock()
		c.close(errServerStopping)
	case <-c.done:
	}
}

// close ends the connection and every call on it.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.smu.Lock()
		c.closeErr = err
		streams := make([]*stream, 0, len(c.streams))
		for _, st := range c.streams {
			streams = append(streams, st)
		}
		c.smu.Unlock()
		for _, st := range streams {
			st.abort(errConnClosed)
		}
		c.fcMu.Lock()
		c.fcClosed = true
		c.fcCond.Broadcast()
		c.fcMu.Unlock()
		c.nc.Close()
		c.ackTimer.Stop()
		close(c.done)
	})
}

func (c *conn) stream(id uint32) *stream {
	c.smu.Lock()
	st := c.streams[id]
	c.smu.Unlock()
	return st
}

// removeStream drops a finished stream from the table.
func (c *conn) removeStream(st *stream) {
	c.smu.Lock()
	delete(c.streams, st.id)
	drained := c.goingAway && len(c.streams) == 0
	c.smu.Unlock()
	if drained {
		c.drainOnce.Do(func() { close(c.drained) })
	}
}

// onlyCall reports whether st is the only call in progress.
func (c *conn) onlyCall(st *stream) bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	return len(c.streams) == 1 && c.streams[st.id] == st
}

// callsInProgress reports whether some call on the connection has not
// finished yet.
func (c *conn) callsInProgress() bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	return len(c.streams) > 0
}

// resetStream ends the stream's call and sends RST_STREAM; the stream
// leaves the table when its handler returns.
func (c *conn) resetStream(id uint32, code http2.ErrCode) {
	if st := c.stream(id); st != nil {
		st.abort(errStreamReset)
	}
	c.queue(ctrlFrame{kind: ctrlRSTStream, stream: id, val: uint32(code)})
}

// queue hands a control frame to the flusher. The reader never blocks on
// it; a peer that makes us queue too many is disconnected.
func (c *conn) queue(f ctrlFrame) {
	if c.enqueue(f) {
		c.wakeFlusher()
	}
}

// enqueue adds f to the control frames the next write takes along; a PING
// answer also starts the timer that bounds its wait. It reports false when
// the peer has made us queue too many and the connection is closing.
func (c *conn) enqueue(f ctrlFrame) bool {
	c.ctrlMu.Lock()
	c.ctrl = append(c.ctrl, f)
	if f.kind == ctrlPingAck && !c.ackTimerSet {
		c.ackTimerSet = true
		c.ackTimer.Reset(c.s.opts.pingAckDelay)
	}
	n := len(c.ctrl)
	c.ctrlMu.Unlock()
	if n > maxQueuedControl {
		go c.close(errors.New("the client does not read our control frames"))
		return false
	}
	return true
}

func (c *conn) wakeFlusher() {
	if !c.flushPending.Swap(true) {
		select {
		case c.flushc <- struct{}{}:
		default:
		}
	}
}

// flusher writes queued control frames and flushes the write buffer
// whenever something was written. While other calls on the connection are
// in progress it first lets the other runnable goroutines go: handlers
// woken by the same raft apply batch then add their answers, and the batch
// leaves in one write. With no call left to answer it writes at once:
// runtime.Gosched queues the flusher behind everything runnable, including
// goroutines about to block this thread in a syscall (a WAL write), and a
// lone client would wait for that.
func (c *conn) flusher() {
	for {
		select {
		case <-c.flushc:
		case <-c.done:
			return
		}
		if c.callsInProgress() {
			runtime.Gosched()
		}
		c.wmu.Lock()
		c.flushPending.Store(false)
		c.writeControl()
		err := c.bw.Flush()
		c.wmu.Unlock()
		if err != nil {
			c.close(err)
			return
		}
	}
}

// writeControl writes the queued control frames. Call with wmu held.
func (c *conn) writeControl() {
	c.ctrlMu.Lock()
	q := c.ctrl
	c.ctrl = nil
	if c.ackTimerSet {
		c.ackTimerSet = false
		c.ackTimer.Stop()
	}
	c.ctrlMu.Unlock()
	for _, f := range q {
		switch f.kind {
		case ctrlSettingsAck:
			_ = c.wfr.WriteSettingsAck()
		case ctrlPingAck:
			_ = c.wfr.WritePing(true, f.data)
		case ctrlPing:
			_ = c.wfr.WritePing(false, f.data)
		case ctrlWindowUpdate:
			_ = c.wfr.WriteWindowUpdate(f.stream, f.val)
		case ctrlRSTStream:
			_ = c.wfr.WriteRSTStream(f.stream, http2.ErrCode(f.val))
		case ctrlGoAway:
			_ = c.wfr.WriteGoAway(f.stream, http2.ErrCodeNo, nil)
		case ctrlTableSize:
			c.henc.SetMaxDynamicTableSizeLimit(f.val)
		case ctrlEarlyAbort:
			_ = c.writeHeaders(f.stream, true, f.fields)
			if f.val == 1 {
				_ = c.wfr.WriteRSTStream(f.stream, http2.ErrCodeNo)
			}
		}
	}
}

// keepalive pings a connection that has been silent for KeepaliveTime and
// closes it if it stays silent for KeepaliveTimeout more.
func (c *conn) keepalive() {
	o := &c.s.opts
	t := time.NewTimer(o.KeepaliveTime)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if c.activity.Swap(false) {
			t.Reset(o.KeepaliveTime)
			continue
		}
		c.queue(ctrlFrame{kind: ctrlPing})
		t.Reset(o.KeepaliveTimeout)
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if !c.activity.Swap(false) {
			c.s.opts.Logger.Info("closed a client connection that did not answer a keepalive ping",
				zap.Stringer("remote-addr", c.nc.RemoteAddr()), zap.Duration("timeout", o.KeepaliveTimeout))
			c.close(errors.New("keepalive ping not answered"))
			return
		}
		t.Reset(o.KeepaliveTime)
	}
}

// takeQuota waits until st may send at least one byte and reserves up to
// want bytes of both windows, no more than one frame.
func (c *conn) takeQuota(st *stream, want int) (int, error) {
	c.fcMu.Lock()
	defer c.fcMu.Unlock()
	for {
		if c.fcClosed {
			return 0, errConnClosed
		}
		if err := st.sendErr(); err != nil {
			return 0, err
		}
		n := min(int64(want), c.connSendWin, st.sendWin, int64(c.peerMaxFrame.Load()))
		if n > 0 {
			c.connSendWin -= n
			st.sendWin -= n
			return int(n), nil
		}
		// What is buffered must reach the client for it to grant more.
		c.wakeFlusher()
		c.fcCond.Wait()
	}
}

// writeHeaders encodes fields and writes them as one HEADERS frame and as
// many CONTINUATION frames as the peer's frame size requires. Call with
// wmu held.
func (c *conn) writeHeaders(id uint32, endStream bool, fields []hpack.HeaderField) error {
	c.hbuf.Reset()
	for _, f := range fields {
		if err := c.henc.WriteField(f); err != nil {
			return err
		}
	}
	block := c.hbuf.Bytes()
	max := int(c.peerMaxFrame.Load())
	first := block
	if len(first) > max {
		first = first[:max]
	}
	block = block[len(first):]
	if err := c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0}); err != nil {
		return err
	}
	for len(block) > 0 {
		chunk := block
		if len(chunk) > max {
			chunk = chunk[:max]
		}
		block = block[len(chunk):]
		if err := c.wfr.WriteContinuation(id, len(block) == 0, chunk); err != nil {
			return err
		}
	}
	c.resetPings.Store(true)
	return nil
}
