package compat

import (
	"context"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// txn builds the stdin of `etcdctl txn --interactive=false`: compares, a
// blank line, success ops, a blank line, failure ops, a blank line.
func txn(cmps, success, failure []string) string {
	block := func(ls []string) string {
		if len(ls) == 0 {
			return "\n"
		}
		return strings.Join(ls, "\n") + "\n\n"
	}
	return block(cmps) + block(success) + block(failure)
}

func txnCtl(stdin string, extra ...string) step {
	return ctlIn(stdin, append([]string{"txn", "--interactive=false"}, extra...)...)
}

func TestTxnEtcdctl(t *testing.T) {
	t.Parallel()
	steps := []step{
		ctl("put", "k1", "v1"),
		ctl("put", "k2", "v2"),
		ctl("put", "k2", "v2b"),
		ctl("put", "counter", "0"),
		// every compare target, all true
		txnCtl(txn(
			[]string{`value("k1") = "v1"`, `version("k2") = "2"`, `create("k1") = "2"`, `mod("k2") > "3"`, `mod("k2") < "100"`, `ver("nokey") = "0"`, `c("nokey") = "0"`, `m("k1") != "0"`, `val("k2") > "v2a"`},
			[]string{"put k3 v3", "get k1", "del counter"},
			[]string{"put failed x"})),
		ctl("get", "", "--from-key", "-w", "json"),
		// one false compare takes the failure branch
		txnCtl(txn(
			[]string{`value("k1") = "v1"`, `value("k2") = "nope"`},
			[]string{"put never x"},
			[]string{"put failed yes", "get k --prefix", "del k3 --prev-kv"})),
		ctl("get", "", "--from-key", "-w", "json"),
		// json output
		txnCtl(txn([]string{`version("k1") = "1"`}, []string{"put k1 v1b --prev-kv", "get k2 --keys-only"}, nil), "-w", "json"),
		txnCtl(txn([]string{`version("k1") = "1"`}, []string{"put k1 v1c"}, []string{"get k1 --rev 2", "get nosuch"}), "-w", "json"),
		// no compares: the success branch
		txnCtl(txn(nil, []string{"put a 1", "put b 2"}, nil)),
		// an empty txn, a read-only txn and a txn whose only write is a
		// no-op delete leave the revision alone
		txnCtl(txn(nil, nil, nil), "-w", "json"),
		txnCtl(txn([]string{`value("a") = "1"`}, []string{"get a"}, []string{"get b"}), "-w", "json"),
		txnCtl(txn(nil, []string{"del nosuch"}, nil), "-w", "json"),
		ctl("get", "a", "-w", "json"),
		// compares on a missing key
		txnCtl(txn([]string{`value("nokey") = ""`}, []string{"put x 1"}, []string{"put x 2"})),
		txnCtl(txn([]string{`value("nokey") < "a"`}, []string{"put x 3"}, []string{"put x 4"})),
		txnCtl(txn([]string{`mod("nokey") = "0"`}, []string{"put x 5"}, []string{"put x 6"})),
		ctl("get", "x", "-w", "json"),
		// put then delete of one key and a repeated put are rejected
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn(nil, []string{"put a 1", "put a 2"}, nil), fail: true},
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn(nil, []string{"put a 1", "del a"}, nil), fail: true},
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn(nil, []string{"put a 1", "del --prefix a"}, nil), fail: true},
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn(nil, []string{"put b 1"}, []string{"put c 1", "put c 2"}), fail: true},
		// two deletes of the same key and a put in another branch are fine
		txnCtl(txn(nil, []string{"del a", "del a", "get a"}, []string{"put a 3"})),
		// a branch is checked even when it is not taken
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn([]string{`value("b") = "2"`}, []string{"put b 3"}, []string{"put b 4", "del b"}), fail: true},
		// the failure branch's ops do not conflict with the success branch's
		txnCtl(txn([]string{`value("b") = "2"`}, []string{"put b 3"}, []string{"put b 4", "get b"})),
		// malformed input is rejected by etcdctl itself
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn([]string{`bogus("a") = "1"`}, nil, nil), fail: true},
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn([]string{`version("a") = "x"`}, nil, nil), fail: true},
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn(nil, []string{"put"}, nil), fail: true},
		{ctl: []string{"txn", "--interactive=false"}, stdin: txn([]string{`value("") = "1"`}, nil, nil), fail: true},
		ctl("get", "", "--from-key", "-w", "json"),
	}
	runScenario(t, scenario{name: "txn-etcdctl", steps: steps})
}

