package lease

import (
	"fmt"
	"time"

	"github.com/ballastdb/ballast/node/backend"
	"go.uber.org/zap"
)

// Restore replaces every lease with the ones stored in be, after the
// backend's content was replaced wholesale (a follower installing the
// database its raft leader sent with a snapshot). Key attachments are
// dropped: the caller re-attaches the keys of the new content, which
// mvcc.Store.Restore reports through its OnRestoreKey.
//
// A primary lessor stays primary: every restored lease gets an expiry as
// Promote(extend) gives it, so none expires because its keep-alives could not
// be served during the install. A follower's leases wait for a promotion, as
// after New. Renew calls waiting for an expired lease look again. Lease
// pointers handed out before stay readable but describe the old state.
//
// On error (a corrupt lease bucket) the lessor is left unchanged.
func (l *Lessor) Restore(be *backend.Backend, extend time.Duration) error {
	leases, err := l.load(be)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.heapMu.Lock()
	l.dropHeapLocked()
	old := len(l.leases)
	l.leases = leases
	l.keys = make(map[string]int64)
	primary := l.demoteC != nil
	if primary {
		l.scheduleLocked(extend)
	}
	l.heapMu.Unlock()
	l.wakeRenewers()
	l.lg.Info("restored leases from a replaced backend",
		zap.Int("before", old), zap.Int("after", len(leases)), zap.Bool("primary", primary))
	return nil
}

// load reads every lease of the lease bucket, as New does, into a new map.
func (l *Lessor) load(be *backend.Backend) (map[int64]*Lease, error) {
	leases := make(map[int64]*Lease)
	var err error
	be.Range(backend.Lease, []byte{}, allKeysEnd, 0, func(k, v []byte) bool {
		var rec record
		if rec, err = unmarshalRecord(k, v); err != nil {
			return false
		}
		ls := l.newLease(rec.ID, rec.TTL)
		ls.remainingTTL.Store(rec.RemainingTTL)
		leases[rec.ID] = ls
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("lease: restore from backend: %w (the lease bucket is corrupt; restore the member from a snapshot)", err)
	}
	return leases, nil
}
