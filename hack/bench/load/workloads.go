package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/time/rate"
)

// Put writes cfg.Total values under prefix.
func Put(ctx context.Context, cfg Config, pool *Pool, prefix string) Result {
	cfg = cfg.withDefaults()
	val := Value(cfg.ValSize)
	return run(ctx, cfg, pool, func(ctx context.Context, c *clientv3.Client, _, seq int) error {
		_, err := c.Put(ctx, Key(prefix, keyIndex(cfg, seq, rand.IntN), cfg.KeySize), val)
		return err
	})
}

// TxnPut issues cfg.Total transactions of ops puts each (etcd benchmark's
// txn-put), unconditionally.
func TxnPut(ctx context.Context, cfg Config, pool *Pool, prefix string, ops int) Result {
	cfg = cfg.withDefaults()
	ops = max(ops, 1)
	val := Value(cfg.ValSize)
	return run(ctx, cfg, pool, func(ctx context.Context, c *clientv3.Client, _, seq int) error {
		puts := make([]clientv3.Op, ops)
		for j := range puts {
			puts[j] = clientv3.OpPut(Key(prefix, keyIndex(cfg, seq*ops+j, rand.IntN), cfg.KeySize), val)
		}
		_, err := c.Txn(ctx).Then(puts...).Commit()
		return err
	})
}

// RangeSpec shapes a range request.
type RangeSpec struct {
	Prefix       string // keys are Key(Prefix, i, cfg.KeySize), i < cfg.KeySpace
	WholePrefix  bool   // range over every key under Prefix instead of one key
	Limit        int64
	KeysOnly     bool
	CountOnly    bool
	Serializable bool
}

// Range issues cfg.Total range requests.
func Range(ctx context.Context, cfg Config, pool *Pool, spec RangeSpec) Result {
	cfg = cfg.withDefaults()
	var opts []clientv3.OpOption
	if spec.Limit > 0 {
		opts = append(opts, clientv3.WithLimit(spec.Limit))
	}
	if spec.KeysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if spec.CountOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if spec.Serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	if spec.WholePrefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	return run(ctx, cfg, pool, func(ctx context.Context, c *clientv3.Client, _, seq int) error {
		key := spec.Prefix
		if !spec.WholePrefix {
			key = Key(spec.Prefix, keyIndex(cfg, seq, rand.IntN), cfg.KeySize)
		}
		resp, err := c.Get(ctx, key, opts...)
		if err != nil {
			return err
		}
		if !spec.CountOnly && len(resp.Kvs) == 0 {
			return fmt.Errorf("range %q: no keys (was the key space filled?)", key)
		}
		return nil
	})
}

// Fill writes keys Key(prefix, i, keySize) for from <= i < to with values of
// valSize bytes, in transactions of batch puts issued by concurrency
// requesters. It is a preparation step, not a measurement.
func Fill(ctx context.Context, pool *Pool, prefix string, from, to, keySize, valSize, batch, concurrency int, maxDur time.Duration) error {
	batch = max(batch, 1)
	n := to - from
	if n <= 0 {
		return nil
	}
	txns := (n + batch - 1) / batch
	val := Value(valSize)
	cfg := Config{Clients: concurrency, Total: txns, MaxDuration: maxDur}
	r := run(ctx, cfg, pool, func(ctx context.Context, c *clientv3.Client, _, seq int) error {
		lo := from + seq*batch
		hi := min(lo+batch, to)
		puts := make([]clientv3.Op, 0, hi-lo)
		for i := lo; i < hi; i++ {
			puts = append(puts, clientv3.OpPut(Key(prefix, i, keySize), val))
		}
		_, err := c.Txn(ctx).Then(puts...).Commit()
		return err
	})
	if r.Errors > 0 || r.Requests < txns {
		return fmt.Errorf("fill %s[%d,%d): %d of %d transactions done, %d errors (first: %s): %w",
			prefix, from, to, r.Requests, txns, r.Errors, r.FirstError, ErrIncomplete)
	}
	return nil
}

// WatchSpec shapes the watch-latency workload: Streams gRPC watch streams
// carry WatchersPerStream watchers each, all on Key; Puts writes to that key
// at PutRate per second and every event's put-to-delivery latency is
// recorded.
type WatchSpec struct {
	Key               string
	Streams           int
	WatchersPerStream int
	Puts              int
	PutRate           float64
	ValSize           int
	MaxDuration       time.Duration
}

