package compat

import (
	"context"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// sortSteps is `get foo --prefix` with every --sort-by target in both
// orders, plus the defaults of each flag alone.
func sortSteps() []step {
	var s []step
	for _, target := range []string{"CREATE", "KEY", "MODIFY", "VALUE", "VERSION"} {
		for _, order := range []string{"ASCEND", "DESCEND"} {
			s = append(s, ctl("get", "foo", "--prefix", "--sort-by", target, "--order", order))
		}
		s = append(s, ctl("get", "foo", "--prefix", "--sort-by", target))
	}
	return append(s,
		ctl("get", "foo", "--prefix", "--order", "DESCEND"),
		ctl("get", "foo", "--prefix", "--order", "ASCEND", "-w", "json"),
		ctl("get", "foo", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND", "--limit", "2", "-w", "json"),
		ctl("get", "foo", "--prefix", "--sort-by", "VERSION", "--order", "DESCEND", "--limit", "1", "--keys-only"),
		ctlFail("get", "foo", "--prefix", "--sort-by", "SIZE"),
		ctlFail("get", "foo", "--prefix", "--order", "UP"),
	)
}

func TestKVGet(t *testing.T) {
	t.Parallel()
	steps := []step{
		ctl("get", "foo", "-w", "json"), // empty store: revision 1
		ctl("put", "foo", "bar"),
		ctl("put", "foo1", "a", "-w", "json"),
		ctl("put", "foo2", "b"),
		ctl("put", "foo3", "c", "--prev-kv"),
		ctl("put", "foo", "bar2", "--prev-kv"),
		ctl("put", "foo", "bar3", "--prev-kv", "-w", "json"),
		ctl("put", "zoo", "z"),
		ctl("put", "a/b", "x"),
		ctl("put", "a/c", "x"),
		ctl("put", "e", ""),
		ctl("put", "foo2", "b2"),
		ctl("get", "foo"),
		ctl("get", "foo", "-w", "json"),
		ctl("get", "foo", "-w", "fields"),
		ctl("get", "e", "-w", "json"),
		ctl("get", "nosuch"),
		ctl("get", "nosuch", "-w", "json"),
		ctl("get", "foo", "--prefix"),
		ctl("get", "foo", "--prefix", "-w", "json"),
		ctl("get", "foo1", "--from-key"),
		ctl("get", "", "--from-key", "--keys-only"),
		ctl("get", "", "--prefix", "-w", "json"),
		ctl("get", "foo", "foo2"),
		ctl("get", "foo", "foo2", "-w", "json"),
		ctl("get", "foo2", "foo"),
		ctl("get", "a/", "--prefix", "--hex"),
		ctl("get", "foo", "--prefix", "--limit", "2", "-w", "json"),
		ctl("get", "foo", "--prefix", "--limit", "4", "-w", "json"),
		ctl("get", "foo", "--prefix", "--limit", "1", "-w", "fields"),
		ctl("get", "foo", "--rev", "2"),
		ctl("get", "foo", "--rev", "1", "-w", "json"),
		ctl("get", "foo", "--prefix", "--rev", "4", "-w", "json"),
		ctl("get", "foo", "--rev", "12", "-w", "json"),
		ctlFail("get", "foo", "--rev", "13"),
		ctlFail("get", "foo", "--rev", "100"),
		ctl("get", "foo", "--prefix", "--keys-only"),
		ctl("get", "foo", "--prefix", "--keys-only", "-w", "json"),
		ctl("get", "foo", "--prefix", "--count-only", "-w", "fields"),
		ctl("get", "foo", "--prefix", "--count-only", "--limit", "1", "-w", "fields"),
		ctl("get", "foo", "--prefix", "--count-only", "--rev", "4", "-w", "fields"),
		ctlFail("get", "foo", "--count-only"),
		ctl("get", "foo", "--prefix", "--print-value-only"),
		ctl("get", "foo", "--consistency", "s", "-w", "json"),
		ctl("get", "foo", "--prefix", "--consistency", "s", "--rev", "3"),
		ctlFail("get", "foo", "--consistency", "x"),
		ctl("get", "foo", "--prefix", "--min-mod-rev", "4", "-w", "json"),
		ctl("get", "foo", "--prefix", "--max-mod-rev", "4"),
		ctl("get", "foo", "--prefix", "--min-create-rev", "3", "--max-create-rev", "4"),
		ctl("get", "foo", "--prefix", "--min-mod-rev", "4", "--limit", "1", "-w", "json"),
		ctl("get", "foo", "--prefix", "--stream", "-w", "json"),
		ctl("get", "", "--from-key", "--stream", "--limit", "2", "-w", "json"),
		ctl("put", "foo", "--ignore-value", "-w", "json"),
		ctlFail("put", "nokey", "--ignore-value"),
		ctl("get", "foo", "-w", "json"),
	}
	steps = append(steps, sortSteps()...)
	runScenario(t, scenario{name: "get", steps: steps})
}

// TestKVClient drives the same kind of reads through client/v3, including
// the options etcdctl has no flag for.
func TestKVClient(t *testing.T) {
	t.Parallel()
	puts := fn("puts", func(ctx context.Context, e *env) string {
		var b strings.Builder
		for i, kv := range [][2]string{{"k1", "a"}, {"k2", "b"}, {"k3", "c"}, {"k1", "d"}, {"k4", "e"}, {"k2", "f"}, {"k5", ""}} {
			r, err := e.c.Put(ctx, kv[0], kv[1], clientv3.WithPrevKV())
			fmt.Fprintf(&b, "%d: %s", i, fmtPut(r, err))
		}
		return b.String()
	})
	get := func(desc, key string, opts ...clientv3.OpOption) step {
		return fn("get "+key+" "+desc, func(ctx context.Context, e *env) string {
			return fmtGet(e.c.Get(ctx, key, opts...))
		})
	}
	steps := []step{
		puts,
		get("", "k1"),
		get("prefix", "k", clientv3.WithPrefix()),
		get("range k2..k4", "k2", clientv3.WithRange("k4")),
		get("from-key", "k3", clientv3.WithFromKey()),
		get("limit 2", "k", clientv3.WithPrefix(), clientv3.WithLimit(2)),
		get("rev 3", "k", clientv3.WithPrefix(), clientv3.WithRev(3)),
		get("serializable", "k", clientv3.WithPrefix(), clientv3.WithSerializable()),
		get("keys-only", "k", clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		get("count-only", "k", clientv3.WithPrefix(), clientv3.WithCountOnly()),
		get("min-mod-rev 4", "k", clientv3.WithPrefix(), clientv3.WithMinModRev(4)),
		get("max-mod-rev 4", "k", clientv3.WithPrefix(), clientv3.WithMaxModRev(4)),
		get("min-create-rev 3", "k", clientv3.WithPrefix(), clientv3.WithMinCreateRev(3)),
		get("max-create-rev 3", "k", clientv3.WithPrefix(), clientv3.WithMaxCreateRev(3)),
		get("min/max mod + limit 1", "k", clientv3.WithPrefix(), clientv3.WithMinModRev(3), clientv3.WithMaxModRev(7), clientv3.WithLimit(1)),
		get("min-mod-rev + count-only", "k", clientv3.WithPrefix(), clientv3.WithMinModRev(5), clientv3.WithCountOnly()),
		get("first create", "k", append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...),
		get("last create", "k", append(clientv3.WithLastCreate(), clientv3.WithPrefix())...),
		get("first key", "k", append(clientv3.WithFirstKey(), clientv3.WithPrefix())...),
		get("last key", "k", append(clientv3.WithLastKey(), clientv3.WithPrefix())...),
		get("first rev", "k", append(clientv3.WithFirstRev(), clientv3.WithPrefix())...),
		get("last rev", "k", append(clientv3.WithLastRev(), clientv3.WithPrefix())...),
		get("sort value desc + keys-only", "k", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend), clientv3.WithKeysOnly()),
		get("sort version, order none", "k", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByVersion, clientv3.SortNone)),
		get("sort key, order none", "k", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortNone)),
		get("all", "\x00", clientv3.WithFromKey()),
		get("limit + rev", "k", clientv3.WithPrefix(), clientv3.WithLimit(1), clientv3.WithRev(4)),
		get("count-only + rev", "k", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithRev(4)),
		get("rev 1", "k", clientv3.WithPrefix(), clientv3.WithRev(1)),
		get("future rev", "k", clientv3.WithRev(9)),
		get("negative limit", "k", clientv3.WithPrefix(), clientv3.WithLimit(-1)),
		fn("invalid sort target", func(ctx context.Context, e *env) string {
			r, err := clientv3.RetryKVClient(e.c).Range(ctx, &pb.RangeRequest{Key: []byte("k"), SortTarget: pb.RangeRequest_SortTarget(99), SortOrder: pb.RangeRequest_ASCEND})
			if err != nil {
				return fmtErr(err) + "\n"
			}
			return fmtRange(r)
		}),
		fn("invalid sort order", func(ctx context.Context, e *env) string {
			r, err := clientv3.RetryKVClient(e.c).Range(ctx, &pb.RangeRequest{Key: []byte("k"), SortOrder: pb.RangeRequest_SortOrder(7)})
			if err != nil {
				return fmtErr(err) + "\n"
			}
			return fmtRange(r)
		}),
		fn("range stream", func(ctx context.Context, e *env) string {
			st, err := e.c.GetStream(ctx, "k", clientv3.WithPrefix(), clientv3.WithLimit(3))
			if err != nil {
				return fmtErr(err) + "\n"
			}
			var b strings.Builder
			for r := range st {
				if err := r.Err(); err != nil {
					b.WriteString("stream " + fmtErr(err) + "\n")
					continue
				}
				if r.RangeResponse != nil {
					b.WriteString("chunk " + fmtRange(r.RangeResponse))
				}
			}
			return b.String()
		}),
		fn("range stream with sort", func(ctx context.Context, e *env) string {
			return fmtGet(clientv3.GetStreamToGetResponse(mustStream(e.c.GetStream(ctx, "k", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend)))))
		}),
		fn("put ignore-value with a value", func(ctx context.Context, e *env) string {
			return fmtPut(e.c.Put(ctx, "k1", "x", clientv3.WithIgnoreValue()))
		}),
		fn("put ignore-value", func(ctx context.Context, e *env) string {
			return fmtPut(e.c.Put(ctx, "k1", "", clientv3.WithIgnoreValue(), clientv3.WithPrevKV()))
		}),
		fn("put ignore-value on a missing key", func(ctx context.Context, e *env) string {
			return fmtPut(e.c.Put(ctx, "nokey", "", clientv3.WithIgnoreValue()))
		}),
		fn("put ignore-lease on a missing key", func(ctx context.Context, e *env) string {
			return fmtPut(e.c.Put(ctx, "nokey", "v", clientv3.WithIgnoreLease()))
		}),
		fn("put ignore-lease", func(ctx context.Context, e *env) string {
			return fmtPut(e.c.Put(ctx, "k2", "v2", clientv3.WithIgnoreLease(), clientv3.WithPrevKV()))
		}),
		fn("put ignore-lease with a lease", func(ctx context.Context, e *env) string {
			return fmtPut(e.c.Put(ctx, "k2", "v2", clientv3.WithIgnoreLease(), clientv3.WithLease(0x1234)))
		}),
		fn("empty keys", func(ctx context.Context, e *env) string {
			var b strings.Builder
			b.WriteString("put: " + fmtPut(e.c.Put(ctx, "", "v")))
			b.WriteString("get: " + fmtGet(e.c.Get(ctx, "")))
			b.WriteString("delete: " + fmtDel(e.c.Delete(ctx, "")))
			return b.String()
		}),
		get("after writes", "k", clientv3.WithPrefix()),
	}
	runScenario(t, scenario{name: "kv-client", steps: steps})
}

