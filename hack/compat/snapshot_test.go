package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// history is what populate writes; compactRev is where it compacts.
const (
	historyRev = 13
	compactRev = 6
)

// populate writes the same history to any server: puts, deletes, a txn,
// leases with and without keys, a compaction, and writes after it. It
// returns the lease IDs in grant order.
func populate(ctx context.Context, c *clientv3.Client) ([]clientv3.LeaseID, error) {
	var leases []clientv3.LeaseID
	steps := []func() error{
		func() error { _, err := c.Put(ctx, "a", "1"); return err },    // 2
		func() error { _, err := c.Put(ctx, "b", "1"); return err },    // 3
		func() error { _, err := c.Put(ctx, "a", "2"); return err },    // 4
		func() error { _, err := c.Delete(ctx, "b"); return err },      // 5
		func() error { _, err := c.Delete(ctx, "nosuch"); return err }, // no revision
		func() error {
			_, err := c.Txn(ctx).Then(clientv3.OpPut("c", "1"), clientv3.OpPut("d", "1")).Commit() // 6
			return err
		},
		func() error {
			// Explicit IDs: a key's lease ID is part of its stored value, so
			// HashKV of the same history can only match with the same IDs.
			for i, ttl := range []int64{600, 300, 900} {
				l, err := clientv3.RetryLeaseClient(c).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 0x1001 + int64(i), TTL: ttl})
				if err != nil {
					return err
				}
				leases = append(leases, clientv3.LeaseID(l.ID))
			}
			return nil
		},
		func() error { _, err := c.Put(ctx, "l/1", "x", clientv3.WithLease(leases[0])); return err }, // 7
		func() error { _, err := c.Put(ctx, "l/2", "y", clientv3.WithLease(leases[0])); return err }, // 8
		func() error { _, err := c.Put(ctx, "l/3", "z", clientv3.WithLease(leases[2])); return err }, // 9
		func() error { _, err := c.Compact(ctx, compactRev, clientv3.WithCompactPhysical()); return err },
		func() error { _, err := c.Put(ctx, "e", "1"); return err },                            // 10
		func() error { _, err := c.Put(ctx, "a", "3"); return err },                            // 11
		func() error { _, err := c.Delete(ctx, "c"); return err },                              // 12
		func() error { _, err := c.Put(ctx, "big", strings.Repeat("v", 64*1024)); return err }, // 13
	}
	for i, s := range steps {
		if err := s(); err != nil {
			return nil, fmt.Errorf("populate step %d: %w", i, err)
		}
	}
	return leases, nil
}