// WatchSet is a set of open watchers on one key.
type WatchSet struct {
	spec  WatchSpec
	chans []clientv3.WatchChan
	close func()
}

// OpenWatchSet opens the watchers of spec and waits until the server has
// confirmed every one (a preparation step, not a measurement).
func OpenWatchSet(ctx context.Context, pool *Pool, spec WatchSpec) (*WatchSet, error) {
	chans, closeAll, err := openWatchers(ctx, pool, spec.Streams, spec.WatchersPerStream, func(int) string { return spec.Key })
	if err != nil {
		return nil, err
	}
	return &WatchSet{spec: spec, chans: chans, close: closeAll}, nil
}

// Close cancels the watchers.
func (ws *WatchSet) Close() { ws.close() }

// Latency runs the puts and collects the events. The Result's latencies are
// per delivered event (Puts × watchers samples), from the start of the put
// request to the event's arrival at the watcher; QPS is delivered events per
// second. A WatchSet serves one Latency run.
func (ws *WatchSet) Latency(ctx context.Context, pool *Pool) Result {
	spec := ws.spec
	if spec.MaxDuration <= 0 {
		spec.MaxDuration = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, spec.MaxDuration)
	defer cancel()
	watchers := len(ws.chans)

	// putStart[seq] is when put seq was issued (nanoseconds since base); the
	// value carries seq so that each event finds its put.
	base := time.Now()
	putStart := make([]atomic.Int64, spec.Puts)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      = make([]time.Duration, 0, spec.Puts*watchers)
		received atomic.Int64
		bad      atomic.Int64
		stop     = make(chan struct{}) // closed when the watchers should give up
	)
	for _, ch := range ws.chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, spec.Puts)
			defer func() {
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
			for got := 0; got < spec.Puts; {
				var resp clientv3.WatchResponse
				var ok bool
				select {
				case resp, ok = <-ch:
				case <-stop:
					return
				}
				if !ok {
					return
				}
				now := time.Since(base)
				if resp.Err() != nil {
					bad.Add(1)
					return
				}
				for _, ev := range resp.Events {
					if ev.Type != mvccpb.Event_PUT {
						continue
					}
					seq, err := strconv.Atoi(string(ev.Kv.Value[:min(len(ev.Kv.Value), 10)]))
					if err != nil || seq < 0 || seq >= spec.Puts {
						bad.Add(1)
						continue
					}
					lat = append(lat, now-time.Duration(putStart[seq].Load()))
					got++
					received.Add(1)
				}
			}
		}()
	}

	lim := rate.NewLimiter(rate.Limit(max(spec.PutRate, 0.1)), 1)
	pad := Value(max(spec.ValSize-10, 0))
	var putErrs int
	var firstErr string
	start := time.Now()
	for seq := range spec.Puts {
		if err := lim.Wait(ctx); err != nil {
			break
		}
		putStart[seq].Store(int64(time.Since(base)))
		if _, err := pool.Get(seq).Put(ctx, spec.Key, fmt.Sprintf("%010d", seq)+pad); err != nil {
			putErrs++
			if firstErr == "" {
				firstErr = err.Error()
			}
		}
	}
	// Every watcher returns on its last event; those still waiting get a
	// bounded grace period after the last put.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	grace := time.NewTimer(10 * time.Second)
	select {
	case <-done:
	case <-grace.C:
	case <-ctx.Done():
	}
	grace.Stop()
	close(stop)
	<-done
	elapsed := time.Since(start)
	r := Result{
		Requests:   int(received.Load()),
		ElapsedSec: elapsed.Seconds(),
		Latency:    Summarize(all),
	}
	if want := spec.Puts * watchers; r.Requests < want {
		r.Truncated = true
		r.Errors += want - r.Requests
		if firstErr == "" {
			firstErr = fmt.Sprintf("%d of %d events delivered in time", r.Requests, want)
		}
	}
	r.Errors += putErrs + int(bad.Load())
	r.FirstError = firstErr
	if elapsed > 0 {
		r.QPS = float64(r.Requests) / elapsed.Seconds()
	}
	return r
}

