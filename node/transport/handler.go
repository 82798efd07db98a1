package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Handler serves the raft paths (under /raft/) to the other members.
func (t *Transport) Handler() http.Handler { return http.HandlerFunc(t.serveHTTP) }

func (t *Transport) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var method string
	var serve func(http.ResponseWriter, *http.Request, uint64)
	switch r.URL.Path {
	case pathStream:
		method, serve = http.MethodPost, t.serveStream
	case pathSnapshot:
		method, serve = http.MethodPost, t.serveSnapshot
	case pathProbe:
		method, serve = http.MethodGet, t.serveProbe
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		refuse(w, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	select {
	case <-t.stopc:
		refuse(w, r, http.StatusServiceUnavailable, "this member's raft transport is stopped")
		return
	default:
	}
	from, ok := t.admit(w, r)
	if !ok {
		return
	}
	serve(w, r, from)
}

// admit checks who is calling and answers refusals itself.
func (t *Transport) admit(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	h := w.Header()
	h.Set(hdrMember, t.local)
	h.Set(hdrCluster, t.cluster)
	if v := r.Header.Get(hdrProtocol); v != protocolVersion {
		refuse(w, r, http.StatusBadRequest, fmt.Sprintf("unsupported raft transport protocol %q; this member (%s) speaks %s",
			v, t.local, protocolVersion))
		return 0, false
	}
	from, err := parseID(r.Header.Get(hdrFrom))
	if err != nil || from == 0 {
		refuse(w, r, http.StatusBadRequest, "bad or missing "+hdrFrom+" header")
		return 0, false
	}
	cluster, err := parseID(r.Header.Get(hdrCluster))
	if err != nil {
		refuse(w, r, http.StatusBadRequest, "bad or missing "+hdrCluster+" header")
		return 0, false
	}
	fromHex, clusterHex := idString(from), idString(cluster)
	if cluster != t.cfg.ClusterID {
		if t.limiter.allow("cluster:" + fromHex + "/" + clusterHex) {
			t.lg.Error(fmt.Sprintf("refusing raft messages from member %s of cluster %s; this member is in cluster %s — check --initial-cluster-token / the data dir",
				fromHex, clusterHex, t.cluster),
				zap.String("remote-peer-id", fromHex), zap.String("remote-cluster-id", clusterHex),
				zap.String("local-cluster-id", t.cluster), zap.String("remote-addr", r.RemoteAddr))
		}
		refuse(w, r, http.StatusPreconditionFailed, fmt.Sprintf("cluster ID mismatch: member %s is in cluster %s, but this member (%s) is in cluster %s",
			fromHex, clusterHex, t.local, t.cluster))
		return 0, false
	}
	if v := r.Header.Get(hdrTo); v != "" {
		if to, err := parseID(v); err != nil || to != t.cfg.LocalID {
			if t.limiter.allow("to:" + fromHex + "/" + v) {
				t.lg.Error("refusing raft messages meant for another member; member "+fromHex+"'s peer URLs for "+v+" point here",
					zap.String("remote-peer-id", fromHex), zap.String("meant-for", v), zap.String("remote-addr", r.RemoteAddr))
			}
			refuse(w, r, http.StatusMisdirectedRequest, fmt.Sprintf("this is member %s, not %s", t.local, v))
			return 0, false
		}
	}
	if t.cfg.Raft.IsIDRemoved(from) {
		if t.limiter.allow("removed:" + fromHex) {
			t.lg.Warn(fmt.Sprintf("refusing raft messages from member %s: it was removed from the cluster", fromHex),
				zap.String("remote-peer-id", fromHex), zap.String("remote-addr", r.RemoteAddr))
		}
		refuse(w, r, http.StatusGone, fmt.Sprintf("member %s was removed from cluster %s", fromHex, t.cluster))
		return 0, false
	}
	return from, true
}

// refuse answers a request without reading its body. An HTTP/1.1 server
// would otherwise read the body before answering, and a stream's sender
// writes nothing until it has the answer; the connection is closed instead.
func refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if r.ProtoMajor == 1 && r.Method != http.MethodGet && r.Method != http.MethodHead {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.Header().Set("Connection", "close")
		defer func() { _ = rc.SetReadDeadline(time.Now()) }()
	}
	http.Error(w, msg, code)
}

