package mvcc

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ballastdb/ballast/node/backend"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"
)

// Options configure New.
type Options struct {
	// CompactionBatchLimit is how many revisions one backend batch of a
	// compaction deletes (default 1000).
	CompactionBatchLimit int
	// CompactionSleepInterval is the pause between compaction batches, so a
	// compaction never stalls reads and writes for long (default 10ms).
	CompactionSleepInterval time.Duration
	// OnRestoreKey is called during New, in key order, for each live key
	// whose value has a lease, to rebuild the lease attachments.
	OnRestoreKey func(key []byte, lease int64)
	// CompactionHashes keeps the hash of what each compaction kept
	// (compact_hash.go).
	CompactionHashes bool
	Logger           *zap.Logger
}

const (
	defaultCompactionBatchLimit    = 1000
	defaultCompactionSleepInterval = 10 * time.Millisecond
	// restoreChunk is how many bucket entries New reads per backend Range,
	// bounding how long the backend read lock is held at a time.
	restoreChunk = 10000
)

// Store is the multi-version key-value store.
//
// Revisions: a fresh store is at revision 1; every WriteTxn that changes
// something takes the next main revision. rev is published only when the
// transaction ends (after its index and backend writes), and readers filter
// by the rev they loaded, so they see whole transactions or nothing.
//
// Compaction: compactRev moves under gate held exclusively, which waits for
// the open ReadTxns (each holds gate shared for its lifetime, like etcd's
// store.mu). So a read transaction keeps a stable compaction revision, and
// every revision it may read (>= its compactRev view) survives until it ends.
type Store struct {
	be   *backend.Backend
	lg   *zap.Logger
	opts Options
	idx  *index

	rev        atomic.Int64 // revision of the last completed write txn
	compactRev atomic.Int64 // written only with gate held exclusively
	// compacted tells a compaction at revision 0 from none at all: etcd
	// accepts one compaction to 0 on a store never compacted.
	compacted atomic.Bool

	gate sync.RWMutex

	cmu      sync.Mutex    // serialises Compact; guards lastDone
	lastDone chan struct{} // closed when the latest compaction job has ended

	stopc     chan struct{}
	stopOnce  sync.Once
	jobs      sync.WaitGroup
	sleepHook func(d time.Duration) <-chan time.Time // time.After; replaced in tests

	chashes compactionHashes
}

