package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a CA that issues the certificates of one test, into files.
type testPKI struct {
	t      *testing.T
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{t: t, dir: t.TempDir(), serial: 1}
	var err error
	if p.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ballast test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	p.cert, _ = x509.ParseCertificate(der)
	p.caFile = filepath.Join(p.dir, "ca.crt")
	p.write(p.caFile, "CERTIFICATE", der)
	return p
}

// write replaces path atomically, as an operator rotating files would.
func (p *testPKI) write(path, typ string, der []byte) {
	p.t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		p.t.Fatal(err)
	}
}

// issue writes <name>.crt and <name>.key for CN cn, valid for 127.0.0.1
// and localhost, usable by servers and clients.
func (p *testPKI) issue(name, cn string) (certFile, keyFile string, serial *big.Int) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serial++
	serial = big.NewInt(p.serial)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	// Key first: a server that reloads in between sees a mismatched pair
	// and keeps the old one until the certificate arrives.
	p.write(keyFile, "EC PRIVATE KEY", kder)
	p.write(certFile, "CERTIFICATE", der)
	return certFile, keyFile, serial
}

// writeCRL (re)writes a CRL revoking serials.
func (p *testPKI) writeCRL(path string, serials ...*big.Int) {
	p.t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	p.serial++
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(p.serial),
		ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries}, p.cert, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(path, "X509 CRL", der)
}

func (p *testPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.cert)
	return pool
}

// httpsURL turns a harness URL (http://127.0.0.1:port) into https.
func httpsURL(u string) string { return strings.Replace(u, "http://", "https://", 1) }

// etcdctlTLS runs etcdctl against endpoint with TLS flags.
func etcdctlTLS(endpoint string, tlsFlags []string, args ...string) (string, string, error) {
	return runTool(etcdctlBin, append(append([]string{"--endpoints=" + endpoint, "--dial-timeout=3s", "--command-timeout=5s"}, tlsFlags...), args...)...)
}