func (t *Transport) serveProbe(w http.ResponseWriter, _ *http.Request, _ uint64) {
	w.WriteHeader(http.StatusNoContent)
}

// inStream is one incoming stream, tracked so that a newer stream from the
// same member, or Stop, can end it.
type inStream struct {
	from   uint64
	cancel context.CancelFunc
	rc     *http.ResponseController
}

// end unblocks the stream's reader. Called with t.inMu held, so never after
// the handler has returned.
func (in *inStream) end() {
	in.cancel()
	_ = in.rc.SetReadDeadline(time.Now())
}

func (t *Transport) addIncoming(in *inStream) {
	t.inMu.Lock()
	defer t.inMu.Unlock()
	select {
	case <-t.stopc: // Stop ran endIncoming already
		in.end()
		return
	default:
	}
	for old := range t.incoming {
		if old.from == in.from {
			// The sender opened a new stream; the old one is dead to it.
			old.end()
			delete(t.incoming, old)
		}
	}
	t.incoming[in] = struct{}{}
}

func (t *Transport) removeIncoming(in *inStream) {
	t.inMu.Lock()
	delete(t.incoming, in)
	t.inMu.Unlock()
}

func (t *Transport) endIncoming() {
	t.inMu.Lock()
	defer t.inMu.Unlock()
	for in := range t.incoming {
		in.end()
		delete(t.incoming, in)
	}
}

// serveStream accepts a stream and hands its messages to raft in order.
func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request, from uint64) {
	fromHex := idString(from)
	rc := http.NewResponseController(w)
	if r.ProtoMajor == 1 {
		// Answer at once and keep reading the body: the sender learns that
		// the stream is accepted before it writes anything.
		if err := rc.EnableFullDuplex(); err != nil {
			refuse(w, r, http.StatusInternalServerError, "this server cannot stream: "+err.Error())
			return
		}
		// The connection ends with the stream: whatever the sender is
		// writing when it does is not a next request.
		w.Header().Set("Connection", "close")
	}
	_ = rc.SetWriteDeadline(time.Time{})
	idle := t.tun.idleTimeout
	lastDeadline := time.Now()
	_ = rc.SetReadDeadline(lastDeadline.Add(idle))
	w.Header().Set("Content-Type", contentTypeStream)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}

	// When the handler returns, net/http would read on in the body looking
	// for its end; make that read fail at once.
	defer func() { _ = rc.SetReadDeadline(time.Now()) }()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	in := &inStream{from: from, cancel: cancel, rc: rc}
	t.addIncoming(in)
	defer t.removeIncoming(in)
	t.lg.Info("accepted raft stream from peer", zap.String("remote-peer-id", fromHex), zap.String("remote-addr", r.RemoteAddr))

	recv := t.m.recvBytes.WithLabelValues(fromHex)
	fr := newFrameReader(bufio.NewReaderSize(r.Body, 64<<10))
	processErrs := 0
	for {
		if now := time.Now(); now.Sub(lastDeadline) > time.Second {
			_ = rc.SetReadDeadline(now.Add(idle))
			lastDeadline = now
			if ctx.Err() != nil { // ended meanwhile: end() set the deadline before we moved it
				return
			}
		}
		m, n, err := fr.next()
		if n > 0 {
			recv.Add(float64(n))
		}
		if err != nil {
			t.streamEnded(ctx, fromHex, err)
			return
		}
		if m == nil {
			continue // keepalive
		}
		fr.shrink()
		if m.GetFrom() != from || m.GetTo() != t.cfg.LocalID {
			t.lg.Error("peer sent a raft message with the wrong sender or receiver; closing its stream",
				zap.String("remote-peer-id", fromHex), zap.String("message-from", idString(m.GetFrom())),
				zap.String("message-to", idString(m.GetTo())))
			return
		}
		if t.cfg.Raft.IsIDRemoved(from) {
			t.lg.Warn(fmt.Sprintf("closing the raft stream from member %s: it was removed from the cluster", fromHex))
			return
		}
		if err := t.cfg.Raft.Process(ctx, m); err != nil {
			if ctx.Err() != nil {
				return
			}
			if processErrs++; processErrs == 1 {
				t.lg.Warn("raft did not accept a message from peer", zap.String("remote-peer-id", fromHex),
					zap.Stringer("type", m.GetType()), zap.Error(err))
			}
		}
	}
}