// dumpState is everything a client can read about the populated history:
// the revision, HashKV, every revision's key space since the compaction,
// and the leases with their granted TTLs and keys.
func dumpState(ctx context.Context, c *clientv3.Client, endpoint string) string {
	var b strings.Builder
	h, err := c.HashKV(ctx, endpoint, historyRev)
	if err != nil {
		fmt.Fprintf(&b, "hashkv: %s\n", fmtErr(err))
	} else {
		fmt.Fprintf(&b, "hashkv(%d): hash=%d compact_revision=%d hash_revision=%d\n", historyRev, h.Hash, h.CompactRevision, h.HashRevision)
	}
	r, err := c.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		fmt.Fprintf(&b, "get: %s\n", fmtErr(err))
	} else {
		fmt.Fprintf(&b, "current revision %d\n", r.Header.Revision)
	}
	for rev := int64(compactRev - 1); rev <= historyRev; rev++ {
		r, err := c.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(rev))
		fmt.Fprintf(&b, "at revision %d: ", rev)
		if err != nil {
			b.WriteString(fmtErr(err) + "\n")
			continue
		}
		fmt.Fprintf(&b, "count=%d\n", r.Count)
		for _, kv := range r.Kvs {
			b.WriteString("  " + fmtKV(kv) + "\n")
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.WriteString("watch from the compaction revision:\n")
	b.WriteString(collectWatch(c.Watch(wctx, "\x00", clientv3.WithFromKey(), clientv3.WithRev(compactRev)), 9, 5*time.Second))
	ls, err := c.Leases(ctx)
	if err != nil {
		fmt.Fprintf(&b, "leases: %s\n", fmtErr(err))
		return b.String()
	}
	var ids []clientv3.LeaseID
	for _, l := range ls.Leases {
		ids = append(ids, l.ID)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r, err := c.TimeToLive(ctx, id, clientv3.WithAttachedKeys())
		if err != nil {
			fmt.Fprintf(&b, "lease %x: %s\n", id, fmtErr(err))
			continue
		}
		var ks []string
		for _, k := range r.Keys {
			ks = append(ks, string(k))
		}
		slices.Sort(ks)
		alive := r.TTL > 0
		fmt.Fprintf(&b, "lease %x granted=%d alive=%v keys=%q\n", id, r.GrantedTTL, alive, ks)
	}
	return b.String()
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// saveSnapshot runs `etcdctl snapshot save` against s.
func saveSnapshot(t *testing.T, s *server, path string) {
	t.Helper()
	out, errOut, code := runTool(etcdctlBin, []string{"--endpoints=" + s.client, "snapshot", "save", path}, "")
	if code != 0 {
		t.Fatalf("etcdctl snapshot save from %s: exit %d\n%s%s", s.kind, code, out, errOut)
	}
}

// restore runs `etcdutl snapshot restore` of snap into a data directory for
// a new member on fresh ports, and returns that (not yet started) member.
func restore(t *testing.T, k kind, snap string) (*server, error) {
	t.Helper()
	s := newServer(t, k, filepath.Join(t.TempDir(), "restored-"+string(k)))
	out, errOut, code := runTool(etcdutlBin, []string{"snapshot", "restore", snap,
		"--data-dir", s.dataDir,
		"--name", s.name,
		"--initial-cluster", s.name + "=" + s.peer,
		"--initial-advertise-peer-urls", s.peer}, "")
	if code != 0 {
		return nil, fmt.Errorf("etcdutl snapshot restore for %s: exit %d\n%s%s", k, code, out, errOut)
	}
	return s, nil
}

// TestSnapshotInterchange saves a snapshot from one implementation, restores
// it with etcdutl, and starts both implementations on the restored data:
// everything a client can read must be what the source served, and the
// restored members must take writes. From etcd into Ballast proves Ballast
// reads etcd's data; from Ballast into etcd proves Ballast's bbolt layout
// is etcd's.
func TestSnapshotInterchange(t *testing.T) {
	t.Parallel()
	for _, src := range []kind{etcd, ballast} {
		t.Run("from-"+string(src), func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t, 2*time.Minute)
			s := newServer(t, src, "")
			startServers(t, s)
			c, err := s.newClient()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := populate(ctx, c); err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			want := dumpState(ctx, c, s.client)
			snap := filepath.Join(t.TempDir(), "snap.db")
			saveSnapshot(t, s, snap)
			out, errOut, code := runTool(etcdutlBin, []string{"snapshot", "status", snap, "-w", "json"}, "")
			t.Logf("etcdutl snapshot status of %s's snapshot: exit %d %s%s", src, code, out, errOut)
			if err := s.stop(); err != nil {
				t.Log(err)
			}

			var started []*server
			for _, dst := range []kind{ballast, etcd} {
				r, err := restore(t, dst, snap)
				if err != nil {
					t.Errorf("restore %s's snapshot for %s: %v", src, dst, err)
					continue
				}
				if err := r.start(); err != nil {
					t.Fatal(err)
				}
				started = append(started, r)
			}
			for _, r := range started {
				t.Run("into-"+string(r.kind), func(t *testing.T) {
					if err := r.wait(); err != nil {
						t.Fatalf("%s on a data dir restored from %s's snapshot: %v", r.kind, src, err)
					}
					rc, err := r.newClient()
					if err != nil {
						t.Fatal(err)
					}
					defer rc.Close()
					got := dumpState(ctx, rc, r.client)
					if got != want {
						t.Errorf("%s restored from %s's snapshot serves different data:\n%s", r.kind, src, unifiedDiff(string(src)+" (source)", string(r.kind)+" (restored)", want, got))
					}
					checkWritable(ctx, t, rc, r)
				})
			}
		})
	}
}

// checkWritable writes to a restored member: the next revision follows the
// restored history, and the restored leases can be kept alive.
func checkWritable(ctx context.Context, t *testing.T, c *clientv3.Client, s *server) {
	t.Helper()
	p, err := c.Put(ctx, "after-restore", "1")
	if err != nil {
		t.Errorf("%s: put after restore: %v", s.kind, err)
		return
	}
	if p.Header.Revision != historyRev+1 {
		t.Errorf("%s: put after restore got revision %d, want %d", s.kind, p.Header.Revision, historyRev+1)
	}
	ls, err := c.Leases(ctx)
	if err != nil {
		t.Errorf("%s: leases after restore: %v", s.kind, err)
		return
	}
	for _, l := range ls.Leases {
		k, err := c.KeepAliveOnce(ctx, l.ID)
		if err != nil {
			t.Errorf("%s: keepalive of restored lease %x: %v", s.kind, l.ID, err)
			continue
		}
		if k.TTL <= 0 {
			t.Errorf("%s: keepalive of restored lease %x: TTL %d", s.kind, l.ID, k.TTL)
		}
	}
	d, err := c.Delete(ctx, "l/", clientv3.WithPrefix())
	if err != nil || d.Deleted != 3 || d.Header.Revision != historyRev+2 {
		t.Errorf("%s: delete l/ after restore: %v %v", s.kind, d, err)
	}
	st, err := c.Status(ctx, s.client)
	if err != nil {
		t.Errorf("%s: status after restore: %v", s.kind, err)
		return
	}
	if st.Leader != st.Header.MemberId {
		t.Errorf("%s: restored member is not its own leader (%x vs %x)", s.kind, st.Leader, st.Header.MemberId)
	}
	ml, err := c.MemberList(ctx)
	if err != nil {
		t.Errorf("%s: member list after restore: %v", s.kind, err)
		return
	}
	if len(ml.Members) != 1 || ml.Members[0].Name != s.name || !slices.Equal(ml.Members[0].PeerURLs, []string{s.peer}) || !slices.Equal(ml.Members[0].ClientURLs, []string{s.client}) {
		b, _ := json.Marshal(ml.Members)
		t.Errorf("%s: member list after restore: %s, want one member %s peer %s client %s", s.kind, b, s.name, s.peer, s.client)
	}
}