// New opens the store kept in be: it rebuilds the index from the key
// bucket, restores the current and compaction revisions, reports leased keys
// to OnRestoreKey, and resumes a compaction that was scheduled but had not
// finished (etcd's meta scheduledCompactRev > finishedCompactRev).
func New(be *backend.Backend, o Options) (*Store, error) {
	if o.CompactionBatchLimit <= 0 {
		o.CompactionBatchLimit = defaultCompactionBatchLimit
	}
	if o.CompactionSleepInterval <= 0 {
		o.CompactionSleepInterval = defaultCompactionSleepInterval
	}
	lg := o.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	s := &Store{
		be:        be,
		lg:        lg,
		opts:      o,
		idx:       newIndex(),
		stopc:     make(chan struct{}),
		sleepHook: time.After,
	}
	if err := s.restore(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) restore() error {
	scheduled, finished := backend.ReadCompactRevs(s.be)
	cur := int64(1)
	leases := make(map[string]int64)

	start := []byte{}
	end := bytes.Repeat([]byte{0xff}, markedRevBytesLen+1)
	var (
		rerr error
		last []byte
	)
	for {
		n := 0
		s.idx.mu.Lock()
		s.be.Range(backend.Key, start, end, restoreChunk, func(k, v []byte) bool {
			n++
			last = append(last[:0], k...) // k is only valid during the call
			r, err := parseRevBytes(k)
			if err != nil {
				rerr = err
				return false
			}
			h, err := parseKVHead(v)
			if err != nil {
				rerr = fmt.Errorf("%w (at revision %d_%d)", err, r.main, r.sub)
				return false
			}
			cur = r.main
			ki := s.idx.getLocked(h.key)
			if r.tomb {
				delete(leases, string(h.key))
				if ki != nil {
					if nr, _ := ki.newest(); nr.tomb {
						// etcd skips a tombstone of an already deleted key.
						return true
					}
				}
				// A tombstone with no earlier revision is kept too: it is
				// what remains of a key deleted exactly at the compaction
				// revision, and the next compaction must remove it.
			} else if h.lease != 0 {
				leases[string(h.key)] = h.lease
			} else {
				delete(leases, string(h.key))
			}
			if ki == nil {
				ki = newKeyIndex(h.key)
				s.idx.tree.ReplaceOrInsert(ki)
			} else if nr, ok := ki.newest(); ok && !r.after(nr) {
				rerr = fmt.Errorf("mvcc: key bucket holds revision %d_%d of %q after %d_%d", r.main, r.sub, h.key, nr.main, nr.sub)
				return false
			}
			ki.add(r)
			return true
		})
		if n > 0 {
			start = append(append(start[:0], last...), 0) // the next key after last
		}
		s.idx.mu.Unlock()
		if rerr != nil {
			return fmt.Errorf("mvcc: rebuilding the index from the key bucket failed; the database file is damaged, restore it from a snapshot: %w", rerr)
		}
		if n < restoreChunk {
			break
		}
	}

	// The newest entries may all have been compacted away (a compaction at
	// the current revision deletes tombstones older than it), so the
	// compaction revisions bound the current revision from below.
	cur = max(cur, finished, scheduled)
	s.rev.Store(cur)
	s.compactRev.Store(finished)
	s.compacted.Store(finished > 0 || scheduled > 0)

	if s.opts.OnRestoreKey != nil && len(leases) > 0 {
		keys := make([]string, 0, len(leases))
		for k := range leases {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s.opts.OnRestoreKey([]byte(k), leases[k])
		}
	}

	s.lg.Info("mvcc store restored",
		zap.Int64("current-revision", cur),
		zap.Int64("compact-revision", finished),
		zap.Int("keys", s.idx.len()))

	if scheduled > finished {
		s.lg.Info("resuming the interrupted compaction",
			zap.Int64("scheduled-compact-revision", scheduled),
			zap.Int64("finished-compact-revision", finished))
		s.compactRev.Store(scheduled)
		s.cmu.Lock()
		// (A resumed compaction no longer sees what it has already
		// deleted: it keeps no hash.)
		s.startCompaction(scheduled, nil)
		s.cmu.Unlock()
	}
	return nil
}

// Compacted tells whether the store was ever compacted (CompactRev is 0
// both before any compaction and after one at revision 0).
func (s *Store) Compacted() bool { return s.compacted.Load() }

// Rev returns the current revision.
func (s *Store) Rev() int64 { return s.rev.Load() }

// CompactRev returns the revision of the last compaction, 0 if none. It is
// the revision reads must not go below, set as soon as Compact returns; the
// backend may still be deleting older revisions.
func (s *Store) CompactRev() int64 { return s.compactRev.Load() }

// Close stops a running background compaction and waits for it. The
// compaction resumes at the next New. The store must not be used afterwards.
func (s *Store) Close() {
	s.stopOnce.Do(func() { close(s.stopc) })
	s.jobs.Wait()
}

// loadKV reads the value stored at r. A revision the index holds must be in
// the backend; if it is not, the database is damaged.
func (s *Store) loadKV(r revision) (*mvccpb.KeyValue, error) {
	var (
		kv  *mvccpb.KeyValue
		err error
	)
	found := false
	s.be.Range(backend.Key, revBytes(r), nil, 0, func(_, v []byte) bool {
		found = true
		kv, err = unmarshalKV(v)
		return false
	})
	if !found {
		return nil, fmt.Errorf("mvcc: revision %d_%d is in the index but not in the key bucket; the database is damaged", r.main, r.sub)
	}
	return kv, err
}
