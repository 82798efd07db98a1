package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// cluster is n `ballast node` processes on loopback, bootstrapped together.
type cluster struct {
	t       *testing.T
	members []*member
}

// newCluster prepares n members with a shared --initial-cluster.
func newCluster(t *testing.T, n int, args ...string) *cluster {
	t.Helper()
	c := &cluster{t: t}
	dir := t.TempDir()
	var ic []string
	for i := 0; i < n; i++ {
		m := newMember(t, withArgs(args...))
		m.name = fmt.Sprintf("m%d", i+1)
		m.dataDir = filepath.Join(dir, m.name)
		c.members = append(c.members, m)
		ic = append(ic, m.name+"="+m.peer)
	}
	for _, m := range c.members {
		m.initialCluster = strings.Join(ic, ",")
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, m := range c.members {
			if m.cur != nil {
				t.Logf("log of %s:\n%s", m.name, tail(m.logText(), 60))
			}
		}
	})
	return c
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startCluster starts n members and waits until every one is ready.
func startCluster(t *testing.T, n int, args ...string) *cluster {
	t.Helper()
	c := newCluster(t, n, args...)
	c.start()
	return c
}

// start launches every member, then waits until each is ready: members
// started one by one could not elect a leader until enough of them run.
func (c *cluster) start() {
	c.t.Helper()
	for _, m := range c.members {
		if err := m.launch(); err != nil {
			c.t.Fatal(err)
		}
	}
	for _, m := range c.members {
		m.waitReady()
	}
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.client)
	}
	return eps
}

// client returns a client/v3 client balancing over every member.
func (c *cluster) client() *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// leader returns the member that leads, by asking each running member.
func (c *cluster) leader(ctx context.Context) *member {
	c.t.Helper()
	for {
		for _, m := range c.members {
			if !m.running() {
				continue
			}
			cli := m.clientv3()
			st, err := cli.Status(ctx, m.client)
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return m
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatal("no leader found")
		case <-time.After(100 * time.Millisecond): // polling: no leader event across processes
		}
	}
}

func TestClusterReplicatesAndSurvivesLeaderKill(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d-members", n), func(t *testing.T) { testLeaderKill(t, n) })
	}
}

func testLeaderKill(t *testing.T, n int) {
	c := startCluster(t, n)
	ctx := ctxT(t, 120*time.Second)
	cli := c.client()
	if _, err := cli.Put(ctx, "hello", "cluster"); err != nil {
		t.Fatal(err)
	}
	// Every member serves the write, linearizably.
	for _, m := range c.members {
		resp, err := m.clientv3().Get(ctx, "hello")
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "cluster" {
			t.Fatalf("%s: get = %v, %v", m.name, resp, err)
		}
	}
	out := c.members[0].mustEtcdctl("member", "list")
	if strings.Count(out, ", started, ") != n {
		t.Fatalf("member list:\n%s", out)
	}

	// Kill the leader under write load: no acknowledged write is lost and
	// the others elect a new leader that takes writes.
	lead := c.leader(ctx)
	acked := map[string]string{}
	var mu sync.Mutex
	wctx, stopWrites := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 2000 && wctx.Err() == nil; i++ {
				k, v := fmt.Sprintf("load/%d/%04d", w, i), fmt.Sprint(i)
				pctx, cancel := context.WithTimeout(wctx, 5*time.Second)
				_, err := cli.Put(pctx, k, v)
				cancel()
				if err == nil {
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}
		}(w)
	}
	waitFor(t, 30*time.Second, "writes before the kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 100
	})
	killedAt := time.Now()
	lead.kill()
	// A fresh write (not one lost in flight with the old leader) succeeds
	// within a few election timeouts (1 s each by default).
	var recovered time.Duration
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Put(pctx, "probe", fmt.Sprint(attempt))
		cancel()
		if err == nil {
			recovered = time.Since(killedAt)
			break
		}
		if time.Since(killedAt) > 30*time.Second {
			t.Fatalf("no write succeeded within 30s of killing the leader: %v", err)
		}
	}
	t.Logf("a new leader took writes %v after the old one was killed", recovered.Round(time.Millisecond))
	if recovered > 5*time.Second {
		t.Errorf("writes resumed only after %v, want within a few election timeouts", recovered)
	}
	stopWrites()
	wg.Wait()

	var survivor *member
	for _, m := range c.members {
		if m != lead {
			survivor = m
		}
	}
	mu.Lock()
	checkAll(t, survivor.clientv3(), acked, "load/")
	mu.Unlock()

	// The killed member comes back and catches up.
	lead.restart()
	mu.Lock()
	checkAll(t, lead.clientv3(), acked, "load/")
	mu.Unlock()
}

func TestClusterGracefulStopHandsOverLeadership(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	lead := c.leader(ctx)
	lead.stop()
	if !strings.Contains(lead.logText(), "handed leadership over before stopping") {
		t.Fatalf("the leader did not hand over leadership on SIGTERM; log:\n%s", lead.logText())
	}
	cli := c.client()
	if _, err := cli.Put(ctx, "after", "handover"); err != nil {
		t.Fatal(err)
	}
}

