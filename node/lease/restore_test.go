package lease

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// replaceWith swaps e's backend content for other's (what a follower does
// when it installs its leader's db) and restores the lessor from it.
func (e *env) replaceWith(other *env, extend time.Duration) error {
	e.t.Helper()
	sn, err := other.be.Snapshot()
	if err != nil {
		e.t.Fatal(err)
	}
	defer sn.Close()
	path := filepath.Join(filepath.Dir(e.path), "received.snap.db")
	f, err := os.Create(path)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = sn.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.be.Replace(path); err != nil {
		e.t.Fatal(err)
	}
	return e.l.Restore(e.be, extend)
}

func TestRestoreReplacesLeases(t *testing.T) {
	for _, primary := range []bool{false, true} {
		name := "follower"
		if primary {
			name = "primary"
		}
		t.Run(name, func(t *testing.T) {
			leader := newEnv(t, Config{})
			leader.mustGrant(1, 10)
			leader.mustGrant(3, 30)
			leader.putRaw(4, record{ID: 4, TTL: 100, RemainingTTL: 40}.marshal())

			e := newEnv(t, Config{})
			e.mustGrant(1, 10)
			e.mustGrant(2, 20) // revoked on the leader since
			if err := e.l.Attach(1, []byte("k1")); err != nil {
				t.Fatal(err)
			}
			if err := e.l.Attach(2, []byte("k2")); err != nil {
				t.Fatal(err)
			}
			if primary {
				e.l.Promote(0)
			}
			old := e.l.Lookup(1)

			const extend = 5 * time.Second
			if err := e.replaceWith(leader, extend); err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, e.l)
			if got := ids(e.l.Leases()); !slices.Equal(got, []int64{1, 3, 4}) {
				t.Fatalf("leases %v, want [1 3 4]", got)
			}
			if e.l.Lookup(1) == old {
				t.Fatal("lease 1 is the old object")
			}
			if e.l.GetLease([]byte("k1")) != 0 || e.l.Keys(1) != nil {
				t.Fatal("key attachments of the old state survived")
			}
			if e.l.IsPrimary() != primary {
				t.Fatalf("primary %v after restore, want %v", e.l.IsPrimary(), primary)
			}
			for id, ttl := range map[int64]time.Duration{1: 10 * time.Second, 3: 30 * time.Second, 4: 40 * time.Second} {
				want := time.Duration(math.MaxInt64)
				if primary {
					want = ttl + extend
				}
				if got := e.l.Lookup(id).Remaining(); got != want {
					t.Errorf("lease %d: remaining %v, want %v", id, got, want)
				}
			}
			// Keys attach to the new leases; expiry works on the primary.
			if err := e.l.Attach(3, []byte("k3")); err != nil {
				t.Fatal(err)
			}
			if err := e.l.Attach(2, []byte("k2")); !errors.Is(err, ErrLeaseNotFound) {
				t.Fatalf("attach to a lease gone with the old state: %v", err)
			}
			e.clock.Advance(15*time.Second + extend)
			b := e.check()
			if primary && !slices.Equal(ids(b), []int64{1}) || !primary && b != nil {
				t.Fatalf("expired after restore: %v", ids(b))
			}
			checkInvariants(t, e.l)
		})
	}
}

// A renewal waiting for an expired lease to be revoked looks again when the
// leases are replaced.
func TestRestoreWakesWaitingRenewals(t *testing.T) {
	leader := newEnv(t, Config{})
	e := newEnv(t, Config{})
	e.mustGrant(1, 1)
	e.l.Promote(0)
	e.clock.Advance(2 * time.Second)
	errc := make(chan error, 1)
	go func() {
		_, err := e.l.Renew(1)
		errc <- err
	}()
	waitForRenewWaiter(t, e.l)
	if err := e.replaceWith(leader, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("renewal of a lease gone with the old state: %v", err)
	}
}

func TestRestoreRejectsCorruptBucket(t *testing.T) {
	leader := newEnv(t, Config{})
	leader.putRaw(7, []byte{0xff, 0xff}) // not a lease record
	e := newEnv(t, Config{})
	e.mustGrant(1, 10)
	if err := e.replaceWith(leader, 0); err == nil {
		t.Fatal("Restore accepted a corrupt lease bucket")
	}
	if got := ids(e.l.Leases()); !slices.Equal(got, []int64{1}) {
		t.Fatalf("a failed restore changed the leases: %v", got)
	}
}
