package h2grpc

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

var (
	errStreamReset = status.Error(codes.Canceled, "context canceled")
	errConnClosed  = status.Error(codes.Canceled, "context canceled: the client connection closed")
	errHeaderSent  = errors.New("h2grpc: the headers were already sent")
	errStreamDone  = status.Error(codes.Canceled, "context canceled: the call has ended")
)

// stream is one call.
type stream struct {
	c      *conn
	id     uint32
	method string
	h      handler
	ctx    context.Context
	cancel context.CancelFunc

	// Receive side: the reader appends, the handler consumes.
	rmu   sync.Mutex
	rbuf  []byte
	roff  int
	rend  bool  // the client ended its side
	rerr  error // reset or connection closed
	rwake chan struct{}
	// Receive flow control: the client may send granted − received more
	// bytes. consumed are bytes the handler took and we have not given
	// back yet.
	received, granted uint64
	consumed          uint64

	// Send side. sendWin is guarded by c.fcMu; sendDone (trailers or a
	// reset written: no frame of this stream may follow) by c.wmu; the
	// rest by hmu.
	sendWin  int64
	sendDone bool
	// unary: the answer's frames (headers, message, trailers) are flushed
	// together, by finish, rather than one by one.
	unary      bool
	hmu        sync.Mutex
	headerSent bool
	finished   bool
	header     metadata.MD
	trailer    metadata.MD
}

// newStream builds a stream from a request's headers, or says why they are
// not those of a gRPC call.
func (c *conn) newStream(f *http2.MetaHeadersFrame) (*stream, *earlyAbort) {
	st := &stream{c: c, id: f.StreamID, rwake: make(chan struct{}, 1)}
	md := metadata.MD{}
	var (
		method, contentType string
		timeout             time.Duration = -1
		encoding            string
		headerErr           *status.Status // the last malformed header, as grpc-go keeps it
	)
	for _, hf := range f.Fields {
		switch hf.Name {
		case ":path":
			st.method = hf.Value
		case ":method":
			method = hf.Value
		case "content-type":
			contentType = hf.Value
		case "grpc-timeout":
			d, err := parseTimeout(hf.Value)
			if err != nil {
				headerErr = status.Newf(codes.Internal, "malformed grpc-timeout: %v", err)
				continue
			}
			timeout = d
		case "grpc-encoding":
			encoding = hf.Value
		default:
			// As grpc-go: reserved headers stay out of the metadata, but
			// for :authority and user-agent.
			if isReservedHeader(hf.Name) && hf.Name != ":authority" && hf.Name != "user-agent" {
				continue
			}
			v := hf.Value
			if isBinaryHeader(hf.Name) {
				b, err := decodeBinaryHeader(v)
				if err != nil {
					headerErr = status.Newf(codes.Internal, "malformed binary metadata %q in header %q: %v", v, hf.Name, err)
					continue
				}
				v = string(b)
			}
			md[hf.Name] = append(md[hf.Name], v)
		}
	}
	// grpc-go's checks, texts and HTTP statuses, in its order.
	if !isGRPCContentType(contentType) {
		return nil, &earlyAbort{http.StatusUnsupportedMediaType,
			status.Newf(codes.InvalidArgument, "invalid gRPC request content-type %q", contentType)}
	}
	if headerErr != nil {
		return nil, &earlyAbort{http.StatusBadRequest, headerErr}
	}
	if method != http.MethodPost {
		return nil, &earlyAbort{http.StatusMethodNotAllowed,
			status.Newf(codes.Internal, "Received a HEADERS frame with :method %q which should be POST", method)}
	}
	c.fcMu.Lock()
	st.sendWin = c.peerInitWin
	c.fcMu.Unlock()
	st.granted = uint64(c.s.opts.StreamWindow)
	ctx := metadata.NewIncomingContext(c.ctx, md)
	if timeout >= 0 {
		ctx, st.cancel = context.WithTimeout(ctx, timeout)
	} else {
		ctx, st.cancel = context.WithCancel(ctx)
	}
	st.ctx = ctx
	h, ok := c.s.methods[st.method]
	st.h = h
	switch {
	case encoding != "" && encoding != "identity":
		st.h = handler{failure: status.Errorf(codes.Unimplemented, "grpc: Decompressor is not installed for grpc-encoding %q", encoding)}
	case !ok:
		st.h = handler{failure: unknownMethod(st.method, c.s.svcs)}
	}
	return st, nil
}

// earlyAbort refuses a request that is HTTP/2 but not a well-formed gRPC
// call: the answer is trailers-only with an HTTP status other than 200.
type earlyAbort struct {
	httpStatus int
	st         *status.Status
}

