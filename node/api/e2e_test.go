package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

type testEnv struct {
	fs   *fakeServer
	addr string // host:port
	sock string // unix socket path
	cli  *clientv3.Client
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startEnv(t *testing.T, fs *fakeServer) *testEnv {
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	reg := prometheus.NewRegistry()
	g := NewGRPCServer(fs, Limits{MaxRequestBytes: 64 * 1024}, reg, lg)
	h := NewHTTPHandler(fs, reg, lg)
	env := &testEnv{fs: fs, addr: freeAddr(t), sock: filepath.Join(t.TempDir(), "c.sock")}
	urls := []*url.URL{{Scheme: "http", Host: env.addr}, {Scheme: "unix", Path: env.sock}}
	stop, err := Serve(context.Background(), urls, g, h, lg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	env.cli = env.client(t, "http://"+env.addr)
	return env
}

func (e *testEnv) client(t *testing.T, ep string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func checkHeader(t *testing.T, h *pb.ResponseHeader, rev int64) {
	t.Helper()
	if h.GetClusterId() != 1 || h.GetMemberId() != 2 || h.GetRaftTerm() != 3 || h.GetRevision() != rev {
		t.Fatalf("header %v, want cluster 1 member 2 term 3 revision %d", h, rev)
	}
}

func TestKV(t *testing.T) {
	e := startEnv(t, newFakeServer())
	ctx := ctxT(t)
	get, err := e.cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, get.Header, 5) // the server's revision is kept
	if len(get.Kvs) != 1 || string(get.Kvs[0].Value) != "v" {
		t.Fatalf("kvs %v", get.Kvs)
	}
	put, err := e.cli.Put(ctx, "k", "v")
	if err != nil {
		t.Fatal(err)
	}
	checkHeader(t, put.Header, 10) // unset: the current one
	txn, err := e.cli.Txn(ctx).Then(clientv3.OpPut("a", "1"), clientv3.OpDelete("b")).Commit()
	if err != nil || !txn.Succeeded {
		t.Fatal(txn, err)
	}
	checkHeader(t, txn.Header, 10)

	if _, err := e.cli.Txn(ctx).Then(clientv3.OpPut("a", "1"), clientv3.OpDelete("a")).Commit(); err != rpctypes.ErrDuplicateKey {
		t.Fatalf("duplicate key txn: %v", err)
	}
	if _, err := e.cli.Put(ctx, "", "v"); err != rpctypes.ErrEmptyKey {
		t.Fatalf("empty key: %v", err)
	}
	big := strings.Repeat("x", 100*1024) // over 64 KiB, under the gRPC limit
	if _, err := e.cli.Put(ctx, "big", big); err != rpctypes.ErrRequestTooLarge {
		t.Fatalf("oversized put: %v", err)
	}
	if _, err := e.cli.Put(ctx, "big", big+strings.Repeat("x", 1024*1024)); err == nil {
		t.Fatal("a put over the gRPC limit succeeded")
	}
	ms, err := e.cli.MemberList(ctx)
	if err != nil || len(ms.Members) != 1 {
		t.Fatal(ms, err)
	}
	checkHeader(t, ms.Header, 0)
	// Membership errors reach the client as etcd's.
	if _, err := e.cli.MemberAdd(ctx, []string{"http://x:2380"}); err != rpctypes.ErrMemberNotEnoughStarted {
		t.Fatalf("member add: %v", err)
	}
	added, err := e.cli.MemberAddAsLearner(ctx, []string{"http://x:2380"})
	if err != nil || !added.Member.IsLearner {
		t.Fatalf("member add as learner: %v %v", added, err)
	}
	checkHeader(t, added.Header, 0)
	as, err := e.cli.AuthStatus(ctx)
	if err != nil || as.Enabled {
		t.Fatal(as, err)
	}
	st, err := e.cli.Status(ctx, "http://"+e.addr)
	if err != nil || st.Version != "3.6.0" {
		t.Fatal(st, err)
	}
	checkHeader(t, st.Header, 10)
}

func TestWatch(t *testing.T) {
	e := startEnv(t, newFakeServer())
	ctx := ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	wch := e.cli.Watch(wctx, "early")
	var ws *fakeWatchStream
	select {
	case ws = <-e.fs.watches:
	case <-ctx.Done():
		t.Fatal("no watch stream")
	}
	id := <-ws.created
	// The event queued before Watch returned arrives after "created", so
	// the client routes it to this watcher.
	wr := <-wch
	if wr.Err() != nil || len(wr.Events) != 1 || string(wr.Events[0].Kv.Value) != "e" {
		t.Fatalf("first response %+v", wr)
	}
	checkHeader(t, wr.Header, 11)

	ws.ch <- &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 13}, WatchId: id, Events: wr.Events}
	if wr = <-wch; wr.Header.Revision != 13 || len(wr.Events) != 1 {
		t.Fatalf("second response %+v", wr)
	}

	if err := e.cli.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	if wr = <-wch; !wr.IsProgressNotify() || wr.Header.Revision != 12 {
		t.Fatalf("progress response %+v", wr)
	}

	// A second watcher keeps the stream open, so cancelling the first
	// sends a cancel request instead of closing the stream.
	other := e.cli.Watch(ctx, "other")
	<-ws.created
	cancel()
	select {
	case got := <-ws.canceled:
		if got != id {
			t.Fatalf("canceled %d, want %d", got, id)
		}
	case <-ctx.Done():
		t.Fatal("watch not canceled")
	}

	// Bad ranges are refused with etcd's reason.
	wch = e.cli.Watch(ctx, "b", clientv3.WithRange("a"))
	if wr = <-wch; !wr.Canceled || !strings.Contains(wr.Err().Error(), "watcher range is empty") {
		t.Fatalf("bad range: %+v, %v", wr, wr.Err())
	}

	// A disconnecting client closes the WatchStream.
	_ = other
	e.cli.Close()
	select {
	case <-ws.closed:
	case <-ctx.Done():
		t.Fatal("watch stream not closed after the client left")
	}
}

