package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/ballastdb/ballast/node/auth"
	"github.com/ballastdb/ballast/node/concurrency"
)

// http2Preface opens every HTTP/2 connection; gRPC clients send it first
// thing, HTTP/1 clients never do.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffTimeout bounds how long a new connection may take to show its first
// bytes before it is dropped.
const sniffTimeout = 10 * time.Second

// gracefulTimeout bounds how long stop waits for in-flight requests. Watch
// and keep-alive streams never finish on their own, so with clients
// attached stop takes this long before cutting them off.
const gracefulTimeout = 2 * time.Second

// Serve listens on every URL (http://host:port, unix://path, and with
// WithTLS https://host:port, unixs://path) and serves gRPC and HTTP on
// each. Plain connections are told apart by their first bytes: the HTTP/2
// preface goes to g's native transport, anything else to h (with the gRPC
// gateway in front when h is NewHTTPHandler's). TLS connections are told
// apart after the handshake, by the protocol ALPN settled on (see
// pickALPN), or by their first bytes when the client offered none.
// It returns once all listeners are bound; if one cannot be, it closes the
// others and returns the error. stop, also run when ctx ends, closes the
// listeners and shuts both servers down gracefully.
func Serve(ctx context.Context, urls []*url.URL, g *GRPCServer, h http.Handler, lg *zap.Logger, opts ...ServeOption) (stop func(), err error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	o := serveOptions(opts)
	lns, err := listenAll(urls, o.tls)
	if err != nil {
		return nil, err
	}
	var cors []string
	if root, ok := h.(*httpRoot); ok {
		cors = root.cors
	}
	h, stopGateway, err := startGateway(g.inproc, h, lg)
	if err != nil {
		closeAll(lns)
		return nil, err
	}
	h = withCORS(h, cors)
	hs := newHTTPServer(h, lg)
	var wg sync.WaitGroup
	for _, ln := range lns {
		m := &connMux{ln: ln.Listener, tls: ln.tls, grpcL: newChanListener(ln.Addr()), httpL: newChanListener(ln.Addr()), lg: lg}
		wg.Add(3)
		go func() { defer wg.Done(); m.run() }()
		go func() {
			defer wg.Done()
			if err := g.serve(m.grpcL); err != nil {
				lg.Warn("gRPC server stopped serving a client listener", zap.Stringer("address", ln.Addr()), zap.Error(err))
			}
		}()
		go func() {
			defer wg.Done()
			if err := hs.Serve(m.httpL); err != nil && !errors.Is(err, http.ErrServerClosed) {
				lg.Warn("HTTP server stopped serving a client listener", zap.Stringer("address", ln.Addr()), zap.Error(err))
			}
		}()
		lg.Info("serving client traffic (gRPC and HTTP)", zap.Stringer("address", ln.Addr()), zap.Bool("tls", ln.tls != nil))
	}
	stop = sync.OnceFunc(func() {
		closeAll(lns)
		stopGracefully(g, hs)
		stopGateway()
		wg.Wait()
	})
	context.AfterFunc(ctx, stop)
	return stop, nil
}

// ServeMetrics serves h alone (HTTP/1 only) on every URL, for
// --listen-metrics-urls. It returns like Serve; https:// URLs take the
// client TLS configuration given WithTLS, as etcd's.
func ServeMetrics(ctx context.Context, urls []*url.URL, h http.Handler, lg *zap.Logger, opts ...ServeOption) (stop func(), err error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	o := serveOptions(opts)
	lns, err := listenAll(urls, o.tls)
	if err != nil {
		return nil, err
	}
	hs := newHTTPServer(h, lg)
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var l net.Listener = ln.Listener
			if ln.tls != nil {
				l = tls.NewListener(l, http1Only(ln.tls))
			}
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				lg.Warn("metrics server stopped serving a listener", zap.Stringer("address", ln.Addr()), zap.Error(err))
			}
		}()
		lg.Info("serving metrics", zap.Stringer("address", ln.Addr()))
	}
	stop = sync.OnceFunc(func() {
		stopGracefully(nil, hs)
		wg.Wait()
	})
	context.AfterFunc(ctx, stop)
	return stop, nil
}

func newHTTPServer(h http.Handler, lg *zap.Logger) *http.Server {
	el, _ := zap.NewStdLogAt(lg, zap.DebugLevel)
	if el == nil {
		el = log.New(os.Stderr, "", 0)
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: sniffTimeout, ErrorLog: el, ConnContext: withConnTLS}
}

func stopGracefully(g *GRPCServer, hs *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), gracefulTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if g != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { g.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				g.Stop()
				<-done
			}
		}()
	}
	if err := hs.Shutdown(ctx); err != nil {
		hs.Close()
	}
	wg.Wait()
}

// boundListener is a bound URL; tls is set for https:// and unixs://.
type boundListener struct {
	net.Listener
	tls *tls.Config
}

// listenAll binds every URL or none. Secure URLs need tlsCfg.
func listenAll(urls []*url.URL, tlsCfg *tls.Config) ([]boundListener, error) {
	lns := make([]boundListener, 0, len(urls))
	for _, u := range urls {
		secure := u.Scheme == "https" || u.Scheme == "unixs"
		if secure && tlsCfg == nil {
			closeAll(lns)
			return nil, fmt.Errorf("listen on %s: no TLS certificate configured; set --cert-file and --key-file (or --auto-tls)", u)
		}
		ln, err := listen(u)
		if err != nil {
			closeAll(lns)
			return nil, err
		}
		b := boundListener{Listener: ln}
		if secure {
			b.tls = tlsCfg
		}
		lns = append(lns, b)
	}
	return lns, nil
}

func closeAll(lns []boundListener) {
	for _, ln := range lns {
		ln.Close()
	}
}

func listen(u *url.URL) (net.Listener, error) {
	switch u.Scheme {
	case "http", "https":
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w (is another process using the port?)", u, err)
		}
		return ln, nil
	case "unix", "unixs":
		// etcd names the socket file by host and path together, so both
		// unix://name and unix:///abs/path work.
		path := u.Host + u.Path
		// A socket left behind by a previous run would make the bind fail;
		// remove it, but nothing that is not a socket.
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", u, err)
		}
		return ln, nil
	default:
		return nil, fmt.Errorf("listen on %s: unsupported scheme %q; use http://, https://, unix:// or unixs://", u, u.Scheme)
	}
}

// ServeOption configures Serve and ServeMetrics.
type ServeOption func(*serveConfig)

type serveConfig struct{ tls *tls.Config }

func serveOptions(opts []ServeOption) serveConfig {
	var c serveConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithTLS serves https:// and unixs:// URLs with cfg (from
// tlsutil.Set.ServerConfig); its NextProtos are replaced. Without it such
// URLs are refused.
func WithTLS(cfg *tls.Config) ServeOption {
	return func(c *serveConfig) {
		if cfg != nil {
			c.tls = withALPN(cfg)
		}
	}
}

// ALPN protocol IDs.
const (
	alpnH2    = "h2"
	alpnHTTP1 = "http/1.1"
)

// pickALPN chooses what a TLS client connection will speak, which is also
// where it goes. gRPC clients (grpc-go, thus etcdctl, client/v3 and
// kube-apiserver) offer "h2" alone: they get h2 and the native gRPC
// transport. HTTP clients (curl, Go's net/http, browsers) offer
// "http/1.1" too, with or without "h2": they get HTTP/1.1 and the HTTP
// handler (health, metrics, the gateway), because h2 would land them on
// the gRPC transport, which answers nothing but gRPC. A client that offers
// neither is sniffed after the handshake like a plain connection.
func pickALPN(offered []string) []string {
	switch {
	case slices.Contains(offered, alpnHTTP1):
		return []string{alpnHTTP1}
	case slices.Contains(offered, alpnH2):
		return []string{alpnH2}
	}
	return nil
}

// withALPN wraps cfg so that every handshake negotiates pickALPN's choice.
func withALPN(cfg *tls.Config) *tls.Config {
	base := cfg.Clone()
	inner := base.GetConfigForClient
	base.GetConfigForClient = nil
	out := base.Clone()
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := base
		if inner != nil {
			ic, err := inner(hello)
			if err != nil {
				return nil, err
			}
			if ic != nil {
				c = ic
			}
		}
		c = c.Clone()
		c.NextProtos = pickALPN(hello.SupportedProtos)
		return c, nil
	}
	return out
}

// http1Only is cfg for a listener that serves nothing but HTTP/1.1.
func http1Only(cfg *tls.Config) *tls.Config {
	base := cfg.Clone()
	inner := base.GetConfigForClient
	base.GetConfigForClient = nil
	base.NextProtos = []string{alpnHTTP1}
	out := base.Clone()
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if inner == nil {
			return base, nil
		}
		ic, err := inner(hello)
		if err != nil || ic == nil {
			return base, err
		}
		ic = ic.Clone()
		ic.NextProtos = []string{alpnHTTP1}
		return ic, nil
	}
	return out
}

// connMux accepts connections on ln and hands each to the gRPC or the HTTP
// listener: with tls set, after the handshake and by the negotiated ALPN
// protocol; otherwise (or when the client offered no ALPN) after sniffing
// the first bytes. Both run on a goroutine per connection so that a silent
// client delays nobody else.
type connMux struct {
	ln           net.Listener
	tls          *tls.Config // nil: plain connections
	grpcL, httpL *chanListener
	lg           *zap.Logger
}

// run ends when ln is closed. The gRPC and HTTP servers close grpcL and
// httpL themselves when they stop.
func (m *connMux) run() {
	var backoff time.Duration
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, instead of giving up the port.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			m.lg.Warn("failed to accept a client connection; retrying", zap.Error(err), zap.Duration("retry-in", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go m.dispatch(c)
	}
}

func (m *connMux) dispatch(c net.Conn) {
	if m.tls != nil {
		tc := tls.Server(c, m.tls)
		ctx, cancel := context.WithTimeout(context.Background(), sniffTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			// Certificate refusals (revoked, CN not allowed) are logged
			// with details by the verifier; this is the summary.
			m.lg.Warn("rejected client connection: TLS handshake failed",
				zap.String("remote-addr", c.RemoteAddr().String()), zap.Error(err))
			c.Close()
			return
		}
		switch tc.ConnectionState().NegotiatedProtocol {
		case alpnH2:
			m.grpcL.deliver(tc)
			return
		case alpnHTTP1:
			// net/http sees a *tls.Conn and fills in Request.TLS.
			m.httpL.deliver(tc)
			return
		}
		c = tc // no ALPN: sniff the decrypted bytes
	}
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	var buf [len(http2Preface)]byte
	n := 0
	// Read until the bytes stop matching the preface (HTTP/1: usually the
	// very first byte) or all of it has arrived (gRPC). A short HTTP/1
	// request therefore never waits for bytes that will not come.
	for n < len(buf) && string(buf[:n]) == http2Preface[:n] {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil && string(buf[:n]) == http2Preface[:n] {
			c.Close() // closed or silent before showing what it speaks
			return
		}
	}
	c.SetReadDeadline(time.Time{})
	pc := &prefixConn{Conn: c, prefix: append([]byte(nil), buf[:n]...)}
	if string(buf[:n]) == http2Preface {
		m.grpcL.deliver(pc)
	} else {
		m.httpL.deliver(pc)
	}
}

// prefixConn replays the sniffed bytes before reading on.
// It hides a *tls.Conn from net/http; withConnTLS makes up for it.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// chanListener is a net.Listener fed by connMux.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// tlsConnKey keys the client's *tls.Conn in an HTTP request's context (see
// TLSState).
type tlsConnKey struct{}

// withConnTLS is http.Server.ConnContext: it records the TLS connection
// under every request, also for connections that reach net/http wrapped
// (sniffed ones), for which Request.TLS stays nil. It runs before the
// handshake on listeners where net/http does it, so TLSState reads the
// state only when a handler asks.
func withConnTLS(ctx context.Context, c net.Conn) context.Context {
	if tc := tlsConnOf(c); tc != nil {
		return context.WithValue(ctx, tlsConnKey{}, tc)
	}
	return ctx
}

func tlsConnOf(c net.Conn) *tls.Conn {
	for {
		switch x := c.(type) {
		case *tls.Conn:
			return x
		case *prefixConn:
			c = x.Conn
		default:
			return nil
		}
	}
}

// TLSState is the TLS state of the client connection a request came on,
// or nil for plain connections: from the context of an HTTP request, or of
// a gRPC call when the gRPC server runs with TLSConnCredentials.
func TLSState(ctx context.Context) *tls.ConnectionState {
	if tc, ok := ctx.Value(tlsConnKey{}).(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			return &ti.State
		}
	}
	return nil
}

// CommonName is the CN of the verified client certificate of the
// connection a request came on, "" without one. With --client-cert-auth,
// etcd authenticates such a client as the user the CN names (when it sends
// no token). Calls through the HTTP gateway never have one: the gateway
// reaches the gRPC server in memory, and etcd ignores the gateway's own
// certificate too.
func CommonName(ctx context.Context) string {
	cn, _ := commonName(ctx)
	return cn
}

func commonName(ctx context.Context) (string, bool) {
	st := TLSState(ctx)
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return "", false
	}
	return st.VerifiedChains[0][0].Subject.CommonName, true
}

// CredentialsOf is what a gRPC call carries to say who it comes from: the
// token client/v3 sends after Authenticate (metadata "token"; the HTTP
// gateway turns an Authorization header into "authorization"), and, when
// certAuth (--client-cert-auth) is on, the client certificate's CN — or,
// on the Lock and Election services' in-memory calls, the CN of the caller
// they act for (concurrency.ForwardedCommonName).
func CredentialsOf(ctx context.Context, certAuth bool) auth.Credentials {
	var c auth.Credentials
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, k := range []string{rpctypes.TokenFieldNameGRPC, rpctypes.TokenFieldNameSwagger} {
			if v := md.Get(k); len(v) > 0 {
				c.Token, c.HasToken = v[0], true
				break
			}
		}
	}
	if certAuth {
		c.CommonName, c.HasCert = commonName(ctx)
		if !c.HasCert {
			c.CommonName, c.HasCert = concurrency.ForwardedCommonName(ctx)
		}
	}
	return c
}

// TLSConnCredentials are gRPC server credentials that do no handshake of
// their own: Serve has already done it. They only expose the connection's
// TLS state to the handlers (peer.FromContext(ctx).AuthInfo is a
// credentials.TLSInfo), so that CommonName works for gRPC calls.
func TLSConnCredentials() credentials.TransportCredentials { return tlsConnCreds{} }

type tlsConnCreds struct{}

func (tlsConnCreds) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("ballast: TLSConnCredentials are for servers only")
}

func (tlsConnCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if tc := tlsConnOf(c); tc != nil {
		return c, credentials.TLSInfo{State: tc.ConnectionState(),
			CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return c, plainAuthInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (tlsConnCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}
func (tlsConnCreds) Clone() credentials.TransportCredentials { return tlsConnCreds{} }

//nolint:staticcheck // required by the interface
func (tlsConnCreds) OverrideServerName(string) error { return nil }

// plainAuthInfo is the AuthInfo of a connection without TLS.
type plainAuthInfo struct{ credentials.CommonAuthInfo }

func (plainAuthInfo) AuthType() string { return "insecure" }
