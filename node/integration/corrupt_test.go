package integration

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// Corruption checks on three members, one of whose bbolt files is altered
// while it is stopped: the value of a put in the "key" bucket changes,
// behind raft's back.

const errCorrupt = "etcdserver: corrupt cluster"

// TestCorruptCheckPeriodic: with --corrupt-check-time, the leader finds the
// altered follower and raises the CORRUPT alarm for it; then the cluster
// refuses writes with etcd's error. With --experimental-initial-corrupt-check
// the altered member refuses to start, while a healthy member, checked
// against the members that are up, starts.
func TestCorruptCheckPeriodic(t *testing.T) {
	c := startCluster(t, 3, "--corrupt-check-time", "1s")
	ctx := ctxT(t, 2*time.Minute)
	cli := c.client()
	rev := putAll(t, ctx, cli)
	fs := followers(c, c.leader(ctx))
	bad, good := fs[0], fs[1]
	badID := mustID(t, bad)

	bad.stop()
	alterValue(t, bad, rev)
	bad.restart()

	out := awaitCorruptAlarm(t, ctx, good)
	if want := "memberID:" + uintString(badID) + " alarm:CORRUPT"; !strings.Contains(out, want) {
		t.Fatalf("alarm list = %q, want %q", out, want)
	}
	if _, errOut, err := good.etcdctl("put", "after", "x"); err == nil || !strings.Contains(errOut, errCorrupt) {
		t.Fatalf("put with the CORRUPT alarm raised: %v %q, want %q", err, errOut, errCorrupt)
	}
	// Reads are still served (etcd refuses only what goes through apply).
	if out := good.mustEtcdctl("get", "k", "--print-value-only"); out != "v\n" {
		t.Fatalf("get k = %q", out)
	}

	// Start-up checks, against the members that are up.
	bad.stop()
	good.stop()
	good.args = append(good.args, "--experimental-initial-corrupt-check")
	good.restart()
	if !strings.Contains(good.logText(), "initial corruption check passed") {
		t.Fatalf("the healthy member did not run the initial check; log:\n%s", tail(good.logText(), 30))
	}
	bad.args = append(bad.args, "--feature-gates=InitialCorruptCheck=true")
	if err := bad.launch(); err != nil {
		t.Fatal(err)
	}
	log, err := bad.waitExit(time.Minute)
	if err == nil {
		t.Fatalf("the altered member started; log:\n%s", tail(log, 30))
	}
	for _, want := range []string{"found data inconsistency with peers", "refusing to start"} {
		if !strings.Contains(log, want) {
			t.Fatalf("the altered member's log lacks %q:\n%s", want, tail(log, 30))
		}
	}
	if strings.Contains(log, "ready to serve client requests") {
		t.Fatalf("the altered member served before it refused:\n%s", tail(log, 30))
	}
}

// TestCompactHashCheck: with the CompactHashCheck feature on, a compaction
// past the altered revision hashes differently on the altered member; the
// leader compares the members' compaction hashes, finds it in the minority
// and raises the CORRUPT alarm for it.
func TestCompactHashCheck(t *testing.T) {
	c := startCluster(t, 3, "--experimental-compact-hash-check-enabled", "--compact-hash-check-time", "1s")
	ctx := ctxT(t, 2*time.Minute)
	cli := c.client()
	rev := putAll(t, ctx, cli)
	fs := followers(c, c.leader(ctx))
	bad, good := fs[0], fs[1]
	badID := mustID(t, bad)

	bad.stop()
	alterValue(t, bad, rev)
	bad.restart()
	// Every member must hash the same compaction: wait until the
	// restarted member has caught up, then compact.
	last, err := cli.Put(ctx, "last", "1")
	if err != nil {
		t.Fatal(err)
	}
	bcli := bad.clientv3()
	if _, err := bcli.Get(ctx, "last"); err != nil { // linearizable: bad has applied "last"
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, last.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	out := awaitCorruptAlarm(t, ctx, good)
	if want := "memberID:" + uintString(badID) + " alarm:CORRUPT"; out != want+"\n" {
		t.Fatalf("alarm list = %q, want %q", out, want)
	}
	if _, err := cli.Put(ctx, "after", "x"); err == nil || !strings.Contains(err.Error(), errCorrupt) {
		t.Fatalf("put with the CORRUPT alarm raised: %v, want %q", err, errCorrupt)
	}
}

// putAll writes a few keys and returns the revision of "k" (value "v").
func putAll(t *testing.T, ctx context.Context, cli *clientv3.Client) int64 {
	t.Helper()
	var rev int64
	for _, kv := range [][2]string{{"a", "1"}, {"k", "v"}, {"b", "2"}} {
		r, err := cli.Put(ctx, kv[0], kv[1])
		if err != nil {
			t.Fatal(err)
		}
		if kv[0] == "k" {
			rev = r.Header.Revision
		}
	}
	return rev
}

// alterValue rewrites, in the stopped member's bbolt file, the value of
// the put at revision rev (sub revision 0), as a disk or a bug might.
func alterValue(t *testing.T, m *member, rev int64) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(m.dataDir, "member", "snap", "db"), 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := make([]byte, 17)
	binary.BigEndian.PutUint64(key, uint64(rev))
	key[8] = '_'
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		kv := &mvccpb.KeyValue{}
		if err := proto.Unmarshal(b.Get(key), kv); err != nil {
			return err
		}
		if string(kv.Value) != "v" {
			t.Fatalf("revision %d holds %q=%q, want k=v", rev, kv.Key, kv.Value)
		}
		kv.Value = []byte("w")
		v, err := proto.Marshal(kv)
		if err != nil {
			return err
		}
		return b.Put(key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// awaitCorruptAlarm waits until m lists a CORRUPT alarm and returns the
// list. The leader checks on a timer and nothing announces the alarm to a
// client: polling.
func awaitCorruptAlarm(t *testing.T, ctx context.Context, m *member) string {
	t.Helper()
	for {
		out, _, err := m.etcdctl("alarm", "list")
		if err == nil && strings.Contains(out, "alarm:CORRUPT") {
			return singleSpaced(out)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no CORRUPT alarm (last list %q, %v)", out, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func uintString(n uint64) string { return strconv.FormatUint(n, 10) }

// singleSpaced collapses runs of blanks in each line: etcdctl prints
// alarms in protobuf's text format, which varies its spacing on purpose
// from build to build.
func singleSpaced(out string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		nl := strings.HasSuffix(line, "\n")
		b.WriteString(strings.Join(strings.Fields(line), " "))
		if nl {
			b.WriteString("\n")
		}
	}
	return b.String()
}