func TestLease(t *testing.T) {
	e := startEnv(t, newFakeServer())
	ctx := ctxT(t)
	ka, err := e.cli.KeepAliveOnce(ctx, 1)
	if err != nil || ka.TTL != 10 || ka.ID != 1 {
		t.Fatal(ka, err)
	}
	checkHeader(t, ka.ResponseHeader, 10)
	if _, err := e.cli.KeepAliveOnce(ctx, 2); err != rpctypes.ErrLeaseNotFound {
		t.Fatalf("keepalive of a missing lease: %v", err)
	}
	ttl, err := e.cli.TimeToLive(ctx, 2)
	if err != nil || ttl.TTL != -1 {
		t.Fatal(ttl, err)
	}
}

func TestSnapshot(t *testing.T) {
	fs := newFakeServer()
	fs.snap = make([]byte, 5*1024*1024+3*4096)
	for i := range fs.snap {
		fs.snap[i] = byte(i * 7 / 13)
	}
	e := startEnv(t, fs)
	resp, err := e.cli.SnapshotWithVersion(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Snapshot.Close()
	if resp.Version != "3.6.0" {
		t.Fatalf("version %q", resp.Version)
	}
	got, err := io.ReadAll(resp.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	// etcdctl's check, then etcdutl's.
	if len(got)%512 != sha256.Size {
		t.Fatalf("size %d has no sha256 trailer", len(got))
	}
	db, sum := got[:len(got)-sha256.Size], got[len(got)-sha256.Size:]
	if want := sha256.Sum256(db); !bytes.Equal(sum, want[:]) || !bytes.Equal(db, fs.snap) {
		t.Fatal("snapshot corrupted in transit")
	}
}

func httpGet(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPOnClientPort(t *testing.T) {
	fs := newFakeServer()
	e := startEnv(t, fs)
	if _, err := e.cli.Put(ctxT(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	c := http.DefaultClient
	base := "http://" + e.addr
	code, body := httpGet(t, c, base+"/health")
	var h healthStatus
	if code != 200 || json.Unmarshal([]byte(body), &h) != nil || h != (healthStatus{Health: "true"}) {
		t.Fatalf("/health %d %s", code, body)
	}
	if code, body = httpGet(t, c, base+"/version"); code != 200 || body != `{"etcdserver":"3.6.0","etcdcluster":"3.6.0","storage":"3.6.0"}` {
		t.Fatalf("/version %d %s", code, body)
	}
	code, body = httpGet(t, c, base+"/metrics")
	want := `grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1`
	if code != 200 || !strings.Contains(body, want) {
		t.Fatalf("/metrics %d lacks %s", code, want)
	}
	if code, body = httpGet(t, c, base+"/readyz?verbose"); code != 200 || !strings.Contains(body, "[+]linearizable_read ok\n") || !strings.HasSuffix(body, "ok\n") {
		t.Fatalf("/readyz %d %s", code, body)
	}
	if code, body = httpGet(t, c, base+"/livez"); code != 200 || body != "ok\n" {
		t.Fatalf("/livez %d %s", code, body)
	}

	fs.leader.Store(0)
	code, body = httpGet(t, c, base+"/health")
	if code != 503 || !strings.Contains(body, `{"health":"false","reason":"RAFT NO LEADER"}`) {
		t.Fatalf("/health without leader %d %s", code, body)
	}
	if code, _ = httpGet(t, c, base+"/health?serializable=true"); code != 200 {
		t.Fatalf("serializable /health without leader %d", code)
	}
	fs.leader.Store(2)
	fs.alarms = []*pb.AlarmMember{{MemberID: 2, Alarm: pb.AlarmType_NOSPACE}}
	if code, body = httpGet(t, c, base+"/health"); code != 503 || !strings.Contains(body, "ALARM NOSPACE") {
		t.Fatalf("/health with alarm %d %s", code, body)
	}
	if code, _ = httpGet(t, c, base+"/health?exclude=NOSPACE"); code != 200 {
		t.Fatalf("/health excluding the alarm %d", code)
	}

	// The unix socket serves both protocols too.
	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
	}}}
	if code, _ = httpGet(t, uc, "http://unix/version"); code != 200 {
		t.Fatalf("/version over unix socket %d", code)
	}
	ucli := e.client(t, "unix://"+e.sock)
	if _, err := ucli.Get(ctxT(t), "k"); err != nil {
		t.Fatalf("gRPC over unix socket: %v", err)
	}
}

func TestServeRefusesBadURLs(t *testing.T) {
	g := NewGRPCServer(newFakeServer(), Limits{}, nil, nil)
	for _, u := range []string{"https://127.0.0.1:0", "ftp://x"} {
		pu, _ := url.Parse(u)
		if _, err := Serve(context.Background(), []*url.URL{pu}, g, http.NotFoundHandler(), nil); err == nil {
			t.Errorf("%s: no error", u)
		}
	}
	// A port in use fails the whole call.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	free := freeAddr(t)
	_, err = Serve(context.Background(), []*url.URL{{Scheme: "http", Host: free}, {Scheme: "http", Host: ln.Addr().String()}}, g, http.NotFoundHandler(), nil)
	if err == nil {
		t.Fatal("bound a port in use")
	}
	// ...and releases what it had bound.
	ln2, err := net.Listen("tcp", free)
	if err != nil {
		t.Fatalf("first port not released: %v", err)
	}
	ln2.Close()
}
