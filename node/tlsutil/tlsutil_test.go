package tlsutil

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballastdb/ballast/node/config"
)

// testCA issues certificates for the tests.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	serial  int64
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 100}
}

type leafOpts struct {
	cn  string
	ips []string
	dns []string
}

// issue returns a certificate and key in PEM and the certificate's serial.
func (ca *testCA) issue(t *testing.T, o leafOpts) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	serial = big.NewInt(ca.serial)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     o.dns,
	}
	for _, ip := range o.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), serial
}

func (ca *testCA) crl(t *testing.T, serials ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	ca.serial++
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(ca.serial), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// writeAtomic replaces path as an operator rotating files would (rename).
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func writePair(t *testing.T, dir, name string, cert, key []byte) (string, string) {
	t.Helper()
	cf, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeAtomic(t, cf, cert)
	writeAtomic(t, kf, key)
	return cf, kf
}

// handshake runs one TLS handshake over loopback TCP and returns the
// client's view of the connection, or the first error of either side.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3 clients learn of a refused certificate only on
			// their first read: make them read.
			_, err = tc.Write([]byte{1})
		}
		srvErr <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc := tls.Client(c, client)
	cc.SetDeadline(time.Now().Add(10 * time.Second))
	cerr := cc.Handshake()
	if cerr == nil {
		_, cerr = cc.Read(make([]byte, 1))
	}
	if err := errors.Join(<-srvErr, cerr); err != nil {
		return tls.ConnectionState{}, err
	}
	return cc.ConnectionState(), nil
}

