package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Small raft snapshots and a short in-memory log: a member that misses a few
// hundred entries can only catch up by snapshot.
var snapArgs = []string{"--snapshot-count", "100", "--snapshot-catchup-entries", "50"}

const (
	logInstalled      = "installed a raft snapshot from the leader"
	logStored         = "stored the database received with a raft snapshot"
	logInstalledAtRun = "installed the database received with a raft snapshot before the last stop"
)

// clientOn returns a client balancing over the given members only.
func clientOn(t *testing.T, ms ...*member) *clientv3.Client {
	t.Helper()
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.client)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// followers returns the members other than lead.
func followers(c *cluster, lead *member) []*member {
	var out []*member
	for _, m := range c.members {
		if m != lead {
			out = append(out, m)
		}
	}
	return out
}

// workload is what writeWorkload did, to check members against.
type workload struct {
	prefix string
	keys   map[string]string  // live keys under prefix
	leases map[int64][]string // lease -> its live keys, sorted
	events int                // changes under prefix (one watch event each)
}

// writeWorkload writes n keys under prefix, a fifth of them attached to one of
// a few long leases, deletes some keys, and compacts every 250 writes.
func writeWorkload(t *testing.T, ctx context.Context, cli *clientv3.Client, prefix string, n int) *workload {
	t.Helper()
	w := &workload{prefix: prefix, keys: map[string]string{}, leases: map[int64][]string{}}
	var ids []int64
	for i := 0; i < 4; i++ {
		l, err := cli.Grant(ctx, 600)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, int64(l.ID))
		w.leases[int64(l.ID)] = nil
	}
	for i := 0; i < n; i++ {
		k, v := fmt.Sprintf("%s%04d", prefix, i), fmt.Sprintf("v%d", i)
		var opts []clientv3.OpOption
		if i%5 == 0 {
			id := ids[(i/5)%len(ids)]
			opts = append(opts, clientv3.WithLease(clientv3.LeaseID(id)))
			w.leases[id] = append(w.leases[id], k)
		}
		resp, err := cli.Put(ctx, k, v, opts...)
		if err != nil {
			t.Fatal(err)
		}
		w.keys[k] = v
		w.events++
		if i%100 == 99 {
			// Delete an unleased key written earlier.
			dk := fmt.Sprintf("%s%04d", prefix, i-7)
			if _, err := cli.Delete(ctx, dk); err != nil {
				t.Fatal(err)
			}
			delete(w.keys, dk)
			w.events++
		}
		if i%250 == 249 {
			if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

// checkSameState checks that m serves exactly what ref serves: the same
// keys and the same HashKV at the same revision, and every lease.
func checkSameState(t *testing.T, ctx context.Context, ref, m *member, w *workload) {
	t.Helper()
	rc, mc := ref.clientv3(), m.clientv3()
	resp, err := rc.Get(ctx, w.prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	rev := resp.Header.Revision
	// m has applied at least rev once it served something at or past it.
	var got *clientv3.GetResponse
	waitFor(t, 60*time.Second, m.name+" applying revision "+fmt.Sprint(rev), func() bool {
		got, err = mc.Get(ctx, w.prefix, clientv3.WithPrefix(), clientv3.WithSerializable())
		return err == nil && got.Header.Revision >= rev
	})
	gotKeys := map[string]string{}
	for _, kv := range got.Kvs {
		gotKeys[string(kv.Key)] = string(kv.Value)
	}
	if len(gotKeys) != len(w.keys) {
		t.Errorf("%s serves %d keys under %s, want %d", m.name, len(gotKeys), w.prefix, len(w.keys))
	}
	for k, v := range w.keys {
		if gotKeys[k] != v {
			t.Errorf("%s: %s = %q, want %q", m.name, k, gotKeys[k], v)
			break
		}
	}
	rh, err := rc.HashKV(ctx, ref.client, rev)
	if err != nil {
		t.Fatal(err)
	}
	mh, err := mc.HashKV(ctx, m.client, rev)
	if err != nil {
		t.Fatal(err)
	}
	if rh.Hash != mh.Hash || rh.CompactRevision != mh.CompactRevision {
		t.Errorf("HashKV at %d: %s %x (compacted at %d), %s %x (compacted at %d)",
			rev, ref.name, rh.Hash, rh.CompactRevision, m.name, mh.Hash, mh.CompactRevision)
	}
	// LeaseLeases is served from m's own lessor.
	ls, err := mc.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var have []int64
	for _, l := range ls.Leases {
		have = append(have, int64(l.ID))
	}
	for id := range w.leases {
		if !slices.Contains(have, id) {
			t.Errorf("%s lost lease %x: has %x", m.name, id, have)
		}
	}
}

// waitLog waits for a line of m's current run that contains s. There is no
// event across the process boundary, so it polls, briefly.
func waitLog(t *testing.T, m *member, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(m.logText(), s) {
		if !m.running() {
			t.Fatalf("%s exited before logging %q; log:\n%s", m.name, s, m.logText())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v; log:\n%s", m.name, s, d, tail(m.logText(), 60))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSnapshotCatchUpAfterDowntime(t *testing.T) {
	c := startCluster(t, 3, snapArgs...)
	ctx := ctxT(t, 240*time.Second)
	lead := c.leader(ctx)
	fs := followers(c, lead)
	f, other := fs[0], fs[1]
	cli := clientOn(t, lead, other)

	// A watch on another member, from before the follower stops, sees every
	// change: the snapshot traffic does not disturb it.
	start, err := cli.Get(ctx, "k/")
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := other.clientv3().Watch(wctx, "k/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))

	f.stop()
	began := time.Now()
	w := writeWorkload(t, ctx, cli, "k/", 1000)
	t.Logf("wrote %d keys in %v", len(w.keys), time.Since(began).Round(time.Millisecond))

	began = time.Now()
	f.restart()
	t.Logf("%s restarted and ready in %v", f.name, time.Since(began).Round(time.Millisecond))
	// Readiness waits for the install to be applied; its log line may
	// come a moment later.
	waitLog(t, f, logInstalled, 10*time.Second)
	for _, line := range strings.Split(f.logText(), "\n") {
		if strings.Contains(line, logInstalled) || strings.Contains(line, logStored) {
			t.Logf("%s: %s", f.name, line)
		}
	}
	checkSameState(t, ctx, lead, f, w)

	// The watch on the other member saw every change, in order.
	seen := 0
	var last int64
	for seen < w.events {
		select {
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil {
				t.Fatalf("watch ended after %d events: %v", seen, resp.Err())
			}
			for _, ev := range resp.Events {
				if ev.Kv.ModRevision < last {
					t.Fatalf("watch event at %d after %d", ev.Kv.ModRevision, last)
				}
				last = ev.Kv.ModRevision
				seen++
			}
		case <-ctx.Done():
			t.Fatalf("watch delivered %d of %d events", seen, w.events)
		}
	}

	// The restored follower leads: its own lessor serves the leases, with
	// the keys re-attached from the snapshot, and revokes them.
	st, err := f.clientv3().Status(ctx, f.client)
	if err != nil {
		t.Fatal(err)
	}
	lead = c.leader(ctx)
	if lead != f {
		lead.mustEtcdctl("move-leader", fmt.Sprintf("%x", st.Header.MemberId))
	}
	waitFor(t, 30*time.Second, f.name+" leading", func() bool {
		s, err := f.clientv3().Status(ctx, f.client)
		return err == nil && s.Leader == s.Header.MemberId
	})
	fc := f.clientv3()
	var revoke int64
	for id, keys := range w.leases {
		ttl, err := fc.TimeToLive(ctx, clientv3.LeaseID(id), clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range ttl.Keys {
			got = append(got, string(k))
		}
		slices.Sort(got)
		if ttl.TTL <= 0 || ttl.GrantedTTL != 600 || !slices.Equal(got, keys) {
			t.Fatalf("lease %x on the restored leader: TTL %d granted %d keys %d, want > 0, 600, %d",
				id, ttl.TTL, ttl.GrantedTTL, len(got), len(keys))
		}
		revoke = id
	}
	if _, err := fc.Revoke(ctx, clientv3.LeaseID(revoke)); err != nil {
		t.Fatal(err)
	}
	for _, k := range w.leases[revoke] {
		delete(w.keys, k)
	}
	delete(w.leases, revoke)
	checkSameState(t, ctx, f, other, w)
}

func TestSnapshotCatchUpNewMember(t *testing.T) {
	c := startCluster(t, 3, snapArgs...)
	ctx := ctxT(t, 240*time.Second)
	cli := c.client()
	w := writeWorkload(t, ctx, cli, "k/", 400)

	nm := newMember(t, withArgs(snapArgs...))
	nm.name = "m4"
	c.addLearner(nm)
	waitLog(t, nm, logInstalled, 10*time.Second)
	checkSameState(t, ctx, c.leader(ctx), nm, w)

	// Promoted, it takes part in writes like any member.
	resp, err := nm.clientv3().Get(ctx, "k/0000", clientv3.WithSerializable())
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%x", resp.Header.MemberId)
	waitFor(t, 30*time.Second, "learner promotion", func() bool {
		_, _, err := c.members[1].etcdctl("member", "promote", id)
		return err == nil
	})
	if _, err := nm.clientv3().Put(ctx, "k/new", "member"); err != nil {
		t.Fatal(err)
	}
	w.keys["k/new"] = "member"
	checkSameState(t, ctx, nm, c.members[0], w)
}

// TestSnapshotInstallKilled kills the follower as soon as it has stored the
// db that came with a snapshot (before, during or right after the install:
// the restart must be correct from any of those points), then again right
// after an install, and restarts it each time. Then it recreates on disk
// the state of a crash between persisting the snapshot and the db swap.
func TestSnapshotInstallKilled(t *testing.T) {
	c := startCluster(t, 3, snapArgs...)
	ctx := ctxT(t, 240*time.Second)
	lead := c.leader(ctx)
	fs := followers(c, lead)
	f := fs[0]
	cli := clientOn(t, lead, fs[1])

	for round, killAt := range []string{logStored, logInstalled} {
		f.stop()
		w := writeWorkload(t, ctx, cli, fmt.Sprintf("r%d/", round), 400)
		if err := f.launch(); err != nil {
			t.Fatal(err)
		}
		waitLog(t, f, killAt, 60*time.Second)
		f.kill()
		installed := strings.Contains(f.logText(), logInstalled)

		f.restart()
		log := f.logText()
		switch {
		case strings.Contains(log, logInstalledAtRun):
			t.Logf("round %d: killed before the db swap; the restart installed the received db", round)
		case strings.Contains(log, logInstalled):
			t.Logf("round %d: killed before raft persisted the snapshot; the leader sent it again", round)
		case installed:
			t.Logf("round %d: killed after the install; restarted from the new db", round)
		default:
			t.Logf("round %d: killed after the db swap, before the install was logged", round)
		}
		checkSameState(t, ctx, lead, f, w)
		// Writes with the restarted follower in the cluster go on.
		if _, err := f.clientv3().Put(ctx, w.prefix+"after-kill", "v"); err != nil {
			t.Fatal(err)
		}
		// No received db is left behind once installed.
		left, err := filepath.Glob(filepath.Join(f.dataDir, "member", "snap", "*.snap.db*"))
		if err != nil || len(left) > 0 {
			t.Errorf("round %d: left in the snap dir: %v %v", round, left, err)
		}
	}

	// A crash after raft persisted a received snapshot but before the db
	// swap, made deterministic: the follower's db from before the snapshot
	// is put back, and the db it installed is put where a received one
	// waits, under the name of the newest raft snapshot.
	snapDir := filepath.Join(f.dataDir, "member", "snap")
	dbPath := filepath.Join(snapDir, "db")
	f.stop()
	oldDB := filepath.Join(t.TempDir(), "db.before")
	copyFile(t, dbPath, oldDB)
	w := writeWorkload(t, ctx, cli, "r2/", 400)
	f.restart()
	waitLog(t, f, logInstalled, 10*time.Second)
	f.stop()
	snaps, err := filepath.Glob(filepath.Join(snapDir, "*.snap"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("no raft snapshot file in %s: %v", snapDir, err)
	}
	slices.Sort(snaps)
	received := snaps[len(snaps)-1] + ".db"
	if err := os.Rename(dbPath, received); err != nil {
		t.Fatal(err)
	}
	copyFile(t, oldDB, dbPath)

	// Without the received db the entries in between are lost: the
	// member must refuse to start, and say why.
	hidden := received + ".hidden"
	if err := os.Rename(received, hidden); err != nil {
		t.Fatal(err)
	}
	if err := f.launch(); err != nil {
		t.Fatal(err)
	}
	if out, err := f.waitExit(60 * time.Second); err == nil || !strings.Contains(out, "is missing") {
		t.Fatalf("started with a backend older than its raft snapshot (exit %v); log:\n%s", err, tail(out, 30))
	}
	if err := os.Rename(hidden, received); err != nil {
		t.Fatal(err)
	}
	f.restart()
	if !strings.Contains(f.logText(), logInstalledAtRun) {
		t.Fatalf("the restart did not install the received db; log:\n%s", tail(f.logText(), 60))
	}
	checkSameState(t, ctx, lead, f, w)
	if _, err := os.Stat(received); !os.IsNotExist(err) {
		t.Fatalf("the received db is still there after the restart installed it: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotInstallNotifiesWatchers opens watches on a follower, cuts it
// off from the others (through peer proxies) while they write enough for
// the follower to need a snapshot, and heals: the follower's watchers get
// what they missed from the restored store, or a compaction notice.
func TestSnapshotInstallNotifiesWatchers(t *testing.T) {
	c, proxies, ids := startProxiedCluster(t, 3, snapArgs...)
	ctx := ctxT(t, 240*time.Second)
	lead := c.leader(ctx)
	fi := 0
	for c.members[fi] == lead {
		fi++
	}
	f := c.members[fi]
	var others []*member
	var otherIDs []string
	for i, m := range c.members {
		if i != fi {
			others = append(others, m)
			otherIDs = append(otherIDs, ids[i])
		}
	}
	cli := clientOn(t, others...)
	fc := f.clientv3()

	// cutOff isolates the follower, runs write, heals, and waits until the
	// follower has installed one more snapshot.
	installs := 0
	cutOff := func(write func()) {
		t.Helper()
		proxies[fi].block(otherIDs, false)
		for i := range proxies {
			if i != fi {
				proxies[i].block([]string{ids[fi]}, false)
			}
		}
		write()
		for _, p := range proxies {
			p.heal()
		}
		installs++
		waitFor(t, 60*time.Second, fmt.Sprintf("snapshot install #%d on %s", installs, f.name), func() bool {
			return strings.Count(f.logText(), logInstalled) >= installs
		})
	}
	watch := func(prefix string) clientv3.WatchChan {
		t.Helper()
		resp, err := fc.Get(ctx, "x", clientv3.WithSerializable())
		if err != nil {
			t.Fatal(err)
		}
		return fc.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	}
	// next returns the watch's next response.
	next := func(wch clientv3.WatchChan, what string) clientv3.WatchResponse {
		t.Helper()
		select {
		case resp, ok := <-wch:
			if !ok {
				t.Fatalf("%s: the watch channel closed", what)
			}
			return resp
		case <-ctx.Done():
			t.Fatalf("%s: no watch response", what)
		}
		return clientv3.WatchResponse{}
	}

	// Entries without revisions (lease grants) and a single write: the
	// store moves by one revision, which the watcher must still see.
	wa := watch("a/")
	cutOff(func() {
		for i := 0; i < 200; i++ {
			if _, err := cli.Grant(ctx, 600); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cli.Put(ctx, "a/only", "one"); err != nil {
			t.Fatal(err)
		}
	})
	if resp := next(wa, "one skipped revision"); resp.Err() != nil || len(resp.Events) != 1 || string(resp.Events[0].Kv.Key) != "a/only" {
		t.Fatalf("one skipped revision: %+v, err %v", resp.Events, resp.Err())
	}

	// Many revisions: every event arrives, in order.
	wb := watch("b/")
	const n = 300
	cutOff(func() {
		for i := 0; i < n; i++ {
			if _, err := cli.Put(ctx, fmt.Sprintf("b/%03d", i), "v"); err != nil {
				t.Fatal(err)
			}
		}
	})
	for got := 0; got < n; {
		resp := next(wb, "many skipped revisions")
		if resp.Err() != nil {
			t.Fatalf("after %d events: %v", got, resp.Err())
		}
		for _, ev := range resp.Events {
			if want := fmt.Sprintf("b/%03d", got); string(ev.Kv.Key) != want {
				t.Fatalf("event %d is for %s, want %s", got, ev.Kv.Key, want)
			}
			got++
		}
	}

	// History the follower missed was compacted: its watcher is told so.
	wc := watch("c/")
	var compactRev int64
	cutOff(func() {
		var last *clientv3.PutResponse
		for i := 0; i < 200; i++ {
			var err error
			if last, err = cli.Put(ctx, fmt.Sprintf("c/%03d", i), "v"); err != nil {
				t.Fatal(err)
			}
		}
		compactRev = last.Header.Revision
		if _, err := cli.Compact(ctx, compactRev); err != nil {
			t.Fatal(err)
		}
	})
	resp := next(wc, "compacted history")
	if !resp.Canceled || resp.CompactRevision != compactRev {
		t.Fatalf("watch from compacted history: canceled %v compact revision %d (want %d), %d events, err %v",
			resp.Canceled, resp.CompactRevision, compactRev, len(resp.Events), resp.Err())
	}
	for _, line := range strings.Split(f.logText(), "\n") {
		if strings.Contains(line, logInstalled) {
			t.Logf("%s: %s", f.name, line)
		}
	}
}
