package api

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// The expected bodies below are what etcd v3.7.3's gateway answers, byte
// for byte, for the same responses (checked with curl against bin/etcd):
// proto field names, no unset fields, 64-bit integers as strings, no
// spaces, errors as {"code","message"}.

const fakeHeader = `"header":{"cluster_id":"1","member_id":"2","revision":"10","raft_term":"3"}`

// post sends body to path like curl -d does (no Content-Type of its own
// choosing matters: the gateway reads JSON whatever it says).
func post(t *testing.T, base, path, body string) (code int, contentType, grpcMeta, out string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // curl -d
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Grpc-Metadata-Content-Type"), string(b)
}

func TestGatewayUnary(t *testing.T) {
	e := startEnv(t, newFakeServer())
	base := "http://" + e.addr
	for _, tc := range []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"put", "/v3/kv/put", `{"key":"Yw==","value":"NA=="}`, 200,
			`{` + fakeHeader + `}`},
		{"range", "/v3/kv/range", `{"key":"Yw=="}`, 200,
			`{"header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"3"},"kvs":[{"key":"Yw==","create_revision":"4","mod_revision":"4","version":"1","value":"dg=="}],"count":"1"}`},
		// Unknown fields are dropped; lowerCamelCase names are read too.
		{"range, lenient decoding", "/v3/kv/range", `{"key":"Yw==","rangeEnd":"AA==","nope":1}`, 200,
			`{"header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"3"},"kvs":[{"key":"Yw==","create_revision":"4","mod_revision":"4","version":"1","value":"dg=="}],"count":"1"}`},
		{"range via /v3beta", "/v3beta/kv/range", `{"key":"Yw=="}`, 200,
			`{"header":{"cluster_id":"1","member_id":"2","revision":"5","raft_term":"3"},"kvs":[{"key":"Yw==","create_revision":"4","mod_revision":"4","version":"1","value":"dg=="}],"count":"1"}`},
		{"txn", "/v3/kv/txn", `{"compare":[{"key":"Yw==","target":"VALUE","value":"NA=="}],"success":[{"request_put":{"key":"ZA==","value":"MQ=="}}]}`, 200,
			`{` + fakeHeader + `,"succeeded":true}`},
		{"deleterange", "/v3/kv/deleterange", `{"key":"Yw==","prev_kv":true}`, 200,
			`{"header":{"cluster_id":"1","member_id":"2","revision":"7","raft_term":"3"},"deleted":"1"}`},
		{"compaction", "/v3/kv/compaction", `{"revision":3}`, 200,
			`{` + fakeHeader + `}`},
		{"lease grant", "/v3/lease/grant", `{"TTL":60}`, 200,
			`{` + fakeHeader + `,"ID":"1","TTL":"60"}`},
		{"lease timetolive", "/v3/lease/timetolive", `{"ID":1}`, 200,
			`{` + fakeHeader + `,"ID":"1","TTL":"9","grantedTTL":"10"}`},
		{"lease leases", "/v3/lease/leases", `{}`, 200,
			`{` + fakeHeader + `,"leases":[{"ID":"1"}]}`},
		{"maintenance status", "/v3/maintenance/status", `{}`, 200,
			`{` + fakeHeader + `,"version":"3.6.0","leader":"2","storageVersion":"3.6.0"}`},
		{"maintenance hash", "/v3/maintenance/hash", `{}`, 200,
			`{` + fakeHeader + `,"hash":42}`},
		{"member list", "/v3/cluster/member/list", `{}`, 200,
			`{"header":{"cluster_id":"1","member_id":"2","raft_term":"3"},"members":[{"ID":"2","name":"m"}]}`},
		{"auth status", "/v3/auth/status", `{}`, 200,
			`{` + fakeHeader + `,"authRevision":"1"}`},

		// Errors: the gRPC status as JSON, with grpc-gateway's HTTP status.
		{"empty key", "/v3/kv/range", `{}`, 400,
			`{"code":3,"message":"etcdserver: key is not provided"}`},
		{"no body", "/v3/kv/put", ``, 400,
			`{"code":3,"message":"etcdserver: key is not provided"}`},
		{"bad JSON", "/v3/kv/range", `{bad`, 400,
			`{"code":3,"message":"invalid character 'b' looking for beginning of object key string"}`},
		{"lease not found is a TTL of -1", "/v3/lease/timetolive", `{"ID":2}`, 200,
			`{` + fakeHeader + `,"ID":"2","TTL":"-1"}`},
		{"member not found", "/v3/cluster/member/remove", `{"ID":9}`, 404,
			`{"code":5,"message":"etcdserver: member not found"}`},
		{"unknown path", "/v3/kv/nope", `{}`, 404,
			`{"code":5,"message":"Not Found"}`},
		{"trailing slash", "/v3/kv/range/", `{}`, 404,
			`{"code":5,"message":"Not Found"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ct, meta, got := post(t, base, tc.path, tc.body)
			if code != tc.code || ct != "application/json" || got != tc.want {
				t.Fatalf("%d %s %s\nwant %d application/json %s", code, ct, got, tc.code, tc.want)
			}
			// Successful calls carry the gRPC response metadata, as etcd's
			// (the gateway is a gRPC client of the member); errors do not.
			if wantMeta := map[bool]string{true: "application/grpc"}[code == 200]; meta != wantMeta {
				t.Fatalf("Grpc-Metadata-Content-Type %q, want %q", meta, wantMeta)
			}
		})
	}

	// Other methods than POST are refused as etcd refuses them.
	resp, err := http.Get(base + "/v3/kv/range")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 501 || string(b) != `{"code":12,"message":"Method Not Allowed"}` {
		t.Fatalf("GET: %d %s", resp.StatusCode, b)
	}
	// The rest of the HTTP endpoints are still there.
	if code, body := httpGet(t, http.DefaultClient, base+"/livez"); code != 200 || body != "ok\n" {
		t.Fatalf("/livez %d %s", code, body)
	}
}

// streamLines posts body to a streaming path and returns a reader of the
// response's lines; the request ends with the test.
func streamLines(t *testing.T, base, path, body string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body)
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read %q: %v", l, err)
	}
	return l
}

func TestGatewayWatch(t *testing.T) {
	e := startEnv(t, newFakeServer())
	// The fake queues an event right behind the creation of a watch on
	// "early" (ZWFybHk=).
	resp, r := streamLines(t, "http://"+e.addr, "/v3/watch", `{"create_request":{"key":"ZWFybHk=","prev_kv":true}}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var ws *fakeWatchStream
	select {
	case ws = <-e.fs.watches:
	case <-ctxT(t).Done():
		t.Fatal("no watch stream")
	}
	id := <-ws.created
	// The request body has ended; the stream stays open for events, as
	// etcd's does.
	ws.ch <- &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 13}, WatchId: id, Events: []*mvccpb.Event{{
		Type: mvccpb.DELETE,
		Kv:   &mvccpb.KeyValue{Key: []byte("early"), ModRevision: 13},
		PrevKv: &mvccpb.KeyValue{Key: []byte("early"), Value: []byte("e"), CreateRevision: 11, ModRevision: 11,
			Version: 1},
	}}}
	for i, want := range []string{
		`{"result":{` + fakeHeader + `,"created":true}}`,
		`{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"11","raft_term":"3"},"events":[{"kv":{"key":"ZWFybHk=","mod_revision":"11","value":"ZQ=="}}]}}`,
		`{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"13","raft_term":"3"},"events":[{"type":"DELETE","kv":{"key":"ZWFybHk=","mod_revision":"13"},"prev_kv":{"key":"ZWFybHk=","create_revision":"11","mod_revision":"11","version":"1","value":"ZQ=="}}]}}`,
	} {
		if got := readLine(t, r); got != want+"\n" {
			t.Fatalf("line %d: %s\nwant %s", i, got, want)
		}
	}
	// Leaving closes the member's watch stream.
	resp.Body.Close()
	select {
	case <-ws.closed:
	case <-ctxT(t).Done():
		t.Fatal("watch stream not closed after the HTTP client left")
	}
}

