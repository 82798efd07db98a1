package integration

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestNoSpaceAlarm fills a member past --quota-backend-bytes: writes are
// refused with etcd's error and the NOSPACE alarm is raised; deleting,
// compacting, defragmenting and disarming make it writable again, as the
// etcd runbook says.
func TestNoSpaceAlarm(t *testing.T) {
	m := startMember(t, withArgs("--quota-backend-bytes", strconv.Itoa(256*1024)))
	c := m.clientv3()
	ctx := ctxT(t, 60*time.Second)
	value := strings.Repeat("x", 8*1024)
	var full error
	for i := 0; i < 1000 && full == nil; i++ {
		_, full = c.Put(ctx, fmt.Sprintf("fill/%04d", i), value)
	}
	if full == nil {
		t.Fatal("1000 puts of 8 KiB fit in a 256 KiB quota")
	}
	if full.Error() != rpctypes.ErrNoSpace.Error() {
		t.Fatalf("put over quota: %v, want %v", full, rpctypes.ErrNoSpace)
	}

	// The alarm is raised through raft; wait until the member reports it.
	alarmRe := regexp.MustCompile(`memberID:\d+\s+alarm:NOSPACE`)
	waitFor(t, 10*time.Second, "NOSPACE alarm listed", func() bool {
		out, _, err := m.etcdctl("alarm", "list")
		return err == nil && alarmRe.MatchString(out)
	})
	// Even a small write is refused while the alarm is raised; reads work.
	if _, err := c.Put(ctx, "small", "v"); err == nil || err.Error() != rpctypes.ErrNoSpace.Error() {
		t.Fatalf("small put under NOSPACE: %v", err)
	}
	if _, err := c.Get(ctx, "fill/0000"); err != nil {
		t.Fatalf("read under NOSPACE: %v", err)
	}
	st, err := c.Status(ctx, m.client)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Errors) == 0 || !strings.Contains(st.Errors[0], "NOSPACE") {
		t.Fatalf("status errors = %q, want the NOSPACE alarm", st.Errors)
	}

	// Free space: delete, compact, defragment, disarm.
	del, err := c.Delete(ctx, "fill/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("delete under NOSPACE must work: %v", err)
	}
	if _, err := c.Compact(ctx, del.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	m.mustEtcdctl("defrag")
	out := m.mustEtcdctl("alarm", "disarm")
	if !alarmRe.MatchString(out) {
		t.Fatalf("alarm disarm printed %q", out)
	}
	if out := m.mustEtcdctl("alarm", "list"); out != "" {
		t.Fatalf("alarm list after disarm = %q", out)
	}
	if _, err := c.Put(ctx, "small", "v"); err != nil {
		t.Fatalf("put after disarm: %v", err)
	}
}

// waitFor polls cond until it holds. Used only where the server offers no
// event to wait on (an alarm's state as a client sees it).
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
