// Package transport carries raft messages between Ballast members over their
// peer URLs.
//
// The protocol is Ballast's own; it does not speak etcd's rafthttp. It is
// plain HTTP/1.1 (TLS when the peer URL is https): a member opens to each
// other member
//
//   - one long-lived POST /raft/stream whose chunked body is a sequence of
//     length-prefixed raftpb.Message frames (see frame.go). Messages queued
//     together are written as one chunk, and every chunk is flushed at once;
//   - one POST /raft/snapshot per MsgSnap: the message frame followed by the
//     snapshot's db file, streamed from disk;
//   - a GET /raft/probe every few seconds, to measure the round-trip time and
//     to tell whether the member is reachable.
//
// Every request names the sender, the intended receiver and the cluster in
// headers; the receiver refuses requests from another cluster (412) and from
// removed members (410).
//
// Why HTTP/1.1 and not HTTP/2: each stream gets a TCP connection of its own,
// so a snapshot of several GiB, or a slow probe, never shares a send buffer
// or a flow-control window with the heartbeats that keep the leader in
// office; a plain chunked body has no per-frame or window-update overhead;
// and the Handler works on any http.Server the member mounts it on, with or
// without TLS, without h2c configuration. HTTP/2 would buy multiplexing,
// which a raft transport with one stream per peer does not need.
//
// Mount Handler on the member's peer listener at "/raft/". That server must
// not impose ReadTimeout/WriteTimeout on these paths; the handler clears the
// deadlines itself for the streams it serves.
package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Raft is the local raft node, as the transport sees it.
type Raft interface {
	Process(ctx context.Context, m *raftpb.Message) error
	IsIDRemoved(id uint64) bool
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// SnapshotSource opens the db to send along with the MsgSnap m. The body is
// streamed and closed by the transport; size is its length in bytes, or -1
// if unknown.
type SnapshotSource func(m *raftpb.Message) (body io.ReadCloser, size int64, err error)

// SnapshotSink receives the db that came with the MsgSnap m, before m is
// handed to Raft.Process. It must read body to the end and return an error if
// the db is incomplete or corrupt; m is then not processed and the sender
// reports a failed snapshot to its raft.
type SnapshotSink func(m *raftpb.Message, body io.Reader) error

// Config configures a Transport.
type Config struct {
	LocalID, ClusterID uint64
	Raft               Raft
	Snapshots          SnapshotSource
	Receive            SnapshotSink
	TLS                *tls.Config // client side; nil = plain http
	Registerer         prometheus.Registerer
	Logger             *zap.Logger
	OnRemoved          func() // this member learnt it was removed; called once, in its own goroutine
	DialTimeout        time.Duration
}

const (
	pathStream   = "/raft/stream"
	pathSnapshot = "/raft/snapshot"
	pathProbe    = "/raft/probe"

	hdrProtocol = "X-Ballast-Raft-Protocol"
	hdrFrom     = "X-Ballast-From"    // sender's member ID, hex
	hdrTo       = "X-Ballast-To"      // intended receiver's member ID, hex
	hdrCluster  = "X-Ballast-Cluster" // cluster ID, hex
	hdrMember   = "X-Ballast-Member"  // on responses: the answering member's ID, hex
	hdrSnapSize = "X-Ballast-Snapshot-Size"

	protocolVersion     = "1"
	contentTypeStream   = "application/x-ballast-raft-stream"
	contentTypeSnapshot = "application/x-ballast-raft-snapshot"
)

// tuning holds the transport's timings and sizes; tests shorten some.
type tuning struct {
	queueSize      int           // outgoing messages queued per peer
	maxBatchBytes  int           // stop adding queued messages to a write beyond this
	maxBatchMsgs   int           // … or this many messages
	keepalive      time.Duration // an idle stream writes an empty frame this often
	idleTimeout    time.Duration // a receiver ends a stream silent for this long
	snapIdle       time.Duration // … and a snapshot upload stalled for this long
	connectTimeout time.Duration // from dial to the stream's response headers
	answerPoll     time.Duration // while waiting for them, check the connection this often
	backoffMin     time.Duration // first reconnect delay
	backoffMax     time.Duration // reconnect delay cap (jittered below it)
	probeInterval  time.Duration
	probeTimeout   time.Duration
	probeFailReset int // consecutive failed probes that make us reopen a stream
}

func defaultTuning(dialTimeout time.Duration) tuning {
	return tuning{
		queueSize:      4096,
		maxBatchBytes:  1 << 20,
		maxBatchMsgs:   1024,
		keepalive:      2 * time.Second,
		idleTimeout:    10 * time.Second,
		snapIdle:       30 * time.Second,
		connectTimeout: dialTimeout + 4*time.Second,
		answerPoll:     50 * time.Millisecond,
		backoffMin:     50 * time.Millisecond,
		backoffMax:     time.Second,
		probeInterval:  2 * time.Second,
		probeTimeout:   dialTimeout + 2*time.Second,
		probeFailReset: 3,
	}
}

// Transport sends raft messages to the other members and receives theirs.
type Transport struct {
	cfg     Config
	lg      *zap.Logger
	local   string // LocalID in hex
	cluster string // ClusterID in hex
	tun     tuning
	m       *metrics
	httpTr  *http.Transport
	client  *http.Client
	limiter logLimiter

	mu      sync.RWMutex
	peers   map[uint64]*peer
	stopped bool

	inMu     sync.Mutex
	incoming map[*inStream]struct{}

	removedOnce sync.Once
	stopc       chan struct{}
	wg          sync.WaitGroup

	stateMu sync.Mutex
	statec  chan struct{} // closed and replaced whenever a peer's state changes
}

// New creates a Transport. It sends nothing until peers are added.
func New(cfg Config) *Transport {
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = time.Second
	}
	t := &Transport{
		cfg:      cfg,
		lg:       lg.With(zap.String("local-member-id", idString(cfg.LocalID))),
		local:    idString(cfg.LocalID),
		cluster:  idString(cfg.ClusterID),
		tun:      defaultTuning(cfg.DialTimeout),
		m:        newMetrics(cfg.Registerer),
		limiter:  logLimiter{every: 30 * time.Second},
		peers:    map[uint64]*peer{},
		incoming: map[*inStream]struct{}{},
		stopc:    make(chan struct{}),
		statec:   make(chan struct{}),
	}
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 15 * time.Second}
	t.httpTr = &http.Transport{
		Proxy:               nil, // peer traffic never goes through an environment proxy
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: cfg.DialTimeout + time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      16 << 10,
	}
	if cfg.TLS != nil {
		t.httpTr.TLSClientConfig = cfg.TLS.Clone()
	}
	// HTTP/1.1 only, also over TLS: one connection per stream (see the
	// package comment).
	t.httpTr.Protocols = new(http.Protocols)
	t.httpTr.Protocols.SetHTTP1(true)
	t.client = &http.Client{
		Transport:     t.httpTr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return t
}

