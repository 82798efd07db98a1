package lease

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestNotPrimary(t *testing.T) {
	e := newEnv(t, Config{})
	e.mustGrant(1, 1)
	if e.l.IsPrimary() {
		t.Fatal("new lessor is primary")
	}
	if _, err := e.l.Renew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("Renew on follower: %v", err)
	}
	e.clock.Advance(time.Hour)
	if b := e.check(); b != nil {
		t.Fatalf("follower handed out %v", ids(b))
	}

	e.l.Promote(0)
	e.l.Demote()
	if e.l.IsPrimary() {
		t.Fatal("demoted lessor is primary")
	}
	e.clock.Advance(time.Hour)
	if b := e.check(); b != nil {
		t.Fatalf("demoted lessor handed out %v", ids(b))
	}
	if _, err := e.l.Renew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("Renew after Demote: %v", err)
	}
	if r := e.l.Lookup(1).Remaining(); r != time.Duration(math.MaxInt64) {
		t.Fatalf("demoted lease remaining %v", r)
	}
	e.l.Demote() // twice is harmless
	checkInvariants(t, e.l)
}

func TestExpiryOrderAndBatches(t *testing.T) {
	e := newEnv(t, Config{ExpiredBatch: 3})
	e.l.Promote(0)
	// IDs deliberately not in TTL order.
	ttls := map[int64]int64{1: 50, 2: 10, 3: 30, 4: 20, 5: 40, 6: 60, 7: 1000}
	for id, ttl := range ttls {
		e.mustGrant(id, ttl)
	}
	if ls := e.l.Lookup(2); ls.Remaining() != 10*time.Second || !ls.Expiry().Equal(e.clock.Now().Add(10*time.Second)) {
		t.Fatalf("primary grant: remaining %v expiry %v", ls.Remaining(), ls.Expiry())
	}

	e.clock.Advance(9 * time.Second)
	if b := e.check(); b != nil {
		t.Fatalf("nothing expired yet, got %v", ids(b))
	}
	e.clock.Advance(70 * time.Second)

	steps := []struct {
		advance time.Duration
		revoke  []int64
		want    []int64
	}{
		{0, nil, []int64{2, 4, 3}},        // earliest first, batch of 3
		{0, []int64{2}, []int64{5, 1, 6}}, // the rest
		{0, nil, nil},                     // handed out, waiting for revoke
		{retryInterval - time.Second, []int64{4, 5}, nil},
		{time.Second, nil, []int64{1, 3, 6}}, // not revoked: again, by ID
		{retryInterval, []int64{3}, []int64{1, 6}},
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		for _, id := range s.revoke {
			if err := e.revoke(id); err != nil {
				t.Fatal(err)
			}
		}
		got := e.check()
		if !slices.Equal(ids(got), s.want) && !(len(got) == 0 && len(s.want) == 0) {
			t.Fatalf("step %d: got %v, want %v", i, ids(got), s.want)
		}
		checkInvariants(t, e.l)
	}
}

func TestRenew(t *testing.T) {
	e := newEnv(t, Config{})
	e.l.Promote(0)
	e.mustGrant(1, 10)
	if _, err := e.l.Renew(2); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Renew missing: %v", err)
	}
	for range 5 {
		e.clock.Advance(8 * time.Second)
		ttl, err := e.l.Renew(1)
		if err != nil || ttl != 10 {
			t.Fatalf("Renew = %d, %v", ttl, err)
		}
		if r := e.l.Lookup(1).Remaining(); r != 10*time.Second {
			t.Fatalf("remaining after renew %v", r)
		}
		if b := e.check(); b != nil {
			t.Fatalf("renewed lease handed out")
		}
		checkInvariants(t, e.l)
	}
	e.clock.Advance(10 * time.Second)
	if got := ids(e.check()); !slices.Equal(got, []int64{1}) {
		t.Fatalf("expired lease not handed out: %v", got)
	}
}

