package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

var (
	errStopped      = errors.New("transport stopped")
	errReset        = errors.New("stream reset")
	errPeerClosed   = errors.New("the peer ended the stream")
	errConnTimedOut = errors.New("timed out waiting for the peer to accept the stream")
)

// peer is one remote member: its outgoing stream, queue, probes and
// snapshots.
type peer struct {
	t   *Transport
	id  uint64
	hex string

	queue  chan *raftpb.Message
	stopc  chan struct{}
	resetc chan struct{} // asks run to reopen the stream
	probec chan struct{} // asks probeLoop to probe now
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once

	up       atomic.Bool // the stream is established
	snapBusy atomic.Bool // a snapshot is being sent

	sentBytes    prometheus.Counter
	sentFailures prometheus.Counter
	rtt          prometheus.Observer
	active       prometheus.Gauge
	disconnected prometheus.Counter

	mu          sync.Mutex
	urls        []string
	urlIdx      int
	streamURL   string    // the URL the stream is open on
	upSince     time.Time // when the stream was established
	probeStreak time.Time // first success of the current run of successful probes
	lastProbe   time.Time // last successful probe
	probeFails  int
}

func newPeer(t *Transport, id uint64, urls []string) *peer {
	hex := idString(id)
	ctx, cancel := context.WithCancel(context.Background())
	return &peer{
		t: t, id: id, hex: hex,
		queue:        make(chan *raftpb.Message, t.tun.queueSize),
		stopc:        make(chan struct{}),
		resetc:       make(chan struct{}, 1),
		probec:       make(chan struct{}, 1),
		ctx:          ctx,
		cancel:       cancel,
		sentBytes:    t.m.sentBytes.WithLabelValues(hex),
		sentFailures: t.m.sentFailures.WithLabelValues(hex),
		rtt:          t.m.rtt.WithLabelValues(hex),
		active:       t.m.activePeers.WithLabelValues(t.local, hex),
		disconnected: t.m.disconnected.WithLabelValues(t.local, hex),
		urls:         urls,
	}
}

func (p *peer) stop() {
	p.once.Do(func() {
		close(p.stopc)
		p.cancel()
	})
}

func (p *peer) setURLs(urls []string) {
	p.mu.Lock()
	p.urls = urls
	p.urlIdx = 0
	reset := p.streamURL != "" && !slices.Contains(urls, p.streamURL)
	p.mu.Unlock()
	if reset {
		p.reset()
	}
}

// url is the URL to use: the stream's while it is up, else the next to try.
func (p *peer) url() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.streamURL != "" {
		return p.streamURL
	}
	if len(p.urls) == 0 {
		return ""
	}
	return p.urls[p.urlIdx%len(p.urls)]
}

// nextURL moves on after a failure on u.
func (p *peer) nextURL(u string) {
	p.mu.Lock()
	if len(p.urls) > 0 && p.urls[p.urlIdx%len(p.urls)] == u {
		p.urlIdx = (p.urlIdx + 1) % len(p.urls)
	}
	p.mu.Unlock()
}

func (p *peer) reset() {
	select {
	case p.resetc <- struct{}{}:
	default:
	}
}

func (p *peer) kickProbe() {
	select {
	case p.probec <- struct{}{}:
	default:
	}
}

// enqueue queues m for the stream; false means it was dropped.
func (p *peer) enqueue(m *raftpb.Message) bool {
	if !p.up.Load() {
		p.dropped(m, "no stream to the member is established")
		return false
	}
	select {
	case p.queue <- m:
		return true
	default:
		p.dropped(m, "the send queue is full (the member is slow or unreachable)")
		return false
	}
}

func (p *peer) dropped(m *raftpb.Message, why string) {
	p.sentFailures.Inc()
	if p.t.limiter.allow("drop:" + p.hex + why) {
		p.t.lg.Warn("dropped raft message; raft will retry",
			zap.String("remote-peer-id", p.hex), zap.Stringer("type", m.GetType()), zap.String("reason", why))
	}
}

// run keeps one stream to the peer open until the peer is stopped.
func (p *peer) run() {
	defer p.t.wg.Done()
	bo := backoff{min: p.t.tun.backoffMin, max: p.t.tun.backoffMax}
	for {
		select {
		case <-p.stopc:
			return
		default:
		}
		u := p.url()
		if u == "" {
			if !p.sleep(p.t.tun.backoffMax) {
				return
			}
			continue
		}
		s, err := p.connect(u)
		if err != nil {
			select {
			case <-p.stopc:
				return
			default:
			}
			p.connectFailed(u, err)
			if !p.sleep(bo.next()) {
				return
			}
			continue
		}
		start := time.Now()
		p.streamUp(u, start)
		select {
		case <-s.done:
		case <-p.stopc:
			s.fail(errStopped)
		case <-p.resetc:
			s.fail(errReset)
		}
		p.streamDown(s.err)
		if time.Since(start) > p.t.tun.backoffMax {
			bo.reset()
		}
		if !p.sleep(bo.next()) {
			return
		}
	}
}

