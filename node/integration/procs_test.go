package integration

import (
	"bufio"
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

const gomaxprocsSeries = "go_sched_gomaxprocs_threads "

// TestGOMAXPROCSFollowsLoad: a lone member runs Go code on one CPU while
// its client calls one request at a time, on all of them while two calls
// are in progress (an open watch counts), and back on one when the watch
// ends.
func TestGOMAXPROCSFollowsLoad(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: there is nothing to tune")
	}
	c := startCluster(t, 1)
	m := c.members[0]
	procs := func() float64 { return metricValue(t, m, gomaxprocsSeries) }
	waitFor(t, 10*time.Second, "one P while idle", func() bool { return procs() == 1 })

	cli := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One call at a time keeps one P.
	for i := range 20 {
		if _, err := cli.Put(ctx, "k", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := procs(); got != 1 {
		t.Fatalf("GOMAXPROCS = %v after sequential puts, want 1", got)
	}

	wctx, stopWatch := context.WithCancel(ctx)
	wch := cli.Watch(wctx, "k")
	if _, err := cli.Put(ctx, "k", "watched"); err != nil { // the second call in progress
		t.Fatal(err)
	}
	if ev := <-wch; ev.Err() != nil || len(ev.Events) != 1 {
		t.Fatalf("watch: %v, %d events", ev.Err(), len(ev.Events))
	}
	waitFor(t, 10*time.Second, "all CPUs with a watch open", func() bool { return procs() > 1 })

	stopWatch()
	waitFor(t, 10*time.Second, "one P once the watch ended", func() bool { return procs() == 1 })
}

// TestGOMAXPROCSKept: a member with peers, and one whose GOMAXPROCS the
// operator set, keep it, idle or not.
func TestGOMAXPROCSKept(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: there is nothing to tune")
	}
	c := startCluster(t, 3)
	set := newCluster(t, 1)
	set.members[0].env = append(set.members[0].env, "GOMAXPROCS=2")
	set.start()
	ms := append(c.members, set.members[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.client().Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	// Nothing announces that a switch did not happen: watch for a while
	// longer than the tuner takes to move an idle lone member (300ms).
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		for _, m := range ms {
			if got := metricValue(t, m, gomaxprocsSeries); got == 1 {
				t.Fatalf("%s runs on one P; want all CPUs", m.name)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricValue reads one series' value from m's /metrics; series is the
// line's text up to the value, with its trailing space.
func metricValue(t *testing.T, m *member, series string) float64 {
	t.Helper()
	resp, err := http.Get(m.client + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("%s/metrics has no %s", m.client, series)
	return 0
}
