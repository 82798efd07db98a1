package transport

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/raftnode"
)

var _ raftnode.Transport = (*Transport)(nil)

const testCluster = 0xc1

func heartbeat(from, to, n uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(from), To: proto.Uint64(to),
		Term: proto.Uint64(1), Commit: proto.Uint64(n)}
}

// checkInOrder checks that the messages from sender carry 1..n in Commit.
func checkInOrder(t *testing.T, got []*raftpb.Message, from uint64, n int) {
	t.Helper()
	next := uint64(1)
	for _, m := range got {
		if m.GetFrom() != from {
			continue
		}
		if m.GetCommit() != next {
			t.Fatalf("message from %x: got #%d, want #%d", from, m.GetCommit(), next)
		}
		next++
	}
	if int(next-1) != n {
		t.Fatalf("got %d messages from %x, want %d", next-1, from, n)
	}
}

func TestDeliversInOrder(t *testing.T) {
	a, b := newMember(t, 1, testCluster), newMember(t, 2, testCluster)
	connect(t, a, b)
	const n = 2000
	for i := 1; i <= n; i += 50 {
		var batch []*raftpb.Message
		for j := i; j < i+50; j++ {
			if j%10 == 0 {
				m := msgApp(1, 2, uint64(j), 3, 100)
				m.Commit = proto.Uint64(uint64(j))
				batch = append(batch, m)
			} else {
				batch = append(batch, heartbeat(1, 2, uint64(j)))
			}
		}
		a.tr.Send(batch)
	}
	waitUntil(t, "delivery", b.raft.wait, func() bool { return b.raft.count() >= n })
	checkInOrder(t, b.raft.received(), 1, n)
	if u := a.raft.unreachableCount(2); u != 0 {
		t.Fatalf("ReportUnreachable called %d times", u)
	}
}

func TestThreeMembersExchange(t *testing.T) {
	ms := []*member{newMember(t, 1, testCluster), newMember(t, 2, testCluster), newMember(t, 3, testCluster)}
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				connect(t, a, b)
			}
		}
	}
	const n = 300
	for i := 1; i <= n; i++ {
		for _, a := range ms {
			var out []*raftpb.Message
			for _, b := range ms {
				if a != b {
					out = append(out, heartbeat(a.id, b.id, uint64(i)))
				}
			}
			a.tr.Send(out)
		}
	}
	for _, b := range ms {
		waitUntil(t, "delivery", b.raft.wait, func() bool { return b.raft.count() >= 2*n })
		for _, a := range ms {
			if a != b {
				checkInOrder(t, b.raft.received(), a.id, n)
			}
		}
	}
}

