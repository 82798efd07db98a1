// Package envtestetcd runs `ballast node` as the etcd of controller-runtime's
// envtest (v0.24.1), with envtest's own driver: envtest execs a binary named
// etcd, checks its --help for --unsafe-no-fsync, passes its default flags
// and polls /health. It is a package of its own so that the Kubernetes
// client libraries stay out of node/integration's test binary.
package envtestetcd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var (
	ballastBin string
	repoRoot   string
)

func TestMain(m *testing.M) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		os.Exit(1)
	}
	repoRoot = filepath.Dir(strings.TrimSpace(string(out)))
	ballastBin = os.Getenv("BALLAST_BIN")
	cleanup := func() {}
	if ballastBin == "" {
		dir, err := os.MkdirTemp("", "ballast-envtest-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cleanup = func() { os.RemoveAll(dir) }
		ballastBin = filepath.Join(dir, "ballast")
		cmd := exec.Command("go", "build", "-o", ballastBin, ".")
		cmd.Dir = repoRoot
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building ballast:", err)
			cleanup()
			os.Exit(1)
		}
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// assets is a directory holding an "etcd" link to the ballast binary, as
// KUBEBUILDER_ASSETS would hold etcd itself.
func assets(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(ballastBin, filepath.Join(dir, "etcd")); err != nil {
		t.Fatal(err)
	}
	return dir
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEnvtestEtcd starts ballast with envtest's etcd driver, uses it with
// client/v3 and stops it the way envtest does.
func TestEnvtestEtcd(t *testing.T) {
	var out lockedBuffer
	e := &envtest.Etcd{
		Path:         filepath.Join(assets(t), "etcd"),
		Out:          &out,
		Err:          &out,
		StartTimeout: 60 * time.Second,
		StopTimeout:  30 * time.Second,
	}
	if err := e.Start(); err != nil {
		t.Fatalf("envtest could not start ballast as etcd: %v; log:\n%s", err, out.String())
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = e.Stop()
		}
	})
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.URL.String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "envtest", "ballast"); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "envtest")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "ballast" {
		t.Fatalf("get = %v, %v", resp, err)
	}
	// envtest passes --unsafe-no-fsync only when `etcd --help` lists it.
	if !strings.Contains(out.String(), "--unsafe-no-fsync is set") {
		t.Errorf("envtest did not pass --unsafe-no-fsync; log:\n%s", out.String())
	}
	stopped = true
	if err := e.Stop(); err != nil {
		t.Fatalf("envtest could not stop ballast: %v; log:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ballast node stopped") {
		t.Errorf("ballast did not stop cleanly on envtest's signal; log:\n%s", out.String())
	}
}

// TestEnvtestEnvironment runs a whole envtest control plane, kube-apiserver
// included, on ballast, and writes an object through controller-runtime's
// client. It needs kube-apiserver: $KUBE_APISERVER, or bin/kube-apiserver
// from hack/kube/build.sh.
func TestEnvtestEnvironment(t *testing.T) {
	apiserver := os.Getenv("KUBE_APISERVER")
	if apiserver == "" {
		apiserver = filepath.Join(repoRoot, "bin", "kube-apiserver")
	}
	if _, err := os.Stat(apiserver); err != nil {
		t.Skipf("no kube-apiserver (%v): build it with hack/kube/build.sh kube-apiserver or set KUBE_APISERVER", err)
	}
	dir := assets(t)
	if err := os.Symlink(apiserver, filepath.Join(dir, "kube-apiserver")); err != nil {
		t.Fatal(err)
	}
	var etcdOut lockedBuffer
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		ControlPlaneStartTimeout: 3 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	env.ControlPlane.Etcd = &envtest.Etcd{Out: &etcdOut, Err: &etcdOut}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest did not start on ballast: %v; etcd log:\n%s", err, etcdOut.String())
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "on-ballast", Namespace: "default"},
		Data:       map[string]string{"etcd": "ballast"},
	}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	got := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(cm), got); err != nil || got.Data["etcd"] != "ballast" {
		t.Fatalf("get = %v, %v", got.Data, err)
	}
	if !strings.Contains(etcdOut.String(), "starting ballast node") {
		t.Errorf("the etcd envtest ran is not ballast; its log:\n%s", etcdOut.String())
	}
}
