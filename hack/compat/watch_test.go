package compat

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchHistory writes revisions 2..9:
// a=1 b=1 a=2 del(b) c/1 c/2 del(c/*) a=3
var watchHistory = []step{
	ctl("put", "a", "1"),
	ctl("put", "b", "1"),
	ctl("put", "a", "2"),
	ctl("del", "b"),
	ctl("put", "c/1", "x"),
	ctl("put", "c/2", "y"),
	ctl("del", "c/", "--prefix"),
	ctl("put", "a", "3"),
}

func TestWatchEtcdctl(t *testing.T) {
	t.Parallel()
	steps := append([]step{}, watchHistory...)
	steps = append(steps,
		watchCtl(9, "a", "--rev", "1"),
		watchCtl(10, "a", "--rev", "3", "--prev-kv"),
		watchCtl(1, "a", "--rev", "1", "-w", "json"),
		watchCtl(1, "a", "--rev", "1", "--prev-kv", "-w", "json"),
		watchCtl(12, "c/", "--prefix", "--rev", "1"),
		watchCtl(1, "c/", "--prefix", "--rev", "1", "--prev-kv", "-w", "json"),
		watchCtl(15, "a", "c", "--rev", "2"),
		watchCtl(3, "b", "--rev", "5"),
		watchCtl(1, "", "--prefix", "--rev", "1", "-w", "json"),
		watchCtl(11, "a", "--rev", "9", "-w", "fields"),
	)
	runScenario(t, scenario{name: "watch-etcdctl", steps: steps})
}

// watchFn opens a watch, optionally waits for its created response, runs
// act, and collects n events.
func watchFn(desc string, key string, opts []clientv3.OpOption, act func(ctx context.Context, e *env) string, n int) step {
	return fn(desc, func(ctx context.Context, e *env) string {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var b strings.Builder
		wch := e.c.Watch(ctx, key, opts...)
		if act != nil {
			// every watch that acts waits for its created response first
			b.WriteString(collectCreated(wch))
			b.WriteString(act(ctx, e))
		}
		b.WriteString(collectWatch(wch, n, 5*time.Second))
		return b.String()
	})
}

// collectCreated reads the created notification of a WithCreatedNotify watch.
func collectCreated(wch clientv3.WatchChan) string {
	select {
	case wr, ok := <-wch:
		if !ok {
			return "watch channel closed before the created response\n"
		}
		return fmtWatchResp(wr)
	case <-time.After(5 * time.Second):
		return "no created response within 5s\n"
	}
}