func TestPromoteExtend(t *testing.T) {
	e := newEnv(t, Config{})
	e.mustGrant(1, 10)
	e.mustGrant(2, 20)
	e.l.Promote(0)
	e.clock.Advance(9 * time.Second)

	// Leadership moves away and back: expiries start over, extended.
	e.l.Demote()
	e.l.Promote(5 * time.Second)
	if r := e.l.Lookup(1).Remaining(); r != 15*time.Second {
		t.Fatalf("remaining %v, want 15s", r)
	}
	e.clock.Advance(14 * time.Second)
	if b := e.check(); b != nil {
		t.Fatalf("handed out %v before extended expiry", ids(b))
	}
	e.clock.Advance(time.Second)
	if got := ids(e.check()); !slices.Equal(got, []int64{1}) {
		t.Fatalf("got %v, want [1]", got)
	}

	// A renewal after an extension brings the expiry back to now+TTL.
	e.l.Promote(100 * time.Second)
	if _, err := e.l.Renew(2); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, e.l)
	e.clock.Advance(20 * time.Second)
	if got := ids(e.check()); !slices.Equal(got, []int64{2}) {
		t.Fatalf("got %v, want [2]", got)
	}
}

func TestPromoteSpreadsPileUp(t *testing.T) {
	const batch = 5 // 10 revocations per second, target 7 expiries per second
	tests := []struct {
		leases int
		spread bool
	}{
		{9, false}, // below the rate: no pile-up possible
		{40, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.leases), func(t *testing.T) {
			e := newEnv(t, Config{ExpiredBatch: batch})
			for id := int64(1); id <= int64(tt.leases); id++ {
				e.mustGrant(id, 10)
			}
			e.l.Promote(0)
			checkInvariants(t, e.l)
			var exps []time.Duration
			for _, ls := range e.l.Leases() {
				exps = append(exps, ls.Remaining())
			}
			slices.Sort(exps)
			if exps[0] != 10*time.Second {
				t.Fatalf("earliest expiry %v, want 10s", exps[0])
			}
			if !tt.spread {
				if exps[len(exps)-1] != 10*time.Second {
					t.Fatalf("expiries moved: %v", exps)
				}
				return
			}
			// No one-second window may hold more than the target.
			for i := range exps {
				j := i
				for j < len(exps) && exps[j] < exps[i]+time.Second {
					j++
				}
				if j-i > 7 {
					t.Fatalf("%d expiries within a second from %v", j-i, exps[i])
				}
			}
			if last := exps[len(exps)-1]; last > 10*time.Second+time.Duration(tt.leases)*time.Second/7 {
				t.Fatalf("spread too far: last expiry %v", last)
			}
		})
	}
}

func TestRenewOfExpiredLeaseWaits(t *testing.T) {
	tests := []struct {
		name    string
		resolve func(e *env)
		want    error
	}{
		{"revoked", func(e *env) {
			if err := e.revoke(1); err != nil {
				panic(err)
			}
		}, ErrLeaseNotFound},
		{"demoted", func(e *env) { e.l.Demote() }, ErrNotPrimary},
		{"stopped", func(e *env) { e.l.Stop() }, ErrNotPrimary},
		{"promoted again: fresh expiry", func(e *env) { e.l.Promote(0) }, nil},
		{"other lease revoked, then this one", func(e *env) {
			if err := e.revoke(2); err != nil {
				panic(err)
			}
			waitForRenewWaiter(e.t, e.l)
			if err := e.revoke(1); err != nil {
				panic(err)
			}
		}, ErrLeaseNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.l.Promote(0)
			e.mustGrant(1, 5)
			e.mustGrant(2, 50)
			e.clock.Advance(5 * time.Second)
			if got := ids(e.check()); !slices.Equal(got, []int64{1}) {
				t.Fatalf("expired %v", got)
			}
			done := make(chan error, 1)
			go func() {
				_, err := e.l.Renew(1)
				done <- err
			}()
			waitForRenewWaiter(t, e.l)
			select {
			case err := <-done:
				t.Fatalf("Renew of an expired lease returned %v without waiting", err)
			default:
			}
			tt.resolve(e)
			if err := <-done; !errors.Is(err, tt.want) {
				t.Fatalf("Renew = %v, want %v", err, tt.want)
			}
		})
	}
}

