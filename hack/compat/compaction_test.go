package compat

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestCompaction(t *testing.T) {
	t.Parallel()
	var steps []step
	// revisions 2..9: k=0..4 (2..6), other (7), k deleted (8), k=5 (9)
	for i := range 5 {
		steps = append(steps, ctl("put", "k", fmt.Sprint(i)))
	}
	steps = append(steps,
		ctl("put", "other", "x"),
		ctl("del", "k"),
		ctl("put", "k", "5"),
		ctl("endpoint", "hashkv", "-w", "json"),
		ctl("endpoint", "hashkv", "--rev", "5", "-w", "json"),
		ctl("compaction", "4"),
		ctl("endpoint", "hashkv", "-w", "json"),
		ctl("endpoint", "hashkv", "--rev", "6", "-w", "json"),
		ctlFail("endpoint", "hashkv", "--rev", "3", "-w", "json"),
		ctlFail("endpoint", "hashkv", "--rev", "100", "-w", "json"),
		ctlFail("get", "k", "--rev", "3"),
		ctl("get", "k", "--rev", "4", "-w", "json"),
		ctl("get", "k", "--rev", "8", "-w", "json"),
		ctlFail("compaction", "4"),
		ctlFail("compaction", "3"),
		ctlFail("compaction", "100"),
		ctlFail("compaction", "10"),
		ctl("compaction", "9", "--physical"),
		ctl("get", "", "--from-key", "-w", "json"),
		ctlFail("get", "k", "--rev", "8"),
		ctl("get", "k", "--rev", "9", "-w", "json"),
		ctlFail("compaction", "--", "-1"),
		ctlFail("compaction", "abc"),
		ctl("endpoint", "hashkv", "-w", "json"),
		ctl("put", "k", "6"),
		ctl("endpoint", "hashkv", "-w", "json"),
		ctlFail("endpoint", "hashkv", "--rev", "8", "-w", "json"),
		// the client sees a compacted start revision as a canceled watch
		watchCtl(3, "k", "--rev", "5"),
		watchCtl(6, "k", "--rev", "9"),
		watchCtl(1, "k", "--rev", "9", "-w", "json"),
		fn("watch from a compacted revision", func(ctx context.Context, e *env) string {
			ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			defer cancel()
			return collectWatchEnd(e.c.Watch(ctx, "k", clientv3.WithRev(3)), 5*time.Second)
		}),
		fn("watch from the compaction revision", func(ctx context.Context, e *env) string {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return collectWatch(e.c.Watch(ctx, "k", clientv3.WithRev(9)), 2, 5*time.Second)
		}),
		fn("compact through the client", func(ctx context.Context, e *env) string {
			var b strings.Builder
			for _, rev := range []int64{-1, 0, 1, 9, 10, 11} {
				r, err := e.c.Compact(ctx, rev)
				if err != nil {
					fmt.Fprintf(&b, "compact %d: %s\n", rev, fmtErr(err))
					continue
				}
				fmt.Fprintf(&b, "compact %d: %s\n", rev, fmtHeader(r.Header))
			}
			h, err := e.c.HashKV(ctx, e.srv.client, 0)
			if err != nil {
				fmt.Fprintf(&b, "hashkv: %s\n", fmtErr(err))
			} else {
				fmt.Fprintf(&b, "hashkv hash=%d compact_revision=%d hash_revision=%d %s\n", h.Hash, h.CompactRevision, h.HashRevision, fmtHeader(h.Header))
			}
			return b.String()
		}),
	)
	runScenario(t, scenario{name: "compaction", steps: steps})
}

// TestCompactionEdges compacts revisions 0 and 1 of a fresh store: the edge
// of "nothing compacted yet". (etcd accepts revision 0; its HashKV after that
// reports compact_revision -1 and no hash_revision, which is not checked.)
func TestCompactionEdges(t *testing.T) {
	t.Parallel()
	runScenario(t, scenario{name: "compaction-edges", steps: []step{
		ctl("endpoint", "hashkv", "-w", "json"),
		ctl("compaction", "0"),
		ctl("compaction", "1"),
		ctlFail("compaction", "1"),
		ctlFail("compaction", "0"),
		ctl("put", "a", "1"),
		ctl("get", "a", "-w", "json"),
	}})
}