func (p *peer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stopc:
		return false
	}
}

func (p *peer) streamUp(u string, now time.Time) {
	p.mu.Lock()
	p.streamURL = u
	p.upSince = now
	p.mu.Unlock()
	p.up.Store(true)
	p.active.Inc()
	p.t.limiter.forget("connect:" + p.hex)
	p.t.lg.Info("established raft stream to peer", zap.String("remote-peer-id", p.hex), zap.String("url", u))
	p.kickProbe()
	p.t.notifyState()
}

func (p *peer) streamDown(err error) {
	p.up.Store(false)
	p.mu.Lock()
	u := p.streamURL
	p.streamURL = ""
	p.upSince = time.Time{}
	p.mu.Unlock()
	p.active.Dec()
	p.disconnected.Inc()
	// What is still queued is stale by the time a new stream is up.
	n := 0
	for drained := false; !drained; {
		select {
		case <-p.queue:
			n++
		default:
			drained = true
		}
	}
	stopping := errors.Is(err, errStopped)
	if n > 0 {
		p.sentFailures.Add(float64(n))
		if !stopping {
			p.t.cfg.Raft.ReportUnreachable(p.id)
		}
	}
	if !stopping {
		p.t.lg.Warn("lost raft stream to peer", zap.String("remote-peer-id", p.hex), zap.String("url", u),
			zap.Int("dropped-messages", n), zap.Error(err))
	}
	p.t.notifyState()
}

// connect opens the stream on u and returns once the peer has accepted it.
func (p *peer) connect(u string) (*outStream, error) {
	ctx, cancel := context.WithCancel(p.ctx)
	s := &outStream{p: p, ctx: ctx, ready: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+pathStream, s)
	if err != nil {
		cancel()
		return nil, err
	}
	req.ContentLength = -1
	p.t.setHeaders(req.Header, p.id)
	req.Header.Set("Content-Type", contentTypeStream)
	timer := time.AfterFunc(p.t.tun.connectTimeout, cancel)
	resp, err := p.t.client.Do(req)
	if !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		err = errConnTimedOut
	}
	if err != nil {
		s.fail(err)
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		err := readStatus(resp)
		resp.Body.Close()
		s.fail(err)
		return nil, err
	}
	close(s.ready)
	p.t.wg.Add(1)
	go func() {
		defer p.t.wg.Done()
		// The peer sends nothing back; the body ends when the stream does.
		_, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil {
			err = errPeerClosed
		}
		s.fail(err)
	}()
	return s, nil
}

// connectFailed logs a refused or failed stream and acts on refusals.
func (p *peer) connectFailed(u string, err error) {
	p.nextURL(u)
	if p.handleRefusal(err) {
		return
	}
	if p.t.limiter.allow("connect:" + p.hex) {
		p.t.lg.Warn("cannot open raft stream to peer; retrying", zap.String("remote-peer-id", p.hex),
			zap.String("url", u), zap.Error(err))
	}
}

// handleRefusal acts on the peer's refusal codes; true if err was one.
func (p *peer) handleRefusal(err error) bool {
	var se *statusError
	if !errors.As(err, &se) || se.code == http.StatusServiceUnavailable {
		return false // not a refusal: the peer is down or stopping
	}
	switch se.code {
	case http.StatusGone:
		p.t.removed(p, se.body)
	case http.StatusPreconditionFailed:
		if p.t.limiter.allow("refused:" + p.hex) {
			p.t.lg.Error("peer refuses our raft messages: it belongs to another cluster; check --initial-cluster-token / the data dir",
				zap.String("remote-peer-id", p.hex), zap.String("cluster-id", p.t.cluster), zap.String("detail", se.body))
		}
	default:
		if p.t.limiter.allow("refused:" + p.hex) {
			p.t.lg.Error("peer refuses our raft messages", zap.String("remote-peer-id", p.hex), zap.Error(err))
		}
	}
	return true
}

