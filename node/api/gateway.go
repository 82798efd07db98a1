package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"

	"github.com/ballastdb/ballast/node/concurrency/concurrencypb"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
)

// The gRPC gateway serves the v3 API as JSON over HTTP/1 under /v3/, the
// way etcd does with --enable-grpc-gateway (its default): every gRPC method
// is a POST (/v3/kv/range, /v3/watch, /v3/lease/keepalive, ...), bytes are
// base64, field names are the proto names (cluster_id, create_revision,
// ID, TTL, dbSize), unset fields are left out, 64-bit integers are strings
// and enums are names. Streams answer with one {"result":{...}} object per
// message, each on its own line; errors are {"code":N,"message":"..."}
// with the HTTP status grpc-gateway maps the gRPC code to.
//
// Like etcd, the gateway is a gRPC client of the member's own gRPC server,
// so requests pass the same interceptors, limits and error mapping as
// native gRPC calls, and responses carry the same metadata headers
// (Grpc-Metadata-Content-Type). Etcd dials its own listener; Ballast serves
// the gRPC server on an in-memory listener and dials that.

// gatewayBufferBytes is the in-memory connection's buffer in each
// direction.
const gatewayBufferBytes = 1 << 20

// WithoutGateway leaves the gRPC gateway out (etcd's
// --enable-grpc-gateway=false).
func WithoutGateway() HTTPOption { return func(o *httpOptions) { o.noGateway = true } }

// httpRoot is the handler NewHTTPHandler returns. Serve puts the gateway in
// front of it when gateway is set; served anywhere else (the metrics
// listener, a test server) it has no /v3/ paths, as etcd's metrics
// listener has none.
type httpRoot struct {
	http.Handler
	gateway bool
	cors    []string
}

// startGateway returns h with the gateway mounted under /v3/ (and the old
// /v3beta/, which etcd still rewrites to /v3/) when h came from
// NewHTTPHandler with the gateway on; otherwise h unchanged. The gateway
// reaches g over an in-memory connection that stop closes; stop must run
// after g has been stopped or is being stopped.
func startGateway(g *grpc.Server, h http.Handler, lg *zap.Logger) (_ http.Handler, stop func(), err error) {
	root, ok := h.(*httpRoot)
	if !ok || !root.gateway || g == nil {
		return h, func() {}, nil
	}
	ln := bufconn.Listen(gatewayBufferBytes)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := g.Serve(ln); err != nil {
			lg.Warn("gRPC server stopped serving the gateway connection", zap.Error(err))
		}
	}()
	conn, err := grpc.NewClient("passthrough:///ballast-gateway",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	)
	if err == nil {
		var gwmux http.Handler
		if gwmux, err = newGateway(conn); err == nil {
			stop = func() {
				conn.Close()
				ln.Close()
				<-served
			}
			return &gatewayRoot{gateway: gwmux, rest: root.Handler}, stop, nil
		}
		conn.Close()
	}
	ln.Close()
	<-served
	return nil, nil, fmt.Errorf("start the gRPC gateway: %w", err)
}

// newGateway registers every v3 service (etcdserverpb's, Lock and
// Election) with a grpc-gateway mux calling conn.
func newGateway(conn *grpc.ClientConn) (http.Handler, error) {
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &gatewayMarshaler{
		JSONPb: runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}))
	ctx := context.Background() // only used by the FromEndpoint variants to close conn
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		gw.RegisterKVHandler,
		gw.RegisterWatchHandler,
		gw.RegisterLeaseHandler,
		gw.RegisterClusterHandler,
		gw.RegisterMaintenanceHandler,
		gw.RegisterAuthHandler,
		concurrencypb.RegisterLockHandler,
		concurrencypb.RegisterElectionHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// gatewayRoot sends /v3/ and /v3beta/ to the gateway and everything else
// to the rest of the HTTP endpoints.
type gatewayRoot struct {
	gateway, rest http.Handler
}

func (g *gatewayRoot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/v3/"):
		g.gateway.ServeHTTP(w, r)
	case strings.HasPrefix(p, "/v3beta/"):
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/v3/" + strings.TrimPrefix(p, "/v3beta/")
		r2.URL.RawPath = ""
		g.gateway.ServeHTTP(w, r2)
	default:
		g.rest.ServeHTTP(w, r)
	}
}

// gatewayMarshaler is grpc-gateway's JSONPb with its output compacted:
// protojson inserts random spaces, stable only per binary, so that nobody
// relies on its exact output; etcd's gateway output has none, and neither
// must Ballast's, whatever binary it is built into.
type gatewayMarshaler struct {
	runtime.JSONPb
}

func (m *gatewayMarshaler) Marshal(v any) ([]byte, error) {
	b, err := m.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (m *gatewayMarshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := m.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		_, err = w.Write(m.Delimiter())
		return err
	})
}
