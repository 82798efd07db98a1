package lease

import (
	"cmp"
	"slices"
	"time"

	"go.uber.org/zap"
)

// IsPrimary reports whether this lessor decides expiry (its member leads).
func (l *Lessor) IsPrimary() bool { return l.primary.Load() }

// Promote makes the lessor primary. Every lease's expiry becomes
// now + TTL + extend (or its checkpointed remaining TTL instead of TTL), so
// that no lease expires merely because leadership moved and its keep-alives
// went to the old leader. If so many leases would expire together that the
// revoke rate could not keep up, later ones are spread out (see spread).
// Promoting a primary lessor refreshes the expiries again.
func (l *Lessor) Promote(extend time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.heapMu.Lock()
	defer l.heapMu.Unlock()

	l.scheduleLocked(extend)

	if l.demoteC == nil {
		l.demoteC = make(chan struct{})
		l.primary.Store(true)
	}
	// A renewal waiting on a lease that just got a fresh expiry may go on.
	l.wakeRenewers()
	l.lg.Info("lessor promoted to primary",
		zap.Int("leases", len(l.heap)), zap.Duration("extend", extend))
}

// scheduleLocked gives every lease the expiry Promote(extend) gives it and
// rebuilds the expiry heap. Caller holds mu and heapMu.
func (l *Lessor) scheduleLocked(extend time.Duration) {
	now := l.now()
	h := make(expiryHeap, 0, len(l.leases))
	for _, ls := range l.leases {
		ttl := ls.TTL
		if r := ls.remainingTTL.Load(); r > 0 {
			ttl = r
		}
		ls.deadline = expiryAfter(now, extend+seconds(ttl))
		h = append(h, ls)
	}
	spread(h, l.ratePerSecond())
	for _, ls := range h {
		ls.expiry.Store(ls.deadline)
	}
	h.init()
	l.heap = h
}

// dropHeapLocked empties the expiry heap. Caller holds heapMu.
func (l *Lessor) dropHeapLocked() {
	for _, ls := range l.heap {
		ls.index = -1
	}
	l.heap = nil
}

// ratePerSecond is the most leases handed out for revocation per second.
func (l *Lessor) ratePerSecond() int {
	return l.batch * int(time.Second/checkInterval)
}

// spread postpones deadlines so that no second holds more than 3/4 of the
// revoke rate, leaving the rest for leases that expire normally. With fewer
// leases than the rate allows per second no pile-up is possible and nothing
// moves; etcd uses the same trigger and target. Within a run of crowded
// deadlines starting at s, the k-th lease beyond the target gets
// s + k/perSecond seconds; a deadline is never moved earlier.
func spread(h expiryHeap, rate int) {
	perSecond := 3 * rate / 4
	if perSecond <= 0 || len(h) < rate {
		return
	}
	slices.SortFunc(h, func(a, b *Lease) int { return cmp.Compare(a.deadline, b.deadline) })
	start, end, n := h[0].deadline, h[0].deadline+int64(time.Second), 0
	for _, ls := range h {
		if ls.deadline > end {
			start, end, n = ls.deadline, ls.deadline+int64(time.Second), 1
			continue
		}
		n++
		if n <= perSecond {
			continue
		}
		slot := start + int64(n)*int64(time.Second)/int64(perSecond)
		ls.deadline = max(ls.deadline, slot)
		end = max(end, ls.deadline)
	}
}

// Demote makes the lessor a follower: expiries become forever and the expiry
// heap is dropped. Renew calls waiting for an expired lease return
// ErrNotPrimary.
func (l *Lessor) Demote() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.heapMu.Lock()
	l.dropHeapLocked()
	l.heapMu.Unlock()
	for _, ls := range l.leases {
		ls.expiry.Store(forever)
	}
	if l.demoteC != nil {
		close(l.demoteC)
		l.demoteC = nil
		l.primary.Store(false)
		l.lg.Info("lessor demoted", zap.Int("leases", len(l.leases)))
	}
}