func TestGatewayKeepAlive(t *testing.T) {
	e := startEnv(t, newFakeServer())
	// Two requests in one body: two responses, then the stream ends with
	// the body. A missing lease answers with no TTL, as etcd's does.
	resp, r := streamLines(t, "http://"+e.addr, "/v3/lease/keepalive", `{"ID":1}{"ID":2}`)
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Metadata-Content-Type") != "application/grpc" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	for i, want := range []string{
		`{"result":{` + fakeHeader + `,"ID":"1","TTL":"10"}}`,
		`{"result":{` + fakeHeader + `,"ID":"2"}}`,
	} {
		if got := readLine(t, r); got != want+"\n" {
			t.Fatalf("line %d: %s\nwant %s", i, got, want)
		}
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after the responses: %q %v", rest, err)
	}
}

func TestGatewaySnapshot(t *testing.T) {
	fs := newFakeServer()
	fs.snap = []byte("0123456789")
	e := startEnv(t, fs)
	code, ct, _, body := post(t, "http://"+e.addr, "/v3/maintenance/snapshot", `{}`)
	if code != 200 || ct != "application/json" || !strings.HasPrefix(body, `{"result":{`) || !strings.Contains(body, `"blob":"MDEyMzQ1Njc4OQ=="`) {
		t.Fatalf("%d %s %s", code, ct, body)
	}
}