func TestClusterMemberAddJoinsAndPromotes(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	cli := c.client()
	for i := 0; i < 50; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("pre/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	// Add a learner, start it with what member add printed, promote it.
	nm := newMember(t)
	nm.name = "m4"
	c.addLearner(nm)
	resp, err := nm.clientv3().Get(ctx, "pre/", clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 50 {
		t.Fatalf("the new learner has %d keys, want 50", len(resp.Kvs))
	}
	id := fmt.Sprintf("%x", resp.Header.MemberId)
	waitFor(t, 30*time.Second, "learner promotion", func() bool {
		_, _, err := c.members[1].etcdctl("member", "promote", id)
		return err == nil
	})
	list := c.members[0].mustEtcdctl("member", "list")
	if strings.Count(list, ", started, ") != 4 || strings.Contains(list, "true\n") {
		t.Fatalf("after promotion, member list:\n%s", list)
	}
	// Remove it again: the member stops itself.
	c.members[2].mustEtcdctl("member", "remove", id)
	if _, err := nm.waitExit(30 * time.Second); err == nil {
		t.Logf("removed member exited cleanly")
	}
	if !strings.Contains(nm.logText(), "removed from the cluster") {
		t.Fatalf("the removed member did not say why it stopped; log:\n%s", nm.logText())
	}
	// It cannot come back with its old identity.
	if err := nm.launch(); err != nil {
		t.Fatal(err)
	}
	log, err := nm.waitExit(30 * time.Second)
	if err == nil || !strings.Contains(log, "was removed from the cluster") {
		t.Fatalf("a removed member restarted (err %v); log:\n%s", err, log)
	}
}

// addLearner adds nm as a learner with etcdctl and starts it with what
// member add printed, as an operator would. Like etcd, a cluster refuses
// changes until its members have been connected for a few seconds
// ("unhealthy cluster"), so the add is retried until accepted.
func (c *cluster) addLearner(nm *member) {
	c.t.Helper()
	var out string
	waitFor(c.t, 30*time.Second, "member add accepted", func() bool {
		o, _, err := c.members[0].etcdctl("member", "add", nm.name, "--learner", "--peer-urls="+nm.peer)
		out = o
		return err == nil
	})
	nm.initialCluster = envValue(c.t, out, "ETCD_INITIAL_CLUSTER")
	nm.args = append(nm.args, "--initial-cluster-state", envValue(c.t, out, "ETCD_INITIAL_CLUSTER_STATE"))
	nm.start()
}

// envValue extracts NAME="value" from etcdctl member add output.
func envValue(t *testing.T, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatalf("%s not in:\n%s", name, out)
	return ""
}

// TestClusterFullRestartKeepsData stops every member, starts them all
// again, and finds every write.
func TestClusterFullRestartKeepsData(t *testing.T) {
	c := startCluster(t, 3, "--snapshot-count", "200")
	ctx := ctxT(t, 120*time.Second)
	cli := c.client()
	acked := map[string]string{}
	for i := 0; i < 500; i++ {
		k, v := fmt.Sprintf("restart/%03d", i), fmt.Sprint(i)
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
		acked[k] = v
	}
	cli.Close()
	for _, m := range c.members {
		m.stop()
	}
	c.start()
	for _, m := range c.members {
		checkAll(t, m.clientv3(), acked, "restart/")
	}
}

// TestFiveMembersLoseTwo keeps serving with two of five members killed.
func TestFiveMembersLoseTwo(t *testing.T) {
	c := startCluster(t, 5)
	ctx := ctxT(t, 120*time.Second)
	cli := c.client()
	if _, err := cli.Put(ctx, "five", "members"); err != nil {
		t.Fatal(err)
	}
	lead := c.leader(ctx)
	lead.kill()
	for _, m := range c.members {
		if m != lead {
			m.kill()
			break
		}
	}
	waitFor(t, 30*time.Second, "writes with 3 of 5 members", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := cli.Put(pctx, "three", "left")
		return err == nil
	})
}

// TestStrictReconfigInCluster: etcdctl gets etcd's refusals from a running
// cluster, for the trap of adding members that never start.
func TestStrictReconfigInCluster(t *testing.T) {
	c := startCluster(t, 2)
	m := c.members[0]
	// A voter that never starts may join two started ones (2 of 3 is a
	// quorum); the cluster must first have been connected for a while
	// ("unhealthy cluster" until then, as etcd).
	var ghost string
	waitFor(t, 30*time.Second, "member add accepted", func() bool {
		out, _, err := m.etcdctl("member", "add", "ghost1", "--peer-urls=http://127.0.0.1:1")
		if err == nil {
			ghost = strings.Fields(out)[1]
		}
		return err == nil
	})
	runSteps(t, m, []step{
		// A second one would leave 2 started of 4: no quorum without it.
		{args: []string{"member", "add", "ghost2", "--peer-urls=http://127.0.0.1:2"}, wantErr: "etcdserver: re-configuration failed due to not enough started members"},
		// Removing a started member would leave 1 started of 2.
		{args: []string{"member", "remove", fmt.Sprintf("%x", mustID(t, c.members[1]))}, wantErr: "etcdserver: re-configuration failed due to not enough started members"},
		// The unstarted member is not connected: every other change waits.
		{args: []string{"member", "add", "l1", "--learner", "--peer-urls=http://127.0.0.1:3"}, wantErr: "etcdserver: unhealthy cluster"},
		// Removing the never-started member is always allowed.
		{args: []string{"member", "remove", ghost}, wantRe: `^Member +` + ghost + ` removed from cluster +[0-9a-f]+\n$`},
	})
	if _, err := c.client().Put(ctxT(t, 10*time.Second), "still", "writable"); err != nil {
		t.Fatal(err)
	}
}

func mustID(t *testing.T, m *member) uint64 {
	t.Helper()
	st, err := m.clientv3().Status(ctxT(t, 10*time.Second), m.client)
	if err != nil {
		t.Fatal(err)
	}
	return st.Header.MemberId
}

// TestForceNewCluster recovers from the loss of quorum: with two of three
// members gone for good, the survivor restarts with --force-new-cluster and
// serves its data as a one-member cluster.
func TestForceNewCluster(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	cli := c.client()
	acked := map[string]string{}
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("survive/%03d", i)
		if _, err := cli.Put(ctx, k, "v"); err != nil {
			t.Fatal(err)
		}
		acked[k] = "v"
	}
	cli.Close()
	// Recover from the member with the most data, as etcd's runbook says:
	// the leader has every committed entry, a follower may lag.
	survivor := c.leader(ctx)
	for _, m := range c.members {
		m.kill()
	}
	survivor.args = append(survivor.args, "--force-new-cluster")
	survivor.restart()
	checkAll(t, survivor.clientv3(), acked, "survive/")
	out := survivor.mustEtcdctl("member", "list")
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, survivor.name) {
		t.Fatalf("after --force-new-cluster, member list:\n%s", out)
	}
	if _, err := survivor.clientv3().Put(ctx, "after", "recovery"); err != nil {
		t.Fatal(err)
	}
	// Restarting without the flag keeps the new one-member cluster.
	survivor.stop()
	survivor.args = survivor.args[:len(survivor.args)-1]
	survivor.restart()
	checkAll(t, survivor.clientv3(), acked, "survive/")
}

