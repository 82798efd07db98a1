// Package load is a client/v3 load generator with the knobs of etcd's
// `benchmark` tool (connections, clients, key and value size, total,
// key-space size, sequential keys, rate limit). Every loop it runs is bounded
// both in request count and in wall time.
package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Config holds the knobs shared by the workloads.
type Config struct {
	Endpoints   []string
	Conns       int           // gRPC connections (one client/v3 client each)
	Clients     int           // concurrent requesters, spread over the connections
	Total       int           // requests to issue
	MaxDuration time.Duration // the run stops early when this much time has passed (0: 5 minutes)
	Rate        float64       // requests per second over all clients, 0 for no limit
	KeySize     int           // bytes per key
	ValSize     int           // bytes per value
	KeySpace    int           // distinct keys the workload touches
	SeqKeys     bool          // keys in order (i mod KeySpace) rather than uniformly at random
}

func (c Config) withDefaults() Config {
	if c.Conns <= 0 {
		c.Conns = 1
	}
	if c.Clients <= 0 {
		c.Clients = 1
	}
	if c.Total <= 0 {
		c.Total = 1
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 5 * time.Minute
	}
	if c.KeySize <= 0 {
		c.KeySize = 8
	}
	if c.ValSize < 0 {
		c.ValSize = 0
	}
	if c.KeySpace <= 0 {
		c.KeySpace = 1
	}
	return c
}

// Result is what one run measured. Latencies are in milliseconds.
type Result struct {
	Requests   int     `json:"requests"` // completed without error
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	ElapsedSec float64 `json:"elapsed_s"`
	QPS        float64 `json:"qps"`
	Latency    Summary `json:"latency_ms"`
	// Truncated is set when MaxDuration stopped the run before Total.
	Truncated bool `json:"truncated,omitempty"`
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Summarize sorts lat in place and returns its distribution; percentiles use
// the nearest-rank method.
func Summarize(lat []time.Duration) Summary {
	if len(lat) == 0 {
		return Summary{}
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Summary{
		N:    len(lat),
		Mean: ms(sum / time.Duration(len(lat))),
		P50:  ms(Percentile(lat, 0.50)),
		P90:  ms(Percentile(lat, 0.90)),
		P99:  ms(Percentile(lat, 0.99)),
		P999: ms(Percentile(lat, 0.999)),
		Max:  ms(lat[len(lat)-1]),
	}
}

// Percentile is the nearest-rank p-quantile of sorted (0 < p <= 1).
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// Pool is a set of client/v3 clients (gRPC connections).
type Pool struct {
	Clients []*clientv3.Client
}

// Dial opens n clients to endpoints.
func Dial(ctx context.Context, endpoints []string, n int) (*Pool, error) {
	p := &Pool{}
	for range max(n, 1) {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:          endpoints,
			DialTimeout:        10 * time.Second,
			Context:            ctx,
			Logger:             zap.NewNop(),
			MaxCallSendMsgSize: 16 << 20,
			MaxCallRecvMsgSize: 64 << 20,
		})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("dial %v: %w", endpoints, err)
		}
		p.Clients = append(p.Clients, c)
	}
	return p, nil
}

// Close closes every client.
func (p *Pool) Close() {
	for _, c := range p.Clients {
		_ = c.Close()
	}
	p.Clients = nil
}

// Get returns the client for requester i.
func (p *Pool) Get(i int) *clientv3.Client { return p.Clients[i%len(p.Clients)] }

// op issues request number seq on client c; worker identifies the requester.
type op func(ctx context.Context, c *clientv3.Client, worker, seq int) error

// run issues cfg.Total requests from cfg.Clients requesters (closed loop,
// optionally rate-limited) and measures each request's service time.
func run(ctx context.Context, cfg Config, pool *Pool, do op) Result {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxDuration)
	defer cancel()
	var lim *rate.Limiter
	if cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	var (
		next     atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Pointer[string]
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      = make([]time.Duration, 0, cfg.Total)
	)
	start := time.Now()
	for w := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := pool.Get(w)
			lat := make([]time.Duration, 0, cfg.Total/cfg.Clients+1)
			defer func() {
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}()
			for {
				seq := int(next.Add(1) - 1)
				if seq >= cfg.Total || ctx.Err() != nil {
					return
				}
				if lim != nil {
					if err := lim.Wait(ctx); err != nil {
						return
					}
				}
				t := time.Now()
				err := do(ctx, c, w, seq)
				d := time.Since(t)
				if err != nil {
					if ctx.Err() != nil {
						return // the deadline cut this request short: not an error of the server
					}
					errs.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				lat = append(lat, d)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := Result{
		Requests:   len(all),
		Errors:     int(errs.Load()),
		ElapsedSec: elapsed.Seconds(),
		Latency:    Summarize(all),
		Truncated:  len(all)+int(errs.Load()) < cfg.Total,
	}
	if p := firstErr.Load(); p != nil {
		r.FirstError = *p
	}
	if elapsed > 0 {
		r.QPS = float64(r.Requests) / elapsed.Seconds()
	}
	return r
}

// Key is prefix followed by n in decimal, zero-padded so that the key is
// size bytes long (longer when n does not fit).
func Key(prefix string, n, size int) string {
	w := size - len(prefix)
	if w < 1 {
		w = 1
	}
	return fmt.Sprintf("%s%0*d", prefix, w, n)
}

// Value returns a value of size bytes.
func Value(size int) string {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// keyIndex picks the key index of request seq.
func keyIndex(cfg Config, seq int, rnd func(int) int) int {
	if cfg.SeqKeys {
		return seq % cfg.KeySpace
	}
	return rnd(cfg.KeySpace)
}

// ErrIncomplete reports a run that did not deliver everything it should have.
var ErrIncomplete = errors.New("incomplete")
