package concurrencypb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// echo answers every call with a response built from its request, and
// refuses requests named "fail" with an etcd-style error.
type echo struct{}

var errFail = errors.New("election: not leader")

func (echo) Lock(_ context.Context, r *LockRequest) (*LockResponse, error) {
	if string(r.Name) == "fail" {
		return nil, errFail
	}
	return &LockResponse{Header: testHeader, Key: append(r.Name, '/')}, nil
}

func (echo) Unlock(_ context.Context, r *UnlockRequest) (*UnlockResponse, error) {
	return &UnlockResponse{Header: testHeader}, nil
}

func (echo) Campaign(_ context.Context, r *CampaignRequest) (*CampaignResponse, error) {
	return &CampaignResponse{Header: testHeader, Leader: &LeaderKey{Name: r.Name, Key: r.Value, Rev: 1, Lease: r.Lease}}, nil
}

func (echo) Proclaim(_ context.Context, r *ProclaimRequest) (*ProclaimResponse, error) {
	if r.Leader == nil {
		return nil, errFail
	}
	return &ProclaimResponse{Header: testHeader}, nil
}

func (echo) Leader(_ context.Context, r *LeaderRequest) (*LeaderResponse, error) {
	return &LeaderResponse{Header: testHeader, Kv: &mvccpb.KeyValue{Key: r.Name}}, nil
}

func (echo) Resign(_ context.Context, r *ResignRequest) (*ResignResponse, error) {
	return &ResignResponse{Header: testHeader}, nil
}

// Observe sends two values and ends.
func (echo) Observe(r *LeaderRequest, s ObserveServer) error {
	for _, v := range []string{"a", "b"} {
		if err := s.Send(&LeaderResponse{Kv: &mvccpb.KeyValue{Key: r.Name, Value: []byte(v)}}); err != nil {
			return err
		}
	}
	return nil
}

// serve runs both services on an in-memory connection and records the
// methods its interceptors see.
func serve(t *testing.T) (*grpc.ClientConn, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	record := func(m string) {
		mu.Lock()
		seen = append(seen, m)
		mu.Unlock()
	}
	g := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			record(info.FullMethod)
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			record(info.FullMethod)
			return h(srv, ss)
		}),
	)
	RegisterLockServer(g, echo{})
	RegisterElectionServer(g, echo{})
	ln := bufconn.Listen(1 << 16)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestStubs calls every method through the client stubs and checks the
// method paths (etcd's) and the messages that come back.
func TestStubs(t *testing.T) {
	conn, seen := serve(t)
	ctx := context.Background()
	lc, ec := NewLockClient(conn), NewElectionClient(conn)
	tests := []struct {
		method string
		call   func() (v1, error)
		want   v1
	}{
		{LockMethod, func() (v1, error) { return lc.Lock(ctx, &LockRequest{Name: []byte("n"), Lease: 5}) },
			&LockResponse{Header: testHeader, Key: []byte("n/")}},
		{UnlockMethod, func() (v1, error) { return lc.Unlock(ctx, &UnlockRequest{Key: []byte("n/")}) },
			&UnlockResponse{Header: testHeader}},
		{CampaignMethod, func() (v1, error) {
			return ec.Campaign(ctx, &CampaignRequest{Name: []byte("e"), Lease: 7, Value: []byte("v")})
		}, &CampaignResponse{Header: testHeader, Leader: &LeaderKey{Name: []byte("e"), Key: []byte("v"), Rev: 1, Lease: 7}}},
		{ProclaimMethod, func() (v1, error) { return ec.Proclaim(ctx, &ProclaimRequest{Leader: testLeader}) },
			&ProclaimResponse{Header: testHeader}},
		{LeaderMethod, func() (v1, error) { return ec.Leader(ctx, &LeaderRequest{Name: []byte("e")}) },
			&LeaderResponse{Header: testHeader, Kv: &mvccpb.KeyValue{Key: []byte("e")}}},
		{ResignMethod, func() (v1, error) { return ec.Resign(ctx, &ResignRequest{Leader: testLeader}) },
			&ResignResponse{Header: testHeader}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(V2(got), V2(tt.want)) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if s := seen(); s[len(s)-1] != tt.method {
				t.Errorf("server saw %s, want %s", s[len(s)-1], tt.method)
			}
		})
	}

	t.Run("error", func(t *testing.T) {
		_, err := lc.Lock(ctx, &LockRequest{Name: []byte("fail")})
		if s, _ := status.FromError(err); s.Code() != codes.Unknown || s.Message() != errFail.Error() {
			t.Fatalf("error = %v", err)
		}
	})

	t.Run(ObserveMethod, func(t *testing.T) {
		stream, err := ec.Observe(ctx, &LeaderRequest{Name: []byte("e")})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			r, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(r.Kv.Key)+"="+string(r.Kv.Value))
		}
		if strings.Join(got, ",") != "e=a,e=b" {
			t.Errorf("observed %v", got)
		}
		if s := seen(); s[len(s)-1] != ObserveMethod {
			t.Errorf("server saw %s", s[len(s)-1])
		}
	})
}

