package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// step is one etcdctl invocation and what etcd answers to it.
type step struct {
	args  []string
	stdin string
	want  string // exact stdout, unless wantRe or wantErr is set
	// wantRe matches stdout when the output carries IDs or timings.
	wantRe string
	// wantErr is a substring of stderr; the command must fail.
	wantErr string
}

func runSteps(t *testing.T, m *member, steps []step) {
	t.Helper()
	for i, s := range steps {
		cmd := exec.Command(etcdctlBin, append([]string{"--endpoints=" + m.client}, s.args...)...)
		if s.stdin != "" {
			cmd.Stdin = strings.NewReader(s.stdin)
		}
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		name := fmt.Sprintf("step %d: etcdctl %s", i, strings.Join(s.args, " "))
		switch {
		case s.wantErr != "":
			if err == nil {
				t.Fatalf("%s: succeeded with %q, want error %q", name, out.String(), s.wantErr)
			}
			if !strings.Contains(errOut.String(), s.wantErr) {
				t.Fatalf("%s: stderr %q, want it to contain %q", name, errOut.String(), s.wantErr)
			}
		case err != nil:
			t.Fatalf("%s: %v\nstderr: %s", name, err, errOut.String())
		case s.wantRe != "":
			if !regexp.MustCompile(s.wantRe).MatchString(out.String()) {
				t.Fatalf("%s: stdout %q does not match %q", name, out.String(), s.wantRe)
			}
		default:
			if out.String() != s.want {
				t.Fatalf("%s: stdout %q, want %q", name, out.String(), s.want)
			}
		}
	}
}