func TestTxnClient(t *testing.T) {
	t.Parallel()
	do := func(desc string, f func(ctx context.Context, e *env) (*clientv3.TxnResponse, error)) step {
		return fn(desc, func(ctx context.Context, e *env) string { return fmtTxn(f(ctx, e)) })
	}
	steps := []step{
		fn("setup", func(ctx context.Context, e *env) string {
			var b strings.Builder
			for _, k := range []string{"a", "b", "c", "p/1", "p/2"} {
				b.WriteString(fmtPut(e.c.Put(ctx, k, "v-"+k)))
			}
			l, err := e.c.Grant(ctx, 600)
			if err != nil {
				return fmtErr(err)
			}
			e.addLease(int64(l.ID))
			b.WriteString(fmtPut(e.c.Put(ctx, "leased", "x", clientv3.WithLease(l.ID))))
			return b.String()
		}),
		do("nested txn in success", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			inner := clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.Value("b"), "=", "v-b")},
				[]clientv3.Op{clientv3.OpPut("b", "inner-success", clientv3.WithPrevKV()), clientv3.OpGet("p/", clientv3.WithPrefix())},
				[]clientv3.Op{clientv3.OpPut("b", "inner-failure")})
			return e.c.Txn(ctx).
				If(clientv3.Compare(clientv3.Value("a"), "=", "v-a")).
				Then(clientv3.OpPut("a", "outer", clientv3.WithPrevKV()), inner, clientv3.OpDelete("c", clientv3.WithPrevKV())).
				Else(clientv3.OpPut("a", "outer-failure")).
				Commit()
		}),
		do("nested txns three deep in failure", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			deepest := clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("deep", "3"), clientv3.OpGet("deep")}, nil)
			middle := clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.Version("deep"), "=", 0)},
				[]clientv3.Op{deepest, clientv3.OpGet("a")},
				[]clientv3.Op{clientv3.OpPut("deep", "never")})
			return e.c.Txn(ctx).
				If(clientv3.Compare(clientv3.Value("a"), "=", "nope")).
				Then(clientv3.OpPut("never", "x")).
				Else(middle, clientv3.OpPut("after", "1")).
				Commit()
		}),
		do("nested txn with a duplicate put across levels", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(clientv3.OpPut("dup", "1"), clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("dup", "2")}, nil)).Commit()
		}),
		do("nested txn deleting a key put outside", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(clientv3.OpPut("dup", "1"), clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpDelete("d", clientv3.WithPrefix())}, nil)).Commit()
		}),
		do("puts in both branches of a nested txn", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("both", "1")}, []clientv3.Op{clientv3.OpPut("both", "2")})).Commit()
		}),
		do("lease compare equal", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue("leased"), "=", e.lease(1))).Then(clientv3.OpGet("leased")).Else(clientv3.OpPut("lease-cmp", "failed")).Commit()
		}),
		do("lease compare on a key without lease", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue("a"), "=", 0)).Then(clientv3.OpPut("lease-cmp", "zero")).Else(clientv3.OpPut("lease-cmp", "nonzero")).Commit()
		}),
		do("lease compare on a missing key", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue("nokey"), "=", 0)).Then(clientv3.OpPut("lease-cmp2", "zero")).Else(clientv3.OpPut("lease-cmp2", "nonzero")).Commit()
		}),
		do("compare over a prefix", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).If(clientv3.Compare(clientv3.Version("p/"), ">", 0).WithPrefix()).Then(clientv3.OpPut("prefix-cmp", "all")).Else(clientv3.OpPut("prefix-cmp", "not-all")).Commit()
		}),
		do("compare over a range with one key failing", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).If(clientv3.Compare(clientv3.Value("a"), "=", "outer").WithRange("c")).Then(clientv3.OpPut("range-cmp", "all")).Else(clientv3.OpPut("range-cmp", "not-all")).Commit()
		}),
		do("compare over an empty range", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).If(clientv3.Compare(clientv3.Value("zz"), "=", "x").WithPrefix()).Then(clientv3.OpPut("empty-cmp", "true")).Else(clientv3.OpPut("empty-cmp", "false")).Commit()
		}),
		do("compare mod revision of deleted key", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("c"), "=", 0)).Then(clientv3.OpGet("c")).Commit()
		}),
		do("read-only txn with revision", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(clientv3.OpGet("a", clientv3.WithRev(3)), clientv3.OpGet("", clientv3.WithFromKey(), clientv3.WithCountOnly())).Commit()
		}),
		do("get at a future revision inside a txn", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(clientv3.OpGet("a", clientv3.WithRev(1000))).Commit()
		}),
		do("put with a missing lease inside a txn", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(clientv3.OpPut("x", "y", clientv3.WithLease(0x7777))).Commit()
		}),
		do("put ignore-value of a missing key inside a txn", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(clientv3.OpPut("missing", "", clientv3.WithIgnoreValue())).Commit()
		}),
		do("128 ops", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(puts("many/", 128)...).Commit()
		}),
		do("129 ops", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(puts("toomany/", 129)...).Commit()
		}),
		do("129 compares", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			var cmps []clientv3.Cmp
			for i := range 129 {
				cmps = append(cmps, clientv3.Compare(clientv3.Version(fmt.Sprintf("many/%03d", i)), ">", -1))
			}
			return e.c.Txn(ctx).If(cmps...).Commit()
		}),
		do("100 ops plus a nested txn of 29", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			ops := puts("nest/", 100)
			ops = append(ops, clientv3.OpTxn(nil, puts("nest2/", 29), nil))
			return e.c.Txn(ctx).Then(ops...).Commit()
		}),
		do("a nested txn of 129 ops", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(clientv3.OpTxn(nil, puts("nest3/", 129), nil)).Commit()
		}),
		do("an empty compare key", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).If(clientv3.Compare(clientv3.Value(""), "=", "x")).Commit()
		}),
		do("an empty key in a put op", func(ctx context.Context, e *env) (*clientv3.TxnResponse, error) {
			return e.c.Txn(ctx).Then(clientv3.OpPut("", "x")).Commit()
		}),
		fn("final state", func(ctx context.Context, e *env) string {
			return fmtGet(e.c.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithLimit(20)))
		}),
	}
	runScenario(t, scenario{name: "txn-client", steps: steps})
}

// puts returns n put ops on prefix000, prefix001, ...
func puts(prefix string, n int) []clientv3.Op {
	ops := make([]clientv3.Op, n)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprintf("%s%03d", prefix, i), "v")
	}
	return ops
}