func TestClusterMismatchRefused(t *testing.T) {
	a, b := newMember(t, 0xa, 0x111), newMember(t, 0xb, 0x222)
	a.tr.AddPeer(b.id, []string{b.url})
	b.waitLog(t, "refusing raft messages from member a of cluster 111; this member is in cluster 222 — check --initial-cluster-token / the data dir")
	a.waitLog(t, "peer refuses our raft messages: it belongs to another cluster")
	if !a.tr.ActiveSince(b.id).IsZero() {
		t.Fatal("a member of another cluster is active")
	}

	for _, path := range []string{pathStream, pathSnapshot, pathProbe} {
		method := http.MethodPost
		if path == pathProbe {
			method = http.MethodGet
		}
		req, _ := http.NewRequest(method, b.url+path, strings.NewReader("x"))
		a.tr.setHeaders(req.Header, b.id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPreconditionFailed {
			t.Fatalf("%s: status %d, want 412", path, resp.StatusCode)
		}
		if !strings.Contains(string(body), "cluster 111") || !strings.Contains(string(body), "cluster 222") {
			t.Fatalf("%s: body %q does not name both clusters", path, body)
		}
	}
	if b.raft.count() != 0 {
		t.Fatal("messages from another cluster reached raft")
	}
}

func TestBadRequestsRefused(t *testing.T) {
	b := newMember(t, 2, testCluster)
	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		want   int
	}{
		{"no headers", http.MethodPost, pathStream, nil, http.StatusBadRequest},
		{"wrong protocol", http.MethodPost, pathStream, map[string]string{hdrProtocol: "9"}, http.StatusBadRequest},
		{"bad from", http.MethodPost, pathStream, map[string]string{hdrFrom: "zz"}, http.StatusBadRequest},
		{"wrong receiver", http.MethodPost, pathStream, map[string]string{hdrTo: "3"}, http.StatusMisdirectedRequest},
		{"wrong method", http.MethodGet, pathStream, nil, http.StatusMethodNotAllowed},
		{"unknown path", http.MethodGet, "/raft/nope", nil, http.StatusNotFound},
		{"probe", http.MethodGet, pathProbe, map[string]string{}, http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, b.url+tt.path, nil)
			if tt.hdr != nil {
				req.Header.Set(hdrProtocol, protocolVersion)
				req.Header.Set(hdrFrom, "1")
				req.Header.Set(hdrTo, "2")
				req.Header.Set(hdrCluster, idString(testCluster))
				for k, v := range tt.hdr {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestRemovedMemberRefused(t *testing.T) {
	removed := make(chan struct{})
	a := newMember(t, 1, testCluster, func(c *Config) { c.OnRemoved = func() { close(removed) } })
	b := newMember(t, 2, testCluster)
	connect(t, a, b)
	a.tr.Send([]*raftpb.Message{heartbeat(1, 2, 1)})
	waitUntil(t, "delivery", b.raft.wait, func() bool { return b.raft.count() == 1 })

	// b learns that a was removed: a's open stream is closed at its next
	// message, and its reconnection is refused with 410.
	b.raft.setRemoved(1)
	a.tr.Send([]*raftpb.Message{heartbeat(1, 2, 2)})
	select {
	case <-removed:
	case <-time.After(waitTimeout):
		t.Fatal("OnRemoved not called")
	}
	b.waitLog(t, "refusing raft messages from member 1: it was removed from the cluster")
	a.waitLog(t, "this member was removed from the cluster")
	if b.raft.count() != 1 {
		t.Fatalf("raft got %d messages, want only the one sent before the removal", b.raft.count())
	}

	req, _ := http.NewRequest(http.MethodPost, b.url+pathStream, strings.NewReader("x"))
	a.tr.setHeaders(req.Header, 2)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("status %d, want 410", resp.StatusCode)
	}
}

func TestReconnectsAfterPeerRestart(t *testing.T) {
	a, b := newMember(t, 1, testCluster), newMember(t, 2, testCluster)
	connect(t, a, b)
	a.tr.Send([]*raftpb.Message{heartbeat(1, 2, 1)})
	waitUntil(t, "first delivery", b.raft.wait, func() bool { return b.raft.count() == 1 })

	b.stopServer()
	waitStream(t, a, 2, false)
	if !a.tr.ActiveSince(2).IsZero() {
		t.Fatal("a peer without a stream is active")
	}
	before := a.raft.unreachableCount(2)
	a.tr.Send([]*raftpb.Message{heartbeat(1, 2, 99)}) // no stream: dropped and reported
	if a.raft.unreachableCount(2) != before+1 {
		t.Fatal("a message for a down peer was not reported unreachable")
	}

	b.restartServer(t)
	waitActive(t, a, 2, true)
	a.tr.Send([]*raftpb.Message{heartbeat(1, 2, 2)})
	waitUntil(t, "delivery after reconnect", b.raft.wait, func() bool { return b.raft.count() == 2 })
	checkInOrder(t, b.raft.received(), 1, 2)
}

func TestUpdatePeerURLs(t *testing.T) {
	a, b := newMember(t, 1, testCluster), newMember(t, 2, testCluster)
	a.tr.AddPeer(2, []string{"http://" + closedAddr(t)})
	a.waitLog(t, "cannot open raft stream to peer")
	a.tr.UpdatePeer(2, []string{b.url})
	waitActive(t, a, 2, true)
	a.tr.RemovePeer(2)
	if !a.tr.ActiveSince(2).IsZero() {
		t.Fatal("a removed peer is active")
	}
	a.tr.Send([]*raftpb.Message{heartbeat(1, 2, 1)}) // unknown peer: ignored
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestQueueOverflowReportsUnreachable(t *testing.T) {
	a, b := newMember(t, 1, testCluster), newMember(t, 2, testCluster)
	a.tr.tun.queueSize = 8
	connect(t, a, b)
	release := make(chan struct{})
	b.raft.mu.Lock()
	b.raft.block = release // b stops reading: TCP buffers fill, then a's queue
	b.raft.mu.Unlock()

	big := msgApp(1, 2, 1, 1, 256<<10)
	sent := 0
	for ; sent < 2000 && a.raft.unreachableCount(2) == 0; sent++ {
		a.tr.Send([]*raftpb.Message{big})
	}
	if a.raft.unreachableCount(2) == 0 {
		t.Fatalf("%d messages of 256 KiB queued without ReportUnreachable", sent)
	}
	t.Logf("queue overflowed after %d messages of 256 KiB", sent)
	if f := counterValue(t, a, "etcd_network_peer_sent_failures_total", "To", "2"); f < 1 {
		t.Fatalf("sent failures = %v", f)
	}
	close(release)
	// The stream survives: what was queued arrives.
	waitUntil(t, "delivery after the receiver resumed", b.raft.wait, func() bool { return b.raft.count() > 0 })
}

func TestActiveSince(t *testing.T) {
	a, b := newMember(t, 1, testCluster), newMember(t, 2, testCluster)
	if !a.tr.ActiveSince(2).IsZero() {
		t.Fatal("unknown peer active")
	}
	start := time.Now()
	connect(t, a, b)
	since := a.tr.ActiveSince(2)
	if since.Before(start) || since.After(time.Now()) {
		t.Fatalf("ActiveSince = %v, want between %v and now", since, start)
	}
	if again := a.tr.ActiveSince(2); !again.Equal(since) {
		t.Fatalf("ActiveSince moved from %v to %v while the peer stayed up", since, again)
	}
	b.stopServer()
	waitActive(t, a, 2, false)
}

// snapData is a deterministic pseudo-random db that is never held in memory.
func snapData(size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{7}), size)
}

func snapMsg(from, to uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(2),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(100), Term: proto.Uint64(2),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}}
}