// TestGatewayRoutes posts JSON to each of etcd's gateway paths.
func TestGatewayRoutes(t *testing.T) {
	conn, seen := serve(t)
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}))
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{RegisterLockHandler, RegisterElectionHandler} {
		if err := register(context.Background(), mux, conn); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	const hdr = `"header":{"cluster_id":"1152921504606846976","member_id":"7","revision":"42","raft_term":"3"}`
	tests := []struct {
		path, body string
		method     string
		status     int
		want       string
	}{
		{"/v3/lock/lock", `{"name":"bg==","lease":"5"}`, LockMethod, 200, `{` + hdr + `,"key":"bi8="}`},
		// an empty body is an empty request
		{"/v3/lock/lock", ``, LockMethod, 200, `{` + hdr + `,"key":"Lw=="}`},
		{"/v3/lock/lock", `{"name":"ZmFpbA=="}`, LockMethod, 500, `{"code":2,"message":"election: not leader"}`},
		{"/v3/lock/lock", `{"name":`, "", 400, `{"code":3,"message":"unexpected EOF"}`},
		{"/v3/lock/unlock", `{"key":"bi8="}`, UnlockMethod, 200, `{` + hdr + `}`},
		{"/v3/election/campaign", `{"name":"ZQ==","lease":"7","value":"dg=="}`, CampaignMethod, 200,
			`{` + hdr + `,"leader":{"name":"ZQ==","key":"dg==","rev":"1","lease":"7"}}`},
		{"/v3/election/proclaim", `{"leader":{"name":"ZQ==","key":"ZS8x","rev":"9","lease":"4"},"value":"eA=="}`, ProclaimMethod, 200, `{` + hdr + `}`},
		{"/v3/election/proclaim", `{"value":"eA=="}`, ProclaimMethod, 500, `{"code":2,"message":"election: not leader"}`},
		{"/v3/election/leader", `{"name":"ZQ=="}`, LeaderMethod, 200, `{` + hdr + `,"kv":{"key":"ZQ=="}}`},
		{"/v3/election/resign", `{"leader":{"name":"ZQ=="}}`, ResignMethod, 200, `{` + hdr + `}`},
		{"/v3/election/observe", `{"name":"ZQ=="}`, ObserveMethod, 200,
			`{"result":{"kv":{"key":"ZQ==","value":"YQ=="}}}` + "\n" + `{"result":{"kv":{"key":"ZQ==","value":"Yg=="}}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.body, func(t *testing.T) {
			before := len(seen())
			resp, err := http.Post(srv.URL+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if got := compactJSONLines(t, b); resp.StatusCode != tt.status || got != tt.want {
				t.Errorf("HTTP %d %s, want %d %s", resp.StatusCode, got, tt.status, tt.want)
			}
			s := seen()
			if tt.method == "" && len(s) != before || tt.method != "" && s[len(s)-1] != tt.method {
				t.Errorf("server saw %v, want %q", s[before:], tt.method)
			}
		})
	}
}

// compactJSONLines removes the random spaces protojson adds, line by line.
func compactJSONLines(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if body := bytes.TrimSuffix(l, []byte("\n")); len(body) > 0 {
			if err := json.Compact(&out, body); err != nil {
				t.Fatalf("not JSON: %q", body)
			}
		}
		if bytes.HasSuffix(l, []byte("\n")) {
			out.WriteByte('\n')
		}
	}
	return out.String()
}
