package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ballastdb/ballast/node/join"
)

// TestScaleDownRemovesOnlyThoseAsked grows a cluster from 3 to 5 members the
// way the operator does (learners that join with --join-endpoints, then
// promoted), makes the highest member lead, moves leadership away from it
// and removes the two highest members one after the other, retrying while
// the cluster refuses for strict reconfiguration. Only the two removed
// members may stop; the other three keep serving and list each other.
func TestScaleDownRemovesOnlyThoseAsked(t *testing.T) {
	c := startCluster(t, 3)
	ctx := ctxT(t, 180*time.Second)
	cli := c.client()
	tlogs := map[*member]string{}
	for len(c.members) < 5 {
		m, tlog := newJoiner(t, fmt.Sprintf("m%d", len(c.members)+1), c.endpoints()...)
		var add *clientv3.MemberAddResponse
		waitFor(t, 30*time.Second, "learner add of "+m.name, func() bool {
			var err error
			add, err = cli.MemberAddAsLearner(ctx, []string{m.peer})
			return err == nil
		})
		m.start()
		waitFor(t, 30*time.Second, "promotion of "+m.name, func() bool {
			_, err := cli.MemberPromote(ctx, add.Member.ID)
			return err == nil
		})
		c.members = append(c.members, m)
		tlogs[m] = tlog
	}
	all := c.client()
	for _, m := range c.members {
		if _, err := all.Put(ctx, "written-before/"+m.name, "v"); err != nil {
			t.Fatal(err)
		}
	}

	m4, m5 := c.members[3], c.members[4]
	moveLeaderTo(t, ctx, c, m5)
	moveLeaderTo(t, ctx, c, c.members[0])
	for _, m := range []*member{m5, m4} {
		removeMember(t, all, mustID(t, m))
		expectReplace(t, m, tlogs[m], join.Removed)
	}

	for _, m := range c.members[:3] {
		if !m.running() {
			log, err := m.waitExit(time.Second)
			t.Fatalf("%s, which was not removed, exited (%v); log:\n%s", m.name, err, tail(log, 40))
		}
	}
	list, err := c.members[0].clientv3().MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list.Members {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); len(list.Members) != 3 || strings.Contains(got, "m4") || strings.Contains(got, "m5") {
		t.Fatalf("members after removing m4 and m5: %s", got)
	}
	for _, m := range c.members[:3] {
		resp, err := m.clientv3().Get(ctx, "written-before/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil || resp.Count != 5 {
			t.Fatalf("%s has %v keys (%v), want 5", m.name, resp, err)
		}
	}
}

// moveLeaderTo hands leadership to m, through the current leader.
func moveLeaderTo(t *testing.T, ctx context.Context, c *cluster, m *member) {
	t.Helper()
	id := mustID(t, m)
	waitFor(t, 30*time.Second, "leadership moved to "+m.name, func() bool {
		lead := c.leader(ctx)
		if lead == m {
			return true
		}
		_, err := lead.clientv3().MoveLeader(ctx, id)
		return err == nil && c.leader(ctx) == m
	})
}