// openWatchers opens streams watch streams (one clientv3.Watcher each, spread
// over the pool's connections) with perStream watchers each on key(i), and
// waits until the server has confirmed every watcher.
func openWatchers(ctx context.Context, pool *Pool, streams, perStream int, key func(i int) string) ([]clientv3.WatchChan, func(), error) {
	ws := make([]clientv3.Watcher, 0, streams)
	wctx, wcancel := context.WithCancel(ctx)
	closeAll := func() {
		wcancel()
		for _, w := range ws {
			_ = w.Close()
		}
	}
	chans := make([]clientv3.WatchChan, 0, streams*perStream)
	for s := range streams {
		w := clientv3.NewWatcher(pool.Get(s))
		ws = append(ws, w)
		for j := range perStream {
			chans = append(chans, w.Watch(wctx, key(s*perStream+j), clientv3.WithCreatedNotify()))
		}
	}
	for i, ch := range chans {
		select {
		case resp, ok := <-ch:
			if !ok || !resp.Created {
				closeAll()
				if ok && resp.Err() != nil {
					return nil, nil, fmt.Errorf("watcher %d: %w", i, resp.Err())
				}
				return nil, nil, fmt.Errorf("watcher %d: not created", i)
			}
		case <-ctx.Done():
			closeAll()
			return nil, nil, fmt.Errorf("creating %d watchers: %w", len(chans), ctx.Err())
		}
	}
	return chans, closeAll, nil
}

// HoldWatchers opens n watchers on distinct keys under prefix over streams
// streams and returns once the server has confirmed all of them; release
// cancels them.
func HoldWatchers(ctx context.Context, pool *Pool, prefix string, streams, n int) (release func(), err error) {
	streams = max(streams, 1)
	per := (n + streams - 1) / streams
	_, closeAll, err := openWatchers(ctx, pool, streams, per, func(i int) string { return Key(prefix, i, 16) })
	return closeAll, err
}

// GrantLeases grants n leases of ttl seconds from up to concurrency
// requesters (a preparation step, not a measurement).
func GrantLeases(ctx context.Context, pool *Pool, n int, ttl int64, concurrency int, maxDur time.Duration) ([]clientv3.LeaseID, error) {
	ids := make([]clientv3.LeaseID, n)
	r := run(ctx, Config{Clients: concurrency, Total: n, MaxDuration: maxDur}, pool,
		func(ctx context.Context, c *clientv3.Client, _, seq int) error {
			g, err := c.Grant(ctx, ttl)
			if err != nil {
				return err
			}
			ids[seq] = g.ID
			return nil
		})
	if r.Errors > 0 || r.Requests < n {
		return nil, fmt.Errorf("granting %d leases: %d granted, %d errors (first: %s): %w", n, r.Requests, r.Errors, r.FirstError, ErrIncomplete)
	}
	return ids, nil
}

// LeaseKeepAlive has cfg.Clients requesters each keep a LeaseKeepAlive
// stream open (as client/v3's KeepAlive does) and renew the leases
// round-robin over it, cfg.Total renewals in all; each renewal's
// send-to-response time is one latency sample.
func LeaseKeepAlive(ctx context.Context, cfg Config, pool *Pool, ids []clientv3.LeaseID) Result {
	cfg = cfg.withDefaults()
	if len(ids) == 0 {
		return Result{Errors: 1, FirstError: "no leases"}
	}
	type stream struct {
		s   pb.Lease_LeaseKeepAliveClient
		err error
	}
	// The streams end with the run: a Recv cannot outlive MaxDuration.
	sctx, scancel := context.WithTimeout(ctx, cfg.MaxDuration)
	defer scancel()
	streams := make([]stream, cfg.Clients)
	for w := range streams {
		s, err := pb.NewLeaseClient(pool.Get(w).ActiveConnection()).LeaseKeepAlive(sctx)
		streams[w] = stream{s: s, err: err}
	}
	return run(ctx, cfg, pool, func(ctx context.Context, _ *clientv3.Client, w, seq int) error {
		st := &streams[w]
		if st.err != nil {
			return st.err
		}
		if err := st.s.Send(&pb.LeaseKeepAliveRequest{ID: int64(ids[seq%len(ids)])}); err != nil {
			st.err = err
			return err
		}
		resp, err := st.s.Recv()
		if err != nil {
			st.err = err
			return err
		}
		if resp.GetTTL() <= 0 {
			return fmt.Errorf("lease %x: keep-alive answered TTL %d", resp.GetID(), resp.GetTTL())
		}
		return nil
	})
}
