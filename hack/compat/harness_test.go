package compat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binaries under test; see the package comment.
var (
	etcdBin    string
	ballastBin string
	etcdctlBin string
	etcdutlBin string
)

func TestMain(m *testing.M) {
	if err := findBinaries(); err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func findBinaries() error {
	// hack/compat -> repository root
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	bin := filepath.Join(wd, "..", "..", "bin")
	for _, b := range []struct {
		dst  *string
		env  string
		name string
		how  string
	}{
		{&etcdBin, "ETCD_BIN", "etcd", "hack/tools.sh etcd"},
		{&ballastBin, "BALLAST_BIN", "ballast", "make build"},
		{&etcdctlBin, "ETCDCTL", "etcdctl", "hack/tools.sh etcdctl"},
		{&etcdutlBin, "ETCDUTL", "etcdutl", "hack/tools.sh etcdutl"},
	} {
		p := os.Getenv(b.env)
		if p == "" {
			p = filepath.Join(bin, b.name)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%s: %w (run `%s`, or set %s; `make compat` does both)", b.name, err, b.how, b.env)
		}
		*b.dst = abs
	}
	return nil
}

// kind is the implementation a server process runs.
type kind string

const (
	etcd    kind = "etcd"
	ballast kind = "ballast"
)

// server is one single-member cluster: a real etcd or a `ballast node`
// process with its own data directory and loopback ports.
type server struct {
	t       testing.TB
	kind    kind
	name    string
	dataDir string
	client  string // http://127.0.0.1:port
	peer    string
	extra   []string
	fresh   bool // the data directory is new: the member may be restarted elsewhere

	cmd     *exec.Cmd
	log     *syncBuffer
	ready   chan struct{}
	exited  chan struct{}
	mu      sync.Mutex
	exitErr error
}

// Ports come from below the usual ephemeral range (32768+), so that the
// clients' own outgoing connections cannot take them between the probe and
// the server's bind, and are never handed out twice in one run.
var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatal("no free loopback port found")
		}
		p := 20000 + rand.IntN(12000)
		if usedPorts[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		usedPorts[p] = true
		ports = append(ports, p)
	}
	return ports
}

// newServer prepares a server of kind k on fresh ports. dataDir may name an
// existing (for instance restored) data directory; empty means a new one.
func newServer(t testing.TB, k kind, dataDir string, extra ...string) *server {
	ports := freePorts(t, 2)
	fresh := dataDir == ""
	if fresh {
		dataDir = filepath.Join(t.TempDir(), string(k)+".data")
	}
	return &server{
		t:       t,
		kind:    k,
		name:    "m1",
		dataDir: dataDir,
		client:  fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		peer:    fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		extra:   extra,
		fresh:   fresh,
	}
}

// args are the same etcd flags for both implementations.
func (s *server) args() []string {
	a := []string{
		"--name", s.name,
		"--data-dir", s.dataDir,
		"--listen-client-urls", s.client,
		"--advertise-client-urls", s.client,
		"--listen-peer-urls", s.peer,
		"--initial-advertise-peer-urls", s.peer,
		"--initial-cluster", s.name + "=" + s.peer,
		"--log-level", "info",
	}
	a = append(a, s.extra...)
	if s.kind == ballast {
		a = append([]string{"node"}, a...)
	}
	return a
}

// start launches the process; wait blocks until it logged readiness.
func (s *server) start() error {
	bin := etcdBin
	if s.kind == ballast {
		bin = ballastBin
	}
	log, ready, exited := &syncBuffer{}, make(chan struct{}), make(chan struct{})
	cmd := exec.Command(bin, s.args()...)
	cmd.Env = cleanEnv()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	s.log, s.ready, s.exited, s.cmd = log, ready, exited, cmd
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if strings.Contains(line, "ready to serve client requests") {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		pw.Close()
		close(exited)
	}()
	s.t.Cleanup(func() { killProc(cmd, exited) })
	return nil
}

func killProc(cmd *exec.Cmd, exited chan struct{}) {
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

func (s *server) wait() error {
	select {
	case <-s.ready:
		return nil
	case <-s.exited:
		s.mu.Lock()
		defer s.mu.Unlock()
		return fmt.Errorf("%s exited before it was ready (%v); log:\n%s", s.kind, s.exitErr, s.log.String())
	case <-time.After(60 * time.Second):
		return fmt.Errorf("%s not ready after 60s; log:\n%s", s.kind, s.log.String())
	}
}

// kill stops the process with SIGKILL and waits for it.
func (s *server) kill() {
	if s.cmd != nil {
		killProc(s.cmd, s.exited)
	}
}

// stop asks the process to exit (SIGTERM) and waits up to 20s.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(20 * time.Second):
		s.kill()
		return fmt.Errorf("%s did not exit within 20s of SIGTERM", s.kind)
	}
}

func (s *server) newClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{s.client},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// startServers starts the given servers concurrently and waits for all.
func startServers(t testing.TB, ss ...*server) {
	t.Helper()
	for _, s := range ss {
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
	}
	var errs []error
	for _, s := range ss {
		err := s.wait()
		// another process took a port between the probe and the bind:
		// a fresh member can start over on new ports
		for retry := 0; err != nil && retry < 3 && s.fresh && strings.Contains(s.log.String(), "address already in use"); retry++ {
			s.kill()
			if rerr := os.RemoveAll(s.dataDir); rerr != nil {
				t.Fatal(rerr)
			}
			ports := freePorts(t, 2)
			s.client = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
			s.peer = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
			if err = s.start(); err == nil {
				err = s.wait()
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// cleanEnv is the environment of every child process: the test's own minus
// ETCD*/ETCDCTL* variables, which both etcd and etcdctl would read.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// runTool runs etcdctl or etcdutl to completion (bounded by 30s) and
// returns its stdout, stderr and exit code.
func runTool(bin string, args []string, stdin string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			code = -1
			errOut.WriteString("run: " + err.Error() + "\n")
		}
		if ctx.Err() != nil {
			errOut.WriteString("(killed after 30s)\n")
		}
	}
	return out.String(), errOut.String(), code
}

// streamTool runs a long-running etcdctl (watch), reads stdout until it has
// seen lines lines, the process exits, or d passes, then kills it.
func streamTool(bin string, args []string, lines int, d time.Duration) (stdout, stderr, end string) {
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	var errOut syncBuffer
	cmd.Stderr = &errOut
	pr, err := cmd.StdoutPipe()
	if err != nil {
		return "", err.Error(), "error"
	}
	if err := cmd.Start(); err != nil {
		return "", err.Error(), "error"
	}
	type line struct {
		s  string
		ok bool
	}
	lc := make(chan line)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 4<<20), 4<<20)
		for sc.Scan() {
			lc <- line{sc.Text(), true}
		}
		close(lc)
	}()
	var out strings.Builder
	n := 0
	timer := time.NewTimer(d)
	defer timer.Stop()
	end = ""
loop:
	for n < lines {
		select {
		case l, ok := <-lc:
			if !ok {
				break loop
			}
			out.WriteString(l.s + "\n")
			n++
		case <-timer.C:
			end = fmt.Sprintf("still running after %v with %d of %d lines", d, n, lines)
			break loop
		}
	}
	if n == lines {
		end = fmt.Sprintf("read %d lines", lines)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	go func() {
		for range lc {
		}
	}()
	werr := cmd.Wait()
	if end == "" {
		code := 0
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			code = ee.ExitCode()
		}
		end = fmt.Sprintf("exited with %d after %d lines", code, n)
	}
	return out.String(), errOut.String(), end
}
