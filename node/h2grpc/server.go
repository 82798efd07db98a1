package h2grpc

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Options configure a Server. Zero values take the defaults noted.
type Options struct {
	// UnaryInterceptors and StreamInterceptors run in order around every
	// call, as grpc.ChainUnaryInterceptor and grpc.ChainStreamInterceptor.
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor
	// MaxRecvMsgSize bounds one received message (default 4 MiB, grpc-go's).
	MaxRecvMsgSize int
	// StreamWindow and ConnWindow are the flow-control windows we grant the
	// client (defaults 1 MiB and 16 MiB).
	StreamWindow, ConnWindow uint32
	// KeepaliveMinTime is the least interval between client pings we
	// accept while calls are open (grpc-go's EnforcementPolicy.MinTime,
	// default 5 minutes); without open calls the least is two hours. A
	// client that pings more often three times in a row is sent GOAWAY
	// "too_many_pings" and disconnected.
	KeepaliveMinTime time.Duration
	// KeepaliveTime is how long a connection may be silent before we ping
	// it (default 2 hours); KeepaliveTimeout how long we then wait for
	// the answer before closing it (default 20 seconds).
	KeepaliveTime, KeepaliveTimeout time.Duration
	// Handshake returns the AuthInfo handlers see in peer.FromContext for
	// a connection (nil: none).
	Handshake func(net.Conn) credentials.AuthInfo
	// Workers is the number of pooled goroutines that run calls (default
	// 256). Calls beyond them get a goroutine of their own.
	Workers int
	Logger  *zap.Logger

	// pingAckDelay is how long a PING answer may wait for a write to
	// travel with (see conn.onPing); default defaultPingAckDelay.
	pingAckDelay time.Duration
}

const (
	defaultMaxRecvMsgSize = 4 << 20
	defaultStreamWindow   = 1 << 20
	defaultConnWindow     = 16 << 20
	defaultWorkers        = 256
	defaultPingAckDelay   = 5 * time.Millisecond
	// initialWindow is HTTP/2's window before any SETTINGS or WINDOW_UPDATE.
	initialWindow = 65535
)

func (o Options) withDefaults() Options {
	if o.MaxRecvMsgSize <= 0 {
		o.MaxRecvMsgSize = defaultMaxRecvMsgSize
	}
	if o.StreamWindow < initialWindow {
		o.StreamWindow = defaultStreamWindow
	}
	if o.ConnWindow < initialWindow {
		o.ConnWindow = defaultConnWindow
	}
	if o.KeepaliveMinTime <= 0 {
		o.KeepaliveMinTime = 5 * time.Minute
	}
	if o.KeepaliveTime <= 0 {
		o.KeepaliveTime = 2 * time.Hour
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = 20 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = defaultWorkers
	}
	if o.pingAckDelay <= 0 {
		o.pingAckDelay = defaultPingAckDelay
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// handler is one registered method.
type handler struct {
	impl    any
	unary   grpc.MethodHandler // set for unary methods
	stream  *grpc.StreamDesc   // set for streaming methods
	failure error              // set instead when the call cannot be served
}

// Server serves registered gRPC services on client connections.
type Server struct {
	opts    Options
	unary   grpc.UnaryServerInterceptor
	stream  grpc.StreamServerInterceptor
	methods map[string]handler // by full method name, "/pkg.Service/Method"
	svcs    map[string]bool

	work     chan func()
	workOnce sync.Once

	mu       sync.Mutex
	lis      map[net.Listener]struct{}
	conns    map[*conn]struct{}
	draining bool
	stopped  bool
	connWG   sync.WaitGroup
}

// ErrServerStopped is returned by Serve after Stop or GracefulStop.
var ErrServerStopped = errors.New("h2grpc: the server has been stopped")

// NewServer returns a Server with no services.
func NewServer(o Options) *Server {
	o = o.withDefaults()
	return &Server{
		opts:    o,
		unary:   chainUnary(o.UnaryInterceptors),
		stream:  chainStream(o.StreamInterceptors),
		methods: map[string]handler{},
		svcs:    map[string]bool{},
		conns:   map[*conn]struct{}{},
		lis:     map[net.Listener]struct{}{},
		work:    make(chan func()),
	}
}

// RegisterService registers a service and its implementation, as
// grpc.Server does (Server is a grpc.ServiceRegistrar). Call it before
// serving.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	if s.svcs[desc.ServiceName] {
		s.opts.Logger.Fatal("a gRPC service is registered twice; this is a bug",
			zap.String("service", desc.ServiceName))
	}
	s.svcs[desc.ServiceName] = true
	for _, m := range desc.Methods {
		s.methods["/"+desc.ServiceName+"/"+m.MethodName] = handler{impl: impl, unary: m.Handler}
	}
	for i := range desc.Streams {
		sd := &desc.Streams[i]
		s.methods["/"+desc.ServiceName+"/"+sd.StreamName] = handler{impl: impl, stream: sd}
	}
}

