package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/fileutil"
)

// DefaultSegmentSize is the preallocated size of a segment file.
const DefaultSegmentSize = 64 << 20

// slowFsync is the fdatasync latency above which a warning is logged.
const slowFsync = time.Second

// Options tune a WAL. The zero value is usable.
type Options struct {
	// SegmentSize is the preallocated size of each segment; a new segment
	// is cut when a write does not fit. Default DefaultSegmentSize.
	SegmentSize int64
	// NoFsync skips every fdatasync. Only for tests and benchmarks:
	// acknowledged writes are then lost on power failure.
	NoFsync bool
	// Logger receives recovery and slow-disk messages. Default zap.NewNop().
	Logger *zap.Logger
	// OnFsync, if set, is called with the duration of each fdatasync of a
	// Save or SaveSnapshot (etcd_disk_wal_fsync_duration_seconds). With
	// direct writes it includes the write, which is when the data travels
	// to the disk.
	OnFsync func(time.Duration)
	// NoDirectIO writes through the page cache and fdatasync even where
	// the filesystem supports O_DIRECT (see directWriter).
	NoDirectIO bool
}

// Snapshot identifies a raft snapshot the log may start after.
type Snapshot struct {
	Index, Term uint64
}

type walState int

const (
	stateOpened   walState = iota // Open done, ReadAll pending
	stateWritable                 // Create or ReadAll done: Save allowed
	stateClosed
)

// hardState mirrors raftpb.HardState as plain values, so that remembering
// the latest one does not allocate on every Save.
type hardState struct{ term, vote, commit uint64 }

// prepared is the outcome of allocating the next segment in the background.
type prepared struct {
	f    *os.File
	path string
	err  error
}

// WAL is an open write-ahead log. Its methods are safe for concurrent use,
// although raft's loop is expected to be the only writer.
type WAL struct {
	mu    sync.Mutex
	dir   string
	o     Options
	lg    *zap.Logger
	lock  *os.File
	state walState
	// err is sticky: after a failed write or fdatasync the file contents
	// are unknown (and the kernel may have dropped the dirty pages), so no
	// further Save may pretend to succeed.
	err error

	// Open parameters and the ReadAll outcome.
	start Snapshot

	metadata  []byte
	hs        hardState
	snap      Snapshot // newest snapshot marker written or read
	lastIndex uint64   // index of the last entry record (0 if none)

	segs []segment // oldest first; the last one is being written
	f    *os.File  // the last segment
	// direct, when set, writes the records of f (see directWriter); w.f
	// then serves headers, repairs and fdatasync. Nil when the WAL writes
	// through the page cache.
	direct    *directWriter
	noDirect  bool  // O_DIRECT was refused once: do not try again
	off       int64 // where the next record goes in f
	headerEnd int64 // end of the header records of f
	next      chan prepared
	buf       []byte // reused encoding buffer
}

