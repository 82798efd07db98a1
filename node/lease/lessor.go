// Package lease implements etcd's lease semantics for a ballast node.
//
// Every member holds the same set of leases: Grant and Revoke are applied
// from the raft log on all members, in the same batch as the key changes
// they go with. Only the leader's lessor is primary: it alone tracks expiry,
// accepts renewals (keep-alives) and hands expired leases out on Expired(),
// whose receiver proposes their revocation through raft. Followers keep
// every lease until the log says otherwise, so a lease never disappears
// without consensus.
package lease

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ballastdb/ballast/node/backend"
	"go.uber.org/zap"
)

const (
	// checkInterval is how often the primary looks for expired leases.
	checkInterval = 500 * time.Millisecond
	// retryInterval is how long an expired lease that was handed out waits
	// before it is handed out again, in case its revoke proposal was lost.
	retryInterval = 3 * time.Second
	// defaultExpiredBatch matches etcd: at most 1000 revocations per second,
	// checked twice a second.
	defaultExpiredBatch = 500
	// expiredBuffer batches may wait in Expired() before the checker drops
	// new ones; dropped leases come back after retryInterval.
	expiredBuffer = 16
)

// Config configures a Lessor.
type Config struct {
	// MinTTL is the smallest TTL in seconds; shorter grants are raised to it.
	// The server derives it like etcd: (3*electionTicks/2) heartbeats,
	// rounded up to whole seconds (2 s with etcd's defaults). Values
	// below 1 mean 1: a zero TTL lease would expire as it is granted.
	MinTTL int64
	// Clock defaults to the real clock.
	Clock Clock
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// ExpiredBatch caps the leases handed out per expiry check, which limits
	// the revoke rate (etcd: 500 per 500 ms). Defaults to 500.
	ExpiredBatch int
}

// allKeysEnd bounds a Range over the whole lease bucket: every key is exactly
// 8 bytes, so all sort below nine 0xff bytes.
var allKeysEnd = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Lessor owns the leases of one member.
//
// Locking: mu guards the lease and key maps, the key sets and the primary
// state. heapMu guards the expiry heap (deadline, index). Lock order is mu,
// then heapMu, then waitMu. Renew takes only mu.RLock on its fast path, so
// keep-alives run in parallel with each other and with the expiry checker,
// which takes only heapMu.
type Lessor struct {
	clock Clock
	// base is the origin of the lessor's timeline; expiries are nanoseconds
	// since base, which keeps the monotonic clock reading of real time.
	base   time.Time
	lg     *zap.Logger
	minTTL int64
	batch  int

	mu     sync.RWMutex
	leases map[int64]*Lease
	keys   map[string]int64 // key -> lease ID; the same strings as in Lease.keys
	// demoteC is non-nil while primary and closed by Demote, waking Renew
	// calls that wait for an expired lease to be revoked.
	demoteC chan struct{}
	// primary mirrors demoteC != nil for readers that do not take mu.
	primary atomic.Bool

	heapMu sync.Mutex
	heap   expiryHeap // only filled while primary

	// revokedC is closed (and cleared) by every Revoke and Promote, if
	// someone waits on it. It is created on demand so revokes cost nothing when no Renew
	// waits for an expired lease.
	waitMu   sync.Mutex
	revokedC chan struct{}

	expiredC chan []*Lease
	stopC    chan struct{}
	doneC    chan struct{}
	stopOnce sync.Once
	running  bool // run was started: Stop waits for doneC
}

// New builds a lessor over be and restores every lease stored in its lease
// bucket. The lessor starts as a follower (not primary); Stop it when done.
func New(be *backend.Backend, cfg Config) (*Lessor, error) {
	l, err := newLessor(be, cfg)
	if err != nil {
		return nil, err
	}
	l.running = true
	go l.run()
	return l, nil
}

// newLessor is New without the expiry checker goroutine; tests drive
// checkExpired themselves.
func newLessor(be *backend.Backend, cfg Config) (*Lessor, error) {
	l := &Lessor{
		clock:    cfg.Clock,
		lg:       cfg.Logger,
		minTTL:   max(cfg.MinTTL, 1),
		batch:    cfg.ExpiredBatch,
		leases:   make(map[int64]*Lease),
		keys:     make(map[string]int64),
		expiredC: make(chan []*Lease, expiredBuffer),
		stopC:    make(chan struct{}),
		doneC:    make(chan struct{}),
	}
	if l.clock == nil {
		l.clock = realClock{}
	}
	if l.lg == nil {
		l.lg = zap.NewNop()
	}
	if l.batch <= 0 {
		l.batch = defaultExpiredBatch
	}
	l.base = l.clock.Now()
	if err := l.restore(be); err != nil {
		return nil, err
	}
	return l, nil
}

// restore loads every lease from the bucket. Expiries start at forever: they
// are set when this member becomes primary. TTLs below the minimum are raised
// (the minimum may have grown since the lease was granted), as etcd does.
func (l *Lessor) restore(be *backend.Backend) error {
	leases, err := l.load(be)
	if err != nil {
		return err
	}
	l.leases = leases
	l.lg.Info("restored leases", zap.Int("count", len(l.leases)))
	return nil
}