// Serve accepts connections on l and serves each until l fails or the
// server stops; it then closes l. The bytes a connection starts with must
// be the HTTP/2 client preface.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.stopped || s.draining {
		s.mu.Unlock()
		l.Close()
		return ErrServerStopped
	}
	s.lis[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lis, l)
		s.mu.Unlock()
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			stopped := s.stopped || s.draining
			s.mu.Unlock()
			if stopped {
				return ErrServerStopped
			}
			return err
		}
		go s.ServeConn(c)
	}
}

// ServeConn serves one connection until it closes or the server stops.
func (s *Server) ServeConn(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	if s.stopped || s.draining {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.connWG.Done()
	}()
	c.serve()
}

// Stop closes every connection at once; calls in progress see their
// contexts cancelled.
func (s *Server) Stop() {
	s.shutdown(false, func(c *conn) { c.close(errServerStopping) })
}

// GracefulStop tells every client to open no more calls (GOAWAY), waits
// for the calls in progress to end, and closes the connections.
func (s *Server) GracefulStop() {
	s.shutdown(true, (*conn).drain)
}

// shutdown stops accepting connections and streams, ends every connection
// with end, all at once, and waits until they are gone.
func (s *Server) shutdown(graceful bool, end func(*conn)) {
	s.mu.Lock()
	if graceful {
		s.draining = true
	} else {
		s.stopped = true
	}
	s.closeListenersLocked()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		go end(c)
	}
	s.connWG.Wait()
}

func (s *Server) closeListenersLocked() {
	for l := range s.lis {
		l.Close()
	}
}

var errServerStopping = errors.New("h2grpc: the server is stopping")

// run runs f on a pooled goroutine, or on a new one when all are busy.
// Pooled goroutines keep the stack they grew: a new goroutine per call
// would grow its stack, by copying, to the depth of the handler chain.
func (s *Server) run(f func()) {
	s.workOnce.Do(func() {
		for range s.opts.Workers {
			go func() {
				for f := range s.work {
					f()
				}
			}()
		}
	})
	select {
	case s.work <- f:
	default:
		go f()
	}
}

func chainUnary(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(ics) {
	case 0:
		return nil
	case 1:
		return ics[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return ics[0](ctx, req, info, unaryNext(ics, 1, info, h))
	}
}

func unaryNext(ics []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(ics) {
		return h
	}
	return func(ctx context.Context, req any) (any, error) {
		return ics[i](ctx, req, info, unaryNext(ics, i+1, info, h))
	}
}

func chainStream(ics []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	switch len(ics) {
	case 0:
		return nil
	case 1:
		return ics[0]
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return ics[0](srv, ss, info, streamNext(ics, 1, info, h))
	}
}

func streamNext(ics []grpc.StreamServerInterceptor, i int, info *grpc.StreamServerInfo, h grpc.StreamHandler) grpc.StreamHandler {
	if i == len(ics) {
		return h
	}
	return func(srv any, ss grpc.ServerStream) error {
		return ics[i](srv, ss, info, streamNext(ics, i+1, info, h))
	}
}
