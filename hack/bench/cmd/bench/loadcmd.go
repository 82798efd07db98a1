package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/ballastdb/ballast/hack/bench/load"
)

// loadMain is `bench load`: one workload against running servers, with the
// knobs of etcd's benchmark tool; it prints the result as JSON.
func loadMain(args []string) int {
	fs := flag.NewFlagSet("bench load", flag.ExitOnError)
	endpoints := fs.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs")
	kind := fs.String("workload", "put", "put, txn-put, range, lease-keepalive or watch-latency")
	var cfg load.Config
	fs.IntVar(&cfg.Conns, "conns", 1, "gRPC connections")
	fs.IntVar(&cfg.Clients, "clients", 1, "concurrent requesters")
	fs.IntVar(&cfg.Total, "total", 10000, "requests")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", time.Minute, "stop after this long")
	fs.Float64Var(&cfg.Rate, "rate", 0, "requests per second (0: unlimited)")
	fs.IntVar(&cfg.KeySize, "key-size", 8, "key size in bytes")
	fs.IntVar(&cfg.ValSize, "val-size", 8, "value size in bytes")
	fs.IntVar(&cfg.KeySpace, "key-space-size", 1, "distinct keys")
	fs.BoolVar(&cfg.SeqKeys, "sequential-keys", false, "keys in order rather than at random")
	prefix := fs.String("prefix", "bench/", "key prefix")
	txnOps := fs.Int("txn-ops", 1, "puts per transaction (txn-put)")
	serializable := fs.Bool("consistency-s", false, "serializable ranges (default linearizable)")
	limit := fs.Int64("limit", 0, "range limit")
	keysOnly := fs.Bool("keys-only", false, "range keys only")
	countOnly := fs.Bool("count-only", false, "range count only")
	wholePrefix := fs.Bool("range-prefix", false, "range over the whole prefix rather than one key")
	fill := fs.Bool("fill", false, "range: first write the key space")
	leases := fs.Int("leases", 1000, "leases to keep alive (lease-keepalive)")
	streams := fs.Int("streams", 10, "watch streams (watch-latency)")
	watchers := fs.Int("watchers-per-stream", 100, "watchers per stream (watch-latency)")
	puts := fs.Int("put-total", 100, "puts (watch-latency)")
	putRate := fs.Float64("put-rate", 20, "puts per second (watch-latency)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load generator during the measured part to this file")
	traceFile := fs.String("trace", "", "write a runtime trace of the load generator during the measured part to this file (read with go tool trace or golang.org/x/exp/trace)")
	_ = fs.Parse(args)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	eps := strings.Split(*endpoints, ",")
	pool, err := load.Dial(ctx, eps, cfg.Conns)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pool.Close()
	w := workload{Name: *kind, Kind: *kind, Cfg: cfg, TxnOps: *txnOps, Leases: *leases,
		Range: load.RangeSpec{Prefix: *prefix, WholePrefix: *wholePrefix, Limit: *limit, KeysOnly: *keysOnly, CountOnly: *countOnly, Serializable: *serializable},
		Watch: load.WatchSpec{Key: *prefix + "watch", Streams: *streams, WatchersPerStream: *watchers, Puts: *puts, PutRate: *putRate, ValSize: cfg.ValSize, MaxDuration: cfg.MaxDuration},
	}
	if *kind == "range" && *fill {
		if err := load.Fill(ctx, pool, *prefix, 0, max(cfg.KeySpace, 1), cfg.KeySize, cfg.ValSize, 100, 4, cfg.MaxDuration); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	measured, cleanup, err := prepareStandalone(ctx, w, pool, *prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	stopProfiles, err := startProfiles(*cpuProfile, *traceFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res := measured(ctx)
	if err := stopProfiles(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(b))
	if res.Errors > 0 {
		return 1
	}
	return 0
}

// prepareStandalone is prepare with the user's key prefix for put workloads.
func prepareStandalone(ctx context.Context, w workload, pool *load.Pool, prefix string) (func(context.Context) load.Result, func(), error) {
	switch w.Kind {
	case "put":
		return func(ctx context.Context) load.Result { return load.Put(ctx, w.Cfg, pool, prefix) }, func() {}, nil
	case "txn-put":
		return func(ctx context.Context) load.Result { return load.TxnPut(ctx, w.Cfg, pool, prefix, w.TxnOps) }, func() {}, nil
	}
	return prepare(ctx, w, pool)
}

// startProfiles starts a CPU profile and a runtime trace of this process
// where a file name is given, so that the client's share of a round trip
// (the part of a single-client call that is neither server nor disk) can be
// looked at beside the server's own /debug/pprof. The returned function
// stops them and closes the files.
func startProfiles(cpuPath, tracePath string) (stop func() error, err error) {
	var stops []func() error
	stop = func() error {
		var first error
		for _, s := range stops {
			if err := s(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return stop, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return stop, fmt.Errorf("cpu profile: %w", err)
		}
		stops = append(stops, func() error { pprof.StopCPUProfile(); return f.Close() })
	}
	if tracePath != "" {
		f, err := os.Create(tracePath)
		if err == nil {
			if err = trace.Start(f); err != nil {
				f.Close()
				err = fmt.Errorf("trace: %w", err)
			}
		}
		if err != nil {
			_ = stop()
			return func() error { return nil }, err
		}
		stops = append(stops, func() error { trace.Stop(); return f.Close() })
	}
	return stop, nil
}