func TestWatchClient(t *testing.T) {
	t.Parallel()
	put := func(kvs ...string) func(ctx context.Context, e *env) string {
		return func(ctx context.Context, e *env) string {
			var b strings.Builder
			for i := 0; i < len(kvs); i += 2 {
				if kvs[i+1] == "" {
					b.WriteString(fmtDel(e.c.Delete(ctx, kvs[i])))
				} else {
					b.WriteString(fmtPut(e.c.Put(ctx, kvs[i], kvs[i+1])))
				}
			}
			return b.String()
		}
	}
	steps := append([]step{}, watchHistory...)
	steps = append(steps,
		watchFn("history of a prefix with prev-kv", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(1), clientv3.WithPrevKV()}, nil, 9),
		watchFn("history with NoPut", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(1), clientv3.WithFilterPut()}, nil, 3),
		watchFn("history with NoDelete", "", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(1), clientv3.WithFilterDelete()}, nil, 6),
		watchFn("history of a range with from-key", "b", []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithRev(4)}, nil, 5),
		watchFn("created notify, then live events", "live", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()},
			put("live/1", "a", "live/2", "b", "other", "c", "live/1", ""), 3),
		watchFn("created notify on a watch from a past revision", "a", []clientv3.OpOption{clientv3.WithCreatedNotify(), clientv3.WithRev(2)},
			func(context.Context, *env) string { return "" }, 3),
		watchFn("a future start revision", "f", []clientv3.OpOption{clientv3.WithCreatedNotify(), clientv3.WithRev(15)},
			put("f", "1", "f", "2", "f", "3"), 2),
		watchFn("live events with NoPut and prev-kv", "g", []clientv3.OpOption{clientv3.WithCreatedNotify(), clientv3.WithFilterPut(), clientv3.WithPrevKV()},
			put("g", "1", "g", "2", "g", ""), 1),
		fn("progress notify on request", func(ctx context.Context, e *env) string {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var b strings.Builder
			wch := e.c.Watch(ctx, "p", clientv3.WithCreatedNotify(), clientv3.WithProgressNotify())
			b.WriteString(collectCreated(wch))
			if err := e.c.RequestProgress(ctx); err != nil {
				b.WriteString("request progress: " + fmtErr(err) + "\n")
			}
			b.WriteString(collectResponses(wch, 1))
			b.WriteString(put("p", "1", "unwatched", "2")(ctx, e))
			b.WriteString(collectWatch(wch, 1, 5*time.Second))
			if err := e.c.RequestProgress(ctx); err != nil {
				b.WriteString("request progress: " + fmtErr(err) + "\n")
			}
			b.WriteString(collectResponses(wch, 1))
			return b.String()
		}),
		fn("progress notify with two watchers on one stream", func(ctx context.Context, e *env) string {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var b strings.Builder
			w1 := e.c.Watch(ctx, "p", clientv3.WithCreatedNotify())
			w2 := e.c.Watch(ctx, "q", clientv3.WithCreatedNotify())
			b.WriteString("w1: " + collectCreated(w1))
			b.WriteString("w2: " + collectCreated(w2))
			if err := e.c.RequestProgress(ctx); err != nil {
				b.WriteString("request progress: " + fmtErr(err) + "\n")
			}
			b.WriteString("w1: " + collectResponses(w1, 1))
			b.WriteString("w2: " + collectResponses(w2, 1))
			return b.String()
		}),
		fn("progress request without watchers", func(ctx context.Context, e *env) string {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return "request progress: " + fmtErr(e.c.RequestProgress(ctx)) + "\n"
		}),
		watchFn("a transaction's events arrive in one response", "t/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify(), clientv3.WithPrevKV()},
			func(ctx context.Context, e *env) string {
				return fmtTxn(e.c.Txn(ctx).Then(clientv3.OpPut("t/1", "a"), clientv3.OpPut("t/2", "b"), clientv3.OpPut("t/3", "c")).Commit()) +
					fmtTxn(e.c.Txn(ctx).Then(clientv3.OpDelete("t/1"), clientv3.OpDelete("t/2"), clientv3.OpPut("t/4", "d")).Commit())
			}, 6),
		fn("an empty key (on a client of its own)", func(ctx context.Context, e *env) string {
			c, err := e.srv.newClient()
			if err != nil {
				return err.Error()
			}
			defer c.Close()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			wch := c.Watch(ctx, "", clientv3.WithCreatedNotify(), clientv3.WithRev(1))
			return collectCreated(wch) + fmtPut(c.Put(ctx, "z", "1")) + collectWatch(wch, 0, time.Second)
		}),
		fn("a canceled watch closes its channel", func(ctx context.Context, e *env) string {
			wctx, cancel := context.WithCancel(ctx)
			wch := e.c.Watch(wctx, "a", clientv3.WithCreatedNotify())
			s := collectCreated(wch)
			cancel()
			return s + collectWatchEnd(wch, 5*time.Second)
		}),
	)
	runScenario(t, scenario{name: "watch-client", steps: steps})
}

// collectResponses reads n responses (at most 5s).
func collectResponses(wch clientv3.WatchChan, n int) string {
	var b strings.Builder
	for i := range n {
		select {
		case wr, ok := <-wch:
			if !ok {
				b.WriteString("watch channel closed\n")
				return b.String()
			}
			b.WriteString(fmtWatchResp(wr))
		case <-time.After(5 * time.Second):
			fmt.Fprintf(&b, "no response %d within 5s\n", i+1)
			return b.String()
		}
	}
	return b.String()
}
