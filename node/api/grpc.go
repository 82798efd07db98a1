package api

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"time"

	"github.com/ballastdb/ballast/node/concurrency"
	"github.com/ballastdb/ballast/node/h2grpc"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpcOverheadBytes is what etcd allows on top of max-request-bytes for a
// gRPC message, so that a request just over the limit reaches the size
// check and gets etcd's "request is too large" rather than a gRPC error.
const grpcOverheadBytes = 512 * 1024

// slowRequest is etcd's default --warning-unary-request-duration.
const slowRequest = 300 * time.Millisecond

// streamWorkers is the size of the gRPC server's goroutine pool: enough for
// a few hundred requests in flight.
const streamWorkers = 256

// Fixed HTTP/2 flow-control windows for what clients send us. Setting them
// turns off gRPC's bandwidth-delay estimator, which answers incoming data
// with a PING (and costs the client a PING ack) whenever no estimate is in
// flight: under a put-heavy load, an extra frame written and read on both
// ends for a large share of requests (a quarter fewer reads here without
// it). Requests are bounded by --max-request-bytes, so a window that large
// is never needed; 1 MiB per stream is already more than the estimator's
// 64 KiB start, and the connection window lets 16 streams fill theirs.
const (
	streamWindowBytes = 1 << 20
	connWindowBytes   = 16 << 20
)

// ReadyNotifier is implemented by a Server that is not ready to answer
// when its client port opens: ReadyNotify is closed once it is. Until then
// every call waits (until its own deadline), as etcd holds clients until
// its member is ready, rather than failing with "no leader".
type ReadyNotifier interface {
	ReadyNotify() <-chan struct{}
}

// GRPCServer serves the etcd v3 services and grpc.health.v1. Client
// connections are served by Ballast's own transport (node/h2grpc), which
// costs a fraction of grpc-go's per call; the in-memory connections of the
// HTTP gateway and of the Lock and Election services are served by grpc-go.
// Both run the same service implementations and interceptors.
type GRPCServer struct {
	inproc *grpc.Server
	wire   *h2grpc.Server // nil: client connections go to inproc too
}

// TransportEnv names the environment variable that, set to "grpc-go",
// serves client connections with grpc-go's transport instead of Ballast's
// own: an escape hatch should a client misbehave with ours.
const TransportEnv = "BALLAST_GRPC_TRANSPORT"

// NewGRPCServer builds the client gRPC server with every etcd v3 service
// and grpc.health.v1 registered. Calls wait until a Server that is a
// ReadyNotifier is ready; the health service then reports SERVING.
func NewGRPCServer(s Server, l Limits, reg prometheus.Registerer, lg *zap.Logger) *GRPCServer {
	if lg == nil {
		lg = zap.NewNop()
	}
	l = l.withDefaults()
	m := newGRPCMetrics(reg, lg)
	ic := &interceptors{s: s, lg: lg}
	if rn, ok := s.(ReadyNotifier); ok {
		ic.ready = rn.ReadyNotify()
	}
	unary := []grpc.UnaryServerInterceptor{m.unary, ic.logUnary, ic.requireLeaderUnary}
	stream := []grpc.StreamServerInterceptor{m.stream, ic.requireLeaderStream}
	g := grpc.NewServer(
		// Serve does the TLS handshakes; these expose their state to the
		// handlers, for client-certificate users.
		grpc.Creds(TLSConnCredentials()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(l.MaxRequestBytes+grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		// A pool of goroutines serves the streams. Without it every request
		// runs on a new goroutine whose stack grows, by copying, to the
		// depth of the handler chain: a tenth of the CPU of a put-heavy
		// load. Requests beyond the pool still get their own goroutine.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.InitialWindowSize(streamWindowBytes),
		grpc.InitialConnWindowSize(connWindowBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.KeepAliveMinTime}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: l.KeepAliveInterval, Timeout: l.KeepAliveTimeout}),
	)
	gs := &GRPCServer{inproc: g}
	registrars := []grpc.ServiceRegistrar{g}
	if os.Getenv(TransportEnv) != "grpc-go" {
		gs.wire = h2grpc.NewServer(h2grpc.Options{
			UnaryInterceptors:  unary,
			StreamInterceptors: stream,
			MaxRecvMsgSize:     l.MaxRequestBytes + grpcOverheadBytes,
			StreamWindow:       streamWindowBytes,
			ConnWindow:         connWindowBytes,
			KeepaliveMinTime:   l.KeepAliveMinTime,
			KeepaliveTime:      l.KeepAliveInterval,
			KeepaliveTimeout:   l.KeepAliveTimeout,
			Handshake:          handshakeAuthInfo,
			Workers:            streamWorkers,
			Logger:             lg.Named("grpc"),
		})
		registrars = append(registrars, gs.wire)
	} else {
		lg.Warn("serving client connections with grpc-go's transport, as " + TransportEnv + " asks")
	}
	for _, r := range registrars {
		etcdserverpb.RegisterKVServer(r, &kvService{s: s, lim: l})
		etcdserverpb.RegisterWatchServer(r, &watchService{s: s, lg: lg, fragmentBytes: l.MaxRequestBytes + grpcOverheadBytes})
		etcdserverpb.RegisterLeaseServer(r, &leaseService{s: s, lg: lg})
		etcdserverpb.RegisterClusterServer(r, &clusterService{s: s})
		etcdserverpb.RegisterAuthServer(r, &authService{s: s})
		etcdserverpb.RegisterMaintenanceServer(r, &maintenanceService{s: s, lg: lg})
	}
	concurrency.Register(g, lg.Named("concurrency"), registrars[1:]...) // v3lockpb.Lock, v3electionpb.Election
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, r := range registrars {
		healthpb.RegisterHealthServer(r, hs)
	}
	m.init(g)
	return gs
}