// AddPeer starts talking to member id at urls. Adding a known peer updates
// its URLs.
func (t *Transport) AddPeer(id uint64, urls []string) {
	if id == 0 || id == t.cfg.LocalID {
		return
	}
	urls = t.cleanURLs(id, urls)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if p := t.peers[id]; p != nil {
		p.setURLs(urls)
		return
	}
	p := newPeer(t, id, urls)
	t.peers[id] = p
	t.wg.Add(2)
	go p.run()
	go p.probeLoop()
	t.lg.Info("added raft peer", zap.String("remote-peer-id", p.hex), zap.Strings("urls", urls))
}

// UpdatePeer changes the URLs of member id; a stream on a URL no longer listed
// is reopened. An unknown peer is added.
func (t *Transport) UpdatePeer(id uint64, urls []string) { t.AddPeer(id, urls) }

// RemovePeer stops talking to member id and drops what is queued for it.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.stop()
		t.lg.Info("removed raft peer", zap.String("remote-peer-id", p.hex))
	}
}

// Send queues msgs for their receivers. It never blocks on the network: a
// message for a peer whose stream is down or whose queue is full is dropped
// and the peer reported unreachable, so raft retries. MsgSnap goes out on a
// request of its own; its outcome is reported through Raft.ReportSnapshot.
func (t *Transport) Send(msgs []*raftpb.Message) {
	var unreachable []uint64
	t.mu.RLock()
	if t.stopped {
		t.mu.RUnlock()
		return
	}
	for _, m := range msgs {
		to := m.GetTo()
		if to == 0 || to == t.cfg.LocalID {
			continue
		}
		p := t.peers[to]
		if p == nil {
			t.lg.Debug("dropped a raft message to an unknown member",
				zap.String("remote-peer-id", idString(to)), zap.Stringer("type", m.GetType()))
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			p.sendSnapshot(m)
			continue
		}
		if !p.enqueue(m) && !containsID(unreachable, to) {
			unreachable = append(unreachable, to)
		}
	}
	t.mu.RUnlock()
	for _, id := range unreachable {
		t.cfg.Raft.ReportUnreachable(id)
	}
}

