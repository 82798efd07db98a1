package procs

import (
	"context"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestNext(t *testing.T) {
	o := Options{}.withDefaults() // Quiet 3, LowerBelow 0.4, RaiseAt 0.6
	idle := sample{peakCalls: 1, userCPUs: 0.1}
	tests := []struct {
		name string
		from state
		x    sample
		want state
	}{
		{"a quiet interval counts", state{}, idle, state{quiet: 1}},
		{"no call at all is quiet too", state{quiet: 1}, sample{}, state{quiet: 2}},
		{"the last quiet interval moves to one P", state{quiet: 2}, idle, state{one: true}},
		{"two calls at once reset the count", state{quiet: 2}, sample{peakCalls: 2, userCPUs: 0.1}, state{}},
		{"busy with one call resets the count", state{quiet: 2}, sample{peakCalls: 1, userCPUs: 0.4}, state{}},
		{"one P stays while quiet", state{one: true}, idle, state{one: true}},
		{"one P stays between the thresholds", state{one: true}, sample{peakCalls: 1, userCPUs: 0.5}, state{one: true}},
		{"two calls at once leave one P", state{one: true}, sample{peakCalls: 2}, state{}},
		{"busy with one call leaves one P", state{one: true}, sample{peakCalls: 1, userCPUs: 0.6}, state{}},
		{"a peer leaves one P", state{one: true}, sample{peers: true}, state{}},
		{"a peer resets the count", state{quiet: 2}, sample{peers: true}, state{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := o.next(tt.from, tt.x); got != tt.want {
				t.Errorf("next(%+v, %+v) = %+v, want %+v", tt.from, tt.x, got, tt.want)
			}
		})
	}
}

// TestRun drives the tuner of this test process: idle, it moves to one P;
// a second call in progress brings all CPUs back without waiting for a
// sample; stopping leaves the default in place.
func TestRun(t *testing.T) {
	def := runtime.GOMAXPROCS(0)
	if def < 2 {
		t.Skip("the default is one P here: nothing to tune")
	}
	switched := make(chan bool, 16) // Run never waits for the test
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Options{Interval: 50 * time.Millisecond, switched: switched}, nil, zap.NewNop())
	}()
	defer func() {
		cancel()
		<-done
	}()
	expect := func(one bool, procs int) {
		t.Helper()
		select {
		case got := <-switched:
			if got != one {
				t.Fatalf("switched to one P = %v, want %v", got, one)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no switch (one P = %v) within 10s", one)
		}
		if got := runtime.GOMAXPROCS(0); got != procs {
			t.Fatalf("GOMAXPROCS = %d, want %d", got, procs)
		}
	}
	expect(true, 1)
	CallStarted()
	CallStarted() // a second call in progress
	expect(false, def)
	CallDone()
	CallDone()
	expect(true, 1)
	cancel()
	expect(false, def)
	<-done
}

func TestRunLeavesAnOperatorsChoice(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(context.Background(), Options{}, []string{"GOMAXPROCS=2"}, zap.NewNop())
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return at once with GOMAXPROCS set")
	}
}
