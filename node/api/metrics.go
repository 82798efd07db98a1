package api

import (
	"context"
	"errors"

	"github.com/ballastdb/ballast/node/procs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcMetrics are the server metrics of go-grpc-prometheus, by the same
// names and labels, so that etcd dashboards and alerts keep working.
type grpcMetrics struct {
	started, handled, received, sent *prometheus.CounterVec

	// methods is filled once, before the server serves, and only read
	// afterwards; per-call lookups then cost one map access and no label
	// hashing.
	methods map[string]*methodMetrics
}

type methodMetrics struct {
	started, received, sent prometheus.Counter
	handled                 [codes.Unauthenticated + 1]prometheus.Counter
}

var metricLabels = []string{"grpc_type", "grpc_service", "grpc_method"}

func newGRPCMetrics(reg prometheus.Registerer, lg *zap.Logger) *grpcMetrics {
	m := &grpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total",
			Help: "Total number of RPCs started on the server.",
		}, metricLabels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(metricLabels[:3:3], "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total",
			Help: "Total number of RPC stream messages received on the server.",
		}, metricLabels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total",
			Help: "Total number of gRPC stream messages sent by the server.",
		}, metricLabels),
		methods: make(map[string]*methodMetrics),
	}
	if reg != nil {
		m.started = register(reg, m.started, lg)
		m.handled = register(reg, m.handled, lg)
		m.received = register(reg, m.received, lg)
		m.sent = register(reg, m.sent, lg)
	}
	return m
}

// register registers c, or reuses what an earlier server registered under
// the same name (several servers in one process share the counters).
func register(reg prometheus.Registerer, c *prometheus.CounterVec, lg *zap.Logger) *prometheus.CounterVec {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing
		}
	}
	lg.Warn("failed to register gRPC metrics; they will not be exported", zap.Error(err))
	return c
}

// init creates every method's series up front, at zero, as
// go-grpc-prometheus does, so that rates work from the first request.
func (m *grpcMetrics) init(g *grpc.Server) {
	for svc, info := range g.GetServiceInfo() {
		for _, mi := range info.Methods {
			typ := "unary"
			switch {
			case mi.IsClientStream && mi.IsServerStream:
				typ = "bidi_stream"
			case mi.IsClientStream:
				typ = "client_stream"
			case mi.IsServerStream:
				typ = "server_stream"
			}
			mm := &methodMetrics{
				started:  m.started.WithLabelValues(typ, svc, mi.Name),
				received: m.received.WithLabelValues(typ, svc, mi.Name),
				sent:     m.sent.WithLabelValues(typ, svc, mi.Name),
			}
			for c := range mm.handled {
				mm.handled[c] = m.handled.WithLabelValues(typ, svc, mi.Name, codes.Code(c).String())
			}
			m.methods["/"+svc+"/"+mi.Name] = mm
		}
	}
}

func (mm *methodMetrics) done(err error) {
	c := status.Code(err)
	if int(c) >= len(mm.handled) {
		c = codes.Unknown
	}
	mm.handled[c].Inc()
}

// unary and stream, the first interceptors of every call, also tell the
// GOMAXPROCS tuner (package procs) how many calls are in progress: a
// member that serves one unary call at a time runs on one P. An open
// stream counts as a call for as long as it lasts, so a member with
// watchers or lease keep-alives keeps all CPUs.
func (m *grpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	procs.CallStarted()
	defer procs.CallDone()
	mm := m.methods[info.FullMethod]
	if mm == nil {
		return handler(ctx, req)
	}
	mm.started.Inc()
	mm.received.Inc()
	resp, err := handler(ctx, req)
	if err == nil {
		mm.sent.Inc()
	}
	mm.done(err)
	return resp, err
}

func (m *grpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	procs.CallStarted()
	defer procs.CallDone()
	mm := m.methods[info.FullMethod]
	if mm == nil {
		return handler(srv, ss)
	}
	mm.started.Inc()
	err := handler(srv, &countingStream{ServerStream: ss, mm: mm})
	mm.done(err)
	return err
}

type countingStream struct {
	grpc.ServerStream
	mm *methodMetrics
}

func (s *countingStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.mm.sent.Inc()
	}
	return err
}

func (s *countingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.mm.received.Inc()
	}
	return err
}