func TestSnapshot(t *testing.T) {
	const size = 8 << 20
	want := sha256.New()
	_, _ = io.Copy(want, snapData(size))
	errSink := errors.New("bad db")
	tests := []struct {
		name    string
		source  SnapshotSource
		sinkErr error
		status  raft.SnapshotStatus
	}{
		{"ok", func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return io.NopCloser(snapData(size)), size, nil
		}, nil, raft.SnapshotFinish},
		{"unknown size", func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return io.NopCloser(snapData(size)), -1, nil
		}, nil, raft.SnapshotFinish},
		{"sink refuses", func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return io.NopCloser(snapData(size)), size, nil
		}, errSink, raft.SnapshotFailure},
		{"source fails", func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return nil, 0, errors.New("no db")
		}, nil, raft.SnapshotFailure},
		{"source short", func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return io.NopCloser(snapData(size / 2)), size, nil
		}, nil, raft.SnapshotFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotSize int64
			var gotSum []byte
			a := newMember(t, 1, testCluster, func(c *Config) { c.Snapshots = tt.source })
			b := newMember(t, 2, testCluster, func(c *Config) {
				c.Receive = func(m *raftpb.Message, body io.Reader) error {
					h := sha256.New()
					n, err := io.Copy(h, body)
					gotSize, gotSum = n, h.Sum(nil)
					if err != nil {
						return err
					}
					return tt.sinkErr
				}
			})
			a.tr.AddPeer(2, []string{b.url})
			a.tr.Send([]*raftpb.Message{snapMsg(1, 2)})
			waitUntil(t, "snapshot report", a.raft.wait, func() bool { return len(a.raft.snapReports()) > 0 })
			r := a.raft.snapReports()
			if len(r) != 1 || r[0] != (snapReport{2, tt.status}) {
				t.Fatalf("reports %v, want one %v for 2", r, tt.status)
			}
			if tt.status == raft.SnapshotFailure {
				if b.raft.count() != 0 {
					t.Fatal("a failed snapshot was processed")
				}
				return
			}
			waitUntil(t, "MsgSnap processed", b.raft.wait, func() bool { return b.raft.count() == 1 })
			if m := b.raft.received()[0]; !proto.Equal(m, snapMsg(1, 2)) {
				t.Fatalf("processed %v", m)
			}
			if gotSize != size || !bytes.Equal(gotSum, want.Sum(nil)) {
				t.Fatalf("sink got %d bytes (sha256 %x), want %d (%x)", gotSize, gotSum, size, want.Sum(nil))
			}
			if v := counterValue(t, b, "etcd_network_peer_received_bytes_total", "From", "1"); v < size {
				t.Fatalf("received bytes = %v", v)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	a, b := newMember(t, 1, testCluster), newMember(t, 2, testCluster)
	connect(t, a, b)
	// The writer counts a batch's bytes before it writes the next batch, so
	// once the second message is in, the first one's bytes are counted.
	a.tr.Send([]*raftpb.Message{heartbeat(1, 2, 1)})
	waitUntil(t, "delivery", b.raft.wait, func() bool { return b.raft.count() == 1 })
	a.tr.Send([]*raftpb.Message{heartbeat(1, 2, 2)})
	waitUntil(t, "delivery", b.raft.wait, func() bool { return b.raft.count() == 2 })
	if v := counterValue(t, a, "etcd_network_peer_sent_bytes_total", "To", "2"); v <= 0 {
		t.Fatalf("sent bytes = %v", v)
	}

	if n := histogramCount(t, a, "etcd_network_peer_round_trip_time_seconds", "To", "2"); n < 1 {
		t.Fatalf("rtt samples = %d", n)
	}
	if v := gaugeValue(t, a, "etcd_network_active_peers", "Local", "1", "Remote", "2"); v != 1 {
		t.Fatalf("active peers = %v", v)
	}
	if v := counterValue(t, b, "etcd_network_peer_received_bytes_total", "From", "1"); v <= 0 {
		t.Fatalf("received bytes = %v", v)
	}
	b.stopServer()
	waitActive(t, a, 2, false)
	waitUntil(t, "disconnect counted", a.tr.stateChanged, func() bool {
		return counterValue(t, a, "etcd_network_disconnected_peers_total", "Local", "1", "Remote", "2") == 1
	})
	if v := gaugeValue(t, a, "etcd_network_active_peers", "Local", "1", "Remote", "2"); v != 0 {
		t.Fatalf("active peers = %v after the peer went down", v)
	}
}

