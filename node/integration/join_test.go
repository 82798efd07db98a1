package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/join"
)

// newJoiner prepares a member that joins by asking the cluster at
// endpoints, as a pod of the operator does: --initial-cluster-state=existing,
// --join-endpoints and no --initial-cluster. Its termination log is the
// returned path.
func newJoiner(t *testing.T, name string, endpoints ...string) (*member, string) {
	t.Helper()
	m := newMember(t)
	m.name = name
	m.noInitialCluster = true
	m.args = append(m.args, "--initial-cluster-state=existing", "--join-endpoints="+strings.Join(endpoints, ","))
	tlog := filepath.Join(t.TempDir(), "termination-log")
	m.env = append(m.env, "BALLAST_TERMINATION_LOG="+tlog)
	t.Cleanup(func() {
		if t.Failed() && m.cur != nil {
			t.Logf("log of %s:\n%s", m.name, tail(m.logText(), 60))
		}
	})
	return m, tlog
}

// awaitLog waits until the running process logs a line containing substr.
func (m *member) awaitLog(substr string, d time.Duration) string {
	m.t.Helper()
	p := m.cur
	deadline := time.After(d)
	for {
		for _, line := range strings.Split(p.log.String(), "\n") {
			if strings.Contains(line, substr) {
				return line
			}
		}
		select {
		case <-p.exited:
			m.t.Fatalf("%s exited (%v) before logging %q; log:\n%s", m.name, p.exitErr, substr, p.log.String())
		case <-deadline:
			m.t.Fatalf("%s did not log %q within %v; log:\n%s", m.name, substr, d, p.log.String())
		case <-time.After(50 * time.Millisecond): // the log has no notification; poll it
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// expectReplace waits for m to exit asking to be replaced: exit status 3
// and a termination message that starts with join.ReplaceMarker.
func expectReplace(t *testing.T, m *member, tlog string, want join.Reason) string {
	t.Helper()
	log, err := m.waitExit(60 * time.Second)
	if code := exitCode(err); code != join.ExitReplace {
		t.Fatalf("%s exited with %v (status %d), want status %d; log:\n%s", m.name, err, code, join.ExitReplace, log)
	}
	msg, err := os.ReadFile(tlog)
	if err != nil {
		t.Fatalf("no termination log: %v; log:\n%s", err, log)
	}
	if !strings.HasPrefix(string(msg), join.ReplaceMarker) {
		t.Fatalf("termination message %q does not start with %q", msg, join.ReplaceMarker)
	}
	reason, _, ok := join.ParseMessage(string(msg))
	if !ok || reason != want {
		t.Fatalf("termination message %q: reason %q, want %q", msg, reason, want)
	}
	return string(msg)
}

// TestJoinEndpointsLearnerJoinsAndIsPromoted: a learner added to a running
// cluster starts with only --join-endpoints, catches up, and is promoted;
// on a restart it uses its data and --join-endpoints changes nothing.
func TestJoinEndpointsLearnerJoinsAndIsPromoted(t *testing.T) {
	m1 := startMember(t)
	ctx := ctxT(t, 120*time.Second)
	c1 := m1.clientv3()
	for i := 0; i < 100; i++ {
		if _, err := c1.Put(ctx, fmt.Sprintf("pre/%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	nm, _ := newJoiner(t, "m2", m1.client)
	add, err := c1.MemberAddAsLearner(ctx, []string{nm.peer})
	if err != nil {
		t.Fatal(err)
	}
	nm.start()
	nm.awaitLog("this member was added to the running cluster; joining it", time.Second)
	// Ready means it applied everything committed before it started.
	resp, err := nm.clientv3().Get(ctx, "pre/", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 100 {
		t.Fatalf("the joined learner has %v keys (%v), want 100", resp, err)
	}
	waitFor(t, 30*time.Second, "learner promotion", func() bool {
		_, err := c1.MemberPromote(ctx, add.Member.ID)
		return err == nil
	})
	waitFor(t, 30*time.Second, "two started voters m1 and m2", func() bool {
		list, err := c1.MemberList(ctx)
		if err != nil || len(list.Members) != 2 {
			return false
		}
		for _, m := range list.Members {
			if m.IsLearner || (m.Name != "m1" && m.Name != "m2") {
				return false
			}
		}
		return list.Members[0].Name != list.Members[1].Name
	})
	if _, err := nm.clientv3().Put(ctx, "through", "the new voter"); err != nil {
		t.Fatal(err)
	}
	nm.stop()
	nm.restart()
	if log := nm.logText(); !strings.Contains(log, "restarting the member from its WAL") || strings.Contains(log, "asking the running cluster") {
		t.Fatalf("a restart with data consulted --join-endpoints; log:\n%s", log)
	}
}

// TestJoinEndpointsWaitsUntilAdded: a member started before it is added
// waits, says so and what to do, stops cleanly on SIGTERM meanwhile, never
// bootstraps a cluster of its own, and joins once added.
func TestJoinEndpointsWaitsUntilAdded(t *testing.T) {
	m1 := startMember(t)
	ctx := ctxT(t, 120*time.Second)
	nm, _ := newJoiner(t, "m2", m1.client)
	if err := nm.launch(); err != nil {
		t.Fatal(err)
	}
	line := nm.awaitLog("waiting to be added", 30*time.Second)
	for _, want := range []string{`"level":"warn"`, nm.peer, "member add m2 --learner --peer-urls=" + nm.peer, m1.client} {
		if !strings.Contains(line, want) {
			t.Errorf("the waiting line lacks %q: %s", want, line)
		}
	}
	nm.stop() // SIGTERM while waiting: exit status 0
	if _, err := os.Stat(filepath.Join(nm.dataDir, "member", "wal")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a member that was never added wrote a WAL (%v)", err)
	}

	if err := nm.launch(); err != nil {
		t.Fatal(err)
	}
	nm.awaitLog("waiting to be added", 30*time.Second)
	if out := m1.mustEtcdctl("member", "list"); strings.Count(out, "\n") != 1 {
		t.Fatalf("the waiting member is in the cluster already:\n%s", out)
	}
	m1.mustEtcdctl("member", "add", "m2", "--learner", "--peer-urls="+nm.peer)
	nm.waitReady()
	if _, err := m1.clientv3().Put(ctx, "seen", "by the learner"); err != nil {
		t.Fatal(err)
	}
	c := nm.clientv3()
	waitFor(t, 30*time.Second, "the write on the learner", func() bool {
		resp, err := c.Get(ctx, "seen", clientv3.WithSerializable())
		return err == nil && len(resp.Kvs) == 1
	})
	// The learner publishes its name and client URLs once it serves.
	started := regexp.MustCompile(`, started, m2, ` + regexp.QuoteMeta(nm.peer) + `, ` + regexp.QuoteMeta(nm.client) + `, true\n`)
	waitFor(t, 30*time.Second, "m2 listed as a started learner", func() bool {
		return started.MatchString(m1.mustEtcdctl("member", "list"))
	})
}

// TestJoinEndpointsDataLostExitsForReplacement: a started member whose data
// dir was wiped does not rejoin under its old identity: it exits with status
// 3 and the marker. Replaced as the operator does (remove, add back as a
// learner) it joins on the same, still empty, data dir.
func TestJoinEndpointsDataLostExitsForReplacement(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t, 180*time.Second)
	m1, m2, m3 := c.members[0], c.members[1], c.members[2]
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m1.client, m2.client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	for i := 0; i < 50; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	id3 := mustID(t, m3)
	m3.stop()
	if err := os.RemoveAll(m3.dataDir); err != nil {
		t.Fatal(err)
	}
	// As in a pod: ETCD_INITIAL_CLUSTER still names the founding members
	// and is ignored in favour of the running cluster's answer.
	tlog := filepath.Join(t.TempDir(), "termination-log")
	m3.env = append(m3.env, "BALLAST_TERMINATION_LOG="+tlog)
	m3.args = append(m3.args, "--initial-cluster-state=existing", "--join-endpoints="+m1.client+","+m2.client)
	if err := m3.launch(); err != nil {
		t.Fatal(err)
	}
	msg := expectReplace(t, m3, tlog, join.DataLost)
	if !strings.Contains(msg, fmt.Sprintf("%x", id3)) {
		t.Errorf("the termination message does not name member %x: %q", id3, msg)
	}

	removeMember(t, cli, id3)
	var add *clientv3.MemberAddResponse
	waitFor(t, 30*time.Second, "member add accepted", func() bool {
		add, err = cli.MemberAddAsLearner(ctx, []string{m3.peer})
		return err == nil
	})
	if err := os.Remove(tlog); err != nil {
		t.Fatal(err)
	}
	m3.start()
	resp, err := m3.clientv3().Get(ctx, "k/", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 50 {
		t.Fatalf("the replacement has %v keys (%v), want 50", resp, err)
	}
	waitFor(t, 30*time.Second, "promotion of the replacement", func() bool {
		_, err := cli.MemberPromote(ctx, add.Member.ID)
		return err == nil
	})
	if _, err := os.Stat(tlog); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the replacement wrote a termination log (%v)", err)
	}
}

// removeMember removes a member, retrying while the cluster refuses changes
// because its members have not been connected long enough ("unhealthy
// cluster", as etcd).
func removeMember(t *testing.T, cli *clientv3.Client, id uint64) {
	t.Helper()
	var err error
	waitFor(t, 30*time.Second, "member remove accepted", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = cli.MemberRemove(ctx, id)
		if errors.Is(err, rpctypes.ErrMemberNotFound) {
			err = nil // an earlier attempt that timed out went through
		}
		return err == nil
	})
	if err != nil {
		t.Fatalf("member remove %x: %v", id, err)
	}
}

// TestRemovedMemberExitsForReplacement: a member the cluster removed exits
// with status 3 and the marker, whether it learns it from its peers when it
// restarts after a removal made while it was down, or applies its removal
// while it runs; restarted on its old data it exits the same way.
func TestRemovedMemberExitsForReplacement(t *testing.T) {
	c := newCluster(t, 3)
	tlogs := map[*member]string{}
	for _, m := range c.members {
		tlogs[m] = filepath.Join(t.TempDir(), "termination-log")
		m.env = append(m.env, "BALLAST_TERMINATION_LOG="+tlogs[m])
	}
	c.start()
	ctx := ctxT(t, 180*time.Second)
	m1, m2, m3 := c.members[0], c.members[1], c.members[2]
	cli := m1.clientv3()

	// Removed while it was down: its peers refuse it when it comes back.
	id3 := mustID(t, m3)
	m3.stop()
	removeMember(t, cli, id3)
	if err := m3.launch(); err != nil {
		t.Fatal(err)
	}
	expectReplace(t, m3, tlogs[m3], join.Removed)
	if !strings.Contains(m3.logText(), "the member has been permanently removed from the cluster") {
		t.Errorf("m3 did not log its removal as etcd does; log:\n%s", m3.logText())
	}

	// Removed while it runs, and leading: it stops by itself, but only once
	// m1 knows the removal is committed, or m1 would be left waiting for
	// m2's vote.
	id2 := mustID(t, m2)
	if lead := c.leader(ctx); lead != m2 {
		if _, err := lead.clientv3().MoveLeader(ctx, id2); err != nil {
			t.Fatal(err)
		}
	}
	removeMember(t, cli, id2)
	expectReplace(t, m2, tlogs[m2], join.Removed)
	// Its old data can never serve again.
	if err := os.Remove(tlogs[m2]); err != nil {
		t.Fatal(err)
	}
	if err := m2.launch(); err != nil {
		t.Fatal(err)
	}
	expectReplace(t, m2, tlogs[m2], join.Removed)

	// m2 may have led: m1 takes writes once it has elected itself. A write
	// sent to the removed leader meanwhile times out, as in etcd.
	waitFor(t, 30*time.Second, "a write on the remaining member", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := cli.Put(pctx, "after", "removals")
		return err == nil
	})
}

// TestEtcdNameIsBallastNode: through a link named "etcd" the binary is
// `ballast node`, started with the flags controller-runtime's envtest gives
// etcd (pkg/internal/testing/controlplane/etcd.go, v0.24.1) and checked the
// way envtest checks it: the --help text names --unsafe-no-fsync, /health
// answers 200. The envtest driver itself runs it in
// node/integration/envtestetcd.
func TestEtcdNameIsBallastNode(t *testing.T) {
	dir := t.TempDir()
	etcd := filepath.Join(dir, "etcd")
	if err := os.Symlink(ballastBin, etcd); err != nil {
		t.Fatal(err)
	}
	help, err := exec.Command(etcd, "--help").CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^\s*--unsafe-no-fsync\b`).Match(help) {
		t.Fatalf("etcd --help (%v) does not list --unsafe-no-fsync as envtest expects:\n%s", err, help)
	}
	version, err := exec.Command(etcd, "--version").Output()
	if err != nil || !strings.HasPrefix(string(version), "etcd Version: ") {
		t.Fatalf("etcd --version = %q, %v", version, err)
	}

	ports := freePorts(t, 2)
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	cmd := exec.Command(etcd,
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", ports[1]),
		"--advertise-client-urls="+client,
		"--listen-client-urls="+client,
		"--data-dir="+filepath.Join(dir, "data"),
		"--unsafe-no-fsync=true",
	)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = writerFunc(out.WriteString), writerFunc(out.WriteString)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	waitFor(t, 60*time.Second, "/health answering 200", func() bool {
		resp, err := http.Get(client + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	m := &member{t: t, client: client}
	m.mustEtcdctl("put", "drop", "in")
	if got := m.mustEtcdctl("get", "drop", "--print-value-only"); got != "in\n" {
		t.Fatalf("get through the etcd link = %q", got)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("exit after SIGTERM: %v; log:\n%s", exitErr, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit within 30s of SIGTERM; log:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "unsafe-no-fsync is set") {
		t.Errorf("--unsafe-no-fsync was not taken; log:\n%s", out.String())
	}
}

// writerFunc adapts a string sink to io.Writer.
type writerFunc func(string)

func (f writerFunc) Write(p []byte) (int, error) { f(string(p)); return len(p), nil }

// TestJoinEndpointsOverTLS: the join query to https:// endpoints trusts
// --trusted-ca-file and presents the member's client certificate, which a
// cluster with --client-cert-auth requires.
func TestJoinEndpointsOverTLS(t *testing.T) {
	p := newPKI(t)
	tlsFlags := func(m *member) []string {
		cert, key, _ := p.issue(m.name, m.name)
		return []string{"--cert-file", cert, "--key-file", key, "--client-cert-auth", "--trusted-ca-file", p.caFile}
	}
	m1 := newMember(t)
	m1.client = httpsURL(m1.client)
	m1.args = append(m1.args, tlsFlags(m1)...)
	m1.start()
	nm, _ := newJoiner(t, "m2", m1.client)
	nm.client = httpsURL(nm.client)
	nm.args = append(nm.args, tlsFlags(nm)...)

	adminCert, adminKey, _ := p.issue("admin", "admin")
	admin := []string{"--cacert=" + p.caFile, "--cert=" + adminCert, "--key=" + adminKey}
	if out, errOut, err := etcdctlTLS(m1.client, admin, "member", "add", "m2", "--learner", "--peer-urls="+nm.peer); err != nil {
		t.Fatalf("member add: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := etcdctlTLS(m1.client, admin, "put", "over", "tls"); err != nil {
		t.Fatalf("put: %v\n%s%s", err, out, errOut)
	}
	nm.start()
	nm.awaitLog("this member was added to the running cluster; joining it", time.Second)
	out, errOut, err := etcdctlTLS(nm.client, admin, "get", "over", "--print-value-only", "--consistency=s")
	if err != nil || out != "tls\n" {
		t.Fatalf("get on the joined member = %q, %v\n%s", out, err, errOut)
	}
}
