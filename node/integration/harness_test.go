// Package integration runs real `ballast node` processes and drives them
// through real clients: go.etcd.io/etcd/client/v3 and the etcdctl/etcdutl
// binaries built by `make tools`.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binaries used by the tests. BALLAST_BIN, ETCDCTL and ETCDUTL override them;
// by default the ballast binary is built once for the test run and the tools
// are taken from the repository's bin/ (make tools).
var (
	ballastBin string
	etcdctlBin string
	etcdutlBin string
)

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration setup:", err)
		os.Exit(1)
	}
	if code >= 0 {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func setup() (int, error) {
	root, err := repoRoot()
	if err != nil {
		return 0, err
	}
	ballastBin = os.Getenv("BALLAST_BIN")
	if ballastBin == "" {
		dir, err := os.MkdirTemp("", "ballast-it-bin")
		if err != nil {
			return 0, err
		}
		ballastBin = filepath.Join(dir, "ballast")
		cmd := exec.Command("go", "build", "-o", ballastBin, ".")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("building ballast: %w", err)
		}
	}
	etcdctlBin = envOr("ETCDCTL", filepath.Join(root, "bin", "etcdctl"))
	etcdutlBin = envOr("ETCDUTL", filepath.Join(root, "bin", "etcdutl"))
	for _, b := range []string{etcdctlBin, etcdutlBin} {
		if _, err := os.Stat(b); err != nil {
			return 0, fmt.Errorf("%s is missing: run `make tools` (or set ETCDCTL/ETCDUTL): %w", b, err)
		}
	}
	return -1, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for len(ports) < n {
		p := int(nextPort.Add(1))
		if p >= portRangeEnd {
			t.Fatalf("ran out of test ports below %d", portRangeEnd)
		}
		// Bind once to skip ports some other process holds.
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		ports = append(ports, p)
	}
	return ports
}

// Test ports are handed out once each, from below the kernel's ephemeral
// range (32768 and up): a port taken with "listen on :0" and closed again can
// be handed to the next caller, or to a client connection of a parallel test,
// before the member that was meant to have it binds it.
const portRangeStart, portRangeEnd = 12000, 32000

// nextPort starts at a per-process random offset so that test binaries
// running in parallel (go test runs packages at once) rarely overlap.
var nextPort = func() *atomic.Int64 {
	var p atomic.Int64
	p.Store(int64(portRangeStart + rand.IntN(portRangeEnd-portRangeStart-4000)))
	return &p
}()

// member is one `ballast node` member; each (re)start is a new proc.
type member struct {
	t       *testing.T
	name    string
	dataDir string
	client  string // http://127.0.0.1:port
	peer    string
	args    []string // extra flags
	// initialCluster is --initial-cluster; empty means this member alone.
	initialCluster string
	// noInitialCluster leaves --initial-cluster out (etcd's default).
	noInitialCluster bool
	env              []string // extra KEY=value environment
	cur              *proc
}

// proc is one run of the process. Its goroutines touch only their own proc,
// so a restart never races with the previous run's log reader.
type proc struct {
	cmd     *exec.Cmd
	log     *lockedBuffer
	exited  chan struct{}
	exitErr error // set before exited is closed
	ready   chan struct{}
}

type memberOpt func(*member)

func withArgs(args ...string) memberOpt { return func(m *member) { m.args = append(m.args, args...) } }

