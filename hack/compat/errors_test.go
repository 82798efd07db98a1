package compat

import (
	"context"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxRequestBytes is etcd's default --max-request-bytes.
const maxRequestBytes = 1572864

func TestErrors(t *testing.T) {
	t.Parallel()
	putSize := func(n int) step {
		return fn(fmt.Sprintf("put a value of %d bytes", n), func(ctx context.Context, e *env) string {
			return fmtPut(e.c.Put(ctx, "big", strings.Repeat("x", n)))
		})
	}
	steps := []step{
		putSize(maxRequestBytes - 1024),
		// the exact limit depends on the varint size of the internal
		// request ID, which varies with the member ID: stay 64 bytes clear
		putSize(maxRequestBytes - 64),
		putSize(maxRequestBytes - 16),
		putSize(maxRequestBytes),
		putSize(maxRequestBytes + 1024),
		putSize(2*1024*1024 + 1),
		fn("txn whose ops together are too large", func(ctx context.Context, e *env) string {
			v := strings.Repeat("y", 600*1024)
			return fmtTxn(e.c.Txn(ctx).Then(clientv3.OpPut("t1", v), clientv3.OpPut("t2", v), clientv3.OpPut("t3", v)).Commit())
		}),
		fn("get the big key's metadata", func(ctx context.Context, e *env) string {
			return fmtGet(e.c.Get(ctx, "big", clientv3.WithKeysOnly()))
		}),
		{ctl: []string{"put", "big2"}, stdin: strings.Repeat("z", maxRequestBytes+1024), fail: true},
		{ctl: []string{"put", "small"}, stdin: "from stdin"},
		ctl("get", "small"),
		ctlFail("put", "", "v"),
		ctlFail("get", ""),
		ctlFail("del", ""),
		ctlFail("put", "k"),
		ctlFail("put", "nokey", "--ignore-value"),
		ctlFail("put", "k", "v", "--lease", "1234"),
		ctlFail("put", "k", "v", "--lease", "xyz"),
		ctlFail("compaction", "--", "-1"),
		fn("get at a negative revision", func(ctx context.Context, e *env) string {
			return fmtGet(e.c.Get(ctx, "big", clientv3.WithRev(-1), clientv3.WithKeysOnly()))
		}),
		fn("lease 0", func(ctx context.Context, e *env) string {
			var b strings.Builder
			r, err := e.c.TimeToLive(ctx, 0)
			if err != nil {
				b.WriteString("timetolive: " + fmtErr(err) + "\n")
			} else {
				fmt.Fprintf(&b, "timetolive: ttl=%d granted=%d\n", r.TTL, r.GrantedTTL)
			}
			_, err = e.c.Revoke(ctx, 0)
			b.WriteString("revoke: " + fmtErr(err) + "\n")
			_, err = e.c.KeepAliveOnce(ctx, 0)
			b.WriteString("keepalive once: " + fmtErr(err) + "\n")
			return b.String()
		}),
		fn("compact a negative revision", func(ctx context.Context, e *env) string {
			_, err := e.c.Compact(ctx, -5, clientv3.WithCompactPhysical())
			return fmtErr(err) + "\n"
		}),
		fn("compact a future revision", func(ctx context.Context, e *env) string {
			_, err := e.c.Compact(ctx, 1000, clientv3.WithCompactPhysical())
			return fmtErr(err) + "\n"
		}),
		ctl("get", "", "--from-key", "--keys-only", "-w", "json"),
	}
	runScenario(t, scenario{name: "errors", steps: steps})
}
