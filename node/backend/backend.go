package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// ErrClosed is returned by operations on a closed Backend.
var ErrClosed = errors.New("backend: closed")

const (
	defaultBatchInterval   = 100 * time.Millisecond
	defaultBatchLimit      = 10000
	defaultInitialMmapSize = 10 * 1024 * 1024 * 1024 // like etcd; the mapping is lazy
	// flockTimeout bounds the wait for bbolt's file lock, so that a second
	// server on the same data dir fails instead of hanging.
	flockTimeout = 10 * time.Second
	// keyFillPercent: revisions are appended in increasing order to the key
	// bucket, so nearly full pages waste less space (etcd does the same).
	keyFillPercent = 0.9
)

// Options configure Open.
type Options struct {
	Path            string        // the bbolt file, e.g. <data-dir>/member/snap/db
	BatchInterval   time.Duration // commit at least this often when writes are pending (default 100ms)
	BatchLimit      int           // commit when this many writes are pending (default 10000)
	NoFsync         bool          // --unsafe-no-fsync: bbolt NoSync
	InitialMmapSize int64         // default 10 GiB like etcd (mmap is lazy)
	Logger          *zap.Logger
	// OnCommit, if set, is called after each bbolt commit with the duration
	// of the commit itself (write + fsync), for
	// etcd_disk_backend_commit_duration_seconds. It runs on the committing
	// goroutine with no backend lock held; it must not block for long.
	OnCommit func(d time.Duration)
}

// Backend is a bbolt database with buffered, batched writes.
//
// Locks, always taken in this order:
//   - cmu serialises commits, Defrag and Close (there is one bbolt writer).
//   - wmu is the BatchTx lock: one writer at a time, and a commit takes the
//     buffer only while holding it, so a holder's writes are never split
//     across commits.
//   - mu guards buf, flushing, rtx, rbk and db. Readers hold it shared for the
//     whole of one Get or Range; Put/Delete hold it exclusively for one tree
//     insert; a commit holds it exclusively only to swap pointers.
//
// Read invariant (under mu): the logical content of a bucket is
//
//	bbolt state  ⊕  flushing  ⊕  buf      (later overlays win)
//
// where "bbolt state" is read through rtx when it is non-nil. While a commit
// is writing flushing to bbolt, rtx is nil and readers begin a private read
// tx: it sees the state either just before or just after that commit, and
// both give the same result once flushing is overlaid, because the commit
// applies exactly flushing. flushing is cleared and rtx renewed in one
// critical section after the commit returned, so there is no moment at which
// a just-committed write is in neither flushing nor rtx.
//
// The shared rtx is closed before the bbolt commit starts: a commit that has
// to grow the mmap waits for every open read tx, and the committer holding
// one across its own commit would deadlock.
type Backend struct {
	opts Options
	lg   *zap.Logger

	cmu sync.Mutex
	wmu sync.Mutex
	btx BatchTx

	mu       sync.RWMutex
	db       *bolt.DB
	buf      *buffer
	flushing *buffer                       // writes being committed; nil outside a commit
	rtx      *bolt.Tx                      // shared read tx on the last commit; nil during a commit
	rbk      [len(allBuckets)]*bolt.Bucket // rtx's buckets, opened once per rtx

	spare *buffer // an emptied buffer for the next swap; guarded by cmu

	pending   atomic.Int64 // writes since the buffer was last taken for commit
	size      atomic.Int64
	sizeInUse atomic.Int64
	closed    atomic.Bool

	stopc chan struct{}
	donec chan struct{}
}

// Open opens (creating if missing) the bbolt file at o.Path, creates every
// etcd bucket, and starts the background commit loop.
func Open(o Options) (*Backend, error) {
	if o.Path == "" {
		return nil, errors.New("backend: Options.Path is empty")
	}
	if o.BatchInterval <= 0 {
		o.BatchInterval = defaultBatchInterval
	}
	if o.BatchLimit <= 0 {
		o.BatchLimit = defaultBatchLimit
	}
	if o.InitialMmapSize <= 0 {
		o.InitialMmapSize = defaultInitialMmapSize
	}
	lg := o.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o700); err != nil {
		return nil, fmt.Errorf("backend: create directory for %s: %w", o.Path, err)
	}
	db, err := openBolt(o)
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("backend: %s: %w", o.Path, err)
	}
	b := &Backend{
		opts:  o,
		lg:    lg,
		db:    db,
		buf:   &buffer{},
		spare: &buffer{},
		stopc: make(chan struct{}),
		donec: make(chan struct{}),
	}
	b.btx.b = b
	if err := b.openRtxLocked(); err != nil {
		db.Close()
		return nil, err
	}
	go b.run()
	return b, nil
}

