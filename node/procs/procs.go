// Package procs sets how many CPUs a member's Go code runs on (GOMAXPROCS)
// from the load it carries: one while it is its cluster's only member and
// its clients call it one request at a time, the runtime's default (all
// CPUs the process may use) otherwise.
//
// Why: a write crosses several goroutines (connection reader, handler,
// raft loop, applier, back to the handler) and spends most of its time in
// the WAL's write and fdatasync. With more than one P, every hand-off to a
// parked goroutine also wakes an idle thread on another CPU to look for
// work (the runtime's wakep): a futex call on the request's path, and a
// thread that spins on a CPU a client on the same machine could use, only
// to find nothing. Measured on a 2-vCPU VM with one client calling in a
// loop, one P made a put's round trip 13-30% shorter and a serializable
// get's about 15%. With two or more calls in progress the other P is what
// keeps the member busy while one goroutine waits on the disk (four
// clients: about 30% fewer puts per second on one P), so the member goes
// back to all CPUs as soon as a second call starts. A member with peers
// always has work to overlap with its own disk writes (a leader reads its
// followers' acks, a follower the next appends): measured with three
// members and one client, one P made puts a third slower, so such a
// member keeps all CPUs.
//
// The rule, sampled every Interval:
//   - at the default, Quiet intervals in a row in which the member was
//     alone, at most one call was in progress at any moment and the
//     process used less than LowerBelow CPUs of user time move it to one P;
//   - on one P, a second call in progress (at once, not at the next
//     sample), a peer, or an interval with RaiseAt CPUs of user time move
//     it back to the default (runtime.SetDefaultGOMAXPROCS, which also
//     resumes the runtime's own updates when a container's CPU limit
//     changes).
//
// Each switch briefly stops the world; the Quiet count keeps a load that
// is sometimes concurrent from switching more than a few times a second.
// A GOMAXPROCS environment variable means the operator chose: the tuner
// then does nothing.
package procs

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Options are the tuner's thresholds; the zero value means the defaults.
type Options struct {
	Interval   time.Duration // sampling interval (default 100ms)
	Quiet      int           // quiet intervals in a row before moving to one P (default 3)
	LowerBelow float64       // user CPUs under which an interval can be quiet (default 0.4)
	RaiseAt    float64       // user CPUs at which one P is not enough (default 0.6)
	// Alone reports whether the member is its cluster's only member; nil
	// means it always is.
	Alone func() bool

	switched chan<- bool // tests: told whether each switch went to one P
}

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Quiet <= 0 {
		o.Quiet = 3
	}
	if o.LowerBelow <= 0 {
		o.LowerBelow = 0.4
	}
	if o.RaiseAt <= 0 {
		o.RaiseAt = 0.6
	}
	return o
}

// calls counts the calls in progress in this process (see CallStarted).
var calls gauge

type gauge struct {
	cur  atomic.Int64
	peak atomic.Int64 // highest cur since the last sample
	one  atomic.Bool  // the tuner runs the process on one P
	wake chan struct{}
}

func init() { calls.wake = make(chan struct{}, 1) }

// CallStarted records a client call in progress until CallDone. Servers
// call it for every RPC, unary or stream; it costs a few atomic operations.
func CallStarted() {
	n := calls.cur.Add(1)
	for {
		p := calls.peak.Load()
		if n <= p || calls.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if n >= 2 && calls.one.Load() {
		select {
		case calls.wake <- struct{}{}:
		default:
		}
	}
}

// CallDone ends what CallStarted began.
func CallDone() { calls.cur.Add(-1) }

// sample is what one interval looked like.
type sample struct {
	peers     bool    // the member has peers
	peakCalls int64   // most calls in progress at any moment
	userCPUs  float64 // user CPU time over wall time
}

// state is where the tuner stands between two samples.
type state struct {
	one   bool // running on one P
	quiet int  // quiet intervals in a row while at the default
}

// next is the rule above: the state after an interval.
func (o Options) next(s state, x sample) state {
	if x.peers || x.peakCalls >= 2 {
		return state{}
	}
	if s.one {
		if x.userCPUs >= o.RaiseAt {
			return state{}
		}
		return s
	}
	if x.userCPUs >= o.LowerBelow {
		return state{}
	}
	s.quiet++
	if s.quiet >= o.Quiet {
		return state{one: true}
	}
	return s
}

// Run adapts GOMAXPROCS until ctx ends, then leaves the runtime's default
// in place. It returns at once when environ sets GOMAXPROCS, when the
// process has no CPU clock to sample, or when the default is one P.
func Run(ctx context.Context, o Options, environ []string, lg *zap.Logger) {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return
		}
	}
	prevCPU, ok := userCPU()
	if !ok || runtime.GOMAXPROCS(0) == 1 {
		return
	}
	o = o.withDefaults()
	lg.Info("GOMAXPROCS follows the load: one CPU while this is the only member and calls come one at a time, all CPUs otherwise; set GOMAXPROCS to fix it",
		zap.Int("cpus", runtime.GOMAXPROCS(0)))
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	// Nothing is in progress yet when a member starts: one quiet interval
	// is enough to move, so that a client which starts calling right away
	// is not served on all CPUs for the first Quiet intervals.
	s := state{quiet: o.Quiet - 1}
	prevAt := time.Now()
	set := func(ns state, why string, x sample) {
		switch {
		case ns.one && !s.one:
			calls.one.Store(true)
			runtime.GOMAXPROCS(1)
			if calls.cur.Load() >= 2 {
				// A call that started before calls.one was set sent no
				// wake-up: look again now that any new one will.
				select {
				case calls.wake <- struct{}{}:
				default:
				}
			}
			lg.Debug("running Go code on one CPU: one call at a time", zap.Float64("user-cpus", x.userCPUs))
			if o.switched != nil {
				o.switched <- true
			}
		case !ns.one && s.one:
			calls.one.Store(false)
			runtime.SetDefaultGOMAXPROCS()
			lg.Debug("running Go code on all CPUs", zap.String("reason", why),
				zap.Int64("calls", x.peakCalls), zap.Float64("user-cpus", x.userCPUs),
				zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)))
			if o.switched != nil {
				o.switched <- false
			}
		}
		s = ns
	}
	for {
		select {
		case <-ctx.Done():
			set(state{}, "stopping", sample{})
			return
		case <-calls.wake:
			// Also reached when a second call started while we were
			// moving to one P, before calls.one was set.
			if s.one && calls.cur.Load() >= 2 {
				set(state{}, "concurrent calls", sample{peakCalls: calls.cur.Load()})
			}
		case now := <-t.C:
			cur, _ := userCPU()
			x := sample{
				peers:     o.Alone != nil && !o.Alone(),
				peakCalls: calls.peak.Swap(calls.cur.Load()),
				userCPUs:  (cur - prevCPU).Seconds() / now.Sub(prevAt).Seconds(),
			}
			prevCPU, prevAt = cur, now
			set(o.next(s, x), "load", x)
		}
	}
}
