package concurrencypb

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The HTTP/JSON gateway routes of the two services, as etcd's
// google.api.http annotations declare them: every method is a POST of its
// request as JSON to a fixed path; Observe answers with a stream of
// {"result":{...}} objects. Marshalling, errors and headers are the mux's,
// so these routes answer like the rest of the /v3/ gateway.

// RegisterLockHandler adds /v3/lock/lock and /v3/lock/unlock to mux,
// calling the Lock service over conn.
func RegisterLockHandler(_ context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	return registerUnary(mux, conn, []route{
		{"/v3/lock/lock", LockMethod, func() (v1, v1) { return new(LockRequest), new(LockResponse) }},
		{"/v3/lock/unlock", UnlockMethod, func() (v1, v1) { return new(UnlockRequest), new(UnlockResponse) }},
	})
}

// RegisterElectionHandler adds the /v3/election/... routes to mux, calling
// the Election service over conn.
func RegisterElectionHandler(_ context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	err := registerUnary(mux, conn, []route{
		{"/v3/election/campaign", CampaignMethod, func() (v1, v1) { return new(CampaignRequest), new(CampaignResponse) }},
		{"/v3/election/proclaim", ProclaimMethod, func() (v1, v1) { return new(ProclaimRequest), new(ProclaimResponse) }},
		{"/v3/election/leader", LeaderMethod, func() (v1, v1) { return new(LeaderRequest), new(LeaderResponse) }},
		{"/v3/election/resign", ResignMethod, func() (v1, v1) { return new(ResignRequest), new(ResignResponse) }},
	})
	if err != nil {
		return err
	}
	return mux.HandlePath(http.MethodPost, "/v3/election/observe", observeRoute(mux, conn))
}

// route is one unary method behind a POST path.
type route struct {
	path, method string
	messages     func() (req, resp v1)
}

func registerUnary(mux *runtime.ServeMux, conn *grpc.ClientConn, routes []route) error {
	for _, r := range routes {
		if err := mux.HandlePath(http.MethodPost, r.path, unaryRoute(mux, conn, r)); err != nil {
			return err
		}
	}
	return nil
}

func unaryRoute(mux *runtime.ServeMux, conn *grpc.ClientConn, r route) runtime.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request, _ map[string]string) {
		ctx, cancel := context.WithCancel(req.Context())
		defer cancel()
		inbound, outbound := runtime.MarshalerForRequest(mux, req)
		ctx, err := runtime.AnnotateContext(ctx, mux, req, r.method, runtime.WithHTTPPathPattern(r.path))
		if err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, req, err)
			return
		}
		in, out := r.messages()
		if err := decodeBody(inbound, req, in); err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, req, err)
			return
		}
		var md runtime.ServerMetadata
		err = conn.Invoke(ctx, r.method, in, out, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		ctx = runtime.NewServerMetadataContext(ctx, md)
		if err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, req, err)
			return
		}
		runtime.ForwardResponseMessage(ctx, mux, outbound, w, req, V2(out), mux.GetForwardResponseOptions()...)
	}
}

func observeRoute(mux *runtime.ServeMux, conn *grpc.ClientConn) runtime.HandlerFunc {
	const path = "/v3/election/observe"
	return func(w http.ResponseWriter, req *http.Request, _ map[string]string) {
		ctx, cancel := context.WithCancel(req.Context())
		defer cancel()
		inbound, outbound := runtime.MarshalerForRequest(mux, req)
		ctx, err := runtime.AnnotateContext(ctx, mux, req, ObserveMethod, runtime.WithHTTPPathPattern(path))
		if err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, req, err)
			return
		}
		in := new(LeaderRequest)
		if err := decodeBody(inbound, req, in); err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, req, err)
			return
		}
		stream, err := NewElectionClient(conn).Observe(ctx, in)
		var md runtime.ServerMetadata
		if err == nil {
			md.HeaderMD, err = stream.Header()
		}
		ctx = runtime.NewServerMetadataContext(ctx, md)
		if err != nil {
			runtime.HTTPError(ctx, mux, outbound, w, req, err)
			return
		}
		runtime.ForwardResponseStream(ctx, mux, outbound, w, req, func() (proto.Message, error) {
			m, err := stream.Recv()
			if err != nil {
				return nil, err
			}
			return V2(m), nil
		}, mux.GetForwardResponseOptions()...)
	}
}

// decodeBody reads the JSON request into m; an empty body is an empty
// request, as in etcd's gateway.
func decodeBody(inbound runtime.Marshaler, req *http.Request, m v1) error {
	if err := inbound.NewDecoder(req.Body).Decode(V2(m)); err != nil && !errors.Is(err, io.EOF) {
		return status.Errorf(codes.InvalidArgument, "%v", err)
	}
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
	}
	return nil
}