func clientWith(ca *testCA, cert, key []byte) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.certPEM)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if cert != nil {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			panic(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

func TestServerConfig(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	other := newCA(t, "other-ca")
	caFile := filepath.Join(dir, "ca.crt")
	writeAtomic(t, caFile, ca.certPEM)
	sc, sk, _ := ca.issue(t, leafOpts{cn: "server", ips: []string{"127.0.0.1"}})
	certFile, keyFile := writePair(t, dir, "server", sc, sk)

	goodC, goodK, _ := ca.issue(t, leafOpts{cn: "alice", ips: []string{"127.0.0.1"}})
	noSANC, noSANK, _ := ca.issue(t, leafOpts{cn: "bob"})
	revC, revK, revSerial := ca.issue(t, leafOpts{cn: "mallory"})
	farC, farK, _ := ca.issue(t, leafOpts{cn: "far", ips: []string{"10.9.8.7"}})
	hostC, hostK, _ := ca.issue(t, leafOpts{cn: "h", dns: []string{"member1.example"}, ips: []string{"127.0.0.1"}})
	otherC, otherK, _ := other.issue(t, leafOpts{cn: "alice"})
	crlFile := filepath.Join(dir, "crl.pem")
	writeAtomic(t, crlFile, ca.crl(t, revSerial))

	info := config.TLSInfo{CertFile: certFile, KeyFile: keyFile}
	auth := info
	auth.ClientCertAuth, auth.TrustedCAFile = true, caFile
	withCRL := auth
	withCRL.CRLFile = crlFile
	cns := auth
	cns.AllowedCNs = []string{"carol", "alice"}
	hosts := auth
	hosts.AllowedHostnames = []string{"member1.example"}
	skipSAN := auth
	skipSAN.SkipClientSANVerify = true
	caOnly := info
	caOnly.TrustedCAFile = caFile

	cases := []struct {
		name     string
		info     config.TLSInfo
		min, max string
		suites   []string
		client   *tls.Config
		wantErr  string // substring; "" = success
	}{
		{name: "server only, anonymous client", info: info, client: clientWith(ca, nil, nil)},
		{name: "client-cert-auth refuses no cert", info: auth, client: clientWith(ca, nil, nil), wantErr: "certificate"},
		{name: "client-cert-auth accepts a CA-signed cert", info: auth, client: clientWith(ca, goodC, goodK)},
		{name: "client cert without SANs passes the SAN check", info: auth, client: clientWith(ca, noSANC, noSANK)},
		// Go's client does not even send a certificate the server's CA
		// list does not name.
		{name: "cert from another CA refused", info: auth, client: clientWith(ca, otherC, otherK), wantErr: "certificate"},
		{name: "trusted-ca-file alone requires a cert (etcd)", info: caOnly, client: clientWith(ca, nil, nil), wantErr: "certificate"},
		{name: "revoked cert refused", info: withCRL, client: clientWith(ca, revC, revK), wantErr: "revoked"},
		{name: "unrevoked cert accepted with a CRL", info: withCRL, client: clientWith(ca, goodC, goodK)},
		{name: "allowed CN matches", info: cns, client: clientWith(ca, goodC, goodK)},
		{name: "allowed CN mismatch", info: cns, client: clientWith(ca, noSANC, noSANK), wantErr: "not allowed"},
		{name: "allowed hostname matches", info: hosts, client: clientWith(ca, hostC, hostK)},
		{name: "allowed hostname mismatch", info: hosts, client: clientWith(ca, goodC, goodK), wantErr: "not allowed"},
		{name: "SAN does not match the remote address", info: auth, client: clientWith(ca, farC, farK), wantErr: "10.9.8.7"},
		{name: "SAN check skipped", info: skipSAN, client: clientWith(ca, farC, farK)},
		{name: "min TLS1.3 refuses a TLS1.2 client", info: info, min: "TLS1.3",
			client: func() *tls.Config { c := clientWith(ca, nil, nil); c.MaxVersion = tls.VersionTLS12; return c }(), wantErr: "version"},
		{name: "max TLS1.2 caps the version", info: info, max: "TLS1.2", client: clientWith(ca, nil, nil)},
		{name: "cipher suites: no common suite", info: info, max: "TLS1.2", suites: []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
			client: func() *tls.Config {
				c := clientWith(ca, nil, nil)
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
				return c
			}(), wantErr: "cipher"},
		{name: "cipher suites: common suite", info: info, max: "TLS1.2", suites: []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
			client: clientWith(ca, nil, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, err := New(Config{Info: tc.info, MinVersion: tc.min, MaxVersion: tc.max, CipherSuites: tc.suites})
			if err != nil {
				t.Fatal(err)
			}
			st, err := handshake(t, set.ServerConfig(), tc.client)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("handshake error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if tc.max == "TLS1.2" && st.Version != tls.VersionTLS12 {
				t.Errorf("version %x, want TLS 1.2", st.Version)
			}
			if len(tc.suites) > 0 && tls.CipherSuiteName(st.CipherSuite) != tc.suites[0] {
				t.Errorf("cipher suite %s, want %s", tls.CipherSuiteName(st.CipherSuite), tc.suites[0])
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	c1, k1, _ := ca.issue(t, leafOpts{cn: "a"})
	_, k2, _ := ca.issue(t, leafOpts{cn: "b"})
	mismatchC, mismatchK := writePair(t, dir, "mismatch", c1, k2)
	goodC, goodK := writePair(t, dir, "good", c1, k1)
	garbage := filepath.Join(dir, "garbage")
	writeAtomic(t, garbage, []byte("not pem"))
	cases := []struct {
		name string
		c    Config
		want string
	}{
		{"missing cert", Config{Info: config.TLSInfo{CertFile: filepath.Join(dir, "nope"), KeyFile: goodK}}, "no such file"},
		{"key does not match", Config{Info: config.TLSInfo{CertFile: mismatchC, KeyFile: mismatchK}}, "private key does not match"},
		{"bad CA", Config{Info: config.TLSInfo{CertFile: goodC, KeyFile: goodK, TrustedCAFile: garbage}}, "no PEM certificate"},
		{"bad CRL", Config{Info: config.TLSInfo{CertFile: goodC, KeyFile: goodK, CRLFile: garbage}}, "CRL"},
		{"bad version", Config{Info: config.TLSInfo{CertFile: goodC, KeyFile: goodK}, MinVersion: "TLS1.0"}, "unexpected TLS version"},
		{"min above max", Config{Info: config.TLSInfo{CertFile: goodC, KeyFile: goodK}, MinVersion: "TLS1.3", MaxVersion: "TLS1.2"}, "above"},
		{"unknown suite", Config{Info: config.TLSInfo{CertFile: goodC, KeyFile: goodK}, CipherSuites: []string{"TLS_NOPE"}}, "unknown cipher suite"},
		{"auto TLS without a dir", Config{Info: config.TLSInfo{AutoTLS: true}}, "no directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if s, err := New(Config{}); s != nil || err != nil {
		t.Fatalf("New(empty) = %v, %v; want nil, nil", s, err)
	}
}

// TestReload rotates the server certificate, the CRL and the CA on disk
// and checks that the next handshakes see each change, and that a
// half-done rotation keeps the previous certificate.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	caFile := filepath.Join(dir, "ca.crt")
	writeAtomic(t, caFile, ca.certPEM)
	c1, k1, s1 := ca.issue(t, leafOpts{cn: "server", ips: []string{"127.0.0.1"}})
	certFile, keyFile := writePair(t, dir, "server", c1, k1)
	cliC, cliK, cliSerial := ca.issue(t, leafOpts{cn: "client"})
	crlFile := filepath.Join(dir, "crl.pem")
	writeAtomic(t, crlFile, ca.crl(t))

	set, err := New(Config{Info: config.TLSInfo{CertFile: certFile, KeyFile: keyFile, ClientCertAuth: true,
		TrustedCAFile: caFile, CRLFile: crlFile}})
	if err != nil {
		t.Fatal(err)
	}
	srv := set.ServerConfig()
	serverSerial := func(client *tls.Config) (*big.Int, error) {
		st, err := handshake(t, srv, client)
		if err != nil {
			return nil, err
		}
		return st.PeerCertificates[0].SerialNumber, nil
	}
	client := clientWith(ca, cliC, cliK)
	expectSerial := func(step string, want *big.Int) {
		t.Helper()
		got, err := serverSerial(client)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("%s: server certificate serial %v, want %v", step, got, want)
		}
	}
	expectSerial("initial", s1)

	// Half a rotation: new certificate, old key. The old pair stays.
	c2, k2, s2 := ca.issue(t, leafOpts{cn: "server", ips: []string{"127.0.0.1"}})
	writeAtomic(t, certFile, c2)
	expectSerial("certificate without its key", s1)
	writeAtomic(t, keyFile, k2)
	expectSerial("rotated", s2)

	// Revoke the client's certificate.
	writeAtomic(t, crlFile, ca.crl(t, cliSerial))
	if _, err := serverSerial(client); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("after revocation: %v, want revoked", err)
	}

	// A new CA: the old client certificate is no longer trusted, one from
	// the new CA is.
	ca2 := newCA(t, "ca2")
	writeAtomic(t, caFile, ca2.certPEM)
	c3, k3, _ := ca2.issue(t, leafOpts{cn: "client2"})
	client2 := clientWith(ca, c3, k3) // still trusts the server's old CA
	if _, err := serverSerial(client2); err != nil {
		t.Fatalf("client of the new CA: %v", err)
	}
	if _, err := serverSerial(clientWith(ca, cliC, cliK)); err == nil {
		t.Fatal("client of the old CA accepted after the CA file changed")
	}

	// A deleted file keeps the last good version.
	os.Remove(crlFile)
	if _, err := serverSerial(client2); err != nil {
		t.Fatalf("CRL file removed: %v", err)
	}
}

func TestClientConfig(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "ca")
	caFile := filepath.Join(dir, "ca.crt")
	writeAtomic(t, caFile, ca.certPEM)
	sc, sk, _ := ca.issue(t, leafOpts{cn: "peer-a", ips: []string{"127.0.0.1"}})
	certFile, keyFile := writePair(t, dir, "peer", sc, sk)
	cc, ck, ccSerial := ca.issue(t, leafOpts{cn: "peer-client"})
	ccFile, ckFile := writePair(t, dir, "peer-client", cc, ck)

	server, err := New(Config{Info: config.TLSInfo{CertFile: certFile, KeyFile: keyFile, ClientCertAuth: true, TrustedCAFile: caFile}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		info    config.TLSInfo
		wantErr string
		wantCN  string // of the certificate the client presented
	}{
		{name: "cert-file doubles as client cert", info: config.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile}, wantCN: "peer-a"},
		{name: "explicit client cert", info: config.TLSInfo{CertFile: certFile, KeyFile: keyFile, ClientCertFile: ccFile, ClientKeyFile: ckFile, TrustedCAFile: caFile}, wantCN: "peer-client"},
		{name: "server CN allowed", info: config.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile, AllowedCNs: []string{"peer-a"}}, wantCN: "peer-a"},
		{name: "server CN not allowed", info: config.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile, AllowedCNs: []string{"peer-z"}}, wantErr: "not allowed"},
		{name: "no trusted CA: system roots refuse", info: config.TLSInfo{CertFile: certFile, KeyFile: keyFile}, wantErr: "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, err := New(Config{Info: tc.info})
			if err != nil {
				t.Fatal(err)
			}
			cfg := set.ClientConfig()
			cfg.ServerName = "127.0.0.1"
			var presented string
			srv := server.ServerConfig()
			inner := srv.GetConfigForClient
			srv.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				c, err := inner(h)
				if err == nil {
					v := c.VerifyConnection
					c.VerifyConnection = func(cs tls.ConnectionState) error {
						if len(cs.PeerCertificates) > 0 {
							presented = cs.PeerCertificates[0].Subject.CommonName
						}
						return v(cs)
					}
				}
				return c, err
			}
			_, err = handshake(t, srv, cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("handshake: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if presented != tc.wantCN {
				t.Fatalf("client presented CN %q, want %q", presented, tc.wantCN)
			}
		})
	}

	// The client certificate is reloaded when it changes.
	set, err := New(Config{Info: config.TLSInfo{CertFile: certFile, KeyFile: keyFile, ClientCertFile: ccFile, ClientKeyFile: ckFile, TrustedCAFile: caFile}})
	if err != nil {
		t.Fatal(err)
	}
	get := set.ClientConfig().GetClientCertificate
	before, err := get(nil)
	if err != nil || before.Leaf.SerialNumber.Cmp(ccSerial) != 0 {
		t.Fatalf("client certificate: %v, %v", before, err)
	}
	nc, nk, nSerial := ca.issue(t, leafOpts{cn: "peer-client"})
	writeAtomic(t, ckFile, nk)
	writeAtomic(t, ccFile, nc)
	after, err := get(nil)
	if err != nil || after.Leaf.SerialNumber.Cmp(nSerial) != 0 {
		t.Fatalf("after rotation: serial %v (%v), want %v", after.Leaf.SerialNumber, err, nSerial)
	}
}

func TestAutoTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fixtures", "peer")
	set, err := New(Config{Info: config.TLSInfo{AutoTLS: true}, AutoDir: dir,
		AutoHosts: []string{"127.0.0.1:2380", "localhost:2380", "[::1]:2380"}, SelfSignedCertValidity: 2, Name: "peer"})
	if err != nil {
		t.Fatal(err)
	}
	if !set.SelfSigned() || !set.CanServe() {
		t.Fatalf("SelfSigned=%v CanServe=%v", set.SelfSigned(), set.CanServe())
	}
	b, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.IPAddresses) != 2 || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "localhost" {
		t.Errorf("SANs: IPs %v DNS %v", cert.IPAddresses, cert.DNSNames)
	}
	if years := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24 / 365; years < 1.9 || years > 2.1 {
		t.Errorf("validity %.2f years, want 2", years)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "key.pem")); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode())
	}
	// Clients skip verification of self-signed certificates, as etcd's.
	if _, err := handshake(t, set.ServerConfig(), set.ClientConfig()); err != nil {
		t.Fatalf("auto TLS handshake: %v", err)
	}
	// A second start reuses the files.
	if _, err := New(Config{Info: config.TLSInfo{AutoTLS: true}, AutoDir: dir, AutoHosts: []string{"10.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(filepath.Join(dir, "cert.pem")); string(b2) != string(b) {
		t.Error("auto TLS certificate regenerated on the second start")
	}
}

func TestCheckSAN(t *testing.T) {
	defer func(f func(context.Context, string) ([]net.IP, error)) { lookupIP = f }(lookupIP)
	lookupIP = func(_ context.Context, host string) ([]net.IP, error) {
		switch host {
		case "here.test":
			return []net.IP{net.ParseIP("192.0.2.1")}, nil
		case "elsewhere.test":
			return []net.IP{net.ParseIP("198.51.100.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	from := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 4000}
	cases := []struct {
		name string
		cert *x509.Certificate
		addr net.Addr
		ok   bool
	}{
		{"no SANs", &x509.Certificate{}, from, true},
		{"IP matches", &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}}, from, true},
		{"IP differs", &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("192.0.2.2")}}, from, false},
		{"IP differs, DNS resolves to it", &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("192.0.2.2")}, DNSNames: []string{"here.test"}}, from, true},
		{"DNS resolves elsewhere", &x509.Certificate{DNSNames: []string{"elsewhere.test", "unknown.test"}}, from, false},
		{"unix socket", &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("192.0.2.2")}}, &net.UnixAddr{Name: "@", Net: "unix"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkSAN(tc.cert, tc.addr); (err == nil) != tc.ok {
				t.Fatalf("checkSAN: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
