package lease

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// forever is the expiry of every lease while the lessor is not primary: only
// the leader decides expiry, followers keep leases until told to revoke them.
const forever = math.MaxInt64

// Lease is one granted lease. The exported fields are read-only for callers;
// the Lessor hands out its own pointers to avoid copying per request.
type Lease struct {
	ID  int64
	TTL int64 // granted TTL in seconds, already raised to the minimum

	// expiry is the deadline in nanoseconds on the owner's timeline
	// (Lessor.now), or forever when the owner is not primary. Renew stores
	// it without the lessor's write lock, hence atomic.
	expiry atomic.Int64
	// remainingTTL is a checkpointed remaining TTL in seconds read from the
	// bucket (etcd writes them; ballast does not yet). When > 0, Promote
	// uses it instead of TTL; Renew clears it because a renewal grants the
	// full TTL again.
	remainingTTL atomic.Int64

	// deadline and index belong to the expiry heap and are guarded by
	// Lessor.heapMu. Invariant while in the heap: deadline <= expiry, so the
	// heap never reports a lease later than it expires; a renewed lease is
	// only re-sorted lazily when its stale deadline comes up. The one
	// exception is a lease already handed out as expired: its deadline is
	// the time to hand it out again.
	deadline int64
	index    int // position in the heap, -1 when not in it

	// keys are the keys attached to this lease, guarded by Lessor.mu and
	// allocated on first Attach (many leases carry no or one key).
	keys map[string]struct{}

	owner *Lessor
}

// Remaining is the time left before the lease expires. It is
// math.MaxInt64 when the owner is not primary (expiry is undecided there).
func (ls *Lease) Remaining() time.Duration {
	exp := ls.expiry.Load()
	if exp == forever {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(exp - ls.owner.now())
}

// Expiry is when the lease expires; the zero time when the owner is not
// primary.
func (ls *Lease) Expiry() time.Time {
	exp := ls.expiry.Load()
	if exp == forever {
		return time.Time{}
	}
	return ls.owner.base.Add(time.Duration(exp))
}

// Keys returns the keys attached to the lease, sorted.
func (ls *Lease) Keys() [][]byte {
	ls.owner.mu.RLock()
	defer ls.owner.mu.RUnlock()
	return ls.sortedKeys()
}

// sortedKeys copies the key set out; the caller holds Lessor.mu.
func (ls *Lease) sortedKeys() [][]byte {
	if len(ls.keys) == 0 {
		return nil
	}
	ks := make([]string, 0, len(ls.keys))
	for k := range ls.keys {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}