// outStream is the body of one outgoing stream request. net/http's
// connection writer calls WriteTo, which then writes batches of queued
// messages until the stream fails; each batch is one chunk, flushed at once.
type outStream struct {
	p     *peer
	ready chan struct{} // closed when the peer accepted the stream
	done  chan struct{} // closed when the stream ends
	// ctx is the request's context. WriteTo watches it while it waits for
	// the answer: net/http waits for the body writer before Do reports a
	// failure, so a writer waiting only for ready/done would never return.
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	err    error // why it ended; set before done is closed
}

func (s *outStream) fail(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		s.cancel()
	})
}

// Read is never called: net/http copies the body with WriteTo.
func (s *outStream) Read([]byte) (int, error) {
	return 0, errors.New("transport: the stream body is written with WriteTo")
}

func (s *outStream) Close() error { return nil }

func (s *outStream) WriteTo(w io.Writer) (int64, error) {
	p, tun := s.p, &s.p.t.tun
	var total int64
	// Wait for the peer's answer. net/http does not report a failed request
	// before this writer has returned: a request cancelled (ctx), or a
	// connection the peer accepted and dropped without answering, which only
	// a write notices — so while waiting, write a keepalive now and then.
	poll := time.NewTicker(tun.answerPoll)
	for accepted := false; !accepted; {
		select {
		case <-s.ready:
			accepted = true
		case <-s.done:
			poll.Stop()
			return total, s.err
		case <-s.ctx.Done():
			poll.Stop()
			return total, s.ctx.Err()
		case <-poll.C:
			n, err := w.Write(appendKeepalive(nil))
			total += int64(n)
			if err != nil {
				poll.Stop()
				return total, err
			}
		}
	}
	poll.Stop()
	buf := make([]byte, 0, 64<<10)
	keepalive := time.NewTimer(tun.keepalive)
	defer keepalive.Stop()
	for {
		select { // an ended stream takes nothing more from the queue
		case <-s.done:
			return total, s.err
		default:
		}
		var m *raftpb.Message
		select {
		case <-s.done:
			return total, s.err
		case m = <-p.queue:
		case <-keepalive.C:
		}
		buf = buf[:0]
		n := 0
		if m == nil {
			buf = appendKeepalive(buf)
		} else {
			buf, n = p.appendBatch(buf, m)
			if n == 0 {
				continue
			}
		}
		if _, err := w.Write(buf); err != nil {
			select {
			case <-s.done: // torn down on purpose; the connection went with it
				return total, s.err
			default:
			}
			if n > 0 {
				p.sentFailures.Add(float64(n))
				p.t.cfg.Raft.ReportUnreachable(p.id)
			}
			err = fmt.Errorf("writing to the stream: %w", err)
			s.fail(err)
			return total, err
		}
		total += int64(len(buf))
		p.sentBytes.Add(float64(len(buf)))
		keepalive.Reset(tun.keepalive)
		if cap(buf) > 4*tun.maxBatchBytes {
			buf = make([]byte, 0, 64<<10)
		}
	}
}

// appendBatch frames m and whatever else is already queued, up to the batch
// limits, and returns the buffer and the number of messages in it.
func (p *peer) appendBatch(buf []byte, m *raftpb.Message) ([]byte, int) {
	n := 0
	for {
		var err error
		if buf, err = appendFrame(buf, m); err != nil {
			p.sentFailures.Inc()
			p.t.lg.Error("cannot encode raft message; dropped", zap.String("remote-peer-id", p.hex),
				zap.Stringer("type", m.GetType()), zap.Error(err))
		} else {
			n++
		}
		if len(buf) >= p.t.tun.maxBatchBytes || n >= p.t.tun.maxBatchMsgs {
			return buf, n
		}
		select {
		case m = <-p.queue:
		default:
			return buf, n
		}
	}
}

// probeLoop probes the peer every probeInterval, and at once when asked.
func (p *peer) probeLoop() {
	defer p.t.wg.Done()
	tick := time.NewTicker(p.t.tun.probeInterval)
	defer tick.Stop()
	p.kickProbe()
	for {
		select {
		case <-p.stopc:
			return
		case <-tick.C:
		case <-p.probec:
		}
		p.probe()
	}
}