// serve serves the client connections l accepts until l is closed or the
// server stops.
func (g *GRPCServer) serve(l net.Listener) error {
	if g.wire == nil {
		return g.inproc.Serve(l)
	}
	err := g.wire.Serve(l)
	if errors.Is(err, h2grpc.ErrServerStopped) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// GracefulStop stops both transports once their calls have ended.
func (g *GRPCServer) GracefulStop() {
	if g.wire != nil {
		g.wire.GracefulStop()
	}
	g.inproc.GracefulStop()
}

// Stop closes every connection of both transports at once.
func (g *GRPCServer) Stop() {
	if g.wire != nil {
		g.wire.Stop()
	}
	g.inproc.Stop()
}

// handshakeAuthInfo is what handlers find in peer.FromContext(ctx).AuthInfo
// for a client connection: its TLS state, if any.
func handshakeAuthInfo(c net.Conn) credentials.AuthInfo {
	_, ai, _ := tlsConnCreds{}.ServerHandshake(c)
	return ai
}

type interceptors struct {
	s     Server
	lg    *zap.Logger
	ready <-chan struct{} // nil: always ready
}

// awaitReady holds a call until the member is ready or the call's context
// ends.
func (ic *interceptors) awaitReady(ctx context.Context) error {
	if ic.ready == nil {
		return nil
	}
	select {
	case <-ic.ready:
		return nil
	default:
	}
	select {
	case <-ic.ready:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// requireLeader refuses a call that asked for a leader (clientv3's
// WithRequireLeader) when this member knows none.
func (ic *interceptors) requireLeader(ctx context.Context) error {
	if v := metadata.ValueFromIncomingContext(ctx, rpctypes.MetadataRequireLeaderKey); len(v) > 0 &&
		v[0] == rpctypes.MetadataHasLeader && ic.s.Leader() == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	return nil
}

func (ic *interceptors) requireLeaderUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := ic.awaitReady(ctx); err != nil {
		return nil, err
	}
	if err := ic.requireLeader(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (ic *interceptors) requireLeaderStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := ic.awaitReady(ss.Context()); err != nil {
		return err
	}
	if err := ic.requireLeader(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}

// logUnary warns about requests slower than slowRequest (and logs every
// request at debug level), with values redacted as etcd does.
func (ic *interceptors) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	took := time.Since(start)
	slow := took > slowRequest && !concurrency.Waits(info.FullMethod)
	if !slow && !ic.lg.Core().Enabled(zap.DebugLevel) {
		return resp, err
	}
	remote := "unknown"
	if p, ok := peer.FromContext(ctx); ok {
		remote = p.Addr.String()
	}
	fields := []zap.Field{
		zap.String("method", info.FullMethod),
		zap.Duration("took", took),
		zap.String("remote", remote),
		zap.String("request", loggable(req)),
		zap.Error(err),
	}
	if m, ok := resp.(proto.Message); ok && err == nil {
		fields = append(fields, zap.Int("response-bytes", proto.Size(m)))
	}
	if slow {
		ic.lg.Warn("slow request: check disk and network latency, and the request's size", fields...)
	} else {
		ic.lg.Debug("request", fields...)
	}
	return resp, err
}

// loggable renders a request for the log without values.
func loggable(req any) string {
	switch r := req.(type) {
	case *etcdserverpb.PutRequest:
		return etcdserverpb.NewLoggablePutRequest(r).String()
	case *etcdserverpb.TxnRequest:
		return etcdserverpb.NewLoggableTxnRequest(r).String()
	case *etcdserverpb.RangeRequest:
		return r.String()
	case *etcdserverpb.DeleteRangeRequest:
		return r.String()
	case proto.Message:
		return string(r.ProtoReflect().Descriptor().FullName())
	}
	return "?"
}
