package integration

import (
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestPeriodicAutoCompaction keeps two seconds of history: old revisions
// become unreadable on their own, recent ones stay.
func TestPeriodicAutoCompaction(t *testing.T) {
	m := startMember(t, withArgs("--auto-compaction-mode", "periodic", "--auto-compaction-retention", "2s"))
	c := m.clientv3()
	ctx := ctxT(t, 60*time.Second)
	first, err := c.Put(ctx, "k", "v1")
	if err != nil {
		t.Fatal(err)
	}
	// Keep writing so there are newer revisions to keep. The compactor
	// samples the revision every period/10, so its first target may be the
	// first revision itself (which stays readable); what is awaited is a
	// compaction past it, seen as the first revision turning unreadable.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.Get(ctx, "k", clientv3.WithRev(first.Header.Revision))
		if err != nil {
			if err.Error() != rpctypes.ErrCompacted.Error() {
				t.Fatalf("read at the first revision: %v, want %v", err, rpctypes.ErrCompacted)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first revision still readable after 30s; log:\n%s", m.logText())
		}
		if _, err := c.Put(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // paces the load; not synchronisation
	}
	if !strings.Contains(m.logText(), "auto compacted") {
		t.Fatalf("history compacted without an auto compaction logged; log:\n%s", m.logText())
	}
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
}
