package backend

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/fileutil"
)

// FileInfo describes a bbolt file that is not open as a Backend, such as a
// database received from the raft leader along with a snapshot.
type FileInfo struct {
	// Size is the database size in bytes (the file may be larger).
	Size int64
	// ConsistentIndex and Term are the raft index the file holds every entry
	// up to, and that entry's term (0 when not recorded).
	ConsistentIndex, Term uint64
	// ConfState is the raft configuration recorded with the last applied
	// conf change; nil when the file does not record one (before etcd 3.5).
	ConfState *raftpb.ConfState
}

// InspectFile opens the bbolt file at path read-only and checks that it is a
// whole database in etcd's layout: its meta pages are valid, the file is at
// least as long as the database they describe (a truncated copy is not), and
// it has the key and meta buckets. It reports what the meta bucket records.
// The file must not be open elsewhere in this process.
func InspectFile(path string) (FileInfo, error) {
	var info FileInfo
	st, err := os.Stat(path)
	if err != nil {
		return info, fmt.Errorf("backend: %w", err)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: flockTimeout})
	if err != nil {
		return info, fmt.Errorf("backend: %s is not a bbolt database: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		info.Size = tx.Size()
		if st.Size() < info.Size {
			return fmt.Errorf("the file has %d bytes but its database needs %d: it is truncated", st.Size(), info.Size)
		}
		if tx.Bucket(Key) == nil || tx.Bucket(Meta) == nil {
			return errors.New("it has no key or meta bucket: not an etcd or ballast database")
		}
		meta := tx.Bucket(Meta)
		if v := meta.Get(metaConsistentIndex); len(v) >= 8 {
			info.ConsistentIndex = binary.BigEndian.Uint64(v)
		}
		if v := meta.Get(metaTerm); len(v) >= 8 {
			info.Term = binary.BigEndian.Uint64(v)
		}
		if v := meta.Get(metaConfState); v != nil {
			cs := &raftpb.ConfState{}
			if err := json.Unmarshal(v, cs); err != nil {
				return fmt.Errorf("meta/confState is not a JSON ConfState (%q): %w", v, err)
			}
			info.ConfState = cs
		}
		return nil
	})
	if err != nil {
		return info, fmt.Errorf("backend: %s: %w", path, err)
	}
	return info, nil
}

// Replace swaps the database for the bbolt file at path, which is renamed
// over the backend's own file: the way a follower installs the database its
// leader sent with a raft snapshot. path must be on the same file system
// (the same directory is best) and should have been checked with
// InspectFile; once Replace succeeded it is gone.
//
// Buffered writes that are not committed yet are dropped, not committed:
// they belong to the state being replaced. Readers and writers are blocked
// while Replace runs, and it waits for open Snapshots to be closed, like
// Defrag. The caller must not hold BatchTx. Readers see the old content or
// the new, never a mix, but a Range that spans the swap continues in the new
// content: callers that keep derived state (an index, leases) must keep
// their own readers out until they have rebuilt it.
//
// The rename is made durable before the new file is opened. A crash at any
// point leaves either the old or the new complete file at the backend's path.
// On error the backend holds the old content (without the dropped writes)
// if the rename did not happen; if the file at the backend's path could not
// be reopened the backend is unusable and the server must stop.
func (b *Backend) Replace(path string) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("backend: replace: %w", err)
	}
	start := time.Now()
	b.cmu.Lock()
	defer b.cmu.Unlock()
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()

	dropped := b.buf.n
	b.buf.reset()
	b.pending.Store(0)
	b.closeRtxLocked()
	err := b.swapInFileLocked(path)
	if rerr := b.openRtxLocked(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		b.lg.Error("replacing the database failed", zap.String("path", b.opts.Path), zap.String("from", path), zap.Error(err))
		return err
	}
	b.lg.Info("replaced the database",
		zap.String("path", b.opts.Path),
		zap.String("from", path),
		zap.Int("dropped-buffered-writes", dropped),
		zap.Int64("current-db-size-bytes", b.Size()),
		zap.Duration("took", time.Since(start)))
	return nil
}

// swapInFileLocked closes bbolt, renames path over the backend's file,
// syncs the directory and reopens. Caller holds cmu, wmu and mu with the
// shared read tx closed.
func (b *Backend) swapInFileLocked(path string) error {
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("backend: replace: close %s: %w", b.opts.Path, err)
	}
	// From here on b.db must be reopened whatever happens.
	renameErr := os.Rename(path, b.opts.Path)
	if renameErr == nil && !b.opts.NoFsync {
		renameErr = fileutil.SyncDir(filepath.Dir(b.opts.Path))
	}
	db, err := openBolt(b.opts)
	if err != nil {
		return fmt.Errorf("backend: replace: reopen %s failed, the backend is unusable; restart the server: %w", b.opts.Path, err)
	}
	b.db = db
	if renameErr != nil {
		return fmt.Errorf("backend: replace: move %s into place: %w", path, renameErr)
	}
	// A database written by another program may lack some of our buckets.
	return db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("backend: replace: create bucket %q: %w", name, err)
			}
		}
		return nil
	})
}