// fields are the answer's headers.
func (e *earlyAbort) fields() []hpack.HeaderField {
	return []hpack.HeaderField{
		{Name: ":status", Value: strconv.Itoa(e.httpStatus)},
		hdrContentType,
		{Name: "grpc-status", Value: codeString(e.st.Code())},
		{Name: "grpc-message", Value: encodeMessage(e.st.Message())},
	}
}

// serve runs the call's handler and writes its outcome.
func (st *stream) serve() {
	var err error
	switch {
	case st.h.failure != nil:
		err = st.h.failure
	case st.h.unary != nil:
		err = st.serveUnary()
	default:
		err = st.serveStream()
	}
	st.finish(err)
}

func (st *stream) serveUnary() error {
	s := st.c.s
	st.unary = true
	ctx := grpc.NewContextWithServerTransportStream(st.ctx, (*transportStream)(st))
	dec := func(m any) error { return st.recvMsg(m) }
	resp, err := st.h.unary(st.h.impl, ctx, dec, s.unary)
	if err != nil {
		return err
	}
	return st.sendMsg(resp)
}

func (st *stream) serveStream() error {
	s := st.c.s
	ss := &serverStream{st: st, ctx: grpc.NewContextWithServerTransportStream(st.ctx, (*transportStream)(st))}
	sd := st.h.stream
	if s.stream == nil {
		return sd.Handler(st.h.impl, ss)
	}
	info := &grpc.StreamServerInfo{FullMethod: st.method, IsClientStream: sd.ClientStreams, IsServerStream: sd.ServerStreams}
	return s.stream(st.h.impl, ss, info, sd.Handler)
}

// deliverData appends a DATA frame's payload; padding bytes only count
// against the window, and are given back at once. It reports false when
// the client sent more than its window allowed: the caller resets the
// stream.
func (st *stream) deliverData(data []byte, padding uint32, end bool) bool {
	st.rmu.Lock()
	st.rbuf = append(st.rbuf, data...)
	st.received += uint64(len(data)) + uint64(padding)
	if padding > 0 {
		st.grantLocked(uint64(padding))
	}
	ok := st.received <= st.granted
	if end {
		st.rend = true
	}
	st.rmu.Unlock()
	select {
	case st.rwake <- struct{}{}:
	default:
	}
	return ok
}

// grantLocked lets the client send n more bytes. Call with rmu held.
func (st *stream) grantLocked(n uint64) {
	for n > 0 {
		inc := min(n, 1<<31-1)
		st.granted += inc
		n -= inc
		st.c.queue(ctrlFrame{kind: ctrlWindowUpdate, stream: st.id, val: uint32(inc)})
	}
}

// abort ends the stream from outside its handler: a reset from the
// client, a flow-control violation, or the connection closing.
func (st *stream) abort(err error) {
	st.rmu.Lock()
	if st.rerr == nil {
		st.rerr = err
	}
	st.rmu.Unlock()
	st.cancel()
	select {
	case st.rwake <- struct{}{}:
	default:
	}
	st.c.fcMu.Lock()
	st.c.fcCond.Broadcast()
	st.c.fcMu.Unlock()
}

// sendErr is why the stream may not send any more, nil if it may.
func (st *stream) sendErr() error {
	st.rmu.Lock()
	defer st.rmu.Unlock()
	return st.rerr
}

