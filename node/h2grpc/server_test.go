package h2grpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // a client that compresses
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// testKV answers Range with the request's key as value, after checks the
// test sets up; Put fails with the error the test chose.
type testKV struct {
	pb.UnimplementedKVServer
	onRange func(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	putErr  error
}

func (k *testKV) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if k.onRange != nil {
		return k.onRange(ctx, r)
	}
	return &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: r.Key, Value: r.RangeEnd}}, Count: 1}, nil
}

func (k *testKV) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return nil, k.putErr
}

// testWatch echoes every request's watch ID back, as a created event,
// until the client ends its side.
type testWatch struct {
	pb.UnimplementedWatchServer
	started chan context.Context
}

func (w *testWatch) Watch(ws pb.Watch_WatchServer) error {
	if w.started != nil {
		w.started <- ws.Context()
	}
	for {
		r, err := ws.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ws.Send(&pb.WatchResponse{WatchId: r.GetCreateRequest().GetWatchId(), Created: true,
			Events: []*mvccpb.Event{{Kv: &mvccpb.KeyValue{Key: r.GetCreateRequest().GetKey()}}}}); err != nil {
			return err
		}
	}
}

// testMaintenance streams Snapshot as chunks of a fixed pattern.
type testMaintenance struct {
	pb.UnimplementedMaintenanceServer
	chunks, chunkBytes int
	// leaked, when set, makes Snapshot return at once and leave a
	// goroutine sending; it receives that goroutine's last Send error.
	leaked chan error
}

func (m *testMaintenance) Snapshot(_ *pb.SnapshotRequest, ss pb.Maintenance_SnapshotServer) error {
	if m.leaked != nil {
		go func() {
			var err error
			for i := 0; i < 1000 && err == nil; i++ {
				err = ss.Send(&pb.SnapshotResponse{Blob: make([]byte, 1000)})
			}
			m.leaked <- err
		}()
		return nil
	}
	for i := range m.chunks {
		blob := bytes.Repeat([]byte{byte(i)}, m.chunkBytes)
		if err := ss.Send(&pb.SnapshotResponse{Blob: blob, RemainingBytes: uint64((m.chunks - i - 1) * m.chunkBytes)}); err != nil {
			return err
		}
	}
	return nil
}

type fixture struct {
	s    *Server
	addr string
	conn *grpc.ClientConn
	kv   *testKV
	w    *testWatch
	m    *testMaintenance
}

func start(t *testing.T, o Options, dial ...grpc.DialOption) *fixture {
	t.Helper()
	f := &fixture{kv: &testKV{}, w: &testWatch{}, m: &testMaintenance{chunks: 40, chunkBytes: 100 << 10}}
	f.s = NewServer(o)
	pb.RegisterKVServer(f.s, f.kv)
	pb.RegisterWatchServer(f.s, f.w)
	pb.RegisterMaintenanceServer(f.s, f.m)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	served := make(chan struct{})
	go func() { defer close(served); _ = f.s.Serve(ln) }()
	t.Cleanup(func() { f.s.Stop(); ln.Close(); <-served })
	dial = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20))}, dial...)
	f.conn, err = grpc.NewClient(ln.Addr().String(), dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conn.Close() })
	return f
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUnary(t *testing.T) {
	f := start(t, Options{})
	var sawMD metadata.MD
	var sawDeadline bool
	f.kv.onRange = func(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
		sawMD, _ = metadata.FromIncomingContext(ctx)
		_, sawDeadline = ctx.Deadline()
		if err := grpc.SetHeader(ctx, metadata.Pairs("h1", "v1", "b-bin", "\x00\x01")); err != nil {
			return nil, err
		}
		if err := grpc.SetTrailer(ctx, metadata.Pairs("t1", "v2")); err != nil {
			return nil, err
		}
		if got := grpc.ServerTransportStreamFromContext(ctx).Method(); got != "/etcdserverpb.KV/Range" {
			t.Errorf("Method() = %q", got)
		}
		return &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: r.Key, Value: []byte("v")}}, Count: 7}, nil
	}
	kv := pb.NewKVClient(f.conn)
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "token", "secret", "x-bin", "\xff\x00")
	var hdr, trl metadata.MD
	resp, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k")}, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 7 || string(resp.Kvs[0].Key) != "k" {
		t.Fatalf("response %v", resp)
	}
	if got := sawMD.Get("token"); len(got) != 1 || got[0] != "secret" {
		t.Errorf("token metadata = %v", got)
	}
	if got := sawMD.Get("x-bin"); len(got) != 1 || got[0] != "\xff\x00" {
		t.Errorf("binary metadata = %q", got)
	}
	if got := sawMD.Get(":authority"); len(got) != 1 {
		t.Errorf(":authority metadata = %v", got)
	}
	if !sawDeadline {
		t.Error("the call's deadline did not reach the handler")
	}
	if got := hdr.Get("h1"); len(got) != 1 || got[0] != "v1" {
		t.Errorf("header h1 = %v", got)
	}
	if got := hdr.Get("b-bin"); len(got) != 1 || got[0] != "\x00\x01" {
		t.Errorf("header b-bin = %q", got)
	}
	if got := trl.Get("t1"); len(got) != 1 || got[0] != "v2" {
		t.Errorf("trailer t1 = %v", got)
	}
}

