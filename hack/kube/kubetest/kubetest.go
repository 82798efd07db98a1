// Package kubetest starts a real kube-apiserver on a single `ballast node` (or,
// as a baseline, a real etcd) for tests: loopback only, every wait bounded,
// both processes stopped by t.Cleanup. The binaries come from the repository's
// bin/ (make build; hack/kube/build.sh) unless BALLAST_BIN, KUBE_APISERVER,
// KUBECTL or ETCD_BIN name them.
//
//	env := kubetest.Start(t, kubetest.Options{})
//	cs := kubernetes.NewForConfigOrDie(env.Rest)
package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// AdminToken authenticates as user "admin" in group system:masters.
const AdminToken = "ballast-kubetest-admin-token"

// Options tune Start. The zero value runs kube-apiserver with its defaults
// on Ballast.
type Options struct {
	// Backend is "ballast" or "etcd" (a real etcd as a baseline, from
	// ETCD_BIN or bin/etcd built by hack/tools.sh etcd). Empty means
	// $KUBE_TEST_BACKEND, else ballast.
	Backend string
	// ArtifactsDir keeps the logs, certificates and kubeconfig. Empty means
	// $KUBE_TEST_ARTIFACTS, else a directory removed after the test.
	ArtifactsDir string
	// CompactionInterval is --etcd-compaction-interval (0 keeps kube's
	// default of 5m).
	CompactionInterval time.Duration
	// APIServerArgs are appended to kube-apiserver's flags; a repeated
	// flag overrides the one set by Start.
	APIServerArgs []string
	// ReadyTimeout bounds the wait for /readyz (default 2m).
	ReadyTimeout time.Duration
}

// Env is a running storage server with kube-apiserver in front of it.
type Env struct {
	Backend      string // "ballast" or "etcd"
	ArtifactsDir string
	EtcdURL      string // client URL of the storage server
	APIURL       string // https://127.0.0.1:<port>
	CAPEM        []byte // trust anchor for APIURL
	Rest         *rest.Config
	Kubeconfig   string           // admin kubeconfig file for kubectl
	Kubectl      string           // path of kubectl, "" when not built
	Etcd         *clientv3.Client // straight to the storage server
	Storage      *Process
	APIServer    *Process
	// CompactionLog is the line the storage server logs after compacting.
	CompactionLog string
}

// Start starts the storage server and kube-apiserver and returns once
// kube-apiserver's /readyz answers 200. It fails the test otherwise.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if o.Backend == "" {
		o.Backend = envOr("KUBE_TEST_BACKEND", "ballast")
	}
	if o.ArtifactsDir == "" {
		o.ArtifactsDir = os.Getenv("KUBE_TEST_ARTIFACTS")
	}
	if o.ArtifactsDir == "" {
		o.ArtifactsDir = t.TempDir()
	} else if err := os.MkdirAll(o.ArtifactsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	e := &Env{Backend: o.Backend, ArtifactsDir: o.ArtifactsDir}

	var storageBin string
	var storageArgs []string
	switch o.Backend {
	case "ballast":
		storageBin = ballastBinary(t, root)
		storageArgs = []string{"node"}
		e.CompactionLog = "finished compaction"
	case "etcd":
		storageBin = envOr("ETCD_BIN", filepath.Join(root, "bin", "etcd"))
		e.CompactionLog = "finished scheduled compaction"
	default:
		t.Fatalf("kubetest: backend %q: want ballast or etcd", o.Backend)
	}
	apiserverBin := envOr("KUBE_APISERVER", filepath.Join(root, "bin", "kube-apiserver"))
	for _, b := range []string{storageBin, apiserverBin} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("kubetest: %v: run make kube-test (or hack/kube/build.sh; hack/tools.sh etcd for the etcd baseline)", err)
		}
	}
	e.Kubectl = envOr("KUBECTL", filepath.Join(root, "bin", "kubectl"))
	if _, err := os.Stat(e.Kubectl); err != nil {
		e.Kubectl = ""
	}

	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	e.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	e.APIURL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])

	e.Storage = startProcess(t, o.Backend, o.ArtifactsDir, storageBin, append(storageArgs,
		"--name", "kube",
		"--data-dir", filepath.Join(t.TempDir(), "data"),
		"--listen-client-urls", e.EtcdURL,
		"--advertise-client-urls", e.EtcdURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "kube="+peerURL,
		"--log-level", "info",
	)...)
	if err := e.Storage.WaitLog("ready to serve client requests", time.Minute); err != nil {
		t.Fatalf("%v; log:\n%s", err, e.Storage.Tail(40))
	}
	e.Etcd, err = clientv3.New(clientv3.Config{
		Endpoints:   []string{e.EtcdURL},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Etcd.Close() })

	pkiDir := filepath.Join(o.ArtifactsDir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := writePKI(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	e.CAPEM = p.caPEM
	tokens := filepath.Join(pkiDir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(AdminToken+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--etcd-servers=" + e.EtcdURL,
		"--storage-backend=etcd3",
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports[2]),
		// Only published in the default/kubernetes Endpoints, which reject
		// loopback addresses; nothing dials it (192.0.2.0/24 is TEST-NET-1).
		"--advertise-address=192.0.2.1",
		"--cert-dir=" + filepath.Join(o.ArtifactsDir, "certs"),
		"--tls-cert-file=" + p.servingCert,
		"--tls-private-key-file=" + p.servingKey,
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPublic,
		"--service-account-signing-key-file=" + p.saPrivate,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--profiling=false",
		"--v=2",
	}
	if o.CompactionInterval > 0 {
		args = append(args, "--etcd-compaction-interval="+o.CompactionInterval.String())
	}
	e.APIServer = startProcess(t, "kube-apiserver", o.ArtifactsDir, apiserverBin, append(args, o.APIServerArgs...)...)
	if err := e.waitReadyz(o.ReadyTimeout); err != nil {
		t.Fatalf("%v\nkube-apiserver log tail:\n%s\n%s log tail:\n%s", err, e.APIServer.Tail(60), o.Backend, e.Storage.Tail(20))
	}

	e.Rest = &rest.Config{
		Host:            e.APIURL,
		BearerToken:     AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.CAPEM},
		QPS:             500,
		Burst:           1000,
		// No Timeout: it would also cut watches. Calls carry contexts.
	}
	e.Kubeconfig = filepath.Join(o.ArtifactsDir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: e.APIURL, CertificateAuthorityData: e.CAPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: AdminToken}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin"}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, e.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	return e
}