// recvMsg waits for the next complete message and unmarshals it into m.
// It returns io.EOF when the client has ended its side cleanly.
func (st *stream) recvMsg(m any) error {
	max := st.c.s.opts.MaxRecvMsgSize
	for {
		st.rmu.Lock()
		if st.roff == len(st.rbuf) {
			st.rbuf, st.roff = st.rbuf[:0], 0 // only the consumer compacts
		}
		avail := st.rbuf[st.roff:]
		if len(avail) >= 5 {
			n := binary.BigEndian.Uint32(avail[1:5])
			if int64(n) > int64(max) {
				st.rmu.Unlock()
				return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, max)
			}
			if avail[0] != 0 {
				st.rmu.Unlock()
				return status.Error(codes.Internal, "grpc: compressed flag set with identity or empty encoding")
			}
			if len(avail) >= 5+int(n) {
				// The reader only appends, and only this goroutine
				// compacts, so msg stays valid after the unlock.
				msg := avail[5 : 5+n]
				st.roff += 5 + int(n)
				// Give the consumed bytes back once a quarter of the
				// window has accumulated.
				st.consumed += 5 + uint64(n)
				if st.consumed >= uint64(st.c.s.opts.StreamWindow/4) {
					st.grantLocked(st.consumed)
					st.consumed = 0
				}
				st.rmu.Unlock()
				pm, ok := messageV2(m)
				if !ok {
					return status.Errorf(codes.Internal, "grpc: cannot unmarshal into %T", m)
				}
				if err := proto.Unmarshal(msg, pm); err != nil {
					return status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
				}
				return nil
			}
		}
		if len(avail) >= 5 {
			// A message larger than what the client may still send: grant
			// the rest of it (with what was consumed), or it never comes.
			need := 5 + uint64(binary.BigEndian.Uint32(avail[1:5])) - uint64(len(avail))
			if rem := st.granted - st.received; rem < need {
				st.grantLocked(need - rem + st.consumed)
				st.consumed = 0
			}
		}
		if err := st.rerr; err != nil {
			st.rmu.Unlock()
			return err
		}
		if st.rend {
			st.rmu.Unlock()
			if len(avail) == 0 {
				return io.EOF
			}
			return status.Error(codes.Internal, io.ErrUnexpectedEOF.Error())
		}
		st.rmu.Unlock()
		select {
		case <-st.rwake:
		case <-st.ctx.Done():
			return status.FromContextError(st.ctx.Err()).Err()
		}
	}
}

// sendMsg writes one message, waiting for flow-control quota as needed.
func (st *stream) sendMsg(m any) error {
	pm, ok := messageV2(m)
	if !ok {
		return status.Errorf(codes.Internal, "grpc: cannot marshal %T", m)
	}
	bp := getBuffer(5 + proto.Size(pm))
	defer putBuffer(bp)
	buf, err := proto.MarshalOptions{}.MarshalAppend((*bp)[:5], pm)
	if err != nil {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	*bp = buf
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(buf)-5))
	if err := st.writeHeader(); err != nil {
		return err
	}
	c := st.c
	for len(buf) > 0 {
		n, err := c.takeQuota(st, len(buf))
		if err != nil {
			return err
		}
		c.wmu.Lock()
		if st.sendDone {
			// The handler has returned (a goroutine of its own is still
			// sending): as with grpc-go, the message goes nowhere.
			c.wmu.Unlock()
			return errStreamDone
		}
		err = c.wfr.WriteData(st.id, false, buf[:n])
		c.wmu.Unlock()
		if err != nil {
			c.close(err)
			return errConnClosed
		}
		c.resetPings.Store(true)
		if !st.unary {
			c.wakeFlusher()
		}
		buf = buf[n:]
	}
	return nil
}

// Marshalling buffers: the framer copies a message into the connection's
// write buffer, so the buffer is free again once the message is written.
// Large ones are left to the garbage collector.
const maxPooledBuffer = 64 << 10

var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuffer(size int) *[]byte {
	if size > maxPooledBuffer {
		b := make([]byte, 0, size)
		return &b
	}
	bp := bufferPool.Get().(*[]byte)
	if cap(*bp) < size {
		*bp = make([]byte, 0, size)
	}
	return bp
}

func putBuffer(bp *[]byte) {
	if cap(*bp) <= maxPooledBuffer {
		bufferPool.Put(bp)
	}
}

var (
	hdrStatus200   = hpack.HeaderField{Name: ":status", Value: "200"}
	hdrContentType = hpack.HeaderField{Name: "content-type", Value: "application/grpc"}
)

// writeHeader sends the response headers if they have not been sent.
func (st *stream) writeHeader() error {
	st.hmu.Lock()
	defer st.hmu.Unlock()
	if st.headerSent {
		return nil
	}
	if err := st.sendErr(); err != nil {
		return err
	}
	st.headerSent = true
	fields := []hpack.HeaderField{hdrStatus200, hdrContentType}
	fields = appendMD(fields, st.header)
	c := st.c
	c.wmu.Lock()
	if st.sendDone {
		c.wmu.Unlock()
		return errStreamDone
	}
	err := c.writeHeaders(st.id, false, fields)
	c.wmu.Unlock()
	if err != nil {
		c.close(err)
		return errConnClosed
	}
	if !st.unary {
		c.wakeFlusher()
	}
	return nil
}