func (l *Lessor) newLease(id, ttl int64) *Lease {
	ls := &Lease{ID: id, TTL: max(ttl, l.minTTL), index: -1, owner: l}
	ls.expiry.Store(forever)
	return ls
}

// now is the current time on the lessor's timeline.
func (l *Lessor) now() int64 { return int64(l.clock.Now().Sub(l.base)) }

// expiryAfter is now+d in the lessor's timeline, saturating below forever.
func expiryAfter(now int64, d time.Duration) int64 {
	if d >= 0 && now > forever-1-int64(d) {
		return forever - 1
	}
	return now + int64(d)
}

func seconds(s int64) time.Duration { return time.Duration(s) * time.Second }

// Grant creates lease id with the given TTL in seconds, raised to the
// minimum, and writes it through tx, the batch of the raft entry being
// applied. On the primary the lease starts expiring at once; elsewhere it
// waits for a promotion.
func (l *Lessor) Grant(tx *backend.BatchTx, id, ttl int64) (*Lease, error) {
	if id == 0 {
		// 0 means "no lease" everywhere in etcd's API; the server picks an
		// ID before proposing, so this is a caller bug. etcd answers the same.
		return nil, ErrLeaseNotFound
	}
	if ttl > MaxTTL {
		return nil, ErrLeaseTTLTooLarge
	}
	ls := l.newLease(id, ttl)

	l.mu.Lock()
	if _, ok := l.leases[id]; ok {
		l.mu.Unlock()
		return nil, ErrLeaseExists
	}
	l.leases[id] = ls
	if l.demoteC != nil {
		exp := expiryAfter(l.now(), seconds(ls.TTL))
		ls.expiry.Store(exp)
		l.heapMu.Lock()
		ls.deadline = exp
		l.heap.push(ls)
		l.heapMu.Unlock()
	}
	l.mu.Unlock()

	tx.Put(backend.Lease, idKey(id), record{ID: id, TTL: ls.TTL}.marshal())
	return ls, nil
}

// Revoke removes lease id and deletes it through tx. The caller has deleted
// the lease's keys in the same batch; their attachments go with the lease.
func (l *Lessor) Revoke(tx *backend.BatchTx, id int64) error {
	l.mu.Lock()
	ls := l.leases[id]
	if ls == nil {
		l.mu.Unlock()
		return ErrLeaseNotFound
	}
	delete(l.leases, id)
	for k := range ls.keys {
		if l.keys[k] == id {
			delete(l.keys, k)
		}
	}
	ls.keys = nil
	l.heapMu.Lock()
	if ls.index >= 0 {
		l.heap.remove(ls.index)
	}
	l.heapMu.Unlock()
	l.wakeRenewers()
	l.mu.Unlock()

	tx.Delete(backend.Lease, idKey(id))
	return nil
}

// wakeRenewers wakes Renew calls waiting for an expired lease so they look
// again. The caller holds mu (exclusively), so no Renew is between its check
// and its wait.
func (l *Lessor) wakeRenewers() {
	l.waitMu.Lock()
	if l.revokedC != nil {
		close(l.revokedC)
		l.revokedC = nil
	}
	l.waitMu.Unlock()
}

// Keys returns the keys attached to lease id, sorted; nil if there are none
// or the lease does not exist.
func (l *Lessor) Keys(id int64) [][]byte {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if ls := l.leases[id]; ls != nil {
		return ls.sortedKeys()
	}
	return nil
}

// Attach attaches key to lease id. A key belongs to at most one lease: if it
// was attached to another lease, it moves.
func (l *Lessor) Attach(id int64, key []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := l.leases[id]
	if ls == nil {
		return ErrLeaseNotFound
	}
	if old, ok := l.keys[string(key)]; ok {
		if old == id {
			return nil
		}
		if prev := l.leases[old]; prev != nil {
			delete(prev.keys, string(key))
		}
	}
	k := string(key)
	if ls.keys == nil {
		ls.keys = make(map[string]struct{}, 1)
	}
	ls.keys[k] = struct{}{}
	l.keys[k] = id
	return nil
}

// Detach detaches key from lease id. It does nothing if the key is not
// attached to that lease.
func (l *Lessor) Detach(id int64, key []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.keys[string(key)]; !ok || cur != id {
		return
	}
	delete(l.keys, string(key))
	if ls := l.leases[id]; ls != nil {
		delete(ls.keys, string(key))
	}
}

// GetLease returns the lease key is attached to, 0 if none.
func (l *Lessor) GetLease(key []byte) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.keys[string(key)]
}

// Lookup returns lease id, nil if it does not exist.
func (l *Lessor) Lookup(id int64) *Lease {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leases[id]
}

// Leases returns all leases sorted by ID.
func (l *Lessor) Leases() []*Lease {
	l.mu.RLock()
	out := make([]*Lease, 0, len(l.leases))
	for _, ls := range l.leases {
		out = append(out, ls)
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Lease) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
