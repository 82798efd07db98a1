package integration

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestMemberWaitsForPeersAtStartup: a member of a three-member cluster
// started while the other two are down waits for them, as etcd does: it
// keeps running, says every ten seconds what it waits for, and serves once
// a second member is back. SIGTERM meanwhile stops it cleanly; a client
// call meanwhile is held until then.
func TestMemberWaitsForPeersAtStartup(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t, 90*time.Second)
	if _, err := c.client().Put(ctx, "before", "restart"); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		m.stop()
	}
	m1, m2 := c.members[0], c.members[1]
	if err := m1.launch(); err != nil {
		t.Fatal(err)
	}
	line := m1.awaitLog("not ready to serve clients yet", 30*time.Second)
	t.Logf("m1 alone: %s", line)
	if !m1.running() {
		t.Fatal("m1 exited while waiting for its peers")
	}
	// Stopped while waiting, it exits cleanly (status 0).
	m1.stop()
	if err := m1.launch(); err != nil {
		t.Fatal(err)
	}
	// A client call made while it waits is held until it is ready, not
	// refused with "no leader" (its port is open meanwhile).
	m1.awaitLog("serving client traffic", 30*time.Second)
	put := async(func() (*clientv3.PutResponse, error) {
		return m1.clientv3().Put(ctx, "while", "waiting")
	})
	m1.awaitLog("not ready to serve clients yet", 30*time.Second)
	assertPending(t, put, "a put on a member without quorum")
	m2.start() // waits until m2 is ready, which needs m1
	m1.waitReady()
	await(t, put, 30*time.Second, "the put held until the member was ready")
	resp, err := m1.clientv3().Get(ctx, "before")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get after the restart: %v %v", resp, err)
	}
}