// TestLeaseSurvivesLeaderChange keeps a lease alive through a follower while
// the leader is killed: the lease and its key survive, because keep-alives
// reach whichever member leads and a new leader extends every deadline.
func TestLeaseSurvivesLeaderChange(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	lead := c.leader(ctx)
	var follower *member
	for _, m := range c.members {
		if m != lead {
			follower = m
			break
		}
	}
	fc := follower.clientv3()
	l, err := fc.Grant(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Put(ctx, "owned", "v", clientv3.WithLease(l.ID)); err != nil {
		t.Fatal(err)
	}
	// Keep-alives through the follower are forwarded to the leader.
	ka, err := fc.KeepAliveOnce(ctx, l.ID)
	if err != nil || ka.TTL != 4 {
		t.Fatalf("keep-alive through a follower: %v %v", ka, err)
	}
	ttl, err := fc.TimeToLive(ctx, l.ID)
	if err != nil || ttl.TTL <= 0 || ttl.TTL > 4 {
		t.Fatalf("time-to-live through a follower: %v %v", ttl, err)
	}
	// The client keeps the lease alive (through the follower) while the
	// leader is killed and another is elected.
	kctx, stopKeepAlive := context.WithCancel(ctx)
	kch, err := fc.KeepAlive(kctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	lead.kill()
	c.leader(ctx)                     // the survivors elect a new leader
	for drained := false; !drained; { // answers from before the election
		select {
		case <-kch:
		default:
			drained = true
		}
	}
	// Three keep-alive answers from the new leader span more than the TTL.
	for i := 0; i < 3; i++ {
		select {
		case r, ok := <-kch:
			if !ok || r == nil {
				t.Fatalf("keep-alive stream ended after %d answers: the lease was lost", i)
			}
		case <-ctx.Done():
			t.Fatal("no keep-alive answers after the leader change")
		}
	}
	stopKeepAlive()
	resp, err := fc.Get(ctx, "owned")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the leased key did not survive the leader change: %v %v", resp, err)
	}
	ttl, err = fc.TimeToLive(ctx, l.ID)
	if err != nil || ttl.TTL <= 0 {
		t.Fatalf("the lease did not survive the leader change: %v %v", ttl, err)
	}
	// Once nobody keeps it alive, it expires and takes its key.
	wch := fc.Watch(ctx, "owned", clientv3.WithRev(resp.Header.Revision+1))
	select {
	case wr := <-wch:
		if len(wr.Events) != 1 || wr.Events[0].Type != mvccpb.DELETE {
			t.Fatalf("want the key deleted on expiry, got %v", wr.Events)
		}
	case <-ctx.Done():
		t.Fatal("the lease never expired")
	}
}