func (o Options) withDefaults() Options {
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// lockDir takes the directory lock and clears half-prepared segments.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("wal: lock %s: %w", dir, err)
	}
	if err := removeTemps(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Create makes a new WAL in dir (created if missing) holding metadata, and
// returns it ready for Save. It fails if dir already holds a WAL.
func Create(dir string, metadata []byte, o Options) (*WAL, error) {
	if Exist(dir) {
		return nil, fmt.Errorf("wal: %s already holds a WAL: %w", dir, os.ErrExist)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	o = o.withDefaults()
	w := &WAL{dir: dir, o: o, lg: o.Logger, lock: lock, metadata: append([]byte(nil), metadata...)}
	// The first segment appears under its final name only once its header
	// is durable, so a crash inside Create leaves no WAL (Exist is false)
	// rather than a broken one.
	tmp := tempSegmentPath(dir, 1)
	f, err := allocSegment(tmp, o.SegmentSize, o.NoFsync)
	if err != nil {
		lock.Close()
		return nil, err
	}
	if err := w.installSegment(f, tmp, 1, 1); err != nil {
		f.Close()
		os.Remove(tmp)
		lock.Close()
		return nil, err
	}
	w.state = stateWritable
	w.prepareNext()
	return w, nil
}

// Open opens the WAL in dir for reading from just after snap; ReadAll must
// be called next. snap is the newest snapshot the caller holds (zero if
// none): entries up to its index are not returned by ReadAll.
func Open(dir string, snap Snapshot, o Options) (*WAL, error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	segs, err := listSegments(dir)
	if err == nil && len(segs) == 0 {
		err = fmt.Errorf("wal: no segment files in %s: %w", dir, os.ErrNotExist)
	}
	if err != nil {
		lock.Close()
		return nil, err
	}
	o = o.withDefaults()
	return &WAL{dir: dir, o: o, lg: o.Logger, lock: lock, start: snap, segs: segs}, nil
}

// headerRecords encodes what every segment starts with: its identity, then
// everything a reader needs if all older segments are gone.
func (w *WAL) headerRecords(buf []byte, seq, firstIndex uint64) []byte {
	buf = appendTwoUint64(buf, typeSegment, seq, firstIndex)
	buf = appendRecord(buf, typeMetadata, w.metadata)
	buf = appendTwoUint64(buf, typeSnapshot, w.snap.Index, w.snap.Term)
	if w.hs != (hardState{}) {
		buf = appendHardState(buf, w.hs)
	}
	return buf
}

// installSegment writes the header records into the preallocated temp file
// f, makes it durable and renames it into the log as the segment being
// written.
func (w *WAL) installSegment(f *os.File, tmp string, seq, firstIndex uint64) error {
	// Not w.buf: cut runs while a Save's batch is encoded there.
	buf := w.headerRecords(make([]byte, 0, 256+len(w.metadata)), seq, firstIndex)
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	if !w.o.NoFsync {
		if err := fdatasync(f); err != nil {
			return err
		}
	}
	path := filepath.Join(w.dir, segmentName(seq, firstIndex))
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if !w.o.NoFsync {
		if err := fileutil.SyncDir(w.dir); err != nil {
			return err
		}
	}
	w.segs = append(w.segs, segment{seq: seq, firstIndex: firstIndex, path: path})
	w.headerEnd = int64(len(buf))
	w.appendTo(f, path, w.headerEnd)
	return nil
}

// appendTo makes f, the segment at path whose valid data ends at off, the
// one records are appended to, with direct writes where the filesystem
// allows them.
func (w *WAL) appendTo(f *os.File, path string, off int64) {
	w.f, w.off, w.direct = f, off, nil
	if w.o.NoFsync || w.o.NoDirectIO || w.noDirect {
		return
	}
	d, err := openDirect(path, off)
	if err != nil {
		w.noDirect = true
		w.lg.Info("the WAL writes through the page cache: direct I/O is not available here",
			zap.String("file", path), zap.Error(err))
		return
	}
	w.direct = d
}

// lastPath is the name of the segment being written. (w.f.Name() is the
// temporary name it was prepared under.)
func (w *WAL) lastPath() string { return w.segs[len(w.segs)-1].path }

// stopDirect goes back to writing through the page cache after the
// filesystem refused a direct write it had accepted to open and read (a
// block size larger than dioAlign, say). EINVAL comes before any I/O, so
// the refused write can simply be made again.
func (w *WAL) stopDirect(err error) {
	w.lg.Warn("the filesystem refused a direct write; the WAL writes through the page cache from now on",
		zap.String("file", w.lastPath()), zap.Error(err))
	w.direct.close()
	w.direct = nil
	w.noDirect = true
}

// prepareNext starts allocating the next segment in the background, so
// that cutting one costs a header write and a rename, not 64 MiB of zeros
// in the middle of a Save.
func (w *WAL) prepareNext() {
	ch := make(chan prepared, 1)
	w.next = ch
	path := tempSegmentPath(w.dir, w.segs[len(w.segs)-1].seq+1)
	size, noSync := w.o.SegmentSize, w.o.NoFsync
	go func() {
		f, err := allocSegment(path, size, noSync)
		ch <- prepared{f: f, path: path, err: err}
	}()
}

// cut closes the current segment and continues in a new one whose
// firstIndex is given.
func (w *WAL) cut(firstIndex uint64) error {
	// Recovery only forgives a torn tail in the newest segment, so the
	// current one must be complete on disk before a newer one exists.
	if err := w.sync(); err != nil {
		return err
	}
	p := <-w.next
	w.next = nil
	if p.err != nil {
		return fmt.Errorf("wal: prepare next segment: %w", p.err)
	}
	old, oldDirect := w.f, w.direct
	seq := w.segs[len(w.segs)-1].seq + 1
	if err := w.installSegment(p.f, p.path, seq, firstIndex); err != nil {
		p.f.Close()
		os.Remove(p.path)
		return err
	}
	w.prepareNext()
	if oldDirect != nil {
		oldDirect.close()
	}
	return old.Close()
}

// sync makes everything written so far durable.
func (w *WAL) sync() error { return w.syncSince(time.Now()) }

// syncSince is sync, reporting the time since start to OnFsync.
func (w *WAL) syncSince(start time.Time) error {
	if w.o.NoFsync {
		return nil
	}
	err := fdatasync(w.f) // also flushes what w.direct wrote: same file
	d := time.Since(start)
	if w.o.OnFsync != nil {
		w.o.OnFsync(d)
	}
	if d > slowFsync {
		w.lg.Warn("slow fdatasync of the WAL; the disk is too slow for raft and leader elections may follow: check disk latency and competing IO",
			zap.Duration("took", d), zap.String("file", w.lastPath()))
	}
	return err
}

// fail records a write-path error as sticky and returns it.
func (w *WAL) fail(err error) error {
	w.err = fmt.Errorf("wal: write failed, the log on disk is in an unknown state; restart the member to recover: %w", err)
	w.lg.Error("WAL write failed; refusing further writes until restart", zap.Error(err))
	return w.err
}

// Close makes pending writes durable and releases the directory.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == stateClosed {
		return nil
	}
	var err error
	if w.next != nil {
		p := <-w.next
		w.next = nil
		if p.f != nil {
			p.f.Close()
			os.Remove(p.path)
		}
	}
	if w.f != nil {
		if w.state == stateWritable && w.err == nil {
			err = w.sync()
		}
		if w.direct != nil {
			if cerr := w.direct.close(); err == nil {
				err = cerr
			}
			w.direct = nil
		}
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		w.f = nil
	}
	if cerr := w.lock.Close(); err == nil {
		err = cerr
	}
	w.state = stateClosed
	return err
}