func TestEtcdctlKV(t *testing.T) {
	m := startMember(t)
	runSteps(t, m, []step{
		{args: []string{"put", "foo", "bar"}, want: "OK\n"},
		{args: []string{"get", "foo"}, want: "foo\nbar\n"},
		{args: []string{"put", "foo", "baz", "--prev-kv"}, want: "OK\nfoo\nbar\n"},
		{args: []string{"get", "foo", "--print-value-only"}, want: "baz\n"},
		{args: []string{"put", "foo1", "a"}, want: "OK\n"},
		{args: []string{"put", "foo2", "b"}, want: "OK\n"},
		{args: []string{"put", "zoo", "c"}, want: "OK\n"},
		{args: []string{"get", "foo", "--prefix"}, want: "foo\nbaz\nfoo1\na\nfoo2\nb\n"},
		{args: []string{"get", "foo", "--prefix", "--keys-only"}, want: "foo\n\nfoo1\n\nfoo2\n\n"},
		{args: []string{"get", "foo", "--prefix", "--limit", "2"}, want: "foo\nbaz\nfoo1\na\n"},
		{args: []string{"get", "foo", "--prefix", "--sort-by", "VALUE", "--order", "DESCEND"}, want: "foo\nbaz\nfoo2\nb\nfoo1\na\n"},
		{args: []string{"get", "foo", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND", "--limit", "1"}, want: "foo2\nb\n"},
		{args: []string{"get", "foo1", "--from-key"}, want: "foo1\na\nfoo2\nb\nzoo\nc\n"},
		{args: []string{"get", "foo", "foo2"}, want: "foo\nbaz\nfoo1\na\n"},
		{args: []string{"get", "foo", "--rev", "2"}, want: "foo\nbar\n"},
		{args: []string{"get", "foo", "--rev", "1"}, want: ""},
		{args: []string{"get", "foo", "--consistency", "s"}, want: "foo\nbaz\n"},
		{args: []string{"get", "foo", "--prefix", "--count-only", "-w", "fields"}, wantRe: `"Count" : 3\n`},
		{args: []string{"get", "foo", "--rev", "100"}, wantErr: "etcdserver: mvcc: required revision is a future revision"},
		{args: []string{"del", "foo1"}, want: "1\n"},
		{args: []string{"del", "nosuchkey"}, want: "0\n"},
		{args: []string{"del", "foo", "--prefix", "--prev-kv"}, want: "2\nfoo\nbaz\nfoo2\nb\n"},
		{args: []string{"put", "nokey", "--ignore-value"}, wantErr: "etcdserver: key not found"},
		{args: []string{"put", "zoo", "--ignore-value"}, want: "OK\n"},
		{args: []string{"get", "zoo"}, want: "zoo\nc\n"},
		{args: []string{"put", "k", "v", "--lease", "1234"}, wantErr: "etcdserver: requested lease not found"},
	})

	// Revisions as etcd counts them: the store starts at 1, every change is
	// one revision, deleting a missing key changes nothing.
	out := m.mustEtcdctl("get", "zoo", "-w", "json")
	var r struct {
		Header struct{ Revision int64 } `json:"header"`
		Kvs    []struct {
			CreateRevision int64 `json:"create_revision"`
			ModRevision    int64 `json:"mod_revision"`
			Version        int64 `json:"version"`
		} `json:"kvs"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// puts: foo(2) foo(3) foo1(4) foo2(5) zoo(6), del foo1(7), del prefix(8), put zoo --ignore-value(9)
	if r.Header.Revision != 9 || len(r.Kvs) != 1 || r.Kvs[0].CreateRevision != 6 || r.Kvs[0].ModRevision != 9 || r.Kvs[0].Version != 2 {
		t.Fatalf("revisions = %s", out)
	}
}

func TestEtcdctlTxn(t *testing.T) {
	m := startMember(t)
	runSteps(t, m, []step{
		{args: []string{"put", "user1", "bad"}, want: "OK\n"},
		{args: []string{"txn", "--interactive=false"}, stdin: "value(\"user1\") = \"bad\"\n\ndel user1\n\nput result failed\n\n",
			want: "SUCCESS\n\n1\n"},
		{args: []string{"txn", "--interactive=false"}, stdin: "value(\"user1\") = \"bad\"\n\ndel user1\n\nput result failed\n\n",
			want: "FAILURE\n\nOK\n"},
		{args: []string{"get", "result"}, want: "result\nfailed\n"},
		{args: []string{"txn", "--interactive=false"}, stdin: "mod(\"result\") > \"0\"\nversion(\"result\") = \"1\"\n\nget result\nput r2 x\n\n\n",
			want: "SUCCESS\n\nresult\nfailed\n\nOK\n"},
		{args: []string{"txn", "--interactive=false"}, stdin: "create(\"nokey\") = \"0\"\n\nput a 1\nput a 2\n\n\n",
			wantErr: "etcdserver: duplicate key given in txn request"},
	})
}

func TestEtcdctlCompactionAndErrors(t *testing.T) {
	m := startMember(t)
	for i := 0; i < 5; i++ {
		m.mustEtcdctl("put", "k", strconv.Itoa(i))
	}
	runSteps(t, m, []step{
		{args: []string{"compaction", "4"}, want: "compacted revision 4\n"},
		{args: []string{"get", "k", "--rev", "3"}, wantErr: "etcdserver: mvcc: required revision has been compacted"},
		{args: []string{"get", "k", "--rev", "4"}, want: "k\n2\n"},
		{args: []string{"compaction", "4"}, wantErr: "etcdserver: mvcc: required revision has been compacted"},
		{args: []string{"compaction", "100"}, wantErr: "etcdserver: mvcc: required revision is a future revision"},
		{args: []string{"compaction", "--physical", "5"}, want: "compacted revision 5\n"},
		{args: []string{"put", "", "v"}, wantErr: "etcdserver: key is not provided"},
	})
}

var leaseIDRe = regexp.MustCompile(`lease ([0-9a-f]+) granted with TTL\((\d+)s\)`)

func TestEtcdctlLease(t *testing.T) {
	m := startMember(t)
	out := m.mustEtcdctl("lease", "grant", "100")
	sm := leaseIDRe.FindStringSubmatch(out)
	if sm == nil || sm[2] != "100" {
		t.Fatalf("lease grant: %q", out)
	}
	id := sm[1]
	runSteps(t, m, []step{
		{args: []string{"put", "lk", "v", "--lease", id}, want: "OK\n"},
		{args: []string{"lease", "timetolive", id}, wantRe: `^lease ` + id + ` granted with TTL\(100s\), remaining\((99|100)s\)\n$`},
		{args: []string{"lease", "timetolive", id, "--keys"}, wantRe: `^lease ` + id + ` granted with TTL\(100s\), remaining\((99|100)s\), attached keys\(\[lk\]\)\n$`},
		{args: []string{"lease", "list"}, want: "found 1 leases\n" + id + "\n"},
		{args: []string{"lease", "keep-alive", "--once", id}, want: "lease " + id + " keepalived with TTL(100)\n"},
		{args: []string{"lease", "revoke", id}, want: "lease " + id + " revoked\n"},
		{args: []string{"get", "lk"}, want: ""},
		{args: []string{"lease", "timetolive", id}, want: "lease " + id + " already expired\n"},
		{args: []string{"lease", "revoke", id}, wantErr: "etcdserver: requested lease not found"},
		{args: []string{"lease", "grant", "9000000001"}, wantErr: "etcdserver: too large lease TTL"},
	})
}

// TestLeaseExpiryDeletesKeys grants a short lease and waits for its keys to
// go away, watching for the delete event rather than sleeping.
func TestLeaseExpiryDeletesKeys(t *testing.T) {
	m := startMember(t, withArgs("--election-timeout", "500", "--heartbeat-interval", "50"))
	c := m.clientv3()
	ctx := ctxT(t, 30*time.Second)
	l, err := c.Grant(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	put, err := c.Put(ctx, "ephemeral", "v", clientv3.WithLease(l.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "ephemeral2", "v", clientv3.WithLease(l.ID)); err != nil {
		t.Fatal(err)
	}
	wch := c.Watch(ctx, "ephemeral", clientv3.WithPrefix(), clientv3.WithRev(put.Header.Revision+2))
	select {
	case wr := <-wch:
		if len(wr.Events) != 2 || wr.Events[0].Type != mvccpb.DELETE || wr.Events[1].Type != mvccpb.DELETE {
			t.Fatalf("want both keys deleted in one revision, got %+v", wr.Events)
		}
		if wr.Events[0].Kv.ModRevision != wr.Events[1].Kv.ModRevision {
			t.Fatalf("the lease's keys were deleted in different revisions")
		}
	case <-ctx.Done():
		t.Fatal("lease did not expire")
	}
}

func TestEtcdctlWatch(t *testing.T) {
	m := startMember(t)
	m.mustEtcdctl("put", "w1", "a")
	m.mustEtcdctl("put", "w1", "b")
	cmd := exec.Command(etcdctlBin, "--endpoints="+m.client, "watch", "w", "--prefix", "--rev", "1", "--prev-kv")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	read := func(n int) []string {
		var got []string
		timeout := time.After(20 * time.Second)
		for len(got) < n {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("watch ended early after %q", got)
				}
				got = append(got, l)
			case <-timeout:
				t.Fatalf("watch printed only %q", got)
			}
		}
		return got
	}
	// etcdctl prints each event as its type, then the previous KV (with
	// --prev-kv, when there is one), then the KV: key and value lines.
	if got := strings.Join(read(8), "|"); got != "PUT|w1|a|PUT|w1|a|w1|b" {
		t.Fatalf("history replay = %q", got)
	}
	m.mustEtcdctl("del", "w1")
	if got := strings.Join(read(5), "|"); got != "DELETE|w1|b|w1|" {
		t.Fatalf("live delete = %q", got)
	}
}

func TestEtcdctlMaintenance(t *testing.T) {
	m := startMember(t)
	m.mustEtcdctl("put", "a", "1")
	runSteps(t, m, []step{
		{args: []string{"endpoint", "health"}, wantRe: `^` + regexp.QuoteMeta(m.client) + ` is healthy: successfully committed proposal: took = .+\n$`},
		{args: []string{"endpoint", "status"}, wantRe: `^` + regexp.QuoteMeta(m.client) + `, [0-9a-f]+, 3\.6\.0, 3\.6\.0, \d+ [kMB]+, \d+ [kMB]+, \d+%, [\d.]+ [kMG]?B, true, false, \d+, \d+, \d+, , , false\n$`},
		{args: []string{"endpoint", "hashkv"}, wantRe: `^` + regexp.QuoteMeta(m.client) + `, \d+, \d+\n$`},
		{args: []string{"alarm", "list"}, want: ""},
		{args: []string{"alarm", "disarm"}, want: ""},
		{args: []string{"defrag"}, wantRe: `^Finished defragmenting etcd member\[` + regexp.QuoteMeta(m.client) + `\]`},
		{args: []string{"member", "list"}, wantRe: `^[0-9a-f]+, started, m1, ` + regexp.QuoteMeta(m.peer) + `, ` + regexp.QuoteMeta(m.client) + `, false\n$`},
		{args: []string{"get", "a"}, want: "a\n1\n"},
	})
	var st []struct {
		Status struct {
			Version   string `json:"version"`
			DbSize    int64  `json:"dbSize"`
			Leader    uint64 `json:"leader"`
			RaftIndex uint64 `json:"raftIndex"`
			RaftTerm  uint64 `json:"raftTerm"`
		} `json:"Status"`
	}
	if err := json.Unmarshal([]byte(m.mustEtcdctl("endpoint", "status", "-w", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Status.Version != "3.6.0" || st[0].Status.DbSize == 0 || st[0].Status.Leader == 0 || st[0].Status.RaftIndex == 0 {
		t.Fatalf("endpoint status = %+v", st)
	}
}

// TestSnapshotWithEtcdutl saves a snapshot with etcdctl, checks it with
// etcdutl, restores it with etcdutl, and starts Ballast on the restored data
// dir: the data is all there.
func TestSnapshotWithEtcdutl(t *testing.T) {
	m := startMember(t)
	c := m.clientv3()
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 100; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("snap/%03d", i), strings.Repeat("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "snap.db")
	out := m.mustEtcdctl("snapshot", "save", file)
	if !strings.Contains(out, "Snapshot saved at "+file) {
		t.Fatalf("snapshot save: %q", out)
	}
	statusOut, errOut, err := runTool(etcdutlBin, "snapshot", "status", file, "-w", "json")
	if err != nil {
		t.Fatalf("etcdutl snapshot status: %v: %s", err, errOut)
	}
	var st struct {
		Revision int64 `json:"revision"`
		TotalKey int   `json:"totalKey"`
	}
	if err := json.Unmarshal([]byte(statusOut), &st); err != nil {
		t.Fatalf("status %q: %v", statusOut, err)
	}
	if st.Revision != 101 || st.TotalKey != 100 {
		t.Fatalf("etcdutl snapshot status = %s", statusOut)
	}

	restored := newMember(t)
	restored.name = "restored"
	if _, errOut, err := runTool(etcdutlBin, "snapshot", "restore", file,
		"--data-dir", restored.dataDir,
		"--name", restored.name,
		"--initial-cluster", restored.name+"="+restored.peer,
		"--initial-advertise-peer-urls", restored.peer,
	); err != nil {
		t.Fatalf("etcdutl snapshot restore: %v: %s", err, errOut)
	}
	restored.start()
	rc := restored.clientv3()
	resp, err := rc.Get(ctxT(t, 10*time.Second), "snap/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 100 || string(resp.Kvs[99].Value) != strings.Repeat("v", 99) {
		t.Fatalf("restored member has %d keys", len(resp.Kvs))
	}
	// And it takes writes.
	if _, err := rc.Put(ctxT(t, 10*time.Second), "after-restore", "x"); err != nil {
		t.Fatal(err)
	}
}