// waitForRenewWaiter waits until a Renew blocks on revocation.
func waitForRenewWaiter(t *testing.T, l *Lessor) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.waitMu.Lock()
		waiting := l.revokedC != nil
		l.waitMu.Unlock()
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Renew never waited")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRenewDuringExpiryScan runs keep-alives against the expiry checker and
// the apply path under -race, then checks the lessor's invariants and that
// no lease kept alive was ever handed out as expired.
func TestRenewDuringExpiryScan(t *testing.T) {
	e := newEnv(t, Config{ExpiredBatch: 7})
	e.l.Promote(0)
	const kept, churn = 64, 200
	for id := int64(1); id <= kept; id++ {
		e.mustGrant(id, 10)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := int64((i*4+w)%kept + 1)
				if _, err := e.l.Renew(id); err != nil {
					t.Errorf("Renew(%d): %v", id, err)
					return
				}
				_ = e.l.Lookup(id).Remaining()
			}
		})
	}
	// Apply path: short leases come and go, keys move.
	wg.Go(func() {
		for i := int64(0); i < churn; i++ {
			id := 1000 + i
			if _, err := e.grant(id, 1); err != nil {
				t.Error(err)
				return
			}
			if err := e.l.Attach(id, fmt.Appendf(nil, "k%d", i%10)); err != nil {
				t.Error(err)
				return
			}
			if i%3 == 0 {
				if err := e.revoke(id); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	// Checker with a moving clock. Kept leases have 10s and are renewed
	// continuously, so while the clock moves less than that per renew round
	// they must never expire.
	var handed []*Lease
	for range 300 {
		e.clock.Advance(10 * time.Millisecond)
		handed = append(handed, e.check()...)
	}
	close(stop)
	wg.Wait()
	for _, ls := range handed {
		if ls.ID <= kept {
			t.Fatalf("kept-alive lease %d handed out as expired", ls.ID)
		}
	}
	checkInvariants(t, e.l)
}

func TestNewStartsAndStops(t *testing.T) {
	be := openBackend(t, filepath.Join(t.TempDir(), "db"))
	l, err := New(be, Config{})
	if err != nil {
		t.Fatal(err)
	}
	l.Stop()
	l.Stop()
	select {
	case <-l.doneC:
	default:
		t.Fatal("checker still running after Stop")
	}
}

func TestExpiredDropsWhenReceiverLags(t *testing.T) {
	e := newEnv(t, Config{ExpiredBatch: 1})
	e.l.Promote(0)
	const n = expiredBuffer + 4
	for id := int64(1); id <= n; id++ {
		e.mustGrant(id, 10)
	}
	e.clock.Advance(10 * time.Second)
	for range n {
		e.l.checkExpired() // nobody reads: the last 4 batches are dropped
	}
	var got []int64
	for range expiredBuffer {
		got = append(got, ids(<-e.l.Expired())...)
	}
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if b := e.check(); b != nil {
		t.Fatalf("dropped leases came back before the retry interval: %v", ids(b))
	}
	e.clock.Advance(retryInterval)
	if got := ids(e.check()); !slices.Equal(got, []int64{1}) {
		t.Fatalf("after retry got %v", got)
	}
}

func BenchmarkRenewParallel(b *testing.B) {
	be := openBackend(b, filepath.Join(b.TempDir(), "db"))
	defer be.Close()
	l, err := newLessor(be, Config{})
	if err != nil {
		b.Fatal(err)
	}
	l.Promote(0)
	const leases = 10000
	tx := be.BatchTx()
	for id := int64(1); id <= leases; id++ {
		if _, err := l.Grant(tx, id, 60); err != nil {
			b.Fatal(err)
		}
	}
	tx.Unlock()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := int64(0)
		for pb.Next() {
			id = id%leases + 1
			if _, err := l.Renew(id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestRenewedLeaseKeepsExpiryOrder(t *testing.T) {
	e := newEnv(t, Config{})
	e.l.Promote(0)
	e.mustGrant(1, 10) // scheduled for 10s
	e.mustGrant(2, 12)
	e.clock.Advance(5 * time.Second)
	if _, err := e.l.Renew(1); err != nil { // now expires at 15s
		t.Fatal(err)
	}
	e.clock.Advance(15 * time.Second)
	if got := ids(e.check()); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("got %v, want [2 1] (by real expiry)", got)
	}
	checkInvariants(t, e.l)
}