// metric finds the series of name with the given label pairs.
func metric(t testing.TB, m *member, name string, labels ...string) *dto.Metric {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return s
		}
	}
	return nil
}

func counterValue(t testing.TB, m *member, name string, labels ...string) float64 {
	return metric(t, m, name, labels...).GetCounter().GetValue()
}

func gaugeValue(t testing.TB, m *member, name string, labels ...string) float64 {
	return metric(t, m, name, labels...).GetGauge().GetValue()
}

func histogramCount(t testing.TB, m *member, name string, labels ...string) uint64 {
	return metric(t, m, name, labels...).GetHistogram().GetSampleCount()
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 50 * time.Millisecond, max: time.Second}
	prevCap := time.Duration(0)
	for i := 0; i < 20; i++ {
		d := b.next()
		if d < b.cur/2 || d > b.cur || d > time.Second {
			t.Fatalf("retry %d: %v outside [%v, %v]", i, d, b.cur/2, b.cur)
		}
		if b.cur < prevCap {
			t.Fatalf("backoff shrank")
		}
		prevCap = b.cur
	}
	if b.cur != time.Second {
		t.Fatalf("cap %v, want 1s", b.cur)
	}
	b.reset()
	if d := b.next(); d > 50*time.Millisecond {
		t.Fatalf("after reset: %v", d)
	}
}

// TestTLS runs a stream over https, the transport's client TLS config
// trusting the test server's certificate.
func TestTLS(t *testing.T) {
	b := newFakeRaft()
	recv := New(Config{LocalID: 2, ClusterID: testCluster, Raft: b})
	defer recv.Stop()
	srv := httptest.NewUnstartedServer(recv.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut by Close
	srv.StartTLS()
	defer srv.Close()
	a := newFakeRaft()
	send := New(Config{LocalID: 1, ClusterID: testCluster, Raft: a,
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	defer send.Stop()
	send.AddPeer(2, []string{srv.URL})
	waitUntil(t, "stream over TLS", send.stateChanged, func() bool { return !send.ActiveSince(2).IsZero() })
	send.Send([]*raftpb.Message{heartbeat(1, 2, 1)})
	waitUntil(t, "delivery over TLS", b.wait, func() bool { return b.count() == 1 })
}

// TestPeerDropsConnectionBeforeAnswering: a peer that takes the stream
// request and closes the connection without an answer must not wedge the
// sender — net/http waits for the body writer before it reports the error,
// and nothing cancels the request (the connect timeout is made too long to
// help here), so the writer itself must notice the dead connection.
func TestPeerDropsConnectionBeforeAnswering(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	streams := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4096)
				n, _ := c.Read(buf) // the request's headers
				if strings.HasPrefix(string(buf[:n]), "POST "+pathStream) {
					streams <- struct{}{}
				}
				_ = c.Close()
			}()
		}
	}()
	a := newMember(t, 1, testCluster)
	a.tr.tun.connectTimeout = 10 * waitTimeout
	a.tr.AddPeer(2, []string{"http://" + ln.Addr().String()})
	for i := 0; i < 3; i++ { // each new attempt means the last one returned
		select {
		case <-streams:
		case <-time.After(waitTimeout):
			t.Fatalf("sender wedged after %d stream attempts", i)
		}
	}
	stopped := make(chan struct{})
	go func() { a.tr.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(waitTimeout):
		t.Fatal("Stop did not return")
	}
}