// newMember prepares (but does not start) a single-member cluster.
func newMember(t *testing.T, opts ...memberOpt) *member {
	t.Helper()
	ports := freePorts(t, 2)
	m := &member{
		t:       t,
		name:    "m1",
		dataDir: filepath.Join(t.TempDir(), "data"),
		client:  fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		peer:    fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// startMember starts a single-member cluster and waits until it is ready.
func startMember(t *testing.T, opts ...memberOpt) *member {
	t.Helper()
	m := newMember(t, opts...)
	m.start()
	return m
}

func (m *member) flags() []string {
	f := []string{"node",
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.client,
		"--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer,
		"--initial-advertise-peer-urls", m.peer,
		"--log-level", "info",
	}
	if !m.noInitialCluster {
		f = append(f, "--initial-cluster", m.initialClusterFlag())
	}
	return append(f, m.args...)
}

func (m *member) initialClusterFlag() string {
	if m.initialCluster != "" {
		return m.initialCluster
	}
	return m.name + "=" + m.peer
}

// start launches the process and waits for "ready to serve client requests".
func (m *member) start() {
	m.t.Helper()
	if err := m.launch(); err != nil {
		m.t.Fatal(err)
	}
	m.waitReady()
}

// running tells whether the current process is alive.
func (m *member) running() bool {
	if m.cur == nil {
		return false
	}
	select {
	case <-m.cur.exited:
		return false
	default:
		return true
	}
}

// waitReady waits for the launched process to log that it serves clients.
func (m *member) waitReady() {
	m.t.Helper()
	p := m.cur
	select {
	case <-p.ready:
	case <-p.exited:
		m.t.Fatalf("ballast exited before it was ready (%v); log:\n%s", p.exitErr, p.log.String())
	case <-time.After(60 * time.Second):
		m.t.Fatalf("ballast not ready after 60s; log:\n%s", p.log.String())
	}
}

// launch starts the process without waiting for readiness.
func (m *member) launch() error {
	p := &proc{log: &lockedBuffer{}, exited: make(chan struct{}), ready: make(chan struct{})}
	p.cmd = exec.Command(ballastBin, m.flags()...)
	if len(m.env) > 0 {
		p.cmd.Env = append(os.Environ(), m.env...)
	}
	pr, pw := io.Pipe()
	p.cmd.Stdout = pw
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		return err
	}
	m.cur = p
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		var once sync.Once
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.log.WriteString(line + "\n")
			if strings.Contains(line, "ready to serve client requests") {
				once.Do(func() { close(p.ready) })
			}
		}
	}()
	go func() {
		p.exitErr = p.cmd.Wait()
		pw.Close()
		// The scanner may still hold the last lines it read from the pipe:
		// whoever waits for the exit reads the whole log.
		<-scanned
		close(p.exited)
	}()
	m.t.Cleanup(p.kill)
	return nil
}

// logText is the current run's log so far.
func (m *member) logText() string { return m.cur.log.String() }

// waitExit waits for the process to exit by itself and returns its log.
func (m *member) waitExit(d time.Duration) (string, error) {
	p := m.cur
	select {
	case <-p.exited:
		return p.log.String(), p.exitErr
	case <-time.After(d):
		m.t.Fatalf("ballast still running after %v; log:\n%s", d, p.log.String())
		return "", nil
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (m *member) kill() { m.cur.kill() }

func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (m *member) stop() {
	m.t.Helper()
	p := m.cur
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.exitErr != nil {
			m.t.Fatalf("ballast exited with %v after SIGTERM; log:\n%s", p.exitErr, p.log.String())
		}
	case <-time.After(30 * time.Second):
		m.t.Fatalf("ballast did not stop within 30s of SIGTERM; log:\n%s", p.log.String())
	}
}

// restart starts the process again on the same data dir with the same flags.
func (m *member) restart() {
	m.t.Helper()
	m.start()
}

func (m *member) clientv3() *clientv3.Client {
	m.t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{m.client},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { c.Close() })
	return c
}

// etcdctl runs the real etcdctl against the member.
func (m *member) etcdctl(args ...string) (stdout, stderr string, err error) {
	return runTool(etcdctlBin, append([]string{"--endpoints=" + m.client}, args...)...)
}

// mustEtcdctl runs etcdctl and fails the test if it fails.
func (m *member) mustEtcdctl(args ...string) string {
	m.t.Helper()
	out, errOut, err := m.etcdctl(args...)
	if err != nil {
		m.t.Fatalf("etcdctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func runTool(bin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	l.b.WriteString(s)
	l.mu.Unlock()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