func (t *Transport) streamEnded(ctx context.Context, fromHex string, err error) {
	switch {
	case ctx.Err() != nil:
		t.lg.Debug("raft stream from peer closed", zap.String("remote-peer-id", fromHex))
	case errors.Is(err, io.EOF):
		t.lg.Info("peer closed its raft stream", zap.String("remote-peer-id", fromHex))
	default:
		t.lg.Warn("raft stream from peer broke", zap.String("remote-peer-id", fromHex), zap.Error(err))
	}
}

// serveSnapshot receives a MsgSnap and its db: the SnapshotSink takes the
// db, and only when it has accepted it is the message handed to raft.
func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request, from uint64) {
	fromHex := idString(from)
	if t.cfg.Receive == nil {
		refuse(w, r, http.StatusNotImplemented, "this member cannot receive snapshots")
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	body := &progressReader{r: r.Body, rc: rc, idle: t.tun.snapIdle}
	body.touch()
	defer func() { t.m.recvBytes.WithLabelValues(fromHex).Add(float64(body.n)) }()
	br := bufio.NewReaderSize(body, 64<<10)
	m, _, err := newFrameReader(br).next()
	if err == nil && m == nil {
		err = errors.New("empty frame")
	}
	if err == nil && (m.GetType() != raftpb.MsgSnap || m.GetFrom() != from || m.GetTo() != t.cfg.LocalID) {
		err = fmt.Errorf("expected a MsgSnap from %s to %s, got %s from %s to %s", fromHex, t.local,
			m.GetType(), idString(m.GetFrom()), idString(m.GetTo()))
	}
	if err != nil {
		t.lg.Warn("bad snapshot request from peer", zap.String("remote-peer-id", fromHex), zap.Error(err))
		refuse(w, r, http.StatusBadRequest, "bad snapshot message: "+err.Error())
		return
	}
	index := m.GetSnapshot().GetMetadata().GetIndex()
	start := time.Now()
	t.lg.Info("receiving snapshot from peer", zap.String("remote-peer-id", fromHex), zap.Uint64("index", index),
		zap.String("size", r.Header.Get(hdrSnapSize)))
	if err := t.cfg.Receive(m, br); err != nil {
		t.lg.Error("failed to receive snapshot from peer", zap.String("remote-peer-id", fromHex),
			zap.Uint64("index", index), zap.Int64("bytes", body.n), zap.Error(err))
		refuse(w, r, http.StatusInternalServerError, "receiving the snapshot: "+err.Error())
		return
	}
	if err := t.cfg.Raft.Process(r.Context(), m); err != nil {
		t.lg.Error("raft did not accept the snapshot from peer", zap.String("remote-peer-id", fromHex),
			zap.Uint64("index", index), zap.Error(err))
		refuse(w, r, http.StatusInternalServerError, "processing the snapshot: "+err.Error())
		return
	}
	t.lg.Info("received snapshot from peer", zap.String("remote-peer-id", fromHex), zap.Uint64("index", index),
		zap.Int64("bytes", body.n), zap.Duration("took", time.Since(start)))
	w.WriteHeader(http.StatusNoContent)
}

// progressReader counts bytes and pushes the read deadline forward while
// data keeps coming, so a stalled upload ends but a long one does not.
type progressReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	n    int64
	last time.Time
}

func (p *progressReader) touch() {
	p.last = time.Now()
	_ = p.rc.SetReadDeadline(p.last.Add(p.idle))
}

func (p *progressReader) Read(b []byte) (int, error) {
	if time.Since(p.last) > time.Second {
		p.touch()
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	return n, err
}
