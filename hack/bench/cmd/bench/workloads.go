package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ballastdb/ballast/hack/bench/load"
)

// workload is one measured figure set. Its preparation (filling keys,
// granting leases, opening watchers) happens outside the measured window.
type workload struct {
	Name    string
	Desc    string
	Kind    string // put, txn-put, range, lease-keepalive, watch-latency
	Cfg     load.Config
	Range   load.RangeSpec
	TxnOps  int
	Leases  int
	Watch   load.WatchSpec
	HasQPS  bool // QPS is a figure of this workload
	Targets []target
}

// target is a pass/fail criterion on the Ballast/etcd ratio of a figure.
type target struct {
	Figure string  // "qps", "p99", ...
	Op     string  // ">=" or "<="
	Ratio  float64 // Ballast/etcd
}

func (t target) String() string {
	op := "≥"
	if t.Op == "<=" {
		op = "≤"
	}
	return fmt.Sprintf("%s %.2g×", op, t.Ratio)
}

func (t target) met(r float64) bool {
	if t.Op == "<=" {
		return r <= t.Ratio
	}
	return r >= t.Ratio
}

// rangePrefix holds the keys the range workloads read; rangeKeys of them
// are written before the first range workload of a round.
const (
	rangePrefix = "r/"
	rangeKeys   = 1000
)

// sizes are the workloads' totals; quick mode uses about a quarter.
type sizes struct {
	put1, put100, txn, rangeN, rangeBig, lease, watchPuts int
	cluster1, cluster100                                  int
}

func workloadSizes(quick bool, scale float64) sizes {
	s := sizes{put1: 1500, put100: 20000, txn: 10000, rangeN: 20000, rangeBig: 5000, lease: 20000, watchPuts: 100, cluster1: 500, cluster100: 10000}
	if quick {
		s = sizes{put1: 400, put100: 5000, txn: 3000, rangeN: 5000, rangeBig: 1500, lease: 5000, watchPuts: 40, cluster1: 200, cluster100: 3000}
	}
	if scale > 0 && scale != 1 {
		m := func(n int) int { return max(1, int(float64(n)*scale)) }
		s = sizes{m(s.put1), m(s.put100), m(s.txn), m(s.rangeN), m(s.rangeBig), m(s.lease), m(s.watchPuts), m(s.cluster1), m(s.cluster100)}
	}
	return s
}

// shape holds the key/value knobs shared by the workloads.
type shape struct {
	KeySize, ValSize, KeySpace int
	SeqKeys                    bool
	Rate                       float64
	MaxDuration                time.Duration
}

func (sh shape) cfg(conns, clients, total int) load.Config {
	return load.Config{
		Conns: conns, Clients: clients, Total: total, MaxDuration: sh.MaxDuration,
		Rate: sh.Rate, KeySize: sh.KeySize, ValSize: sh.ValSize, KeySpace: sh.KeySpace, SeqKeys: sh.SeqKeys,
	}
}