func (p *peer) probe() {
	u := p.url()
	if u == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.t.tun.probeTimeout)
	defer cancel()
	var start time.Time
	// Time the request alone, not the dial of a new connection.
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { start = time.Now() }})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+pathProbe, nil)
	if err != nil {
		return
	}
	p.t.setHeaders(req.Header, p.id)
	resp, err := p.t.client.Do(req)
	var rtt time.Duration
	if err == nil {
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			err = readStatus(resp)
		} else {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		}
		resp.Body.Close()
		rtt = time.Since(start)
	}
	select {
	case <-p.stopc:
		return
	default:
	}
	if err == nil {
		p.rtt.Observe(rtt.Seconds()) // before the peer can look active
	}
	now := time.Now()
	p.mu.Lock()
	if err == nil {
		if p.probeStreak.IsZero() {
			p.probeStreak = now
		}
		p.lastProbe = now
		p.probeFails = 0
	} else {
		p.probeStreak = time.Time{}
		p.probeFails++
	}
	fails := p.probeFails
	p.mu.Unlock()
	if err != nil {
		p.handleRefusal(err)
		if fails >= p.t.tun.probeFailReset && p.up.Load() {
			// The stream looks alive only because nothing told its
			// writer otherwise; reopen it.
			p.t.lg.Warn("peer does not answer probes; reopening the raft stream",
				zap.String("remote-peer-id", p.hex), zap.Int("failed-probes", fails), zap.Error(err))
			p.reset()
		}
	}
	p.t.notifyState()
}

func (p *peer) activeSince() time.Time {
	if !p.up.Load() {
		return time.Time{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	stale := 2*p.t.tun.probeInterval + p.t.tun.probeTimeout
	if p.upSince.IsZero() || p.probeStreak.IsZero() || time.Since(p.lastProbe) > stale {
		return time.Time{}
	}
	if p.upSince.After(p.probeStreak) {
		return p.upSince
	}
	return p.probeStreak
}

// sendSnapshot sends a MsgSnap and its db on a request of its own, one at a
// time per peer, and reports the outcome to raft.
func (p *peer) sendSnapshot(m *raftpb.Message) {
	if !p.snapBusy.CompareAndSwap(false, true) {
		p.t.lg.Warn("a snapshot is already being sent to this peer; dropping another",
			zap.String("remote-peer-id", p.hex), zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()))
		p.sentFailures.Inc()
		p.t.cfg.Raft.ReportSnapshot(p.id, raft.SnapshotFailure)
		return
	}
	p.t.wg.Add(1)
	go func() {
		defer p.t.wg.Done()
		start := time.Now()
		n, err := p.doSnapshot(m)
		p.snapBusy.Store(false)
		fields := []zap.Field{zap.String("remote-peer-id", p.hex),
			zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()),
			zap.Int64("bytes", n), zap.Duration("took", time.Since(start))}
		if err != nil {
			p.sentFailures.Inc()
			p.handleRefusal(err)
			p.t.lg.Warn("failed to send snapshot to peer", append(fields, zap.Error(err))...)
			p.t.cfg.Raft.ReportSnapshot(p.id, raft.SnapshotFailure)
			return
		}
		p.t.lg.Info("sent snapshot to peer", fields...)
		p.t.cfg.Raft.ReportSnapshot(p.id, raft.SnapshotFinish)
	}()
}

func (p *peer) doSnapshot(m *raftpb.Message) (int64, error) {
	if p.t.cfg.Snapshots == nil {
		return 0, errors.New("this member has no snapshot source configured")
	}
	u := p.url()
	if u == "" {
		return 0, errors.New("no URL for the peer")
	}
	head, err := appendFrame(nil, m)
	if err != nil {
		return 0, err
	}
	db, size, err := p.t.cfg.Snapshots(m)
	if err != nil {
		return 0, fmt.Errorf("opening the snapshot: %w", err)
	}
	body := &snapBody{r: io.MultiReader(bytes.NewReader(head), db), c: db}
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, u+pathSnapshot, body)
	if err != nil {
		db.Close()
		return 0, err
	}
	req.ContentLength = -1
	if size >= 0 {
		req.ContentLength = int64(len(head)) + size
		req.Header.Set(hdrSnapSize, fmt.Sprint(size))
	}
	p.t.setHeaders(req.Header, p.id)
	req.Header.Set("Content-Type", contentTypeSnapshot)
	resp, err := p.t.client.Do(req) // closes body, and with it db
	defer func() { p.sentBytes.Add(float64(body.n.Load())) }()
	if err != nil {
		return body.n.Load(), err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return body.n.Load(), readStatus(resp)
	}
	return body.n.Load(), nil
}

// snapBody is a snapshot request's body: it counts what was read and closes
// the db when net/http is done with it.
type snapBody struct {
	r io.Reader
	c io.Closer
	n atomic.Int64
}

func (b *snapBody) Read(buf []byte) (int, error) {
	n, err := b.r.Read(buf)
	b.n.Add(int64(n))
	return n, err
}

func (b *snapBody) Close() error { return b.c.Close() }

// backoff is an exponential reconnect delay with jitter: the n-th retry
// waits a random time in [d/2, d), d = min·2ⁿ capped at max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }
