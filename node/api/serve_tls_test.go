package api

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ballastdb/ballast/node/config"
	"github.com/ballastdb/ballast/node/h2grpc"
	"github.com/ballastdb/ballast/node/tlsutil"
)

// tlsFiles is a CA, a server certificate for 127.0.0.1/localhost and a
// client certificate with CN "alice", as files.
type tlsFiles struct {
	ca, cert, key, clientCert, clientKey string
	pool                                 *x509.CertPool
	clientPair                           tls.Certificate
}

func makeTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name string, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(serial int64, cn string, ips []net.IP, dns []string) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: ips, DNSNames: dns}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return write(cn+".crt", "CERTIFICATE", der), write(cn+".key", "EC PRIVATE KEY", kder)
	}
	f := &tlsFiles{ca: write("ca.crt", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	f.pool.AddCert(caCert)
	f.cert, f.key = issue(2, "server", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	f.clientCert, f.clientKey = issue(3, "alice", nil, nil)
	if f.clientPair, err = tls.LoadX509KeyPair(f.clientCert, f.clientKey); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *tlsFiles) serverConfig(t *testing.T) *tls.Config {
	t.Helper()
	set, err := tlsutil.New(tlsutil.Config{Info: config.TLSInfo{CertFile: f.cert, KeyFile: f.key,
		ClientCertAuth: true, TrustedCAFile: f.ca}})
	if err != nil {
		t.Fatal(err)
	}
	return set.ServerConfig()
}

func (f *tlsFiles) clientConfig(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: f.pool, ServerName: "127.0.0.1"}
	if withCert {
		c.Certificates = []tls.Certificate{f.clientPair}
	}
	return c
}

// TestServeTLS serves the full API on https:// and unixs:// and reaches it
// with a gRPC client (ALPN h2), an HTTP client (ALPN http/1.1 and h2) and
// a TLS client that offers no ALPN (sniffed).
func TestServeTLS(t *testing.T) {
	f := makeTLSFiles(t)
	lg := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	reg := prometheus.NewRegistry()
	fs := newFakeServer()
	g := NewGRPCServer(fs, Limits{MaxRequestBytes: 64 * 1024}, reg, lg)
	h := NewHTTPHandler(fs, reg, lg)
	addr := freeAddr(t)
	// client/v3 verifies a unixs:// server against the socket's file name.
	sock := filepath.Join(t.TempDir(), "localhost")
	stop, err := Serve(context.Background(), []*url.URL{{Scheme: "https", Host: addr}, {Scheme: "unixs", Path: sock}},
		g, h, lg, WithTLS(f.serverConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	for _, tc := range []struct {
		name, endpoint, serverName string
	}{
		{"https", "https://" + addr, "127.0.0.1"},
		{"unixs", "unixs://" + sock, "localhost"},
	} {
		t.Run(tc.name+"/grpc", func(t *testing.T) {
			cfg := f.clientConfig(true)
			cfg.ServerName = tc.serverName
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{tc.endpoint}, TLS: cfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			if _, err := cli.Get(ctxT(t), "k"); err != nil {
				t.Fatalf("Get over %s: %v", tc.name, err)
			}
		})
	}
	t.Run("grpc without a client certificate", func(t *testing.T) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + addr}, TLS: f.clientConfig(false),
			DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err == nil {
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err = cli.Get(ctx, "k")
		}
		if err == nil {
			t.Fatal("Get without a client certificate succeeded")
		}
	})
	for _, protos := range [][]string{{"h2", "http/1.1"}, {"http/1.1"}} {
		t.Run(fmt.Sprintf("http ALPN %v", protos), func(t *testing.T) {
			cfg := f.clientConfig(true)
			cfg.NextProtos = protos
			tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/health")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != 1 || !strings.Contains(string(body), "true") {
				t.Fatalf("GET /health: %s %s %q", resp.Proto, resp.Status, body)
			}
		})
	}
	t.Run("http without ALPN", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, f.clientConfig(true))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(line, "200") {
			t.Fatalf("status line %q, %v", line, err)
		}
	})
}

// TestServeTLSCommonName checks that handlers see the client
// certificate's CN, over HTTP (ALPN and sniffed) and gRPC.
func TestServeTLSCommonName(t *testing.T) {
	f := makeTLSFiles(t)
	cns := make(chan string, 1)
	record := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		cns <- CommonName(ctx)
		return h(ctx, req)
	}
	// Client connections reach the wire transport; the in-memory one only
	// serves the gateway.
	g := &GRPCServer{
		inproc: grpc.NewServer(grpc.Creds(TLSConnCredentials())),
		wire:   h2grpc.NewServer(h2grpc.Options{UnaryInterceptors: []grpc.UnaryServerInterceptor{record}, Handshake: handshakeAuthInfo}),
	}
	healthpb.RegisterHealthServer(g.inproc, health.NewServer())
	healthpb.RegisterHealthServer(g.wire, health.NewServer())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "cn="+CommonName(r.Context())) })
	addr := freeAddr(t)
	stop, err := Serve(context.Background(), []*url.URL{{Scheme: "https", Host: addr}}, g, h, nil, WithTLS(f.serverConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(f.clientConfig(true))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if cn := <-cns; cn != "alice" {
		t.Errorf("gRPC handler saw CN %q, want alice", cn)
	}

	tr := &http.Transport{TLSClientConfig: f.clientConfig(true)}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "cn=alice" {
		t.Errorf("HTTP (ALPN) handler saw %q", body)
	}

	c, err := tls.Dial("tcp", addr, f.clientConfig(true)) // no ALPN: sniffed
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	all, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(all), "cn=alice") {
		t.Errorf("HTTP (sniffed) response %q", all)
	}
}

func TestServeTLSRefusesSecureURLsWithoutConfig(t *testing.T) {
	for _, u := range []*url.URL{{Scheme: "https", Host: freeAddr(t)}, {Scheme: "unixs", Path: filepath.Join(t.TempDir(), "s")}} {
		if _, err := Serve(context.Background(), []*url.URL{u}, &GRPCServer{inproc: grpc.NewServer()}, http.NotFoundHandler(), nil); err == nil ||
			!strings.Contains(err.Error(), "no TLS certificate") {
			t.Errorf("%s without TLS: %v", u, err)
		}
	}
}

func TestServeMetricsTLS(t *testing.T) {
	f := makeTLSFiles(t)
	addr := freeAddr(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Proto, " cn=", CommonName(r.Context())) })
	stop, err := ServeMetrics(context.Background(), []*url.URL{{Scheme: "https", Host: addr}}, h, nil, WithTLS(f.serverConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	tr := &http.Transport{TLSClientConfig: f.clientConfig(true), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "HTTP/1.1 cn=alice" {
		t.Fatalf("metrics over https: %q", body)
	}
	tr2 := &http.Transport{TLSClientConfig: f.clientConfig(false)}
	defer tr2.CloseIdleConnections()
	if _, err := (&http.Client{Transport: tr2, Timeout: 5 * time.Second}).Get("https://" + addr + "/metrics"); err == nil {
		t.Fatal("metrics served without a client certificate")
	}
}