// startGatewayEnv serves a fake member with the given HTTP options and
// returns the base URL and the stop function.
func startGatewayEnv(t *testing.T, opts ...HTTPOption) (fs *fakeServer, base string, stop func()) {
	t.Helper()
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	reg := prometheus.NewRegistry()
	fs = newFakeServer()
	g := NewGRPCServer(fs, Limits{}, reg, lg)
	addr := freeAddr(t)
	stop, err := Serve(context.Background(), []*url.URL{{Scheme: "http", Host: addr}}, g, NewHTTPHandler(fs, reg, lg, opts...), lg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return fs, "http://" + addr, stop
}

func TestGatewayDisabled(t *testing.T) {
	_, base, _ := startGatewayEnv(t, WithoutGateway())
	code, _, _, body := post(t, base, "/v3/kv/range", `{"key":"Yw=="}`)
	if code != 404 || body != "404 page not found\n" {
		t.Fatalf("%d %s", code, body)
	}
}

// TestGatewayStopWithOpenWatch checks that stopping the server does not
// hang on a watch streaming through the gateway.
func TestGatewayStopWithOpenWatch(t *testing.T) {
	fs, base, stop := startGatewayEnv(t)
	_, r := streamLines(t, base, "/v3/watch", `{"create_request":{"key":"YQ=="}}`)
	readLine(t, r) // created
	<-fs.watches
	start := time.Now()
	stop()
	if d := time.Since(start); d > gracefulTimeout+3*time.Second {
		t.Fatalf("stop took %v", d)
	}
	if _, err := io.ReadAll(r); err == nil {
		t.Log("stream ended cleanly")
	}
}

// TestCORS: with --cors (etcd's default "*"), every HTTP answer carries
// etcd's CORS headers and a preflight OPTIONS gets an empty 200; a listed
// origin is echoed; without the option nothing is added.
func TestCORS(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       []HTTPOption
		origin     string
		wantOrigin string
	}{
		{name: "any", opts: []HTTPOption{WithCORS([]string{"*"})}, origin: "https://ui.example", wantOrigin: "*"},
		{name: "listed", opts: []HTTPOption{WithCORS([]string{"https://ui.example"})}, origin: "https://ui.example", wantOrigin: "https://ui.example"},
		{name: "not listed", opts: []HTTPOption{WithCORS([]string{"https://ui.example"})}, origin: "https://evil.example"},
		{name: "off", origin: "https://ui.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base, _ := startGatewayEnv(t, tc.opts...)
			for _, method := range []string{http.MethodGet, http.MethodOptions} {
				req, err := http.NewRequest(method, base+"/version", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Origin", tc.origin)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.wantOrigin {
					t.Fatalf("%s: Access-Control-Allow-Origin = %q, want %q", method, got, tc.wantOrigin)
				}
				if tc.wantOrigin == "" {
					continue
				}
				if resp.Header.Get("Access-Control-Allow-Methods") != "POST, GET, OPTIONS, PUT, DELETE" {
					t.Fatalf("%s: methods header %q", method, resp.Header.Get("Access-Control-Allow-Methods"))
				}
				if method == http.MethodOptions && (resp.StatusCode != 200 || len(body) != 0) {
					t.Fatalf("preflight: %d %q", resp.StatusCode, body)
				}
			}
		})
	}
}