// singleWorkloads are run against one member of each server.
func singleWorkloads(sz sizes, sh shape) []workload {
	p99 := target{Figure: "p99", Op: "<=", Ratio: 1}
	rangeCfg := func(conns, clients, total int) load.Config {
		c := sh.cfg(conns, clients, total)
		c.KeySpace = rangeKeys
		return c
	}
	return []workload{
		{Name: "put-1c", Desc: "put, 1 client, 1 connection", Kind: "put", Cfg: sh.cfg(1, 1, sz.put1), HasQPS: true,
			Targets: []target{{Figure: "qps", Op: ">=", Ratio: 1.5}, p99}},
		{Name: "put-100c", Desc: "put, 100 clients over 10 connections", Kind: "put", Cfg: sh.cfg(10, 100, sz.put100), HasQPS: true,
			Targets: []target{{Figure: "qps", Op: ">=", Ratio: 1.5}, p99}},
		{Name: "txn-put-100c", Desc: "txn with one put, 100 clients over 10 connections", Kind: "txn-put", Cfg: sh.cfg(10, 100, sz.txn), TxnOps: 1, HasQPS: true,
			Targets: []target{p99}},
		{Name: "range-lin-100c", Desc: "linearizable get of one key (of 1000), 100 clients", Kind: "range", Cfg: rangeCfg(10, 100, sz.rangeN),
			Range: load.RangeSpec{Prefix: rangePrefix}, HasQPS: true,
			Targets: []target{{Figure: "qps", Op: ">=", Ratio: 1.2}, p99}},
		{Name: "range-ser-100c", Desc: "serializable get of one key (of 1000), 100 clients", Kind: "range", Cfg: rangeCfg(10, 100, sz.rangeN),
			Range: load.RangeSpec{Prefix: rangePrefix, Serializable: true}, HasQPS: true,
			Targets: []target{{Figure: "qps", Op: ">=", Ratio: 1.2}, p99}},
		// The round trip a single-client put shares with any call (client,
		// gRPC, loopback): put-1c's p50 less this one's is what the write
		// path itself adds (see pathRows).
		{Name: "range-ser-1c", Desc: "serializable get of one key (of 1000), 1 client, 1 connection", Kind: "range",
			Cfg: rangeCfg(1, 1, sz.put1), Range: load.RangeSpec{Prefix: rangePrefix, Serializable: true}, HasQPS: true,
			Targets: []target{p99}},
		{Name: "range-limit100", Desc: "linearizable prefix range over 1000 keys, limit 100, 100 clients", Kind: "range", Cfg: rangeCfg(10, 100, sz.rangeBig),
			Range: load.RangeSpec{Prefix: rangePrefix, WholePrefix: true, Limit: 100}, HasQPS: true,
			Targets: []target{p99}},
		{Name: "range-keysonly", Desc: "linearizable prefix range over 1000 keys, keys only, limit 100, 100 clients", Kind: "range", Cfg: rangeCfg(10, 100, sz.rangeBig),
			Range: load.RangeSpec{Prefix: rangePrefix, WholePrefix: true, Limit: 100, KeysOnly: true}, HasQPS: true,
			Targets: []target{p99}},
		{Name: "lease-keepalive", Desc: "keep-alive of 1000 leases over 100 streams", Kind: "lease-keepalive", Cfg: sh.cfg(10, 100, sz.lease), Leases: 1000, HasQPS: true,
			Targets: []target{p99}},
		{Name: "watch-latency", Desc: fmt.Sprintf("1000 watchers on one key over 10 streams; %d puts at 20/s; put→event latency", sz.watchPuts), Kind: "watch-latency",
			Cfg:     sh.cfg(10, 1, 1),
			Watch:   load.WatchSpec{Key: "watch/key", Streams: 10, WatchersPerStream: 100, Puts: sz.watchPuts, PutRate: 20, ValSize: sh.ValSize, MaxDuration: 2 * time.Minute},
			Targets: []target{p99}},
	}
}

// clusterWorkloads are run against the 3-member clusters.
func clusterWorkloads(sz sizes, sh shape) []workload {
	p99 := target{Figure: "p99", Op: "<=", Ratio: 1}
	return []workload{
		{Name: "3m-put-1c", Desc: "3 members: put, 1 client", Kind: "put", Cfg: sh.cfg(1, 1, sz.cluster1), HasQPS: true,
			Targets: []target{p99}},
		{Name: "3m-put-100c", Desc: "3 members: put, 100 clients over 10 connections (all endpoints)", Kind: "put", Cfg: sh.cfg(10, 100, sz.cluster100), HasQPS: true,
			Targets: []target{{Figure: "qps", Op: ">=", Ratio: 1.3}, p99}},
	}
}

// filterWorkloads keeps the workloads named in only (comma-separated; empty
// keeps all).
func filterWorkloads(ws []workload, only string) []workload {
	if only == "" {
		return ws
	}
	keep := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		keep[strings.TrimSpace(n)] = true
	}
	var out []workload
	for _, w := range ws {
		if keep[w.Name] {
			out = append(out, w)
		}
	}
	return out
}

// prepare does w's unmeasured preparation on pool and returns the measured
// part and a cleanup.
func prepare(ctx context.Context, w workload, pool *load.Pool) (func(context.Context) load.Result, func(), error) {
	nop := func() {}
	switch w.Kind {
	case "put":
		return func(ctx context.Context) load.Result { return load.Put(ctx, w.Cfg, pool, "p/") }, nop, nil
	case "txn-put":
		return func(ctx context.Context) load.Result { return load.TxnPut(ctx, w.Cfg, pool, "t/", w.TxnOps) }, nop, nil
	case "range":
		return func(ctx context.Context) load.Result { return load.Range(ctx, w.Cfg, pool, w.Range) }, nop, nil
	case "lease-keepalive":
		ids, err := load.GrantLeases(ctx, pool, w.Leases, 600, 32, time.Minute)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) load.Result { return load.LeaseKeepAlive(ctx, w.Cfg, pool, ids) }, nop, nil
	case "watch-latency":
		ws, err := load.OpenWatchSet(ctx, pool, w.Watch)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) load.Result { return ws.Latency(ctx, pool) }, ws.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown workload kind %q", w.Kind)
}