// finish writes the call's status in trailers (or, when no header went
// out, a trailers-only response) and forgets the stream.
func (st *stream) finish(err error) {
	defer st.c.removeStream(st)
	// Whatever the handler left running sees the call as over: its context
	// is cancelled, a Send or Recv fails, a wait for window ends.
	defer st.abort(errStreamDone)
	st.hmu.Lock()
	defer st.hmu.Unlock()
	if st.finished {
		return
	}
	st.finished = true
	if st.sendErr() != nil {
		st.c.wmu.Lock()
		st.sendDone = true
		st.c.wmu.Unlock()
		return // reset by the client, or the connection is gone
	}
	s := statusOf(err)
	fields := make([]hpack.HeaderField, 0, 6)
	if !st.headerSent {
		fields = append(fields, hdrStatus200, hdrContentType)
		fields = appendMD(fields, st.header)
		st.headerSent = true
	}
	fields = append(fields, hpack.HeaderField{Name: "grpc-status", Value: codeString(s.Code())})
	if msg := s.Message(); msg != "" {
		fields = append(fields, hpack.HeaderField{Name: "grpc-message", Value: encodeMessage(msg)})
	}
	// s.Proto copies the status: not worth it for an OK one, which has
	// no details.
	if s.Code() != codes.OK {
		if p := s.Proto(); len(p.GetDetails()) > 0 {
			if b, err := proto.Marshal(p); err == nil {
				fields = append(fields, hpack.HeaderField{Name: "grpc-status-details-bin", Value: encodeBinaryHeader(b)})
			}
		}
	}
	fields = appendMD(fields, st.trailer)
	st.rmu.Lock()
	clientOpen := !st.rend
	st.rmu.Unlock()
	c := st.c
	c.wmu.Lock()
	st.sendDone = true
	werr := c.writeHeaders(st.id, true, fields)
	if werr == nil && clientOpen {
		// We are done before the client: tell it to stop sending.
		werr = c.wfr.WriteRSTStream(st.id, http2.ErrCodeNo)
	}
	flushed := false
	if werr == nil && st.unary && c.onlyCall(st) {
		// No other call may add to this write: send it from here rather
		// than hand it to the flusher, one goroutine wake-up fewer on the
		// path of every single-client call.
		c.writeControl()
		werr = c.bw.Flush()
		flushed = true
	}
	c.wmu.Unlock()
	if werr != nil {
		c.close(werr)
		return
	}
	if !flushed {
		c.wakeFlusher()
	}
}

// messageV2 accepts what grpc-go's proto codec accepts: messages of the
// current protobuf API and "v1" ones (such as concurrencypb's).
func messageV2(m any) (proto.Message, bool) {
	switch v := m.(type) {
	case proto.Message:
		return v, true
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v), true
	}
	return nil, false
}

// statusOf is the status a handler's error is reported with.
func statusOf(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	if s, ok := status.FromError(err); ok {
		return s
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err)
	}
	return status.New(codes.Unknown, err.Error())
}

// serverStream is the grpc.ServerStream of a streaming call.
type serverStream struct {
	st  *stream
	ctx context.Context
}

func (ss *serverStream) Context() context.Context { return ss.ctx }
func (ss *serverStream) SetHeader(md metadata.MD) error {
	return (*transportStream)(ss.st).SetHeader(md)
}
func (ss *serverStream) SendHeader(md metadata.MD) error {
	return (*transportStream)(ss.st).SendHeader(md)
}
func (ss *serverStream) SetTrailer(md metadata.MD) { _ = (*transportStream)(ss.st).SetTrailer(md) }
func (ss *serverStream) SendMsg(m any) error       { return ss.st.sendMsg(m) }
func (ss *serverStream) RecvMsg(m any) error       { return ss.st.recvMsg(m) }

// transportStream is what grpc.SetHeader, grpc.SendHeader, grpc.SetTrailer
// and grpc.Method find in a call's context.
type transportStream stream

func (ts *transportStream) Method() string { return ts.method }

func (ts *transportStream) SetHeader(md metadata.MD) error {
	st := (*stream)(ts)
	st.hmu.Lock()
	defer st.hmu.Unlock()
	if st.headerSent {
		return errHeaderSent
	}
	st.header = metadata.Join(st.header, md)
	return nil
}

func (ts *transportStream) SendHeader(md metadata.MD) error {
	st := (*stream)(ts)
	st.hmu.Lock()
	if st.headerSent {
		st.hmu.Unlock()
		return errHeaderSent
	}
	st.header = metadata.Join(st.header, md)
	st.hmu.Unlock()
	if err := st.writeHeader(); err != nil {
		return err
	}
	st.c.wakeFlusher() // asked for now, even by a unary call
	return nil
}

func (ts *transportStream) SetTrailer(md metadata.MD) error {
	st := (*stream)(ts)
	st.hmu.Lock()
	defer st.hmu.Unlock()
	if st.finished {
		return errors.New("h2grpc: the call has ended")
	}
	st.trailer = metadata.Join(st.trailer, md)
	return nil
}
