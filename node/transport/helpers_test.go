package transport

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 20 * time.Second

// changes is a broadcast: wait() returns a channel closed at the next bump.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

func (c *changes) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *changes) bump() {
	c.mu.Lock()
	if c.ch != nil {
		close(c.ch)
	}
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

// waitUntil waits for cond, re-checking it whenever next() fires.
func waitUntil(t testing.TB, what string, next func() <-chan struct{}, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		ch := next()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type snapReport struct {
	id     uint64
	status raft.SnapshotStatus
}

// fakeRaft records what the transport hands it.
type fakeRaft struct {
	changes
	mu          sync.Mutex
	msgs        []*raftpb.Message
	removed     map[uint64]bool
	unreachable map[uint64]int
	snaps       []snapReport
	block       chan struct{} // when set, Process waits for it to close
}

func newFakeRaft() *fakeRaft {
	return &fakeRaft{removed: map[uint64]bool{}, unreachable: map[uint64]int{}}
}

func (f *fakeRaft) Process(ctx context.Context, m *raftpb.Message) error {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.msgs = append(f.msgs, m)
	f.mu.Unlock()
	f.bump()
	return nil
}

func (f *fakeRaft) IsIDRemoved(id uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removed[id]
}

func (f *fakeRaft) ReportUnreachable(id uint64) {
	f.mu.Lock()
	f.unreachable[id]++
	f.mu.Unlock()
	f.bump()
}

func (f *fakeRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	f.mu.Lock()
	f.snaps = append(f.snaps, snapReport{id, status})
	f.mu.Unlock()
	f.bump()
}

func (f *fakeRaft) setRemoved(id uint64) {
	f.mu.Lock()
	f.removed[id] = true
	f.mu.Unlock()
}

func (f *fakeRaft) received() []*raftpb.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*raftpb.Message(nil), f.msgs...)
}

func (f *fakeRaft) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.msgs)
}

func (f *fakeRaft) unreachableCount(id uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unreachable[id]
}

func (f *fakeRaft) snapReports() []snapReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]snapReport(nil), f.snaps...)
}

// member is a Transport served on a real loopback listener.
type member struct {
	id   uint64
	tr   *Transport
	raft *fakeRaft
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	logc changes // bumped on every log entry
	addr string
	url  string

	mu  sync.Mutex
	srv *http.Server
}

type memberOpt func(*Config)

func newMember(t testing.TB, id, cluster uint64, opts ...memberOpt) *member {
	t.Helper()
	m := &member{id: id, raft: newFakeRaft(), reg: prometheus.NewRegistry()}
	core, logs := observer.New(zapcore.DebugLevel)
	m.logs = logs
	lg := zap.New(core, zap.Hooks(func(zapcore.Entry) error { m.logc.bump(); return nil }))
	cfg := Config{LocalID: id, ClusterID: cluster, Raft: m.raft, Registerer: m.reg, Logger: lg, DialTimeout: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	m.tr = New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	m.url = "http://" + m.addr
	m.serve(ln)
	t.Cleanup(func() {
		m.tr.Stop()
		m.stopServer()
		if t.Failed() {
			for _, e := range logs.All() {
				t.Logf("member %x: %s %s %v", id, e.Level, e.Message, e.ContextMap())
			}
		}
	})
	return m
}

func (m *member) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("/raft/", m.tr.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.mu.Lock()
	m.srv = srv
	m.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stopServer closes the listener and every connection, like a crash.
func (m *member) stopServer() {
	m.mu.Lock()
	srv := m.srv
	m.srv = nil
	m.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// restartServer listens again on the same address.
func (m *member) restartServer(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", m.addr, err)
	}
	m.serve(ln)
}

func (m *member) waitLog(t testing.TB, substr string) {
	t.Helper()
	waitUntil(t, "log line "+substr, m.logc.wait, func() bool { return m.hasLog(substr) })
}

func (m *member) hasLog(substr string) bool {
	for _, e := range m.logs.All() {
		if strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}

// waitActive waits until from considers to active (or, with active false,
// inactive).
func waitActive(t testing.TB, from *member, to uint64, active bool) {
	t.Helper()
	waitUntil(t, "peer state", from.tr.stateChanged, func() bool {
		return from.tr.ActiveSince(to).IsZero() != active
	})
}

// waitStream waits until from's stream to peer to is up (or down).
func waitStream(t testing.TB, from *member, to uint64, up bool) {
	t.Helper()
	waitUntil(t, "stream state", from.tr.stateChanged, func() bool {
		from.tr.mu.RLock()
		p := from.tr.peers[to]
		from.tr.mu.RUnlock()
		return p != nil && p.up.Load() == up
	})
}

// connect makes a send to b, and waits until the stream is up.
func connect(t testing.TB, a, b *member) {
	t.Helper()
	a.tr.AddPeer(b.id, []string{b.url})
	waitActive(t, a, b.id, true)
}