func TestErrors(t *testing.T) {
	f := start(t, Options{MaxRecvMsgSize: 1 << 20})
	kv := pb.NewKVClient(f.conn)
	tests := []struct {
		name     string
		call     func() error
		code     codes.Code
		contains string
	}{
		{"etcd error", func() error {
			f.kv.putErr = rpctypes.ErrGRPCLeaseNotFound
			_, err := kv.Put(ctxT(t), &pb.PutRequest{Key: []byte("k")})
			return err
		}, codes.NotFound, "etcdserver: requested lease not found"},
		{"plain error", func() error {
			f.kv.putErr = errors.New("boom\nwith a newline and 100% ünicode")
			_, err := kv.Put(ctxT(t), &pb.PutRequest{Key: []byte("k")})
			return err
		}, codes.Unknown, "boom\nwith a newline and 100% ünicode"},
		{"context error", func() error {
			f.kv.putErr = context.DeadlineExceeded
			_, err := kv.Put(ctxT(t), &pb.PutRequest{Key: []byte("k")})
			return err
		}, codes.DeadlineExceeded, "context deadline exceeded"},
		{"unimplemented method", func() error {
			_, err := kv.DeleteRange(ctxT(t), &pb.DeleteRangeRequest{Key: []byte("k")})
			return err
		}, codes.Unimplemented, "method DeleteRange not implemented"},
		{"unknown method", func() error {
			return f.conn.Invoke(ctxT(t), "/etcdserverpb.KV/Nope", &pb.RangeRequest{}, &pb.RangeResponse{})
		}, codes.Unimplemented, "unknown method Nope for service etcdserverpb.KV"},
		{"unknown service", func() error {
			return f.conn.Invoke(ctxT(t), "/etcdserverpb.Nope/Range", &pb.RangeRequest{}, &pb.RangeResponse{})
		}, codes.Unimplemented, "unknown service etcdserverpb.Nope"},
		{"too large", func() error {
			_, err := kv.Range(ctxT(t), &pb.RangeRequest{Key: make([]byte, 2<<20)})
			return err
		}, codes.ResourceExhausted, "grpc: received message larger than max (2097157 vs. 1048576)"},
		{"compressed", func() error {
			_, err := kv.Range(ctxT(t), &pb.RangeRequest{Key: []byte("k")}, grpc.UseCompressor("gzip"))
			return err
		}, codes.Unimplemented, `grpc: Decompressor is not installed for grpc-encoding "gzip"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			s, _ := status.FromError(err)
			if s.Code() != tt.code || !strings.Contains(s.Message(), tt.contains) {
				t.Fatalf("got %v, want code %v with %q", err, tt.code, tt.contains)
			}
		})
	}
	// The connection survives every one of them.
	if _, err := kv.Range(ctxT(t), &pb.RangeRequest{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
}

// TestErrorDetails: a status with details reaches the client whole, in
// grpc-status-details-bin.
func TestErrorDetails(t *testing.T) {
	f := start(t, Options{})
	st, err := status.New(codes.FailedPrecondition, "not now").WithDetails(&pb.ResponseHeader{ClusterId: 7})
	if err != nil {
		t.Fatal(err)
	}
	f.kv.putErr = st.Err()
	_, err = pb.NewKVClient(f.conn).Put(ctxT(t), &pb.PutRequest{Key: []byte("k")})
	got, _ := status.FromError(err)
	if got.Code() != codes.FailedPrecondition || got.Message() != "not now" {
		t.Fatalf("got %v", err)
	}
	d := got.Details()
	if len(d) != 1 {
		t.Fatalf("details %v, want the ResponseHeader sent", d)
	}
	if h, ok := d[0].(*pb.ResponseHeader); !ok || h.GetClusterId() != 7 {
		t.Fatalf("details %v, want the ResponseHeader sent", d)
	}
}

func TestLargeMessagesAndStreams(t *testing.T) {
	// Small windows on both sides make every direction wait for window
	// updates: flow control, frame splitting and message reassembly.
	f := start(t, Options{StreamWindow: 65535, ConnWindow: 65535},
		grpc.WithInitialWindowSize(65535), grpc.WithInitialConnWindowSize(65535))
	f.kv.onRange = func(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
		return &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: r.Key[:10], Value: bytes.Repeat(r.Key[:1], 3<<20)}}}, nil
	}
	kv := pb.NewKVClient(f.conn)
	key := bytes.Repeat([]byte("a"), 2<<20)
	resp, err := kv.Range(ctxT(t), &pb.RangeRequest{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if v := resp.Kvs[0].Value; len(v) != 3<<20 || v[0] != 'a' || v[len(v)-1] != 'a' {
		t.Fatalf("value of %d bytes", len(v))
	}

	// Server streaming, while unary calls go on on the same connection.
	sc, err := pb.NewMaintenanceClient(f.conn).Snapshot(ctxT(t), &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		r, err := sc.Recv()
		if errors.Is(err, io.EOF) {
			if i != f.m.chunks {
				t.Fatalf("got %d chunks, want %d", i, f.m.chunks)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Blob) != f.m.chunkBytes || r.Blob[0] != byte(i) || r.Blob[len(r.Blob)-1] != byte(i) {
			t.Fatalf("chunk %d: %d bytes starting with %d", i, len(r.Blob), r.Blob[0])
		}
		if i%10 == 0 {
			if _, err := kv.Range(ctxT(t), &pb.RangeRequest{Key: bytes.Repeat([]byte("b"), 100)}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Bidirectional: requests and answers interleave; the client's end of
	// its side ends the call cleanly.
	wc, err := pb.NewWatchClient(f.conn).Watch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		big := bytes.Repeat([]byte{'w'}, 20<<10)
		if err := wc.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: big, WatchId: int64(i)}}}); err != nil {
			t.Fatal(err)
		}
		r, err := wc.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.WatchId != int64(i) || len(r.Events[0].Kv.Key) != len(big) {
			t.Fatalf("answer %d: watch %d, %d bytes", i, r.WatchId, len(r.Events[0].Kv.Key))
		}
	}
	if err := wc.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend: %v, want io.EOF", err)
	}
}

func TestClientCancelReachesHandler(t *testing.T) {
	f := start(t, Options{})
	f.w.started = make(chan context.Context, 1)
	ctx, cancel := context.WithCancel(ctxT(t))
	if _, err := pb.NewWatchClient(f.conn).Watch(ctx); err != nil {
		t.Fatal(err)
	}
	hctx := <-f.w.started
	cancel()
	select {
	case <-hctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled with the client's")
	}
}

func TestGracefulStopWaitsForCalls(t *testing.T) {
	f := start(t, Options{})
	release := make(chan struct{})
	entered := make(chan struct{})
	f.kv.onRange = func(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
		close(entered)
		<-release
		return &pb.RangeResponse{Count: 1}, nil
	}
	kv := pb.NewKVClient(f.conn)
	callErr := make(chan error, 1)
	go func() {
		_, err := kv.Range(ctxT(t), &pb.RangeRequest{Key: []byte("k")})
		callErr <- err
	}()
	<-entered
	stopped := make(chan struct{})
	go func() { f.s.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("GracefulStop returned with a call in progress")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-callErr; err != nil {
		t.Fatalf("the call in progress failed: %v", err)
	}
	<-stopped
}

func TestStopCancelsCalls(t *testing.T) {
	f := start(t, Options{})
	f.w.started = make(chan context.Context, 1)
	if _, err := pb.NewWatchClient(f.conn).Watch(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	hctx := <-f.w.started
	f.s.Stop()
	select {
	case <-hctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Stop left a call running")
	}
}

func TestInterceptorsRunInOrder(t *testing.T) {
	var order []string
	unary := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			order = append(order, name+" "+info.FullMethod)
			return h(ctx, req)
		}
	}
	stream := func(name string) grpc.StreamServerInterceptor {
		return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			order = append(order, name+" "+info.FullMethod)
			return h(srv, ss)
		}
	}
	f := start(t, Options{
		UnaryInterceptors:  []grpc.UnaryServerInterceptor{unary("u1"), unary("u2"), unary("u3")},
		StreamInterceptors: []grpc.StreamServerInterceptor{stream("s1"), stream("s2")},
	})
	if _, err := pb.NewKVClient(f.conn).Range(ctxT(t), &pb.RangeRequest{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	sc, err := pb.NewMaintenanceClient(f.conn).Snapshot(ctxT(t), &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := sc.Recv(); err != nil {
			break
		}
	}
	want := "u1 /etcdserverpb.KV/Range,u2 /etcdserverpb.KV/Range,u3 /etcdserverpb.KV/Range," +
		"s1 /etcdserverpb.Maintenance/Snapshot,s2 /etcdserverpb.Maintenance/Snapshot"
	if got := strings.Join(order, ","); got != want {
		t.Fatalf("interceptors ran %s, want %s", got, want)
	}
}

func TestSendAfterTheHandlerReturned(t *testing.T) {
	f := start(t, Options{})
	f.m.leaked = make(chan error, 1)
	sc, err := pb.NewMaintenanceClient(f.conn).Snapshot(ctxT(t), &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := sc.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the call ended with %v, want a clean end", err)
			}
			break
		}
	}
	if err := <-f.m.leaked; err == nil {
		t.Fatal("Send kept succeeding after the call had ended")
	}
	// No frame followed the trailers: the connection is still good.
	if _, err := pb.NewKVClient(f.conn).Range(ctxT(t), &pb.RangeRequest{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
}

func TestGracefulStopRefusesNewCallsOnEveryConnection(t *testing.T) {
	f := start(t, Options{})
	other, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	kvOther := pb.NewKVClient(other)
	if _, err := kvOther.Range(ctxT(t), &pb.RangeRequest{Key: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	f.kv.onRange = func(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
		if string(r.Key) == "block" {
			entered <- struct{}{}
			<-release
		}
		return &pb.RangeResponse{Count: 1}, nil
	}
	// One call in progress on each connection.
	for _, kv := range []pb.KVClient{pb.NewKVClient(f.conn), kvOther} {
		go func() { _, _ = kv.Range(ctxT(t), &pb.RangeRequest{Key: []byte("block")}) }()
	}
	<-entered
	<-entered
	stopped := make(chan struct{})
	go func() { f.s.GracefulStop(); close(stopped) }()
	// Both connections are told at once (GOAWAY takes each client
	// connection out of READY) while both old calls are still running...
	for _, cc := range []*grpc.ClientConn{f.conn, other} {
		if !cc.WaitForStateChange(ctxT(t), connectivity.Ready) {
			t.Fatal("a client connection stayed ready: no GOAWAY reached it")
		}
	}
	// ...and a new call on either is not served here.
	for _, kv := range []pb.KVClient{pb.NewKVClient(f.conn), kvOther} {
		ctx, cancel := context.WithTimeout(ctxT(t), 2*time.Second)
		_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("new")}, grpc.WaitForReady(false))
		cancel()
		if err == nil {
			t.Fatal("a new call was served during GracefulStop")
		}
	}
	close(release)
	<-stopped
}