// Renew extends lease id to now + TTL and returns the TTL. Only the primary
// renews (ErrNotPrimary: forward to the leader). A lease that has already
// expired cannot be renewed: like etcd, Renew then waits until the lease is
// revoked (ErrLeaseNotFound) or the lessor stops being primary or stops
// (ErrNotPrimary), so a client never believes in a lease whose revoke is in
// flight.
func (l *Lessor) Renew(id int64) (int64, error) {
	for {
		l.mu.RLock()
		if l.demoteC == nil {
			l.mu.RUnlock()
			return -1, ErrNotPrimary
		}
		ls := l.leases[id]
		if ls == nil {
			l.mu.RUnlock()
			return -1, ErrLeaseNotFound
		}
		now := l.now()
		if old := ls.expiry.Load(); old > now {
			exp := expiryAfter(now, seconds(ls.TTL))
			// Swap, not CompareAndSwap: concurrent renewals of one lease
			// all move it to about now+TTL; whichever lands last wins.
			old = ls.expiry.Swap(exp)
			if exp < old {
				// Only after Promote's extension can a renewal shorten the
				// expiry; the heap deadline must follow to keep
				// deadline <= expiry. Lengthening needs no heap work.
				l.heapMu.Lock()
				if ls.index >= 0 && ls.deadline > exp {
					ls.deadline = exp
					l.heap.fix(ls.index)
				}
				l.heapMu.Unlock()
			}
			if ls.remainingTTL.Load() != 0 {
				ls.remainingTTL.Store(0)
			}
			l.mu.RUnlock()
			return ls.TTL, nil
		}

		// Expired: wait for its revoke, a demotion or Stop, then look again.
		demoteC := l.demoteC
		l.waitMu.Lock()
		if l.revokedC == nil {
			l.revokedC = make(chan struct{})
		}
		revokedC := l.revokedC
		l.waitMu.Unlock()
		l.mu.RUnlock()
		select {
		case <-revokedC:
		case <-demoteC:
		case <-l.stopC:
			return -1, ErrNotPrimary
		}
	}
}

// Expired delivers batches of expired leases while the lessor is primary, in
// expiry order, at most ExpiredBatch per check. The receiver proposes their
// revocation through raft. A lease that is still not revoked after
// retryInterval is delivered again (repeats come in the order they were
// first handed out, ties by ID). Batches are dropped, not queued, while
// the receiver lags; their leases come back after retryInterval.
func (l *Lessor) Expired() <-chan []*Lease { return l.expiredC }

// Stop stops the expiry checker and wakes waiting Renew calls. Safe to call
// more than once.
func (l *Lessor) Stop() {
	l.stopOnce.Do(func() {
		close(l.stopC)
		if l.running {
			<-l.doneC
		}
	})
}

// run checks for expired leases every checkInterval until Stop.
func (l *Lessor) run() {
	defer close(l.doneC)
	t := time.NewTicker(checkInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.checkExpired()
		case <-l.stopC:
			return
		}
	}
}

// checkExpired hands out up to one batch of expired leases.
func (l *Lessor) checkExpired() {
	if !l.primary.Load() {
		return
	}
	batch := l.findExpired(l.now())
	if len(batch) == 0 {
		return
	}
	select {
	case l.expiredC <- batch:
	default:
		l.lg.Warn("expired leases not delivered: the revoke loop is behind; they will be retried",
			zap.Int("leases", len(batch)), zap.Duration("retry", retryInterval))
	}
}

// findExpired pops leases whose expiry is at or before now, earliest first,
// and reschedules each for now+retryInterval so that it is handed out again
// if its revoke never commits.
func (l *Lessor) findExpired(now int64) []*Lease {
	l.heapMu.Lock()
	defer l.heapMu.Unlock()
	var batch []*Lease
	for len(l.heap) > 0 && len(batch) < l.batch {
		ls := l.heap[0]
		if ls.deadline > now {
			break
		}
		if exp := ls.expiry.Load(); exp > ls.deadline {
			// Renewed since it was scheduled: re-sort by the real expiry, so
			// that first deliveries come in expiry order, and look at the top
			// again. A lease is re-sorted at most once per call, as its
			// deadline then equals its expiry. (exp < deadline means it was
			// handed out before and its retry time has come.)
			ls.deadline = exp
			l.heap.fix(0)
			continue
		}
		batch = append(batch, ls)
		ls.deadline = now + int64(retryInterval)
		l.heap.fix(0)
	}
	return batch
}