// Get performs an authenticated GET of path (e.g. "/metrics") on
// kube-apiserver and returns the status code and body.
func (e *Env) Get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.APIURL+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CAPEM)
	c := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, string(body), err
}

// waitReadyz polls /readyz (there is no event to wait for) until it answers
// 200, kube-apiserver exits or d passes.
func (e *Env) waitReadyz(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		code, body, err := e.Get(ctx, "/readyz?verbose")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("HTTP %d\n%s", code, body)
		}
		select {
		case <-e.APIServer.Exited():
			return fmt.Errorf("kube-apiserver exited (%v) before /readyz", e.APIServer.ExitErr())
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver /readyz not OK within %v; last answer: %s", d, last)
		case <-tick.C:
		}
	}
}

// repoRoot is the Ballast checkout: BALLAST_ROOT, else the nearest directory
// above the working directory whose go.mod declares the root module.
func repoRoot() (string, error) {
	if r := os.Getenv("BALLAST_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.TrimSpace(line) == "module github.com/ballastdb/ballast" {
					return dir, nil
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("kubetest: no Ballast checkout above the working directory; set BALLAST_ROOT")
		}
		dir = parent
	}
}

// ballastBinary is BALLAST_BIN, else bin/ballast, else a fresh build of the
// checkout into the test's temporary directory.
func ballastBinary(t testing.TB, root string) string {
	t.Helper()
	if b := os.Getenv("BALLAST_BIN"); b != "" {
		return b
	}
	b := filepath.Join(root, "bin", "ballast")
	if _, err := os.Stat(b); err == nil {
		return b
	}
	b = filepath.Join(t.TempDir(), "ballast")
	cmd := exec.Command("go", "build", "-o", b, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ballast: %v\n%s", err, out)
	}
	return b
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// freePorts returns n distinct loopback ports, each handed out once per
// process and free when it was handed out, from below the kernel's
// ephemeral range: a port taken with "listen on :0" and closed again can
// become the source port of a client connection before the server meant to
// have it binds it.
func freePorts(n int) ([]int, error) {
	var ports []int
	for len(ports) < n {
		p := int(nextPort.Add(1))
		if p >= portRangeEnd {
			return nil, fmt.Errorf("ran out of test ports below %d", portRangeEnd)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // held by another process
		}
		l.Close()
		ports = append(ports, p)
	}
	return ports, nil
}

const portRangeStart, portRangeEnd = 12000, 32000

// nextPort starts at a random offset per process, so test binaries running
// at once rarely meet.
var nextPort = func() *atomic.Int64 {
	var p atomic.Int64
	p.Store(int64(portRangeStart + rand.IntN(portRangeEnd-portRangeStart-4000)))
	return &p
}()