func boltOptions(o Options) *bolt.Options {
	return &bolt.Options{
		Timeout:         flockTimeout,
		InitialMmapSize: int(o.InitialMmapSize),
		NoSync:          o.NoFsync,
		NoGrowSync:      o.NoFsync,
		// Like etcd: the freelist is rebuilt on open instead of being
		// written on every commit, and kept as a hashmap.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
}

func openBolt(o Options) (*bolt.DB, error) {
	db, err := bolt.Open(o.Path, 0o600, boltOptions(o))
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("backend: %s is locked by another process; stop the other ballast or etcd using this data dir: %w", o.Path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("backend: open %s: %w", o.Path, err)
	}
	return db, nil
}

// openRtxLocked begins the shared read tx on the current bbolt state and
// refreshes the size gauges. Caller holds mu exclusively (or has no
// concurrent users yet).
func (b *Backend) openRtxLocked() error {
	tx, err := b.db.Begin(false)
	if err != nil {
		return fmt.Errorf("backend: begin read tx on %s: %w", b.opts.Path, err)
	}
	b.rtx = tx
	for i, name := range allBuckets {
		b.rbk[i] = tx.Bucket(name)
	}
	size := tx.Size()
	b.size.Store(size)
	b.sizeInUse.Store(size - int64(b.db.Stats().FreePageN)*int64(b.db.Info().PageSize))
	return nil
}

// closeRtxLocked ends the shared read tx. Caller holds mu exclusively.
func (b *Backend) closeRtxLocked() {
	if b.rtx != nil {
		_ = b.rtx.Rollback() // a read tx has nothing to roll back
		b.rtx = nil
		b.rbk = [len(allBuckets)]*bolt.Bucket{}
	}
}

// run commits pending writes every BatchInterval until Close.
func (b *Backend) run() {
	defer close(b.donec)
	t := time.NewTimer(b.opts.BatchInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-b.stopc:
			return
		}
		if b.pending.Load() > 0 {
			b.commitAndLog()
		}
		t.Reset(b.opts.BatchInterval)
	}
}

// commitAndLog is commit for callers that cannot return the error.
func (b *Backend) commitAndLog() {
	if err := b.commit(); err != nil {
		b.lg.Error("backend commit failed; the writes stay buffered and the commit will be retried; check free space and health of the disk",
			zap.String("path", b.opts.Path), zap.Error(err))
	}
}

// commit writes the buffered writes to bbolt. It waits for the current
// BatchTx holder, so the batch ends at a transaction boundary.
func (b *Backend) commit() error {
	b.cmu.Lock()
	d, committed, err := b.commitLocked()
	b.cmu.Unlock()
	if committed && b.opts.OnCommit != nil {
		b.opts.OnCommit(d)
	}
	return err
}

// commitLocked does the work of commit; caller holds cmu.
func (b *Backend) commitLocked() (d time.Duration, committed bool, err error) {
	b.wmu.Lock()
	b.mu.Lock()
	if b.buf.empty() {
		b.mu.Unlock()
		b.wmu.Unlock()
		return 0, false, nil
	}
	flushing := b.buf
	b.buf, b.spare = b.spare, nil
	b.flushing = flushing
	b.pending.Store(0)
	b.closeRtxLocked()
	b.mu.Unlock()
	// Writers may continue into the new buf while flushing is written.
	b.wmu.Unlock()

	d, err = b.write(flushing)

	b.mu.Lock()
	if err != nil {
		// Nothing reached bbolt: give the writes back to buf, under anything
		// written since (which is newer).
		for bi, t := range flushing.trees {
			if t != nil {
				t.Ascend(func(e entry) bool { b.buf.putIfAbsent(bi, e); return true })
			}
		}
		b.pending.Add(int64(flushing.n))
	}
	b.flushing = nil
	rerr := b.openRtxLocked()
	b.mu.Unlock()

	flushing.reset()
	b.spare = flushing
	if err != nil {
		return 0, false, err
	}
	return d, true, rerr
}

// write applies bf to bbolt in one read-write transaction.
func (b *Backend) write(bf *buffer) (time.Duration, error) {
	tx, err := b.db.Begin(true)
	if err != nil {
		return 0, fmt.Errorf("backend: begin write tx: %w", err)
	}
	for bi, t := range bf.trees {
		if t == nil || t.Len() == 0 {
			continue
		}
		bk, err := tx.CreateBucketIfNotExists(allBuckets[bi])
		if err != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("backend: bucket %q: %w", allBuckets[bi], err)
		}
		if bi == 0 { // Key
			bk.FillPercent = keyFillPercent
		}
		var werr error
		t.Ascend(func(e entry) bool {
			if e.deleted {
				werr = bk.Delete(e.key)
			} else {
				werr = bk.Put(e.key, e.value)
			}
			return werr == nil
		})
		if werr != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("backend: write to bucket %q: %w", allBuckets[bi], werr)
		}
	}
	start := time.Now()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("backend: commit: %w", err)
	}
	return time.Since(start), nil
}

// ForceCommit commits pending writes now. It waits for the current holder of
// BatchTx, so it must not be called while holding it.
func (b *Backend) ForceCommit() error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.commit()
}

// Size is the size of the database in bytes (etcd_mvcc_db_total_size_in_bytes),
// as of the last commit.
func (b *Backend) Size() int64 { return b.size.Load() }

// SizeInUse is Size minus the free pages (etcd_mvcc_db_total_size_in_use_in_bytes).
func (b *Backend) SizeInUse() int64 { return b.sizeInUse.Load() }

// Close commits pending writes and closes the file. It waits for open
// Snapshots to be closed. The Backend must not be used afterwards.
func (b *Backend) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	close(b.stopc)
	<-b.donec
	err := b.commit()
	b.cmu.Lock()
	defer b.cmu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeRtxLocked()
	if cerr := b.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("backend: close %s: %w", b.opts.Path, cerr)
	}
	return err
}