// ActiveSince is when the peer became active — its stream established and
// its probes answered — or the zero time if it is not active now.
func (t *Transport) ActiveSince(id uint64) time.Time {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p == nil {
		return time.Time{}
	}
	return p.activeSince()
}

// Stop closes every stream, outgoing and incoming, and waits for the
// transport's goroutines. The Handler refuses requests afterwards.
func (t *Transport) Stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	peers := t.peers
	t.peers = map[uint64]*peer{}
	t.mu.Unlock()
	close(t.stopc)
	for _, p := range peers {
		p.stop()
	}
	t.endIncoming()
	t.wg.Wait()
	t.httpTr.CloseIdleConnections()
}

// removed handles a peer's answer that this member is no longer in the
// cluster.
func (t *Transport) removed(by *peer, detail string) {
	t.removedOnce.Do(func() {
		t.lg.Error("this member was removed from the cluster; it takes no further part in raft",
			zap.String("reported-by", by.hex), zap.String("detail", detail))
		if t.cfg.OnRemoved != nil {
			go t.cfg.OnRemoved()
		}
	})
}

// setHeaders adds the headers every request carries.
func (t *Transport) setHeaders(h http.Header, to uint64) {
	h.Set(hdrProtocol, protocolVersion)
	h.Set(hdrFrom, t.local)
	h.Set(hdrTo, idString(to))
	h.Set(hdrCluster, t.cluster)
}

// stateChanged returns a channel closed at the next change of any peer's
// connection or probe state.
func (t *Transport) stateChanged() <-chan struct{} {
	t.stateMu.Lock()
	defer t.stateMu.Unlock()
	return t.statec
}

func (t *Transport) notifyState() {
	t.stateMu.Lock()
	close(t.statec)
	t.statec = make(chan struct{})
	t.stateMu.Unlock()
}

func (t *Transport) cleanURLs(id uint64, urls []string) []string {
	out := make([]string, 0, len(urls))
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.lg.Warn("ignoring an invalid peer URL", zap.String("remote-peer-id", idString(id)), zap.String("url", s))
			continue
		}
		out = append(out, strings.TrimRight(s, "/"))
	}
	return out
}

func idString(id uint64) string { return strconv.FormatUint(id, 16) }

func parseID(s string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("missing")
	}
	return strconv.ParseUint(s, 16, 64)
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// logLimiter lets through one log line per key per period, so that a
// misconfigured peer retrying every second does not flood the log.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

func (l *logLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		return false
	}
	if l.last == nil || len(l.last) > 1024 {
		l.last = map[string]time.Time{}
	}
	l.last[key] = now
	return true
}

// forget lets the next line for key through.
func (l *logLimiter) forget(key string) {
	l.mu.Lock()
	delete(l.last, key)
	l.mu.Unlock()
}

// statusError is a refusal from the remote member.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.code, http.StatusText(e.code), e.body)
}

// readStatus turns a non-success response into a statusError.
func readStatus(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(b))}
}