// serverCertSerial dials addr (host:port) and returns the serial of the
// certificate the server presents.
func serverCertSerial(t *testing.T, addr string, p *testPKI, cert, key string) *big.Int {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: p.pool(), Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestTLSClient serves clients on https:// and unixs:// with client
// certificate authentication and a CRL, and rotates the server
// certificate and the CRL on disk while the member runs.
func TestTLSClient(t *testing.T) {
	p := newPKI(t)
	srvCert, srvKey, srvSerial := p.issue("server", "server")
	aliceCert, aliceKey, _ := p.issue("alice", "alice")
	malloryCert, malloryKey, mallorySerial := p.issue("mallory", "mallory")
	crl := filepath.Join(p.dir, "client.crl")
	p.writeCRL(crl)

	m := newMember(t)
	m.client = httpsURL(m.client)
	https := m.client
	// client/v3 verifies a unixs:// server against the socket's file name.
	sock := filepath.Join(t.TempDir(), "localhost")
	unixs := "unixs://" + sock
	m.args = append(m.args,
		"--listen-client-urls", https+","+unixs,
		"--cert-file", srvCert, "--key-file", srvKey,
		"--client-cert-auth", "--trusted-ca-file", p.caFile, "--client-crl-file", crl,
		"--tls-max-version", "TLS1.2", "--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
	m.start()

	alice := []string{"--cacert=" + p.caFile, "--cert=" + aliceCert, "--key=" + aliceKey}
	mallory := []string{"--cacert=" + p.caFile, "--cert=" + malloryCert, "--key=" + malloryKey}
	noCert := []string{"--cacert=" + p.caFile}
	mustTLS := func(ep string, flags []string, args ...string) string {
		t.Helper()
		out, errOut, err := etcdctlTLS(ep, flags, args...)
		if err != nil {
			t.Fatalf("etcdctl %v over %s: %v\n%s%s", args, ep, err, out, errOut)
		}
		return out
	}
	mustFail := func(what, ep string, flags []string) {
		t.Helper()
		if out, errOut, err := etcdctlTLS(ep, flags, "get", "k"); err == nil {
			t.Fatalf("%s: etcdctl get succeeded:\n%s%s", what, out, errOut)
		}
	}

	mustTLS(https, alice, "put", "k", "v1")
	if out := mustTLS(https, alice, "get", "k", "--print-value-only"); strings.TrimSpace(out) != "v1" {
		t.Fatalf("get over https: %q", out)
	}
	if out := mustTLS(unixs, alice, "get", "k", "--print-value-only"); strings.TrimSpace(out) != "v1" {
		t.Fatalf("get over unixs: %q", out)
	}
	mustTLS(https, alice, "endpoint", "health")
	mustFail("no client certificate", https, noCert)
	mustFail("no client certificate (unixs)", unixs, noCert)
	mustFail("plain text against https", strings.Replace(https, "https://", "http://", 1), nil)

	// --tls-max-version and --cipher-suites as negotiated.
	host := strings.TrimPrefix(https, "https://")
	pair, err := tls.LoadX509KeyPair(aliceCert, aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", host, &tls.Config{RootCAs: p.pool(), Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	st := c.ConnectionState()
	c.Close()
	if st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		t.Errorf("negotiated version %x suite %s, want TLS 1.2 with the configured suite", st.Version, tls.CipherSuiteName(st.CipherSuite))
	}

	// Revoking mallory's certificate takes effect at the next connection.
	mustTLS(https, mallory, "get", "k")
	p.writeCRL(crl, mallorySerial)
	mustFail("revoked certificate", https, mallory)
	waitLog(t, m, "is revoked", 10*time.Second)
	mustTLS(https, alice, "get", "k")

	// Rotating the server certificate: new connections get the new one.
	if got := serverCertSerial(t, host, p, aliceCert, aliceKey); got.Cmp(srvSerial) != 0 {
		t.Fatalf("server certificate serial %v, want %v", got, srvSerial)
	}
	_, _, newSerial := p.issue("server", "server") // same files
	if got := serverCertSerial(t, host, p, aliceCert, aliceKey); got.Cmp(newSerial) != 0 {
		t.Fatalf("after rotation: server certificate serial %v, want %v", got, newSerial)
	}
	mustTLS(https, alice, "put", "k", "v2")
	if out := mustTLS(unixs, alice, "get", "k", "--print-value-only"); strings.TrimSpace(out) != "v2" {
		t.Fatalf("get after rotation: %q", out)
	}
	if !m.running() {
		t.Fatal("member exited")
	}
}

// tlsCluster prepares n members whose peer URLs are https, each with its
// own peer certificate (CN member-i), peer client-cert auth and
// --peer-cert-allowed-cn naming the members.
func tlsCluster(t *testing.T, p *testPKI, n int, extra ...string) *cluster {
	t.Helper()
	var allowed []string
	for i := range n {
		allowed = append(allowed, fmt.Sprintf("member-%d", i+1))
	}
	c := newCluster(t, n)
	var ic []string
	for i, m := range c.members {
		m.peer = httpsURL(m.peer)
		cert, key, _ := p.issue(m.name+"-peer", fmt.Sprintf("member-%d", i+1))
		m.args = append(m.args, "--peer-cert-file", cert, "--peer-key-file", key,
			"--peer-client-cert-auth", "--peer-trusted-ca-file", p.caFile,
			"--peer-cert-allowed-cn", strings.Join(allowed, ","))
		m.args = append(m.args, extra...)
		ic = append(ic, m.name+"="+m.peer)
	}
	for _, m := range c.members {
		m.initialCluster = strings.Join(ic, ",")
	}
	return c
}

// TestTLSPeers forms a 3-member cluster over https peer URLs, replicates
// through it, and refuses a joining member whose certificate's CN is not
// allowed.
func TestTLSPeers(t *testing.T) {
	p := newPKI(t)
	c := tlsCluster(t, p, 3)
	c.start()
	ctx := ctxT(t, 60*time.Second)
	if _, err := c.members[0].clientv3().Put(ctx, "over", "tls"); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		resp, err := m.clientv3().Get(ctx, "over")
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "tls" {
			t.Fatalf("%s: %v, %v", m.name, resp, err)
		}
	}
	if out := c.members[0].mustEtcdctl("member", "list"); strings.Count(out, ", started, ") != 3 || !strings.Contains(out, "https://") {
		t.Fatalf("member list:\n%s", out)
	}

	// An intruder with a certificate from the same CA but another CN
	// cannot even learn the membership.
	in := newMember(t)
	in.name = "intruder"
	in.peer = httpsURL(in.peer)
	cert, key, _ := p.issue("intruder", "intruder")
	in.args = append(in.args, "--peer-cert-file", cert, "--peer-key-file", key,
		"--peer-client-cert-auth", "--peer-trusted-ca-file", p.caFile,
		"--initial-cluster-state", "existing")
	in.initialCluster = c.members[0].initialCluster + ",intruder=" + in.peer
	if err := in.launch(); err != nil {
		t.Fatal(err)
	}
	log, err := in.waitExit(60 * time.Second)
	if err == nil || !strings.Contains(log, "cannot join the existing cluster") {
		t.Fatalf("intruder: exit %v; log:\n%s", err, tail(log, 30))
	}
	waitLog(t, c.members[0], `"common-name":"intruder"`, 10*time.Second)
	if l := c.members[0].logText(); !strings.Contains(l, "rejected connection") || !strings.Contains(l, "not allowed") {
		t.Fatalf("member 1 did not log the refusal:\n%s", tail(l, 20))
	}
	// The cluster still works.
	if _, err := c.members[2].clientv3().Put(ctx, "still", "ok"); err != nil {
		t.Fatal(err)
	}
}

// TestTLSAuto runs a 3-member cluster with --auto-tls and --peer-auto-tls:
// certificates are generated under <data-dir>/fixtures, peers talk over
// them, and clients connect with verification off.
func TestTLSAuto(t *testing.T) {
	c := newCluster(t, 3)
	var ic []string
	for _, m := range c.members {
		m.peer = httpsURL(m.peer)
		m.client = httpsURL(m.client)
		m.args = append(m.args, "--auto-tls", "--peer-auto-tls")
		ic = append(ic, m.name+"="+m.peer)
	}
	for _, m := range c.members {
		m.initialCluster = strings.Join(ic, ",")
	}
	c.start()
	for _, m := range c.members {
		for _, side := range []string{"client", "peer"} {
			for _, f := range []string{"cert.pem", "key.pem"} {
				if _, err := os.Stat(filepath.Join(m.dataDir, "fixtures", side, f)); err != nil {
					t.Errorf("%s: %v", m.name, err)
				}
			}
		}
	}
	insecure := []string{"--insecure-skip-tls-verify"}
	if out, errOut, err := etcdctlTLS(c.members[0].client, insecure, "put", "auto", "tls"); err != nil {
		t.Fatalf("put: %v %s%s", err, out, errOut)
	}
	out, errOut, err := etcdctlTLS(c.members[2].client, insecure, "get", "auto", "--print-value-only")
	if err != nil || strings.TrimSpace(out) != "tls" {
		t.Fatalf("get from member 3: %q %v %s", out, err, errOut)
	}
	// Without skipping verification the self-signed certificate is refused.
	if _, _, err := etcdctlTLS(c.members[0].client, nil, "get", "auto"); err == nil {
		t.Fatal("etcdctl trusted a self-signed certificate")
	}
	// A restart reuses the generated certificates.
	m := c.members[1]
	before, _ := os.ReadFile(filepath.Join(m.dataDir, "fixtures", "peer", "cert.pem"))
	m.stop()
	m.restart()
	after, _ := os.ReadFile(filepath.Join(m.dataDir, "fixtures", "peer", "cert.pem"))
	if string(before) != string(after) {
		t.Error("peer certificate regenerated on restart")
	}
	u, _ := url.Parse(m.client)
	if out, errOut, err := etcdctlTLS("https://"+u.Host, insecure, "get", "auto", "--print-value-only"); err != nil || strings.TrimSpace(out) != "tls" {
		t.Fatalf("get after restart: %q %v %s", out, err, errOut)
	}
}
