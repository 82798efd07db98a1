package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDowngradeCluster: etcdctl downgrade on three members. Enabling is
// recorded through raft (every member's Status shows it at once); the
// cluster version moves down to the target only when every member has
// told the leader its version, so not while one is down; the storage
// version follows on every member, also across a restart; cancelling
// brings both back up.
func TestDowngradeCluster(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t, 2*time.Minute)
	for _, m := range c.members {
		awaitVersions(t, ctx, m, "3.6.0", "3.6.0")
	}
	lead := c.leader(ctx)
	var down, up *member // a follower to stop, and one that stays up
	for _, m := range c.members {
		switch {
		case m == lead:
		case down == nil:
			down = m
		default:
			up = m
		}
	}
	down.stop()

	if out := up.mustEtcdctl("downgrade", "validate", "3.5"); out != "Downgrade validate success, cluster version 3.6\n" {
		t.Fatalf("downgrade validate: %q", out)
	}
	if out := up.mustEtcdctl("downgrade", "enable", "3.5"); out != "Downgrade enable success, cluster version 3.6\n" {
		t.Fatalf("downgrade enable: %q", out)
	}
	for _, m := range []*member{lead, up} {
		st, err := m.clientv3().Status(ctx, m.client)
		if err != nil {
			t.Fatal(err)
		}
		if !st.DowngradeInfo.GetEnabled() || st.DowngradeInfo.GetTargetVersion() != "3.5.0" {
			t.Fatalf("%s: Status downgrade info = %v, want enabled, target 3.5.0", m.name, st.DowngradeInfo)
		}
	}
	if _, errOut, err := up.etcdctl("downgrade", "enable", "3.5"); err == nil || !strings.Contains(errOut, "etcdserver: cluster has a downgrade job in progress") {
		t.Fatalf("second enable: %v %q", err, errOut)
	}
	// The leader has looked and found a member it cannot ask: the cluster
	// version stays.
	awaitLog(t, ctx, lead, "the downgrade waits until every member tells its version")
	for _, m := range []*member{lead, up} {
		if v := versionsOf(t, ctx, m); v.Cluster != "3.6.0" {
			t.Fatalf("%s: cluster version %s with a member down, want 3.6.0", m.name, v.Cluster)
		}
	}

	down.restart()
	for _, m := range c.members {
		awaitVersions(t, ctx, m, "3.5.0", "3.5.0")
	}
	// A member restarted during the downgrade keeps the lowered schema.
	up.stop()
	up.restart()
	if v := versionsOf(t, ctx, up); v.Storage != "3.5.0" {
		t.Fatalf("after a restart: storage version %s, want 3.5.0", v.Storage)
	}

	if out := lead.mustEtcdctl("downgrade", "cancel"); out != "Downgrade cancel success, cluster version 3.5\n" {
		t.Fatalf("downgrade cancel: %q", out)
	}
	for _, m := range c.members {
		awaitVersions(t, ctx, m, "3.6.0", "3.6.0")
		st, err := m.clientv3().Status(ctx, m.client)
		if err != nil {
			t.Fatal(err)
		}
		if st.DowngradeInfo.GetEnabled() || st.DowngradeInfo.GetTargetVersion() != "" {
			t.Fatalf("%s: Status downgrade info after cancel = %v", m.name, st.DowngradeInfo)
		}
	}
}

// httpVersions is /version's answer.
type httpVersions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
	Storage string `json:"storage"`
}

func versionsOf(t *testing.T, ctx context.Context, m *member) httpVersions {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.client+"/version", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v httpVersions
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// awaitVersions waits until m reports these cluster and storage versions.
// The leader moves the cluster version every few seconds and nothing
// announces it: polling.
func awaitVersions(t *testing.T, ctx context.Context, m *member, cluster, storage string) {
	t.Helper()
	for {
		v := versionsOf(t, ctx, m)
		if v.Cluster == cluster && v.Storage == storage {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: versions %+v, want cluster %s storage %s", m.name, v, cluster, storage)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// awaitLog waits until m's log has a line containing s.
func awaitLog(t *testing.T, ctx context.Context, m *member, s string) {
	t.Helper()
	for !strings.Contains(m.logText(), s) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s never logged %q; log:\n%s", m.name, s, tail(m.logText(), 40))
		case <-time.After(100 * time.Millisecond): // polling the log buffer
		}
	}
}
