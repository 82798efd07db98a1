package compat

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Two members are listed in the order of their (random) IDs, so the order
// differs between two clusters: sort the members of member list (simple and
// JSON) and of ETCD_INITIAL_CLUSTER. memberOrder checks the order itself.
var (
	membersJSONRe = regexp.MustCompile(`"members":\[(.*)\]`)
	initialClRe   = regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]*)"`)
)

func sortMembers(s string) string {
	s = membersJSONRe.ReplaceAllStringFunc(s, func(m string) string {
		items := strings.Split(membersJSONRe.FindStringSubmatch(m)[1], "},{")
		for i := range items {
			items[i] = strings.TrimSuffix(strings.TrimPrefix(items[i], "{"), "}")
		}
		slices.Sort(items)
		return `"members":[{` + strings.Join(items, "},{") + `}]`
	})
	s = initialClRe.ReplaceAllStringFunc(s, func(m string) string {
		items := strings.Split(initialClRe.FindStringSubmatch(m)[1], ",")
		slices.Sort(items)
		return `ETCD_INITIAL_CLUSTER="` + strings.Join(items, ",") + `"`
	})
	// the simple format: one member per line starting with an ID symbol
	lines := strings.Split(s, "\n")
	start := -1
	for i := 0; i <= len(lines); i++ {
		if i < len(lines) && strings.HasPrefix(lines[i], "<member-id") && strings.Contains(lines[i], ", ") {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			slices.Sort(lines[start:i])
			start = -1
		}
	}
	return strings.Join(lines, "\n")
}

func ctlMembers(args ...string) step { return step{ctl: args, norm: sortMembers} }

// memberOrder reports whether MemberList lists members by ascending ID, as
// etcd does.
var memberOrder = fn("member list order", func(ctx context.Context, e *env) string {
	r, err := e.c.MemberList(ctx)
	if err != nil {
		return fmtErr(err) + "\n"
	}
	var ids []uint64
	for _, m := range r.Members {
		ids = append(ids, m.ID)
	}
	return fmt.Sprintf("%d members, sorted by ID: %v\n", len(ids), slices.IsSorted(ids))
})

// TestMembership adds a learner to the single-member cluster (a learner
// does not count for quorum, so the cluster keeps working), looks at it,
// and removes it again.
func TestMembership(t *testing.T) {
	t.Parallel()
	steps := []step{
		ctlMembers("member", "add", "m2", "--peer-urls", "http://127.0.0.1:2", "--learner"),
		ctlMembers("member", "list"),
		ctlMembers("member", "list", "-w", "json"),
		memberOrder,
		ctlFail("member", "promote", "{{member2}}"),
		// (adding a second member with the same peer URLs is not checked:
		// etcd derives the new ID from the URLs and the current second, so
		// its error depends on the clock)
		ctl("member", "update", "{{member2}}", "--peer-urls", "http://127.0.0.1:3"),
		ctlMembers("member", "list", "-w", "json"),
		ctlFail("move-leader", "{{member2}}"),
		ctl("endpoint", "status", "-w", "json"),
		ctl("member", "remove", "{{member2}}"),
		ctl("member", "list", "-w", "json"),
		ctlFail("member", "remove", "{{member2}}"),
		ctlFail("member", "add", "m4", "--peer-urls", "not-a-url"),
		ctl("put", "k", "v", "-w", "json"),
		ctl("downgrade", "validate", "{{downgrade_target}}"),
	}
	runScenario(t, scenario{name: "membership", steps: steps})
}

// TestConcurrency drives etcdctl lock and the client's concurrency package
// (sessions, mutexes, elections), which combine leases, txns and watches.
func TestConcurrency(t *testing.T) {
	t.Parallel()
	steps := []step{
		ctl("lock", "mylock", "echo", "held"),
		ctl("get", "", "--from-key", "-w", "json"),
		fn("session, mutex and election", func(ctx context.Context, e *env) string {
			var b strings.Builder
			s, err := concurrency.NewSession(e.c, concurrency.WithTTL(60), concurrency.WithContext(ctx))
			if err != nil {
				return "session: " + fmtErr(err) + "\n"
			}
			defer s.Close()
			e.addLease(int64(s.Lease()))
			m := concurrency.NewMutex(s, "mutex/")
			if err := m.Lock(ctx); err != nil {
				b.WriteString("lock: " + fmtErr(err) + "\n")
			}
			fmt.Fprintf(&b, "locked key %s header %s\n", m.Key(), fmtHeader(m.Header()))
			if err := m.TryLock(ctx); err != nil {
				b.WriteString("second TryLock by the same session: " + fmtErr(err) + "\n")
			}
			s2, err := concurrency.NewSession(e.c, concurrency.WithTTL(30), concurrency.WithContext(ctx))
			if err != nil {
				return b.String() + "session 2: " + fmtErr(err) + "\n"
			}
			e.addLease(int64(s2.Lease()))
			m2 := concurrency.NewMutex(s2, "mutex/")
			fmt.Fprintf(&b, "TryLock by another session: %v\n", m2.TryLock(ctx))
			b.WriteString(fmtGet(e.c.Get(ctx, "mutex/", clientv3.WithPrefix())))
			if err := m.Unlock(ctx); err != nil {
				b.WriteString("unlock: " + fmtErr(err) + "\n")
			}
			if err := m2.Lock(ctx); err != nil {
				b.WriteString("lock 2: " + fmtErr(err) + "\n")
			}
			fmt.Fprintf(&b, "session 2 locked %s\n", m2.Key())
			if err := s2.Close(); err != nil {
				b.WriteString("close 2: " + fmtErr(err) + "\n")
			}
			el := concurrency.NewElection(s, "election/")
			if err := el.Campaign(ctx, "candidate-1"); err != nil {
				b.WriteString("campaign: " + fmtErr(err) + "\n")
			}
			b.WriteString("leader: " + fmtGet(el.Leader(ctx)))
			if err := el.Proclaim(ctx, "candidate-1b"); err != nil {
				b.WriteString("proclaim: " + fmtErr(err) + "\n")
			}
			b.WriteString("after proclaim: " + fmtGet(el.Leader(ctx)))
			if err := el.Resign(ctx); err != nil {
				b.WriteString("resign: " + fmtErr(err) + "\n")
			}
			_, err = el.Leader(ctx)
			b.WriteString("leader after resign: " + fmt.Sprint(err) + "\n")
			return b.String()
		}),
	}
	runScenario(t, scenario{name: "concurrency", steps: steps})
}

// TestWatchProgressPeriodic runs with a short --watch-progress-notify-interval
// so that a watch asking for progress notifications gets one without
// asking.
func TestWatchProgressPeriodic(t *testing.T) {
	t.Parallel()
	steps := []step{
		ctl("put", "a", "1"),
		watchCtl(1, "a", "--progress-notify"),
		fn("periodic progress notify", func(ctx context.Context, e *env) string {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			wch := e.c.Watch(ctx, "a", clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
			s := collectCreated(wch)
			select {
			case wr, ok := <-wch:
				if !ok {
					return s + "watch channel closed\n"
				}
				return s + fmtWatchResp(wr)
			case <-time.After(5 * time.Second):
				return s + "no progress notification within 5s\n"
			}
		}),
	}
	runScenario(t, scenario{name: "watch-progress-periodic", flags: []string{"--watch-progress-notify-interval", "500ms"}, steps: steps})
}
