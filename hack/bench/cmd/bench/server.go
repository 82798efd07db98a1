package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// server is one of the two implementations under test.
type server struct {
	Name string // "etcd" or "ballast"
	Bin  string
	Args []string // leading arguments before the flags ("node" for ballast)
}

// member is one running process.
type member struct {
	name      string
	clientURL string
	peerURL   string
	dataDir   string
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{}
	exitErr   error
}

// cluster is a running set of members of one server kind.
type cluster struct {
	srv     server
	members []*member
}

// commonFlags are passed identically to both servers: etcd's defaults made
// explicit where a default could plausibly differ, fsync on, pprof on (the
// memory figures read the live heap through it), logs at warn.
func commonFlags() []string {
	return []string{
		"--snapshot-count=10000",
		"--heartbeat-interval=100",
		"--election-timeout=1000",
		"--quota-backend-bytes=4294967296",
		"--auto-compaction-retention=0",
		"--max-txn-ops=128",
		"--unsafe-no-fsync=false",
		"--enable-pprof=true",
		"--log-level=warn",
	}
}

// freePorts reserves n loopback ports and releases them together just
// before use.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startCluster starts n members of srv with fresh data directories under
// dir. It does not wait for them to serve; see waitReady.
func startCluster(srv server, dir string, n int, token string) (*cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &cluster{srv: srv}
	var initial []string
	for i := range n {
		m := &member{
			name:      fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.dataDir = filepath.Join(dir, m.name+".data")
		m.logPath = filepath.Join(dir, m.name+".log")
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	env := cleanEnv()
	for _, m := range c.members {
		args := append([]string{}, srv.Args...)
		args = append(args,
			"--name="+m.name,
			"--data-dir="+m.dataDir,
			"--listen-client-urls="+m.clientURL,
			"--advertise-client-urls="+m.clientURL,
			"--listen-peer-urls="+m.peerURL,
			"--initial-advertise-peer-urls="+m.peerURL,
			"--initial-cluster="+strings.Join(initial, ","),
			"--initial-cluster-state=new",
			"--initial-cluster-token="+token,
		)
		args = append(args, commonFlags()...)
		logf, err := os.Create(m.logPath)
		if err != nil {
			c.stop()
			return nil, err
		}
		cmd := exec.Command(srv.Bin, args...)
		cmd.Env = env
		cmd.Stdout = logf
		cmd.Stderr = logf
		// Own process group: a Ctrl-C at the terminal reaches the bench,
		// which stops the servers itself.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			c.stop()
			return nil, fmt.Errorf("start %s: %w", srv.Bin, err)
		}
		m.cmd = cmd
		m.exited = make(chan struct{})
		go func() {
			m.exitErr = cmd.Wait()
			logf.Close()
			close(m.exited)
		}()
	}
	return c, nil
}

// cleanEnv is the environment without ETCD_* variables, so that only the
// flags configure the servers.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL)
	}
	return eps
}

func (c *cluster) pids() []int {
	var pids []int
	for _, m := range c.members {
		if m.cmd != nil && m.cmd.Process != nil {
			pids = append(pids, m.cmd.Process.Pid)
		}
	}
	return pids
}

// exitStatus describes how an exited member ended.
func (m *member) exitStatus() string {
	if m.cmd != nil && m.cmd.ProcessState != nil {
		return m.cmd.ProcessState.String()
	}
	return fmt.Sprint(m.exitErr)
}

// exitedMember returns a member that has exited, if any.
func (c *cluster) exitedMember() *member {
	for _, m := range c.members {
		select {
		case <-m.exited:
			return m
		default:
		}
	}
	return nil
}

// anyExited is closed when any member exits.
func (c *cluster) anyExited() <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	for _, m := range c.members {
		go func() {
			<-m.exited
			once.Do(func() { close(ch) })
		}()
	}
	return ch
}

// waitReady waits until every member reports the same leader and a
// linearizable write through all endpoints succeeds, or the timeout passes,
// or a member exits.
func (c *cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.endpoints(),
		DialTimeout: timeout,
		Context:     ctx,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return err
	}
	defer cli.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if m := c.exitedMember(); m != nil {
			return fmt.Errorf("%s member %s exited (%s); log tail:\n%s", c.srv.Name, m.name, m.exitStatus(), logTail(m.logPath, 15))
		}
		last = c.probe(ctx, cli)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready after %v: %v", c.srv.Name, timeout, last)
		case <-tick.C:
		}
	}
}

func (c *cluster) probe(ctx context.Context, cli *clientv3.Client) error {
	var leader uint64
	for _, m := range c.members {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(sctx, m.clientURL)
		cancel()
		if err != nil {
			return fmt.Errorf("status of %s: %w", m.name, err)
		}
		if st.Leader == 0 {
			return fmt.Errorf("%s has no leader", m.name)
		}
		if leader != 0 && st.Leader != leader {
			return fmt.Errorf("members disagree on the leader (%x, %x)", leader, st.Leader)
		}
		leader = st.Leader
		if len(c.members) > 1 {
			mctx, cancel := context.WithTimeout(ctx, time.Second)
			ml, err := cli.MemberList(mctx)
			cancel()
			if err != nil {
				return fmt.Errorf("member list: %w", err)
			}
			if len(ml.Members) != len(c.members) {
				return fmt.Errorf("member list has %d members, want %d", len(ml.Members), len(c.members))
			}
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := cli.Put(pctx, "bench/ready", "1"); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	for _, m := range c.members {
		// A serializable read at each member proves it applied the write.
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.readAt(gctx, m)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) readAt(ctx context.Context, m *member) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.clientURL}, DialTimeout: time.Second, Context: ctx, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	r, err := cli.Get(ctx, "bench/ready", clientv3.WithSerializable())
	if err != nil {
		return fmt.Errorf("read at %s: %w", m.name, err)
	}
	if len(r.Kvs) != 1 {
		return fmt.Errorf("%s has not applied the probe write", m.name)
	}
	return nil
}

// stop terminates every member (SIGTERM, then SIGKILL after 10s).
func (c *cluster) stop() {
	for _, m := range c.members {
		if m.cmd != nil && m.cmd.Process != nil {
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, m := range c.members {
		if m.cmd == nil || m.exited == nil {
			continue
		}
		select {
		case <-m.exited:
		case <-time.After(10 * time.Second):
			_ = m.cmd.Process.Kill()
			<-m.exited
		}
	}
}

// logTail returns the last n lines of the file at path.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