func mustStream(s clientv3.GetStreamChan, err error) clientv3.GetStreamChan {
	if err != nil {
		c := make(chan clientv3.RangeStreamResponse)
		close(c)
		return c
	}
	return s
}

func TestKVDelete(t *testing.T) {
	t.Parallel()
	var steps []step
	for _, k := range []string{"a", "b", "c", "d", "e", "k1", "k2", "k3", "x/1", "x/2", "y"} {
		steps = append(steps, ctl("put", k, "v-"+k))
	}
	steps = append(steps,
		ctl("del", "a"),
		ctl("del", "a"),
		ctl("del", "a", "-w", "json"),
		ctl("get", "b", "-w", "json"),
		ctl("del", "--range", "b", "d"),
		ctl("get", "", "--from-key", "--keys-only"),
		ctl("del", "x", "--prefix", "--prev-kv"),
		ctl("del", "x", "--prefix", "--prev-kv"),
		ctl("del", "k2", "--from-key", "--prev-kv", "-w", "json"),
		ctl("del", "nosuch", "--prefix", "-w", "json"),
		ctl("get", "", "--from-key", "-w", "json"),
		ctl("put", "a", "again"),
		ctl("get", "a", "-w", "json"),
		ctl("get", "a", "--rev", "2", "-w", "json"),
		ctl("del", "d", "--prev-kv", "-w", "fields"),
		ctlFail("del", "a", "--prefix", "--from-key"),
		ctlFail("del", "--range", "", ""),
		ctl("del", "", "--prefix"),
		ctl("get", "", "--prefix", "-w", "json"),
		ctl("del", "", "--from-key"),
		ctl("get", "", "--prefix", "-w", "json"),
		fn("delete options", func(ctx context.Context, e *env) string {
			var b strings.Builder
			for _, k := range []string{"p/1", "p/2", "p/3", "q"} {
				b.WriteString(fmtPut(e.c.Put(ctx, k, "v")))
			}
			b.WriteString(fmtDel(e.c.Delete(ctx, "p/2", clientv3.WithRange("q"), clientv3.WithPrevKV())))
			b.WriteString(fmtDel(e.c.Delete(ctx, "p/", clientv3.WithPrefix())))
			b.WriteString(fmtDel(e.c.Delete(ctx, "q", clientv3.WithRange("a"))))
			b.WriteString(fmtDel(e.c.Delete(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithPrevKV())))
			b.WriteString(fmtGet(e.c.Get(ctx, "\x00", clientv3.WithFromKey())))
			return b.String()
		}),
	)
	runScenario(t, scenario{name: "delete", steps: steps})
}
