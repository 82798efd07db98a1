package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/fileutil"
)

// defragLimit is how many keys are copied per write tx into the new file, to
// bound the memory of one bbolt transaction (etcd uses the same figure).
const defragLimit = 10000

// Defrag rewrites the database into a fresh file and swaps it in, like etcd:
// free pages are dropped and the file shrinks. Readers and writers are
// blocked while it runs, and it waits for open Snapshots to be closed.
// Buffered writes are not needed for the copy: they stay buffered and overlay
// the new file exactly as they overlaid the old one.
func (b *Backend) Defrag() error {
	if b.closed.Load() {
		return ErrClosed
	}
	b.cmu.Lock()
	defer b.cmu.Unlock()
	// Commit first so the new file is as current as possible.
	d, committed, err := b.commitLocked()
	if err != nil {
		return err
	}
	if committed && b.opts.OnCommit != nil {
		b.opts.OnCommit(d)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	start := time.Now()
	size1, inUse1 := b.Size(), b.SizeInUse()
	b.lg.Info("defragmenting", zap.String("path", b.opts.Path),
		zap.Int64("current-db-size-bytes", size1), zap.Int64("current-db-size-in-use-bytes", inUse1))

	b.closeRtxLocked()
	err = b.swapInCopyLocked()
	if rerr := b.openRtxLocked(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		b.lg.Error("defragmentation failed", zap.String("path", b.opts.Path), zap.Error(err))
		return err
	}
	size2, inUse2 := b.Size(), b.SizeInUse()
	b.lg.Info("defragmented", zap.String("path", b.opts.Path),
		zap.Int64("current-db-size-bytes-diff", size2-size1),
		zap.Int64("current-db-size-bytes", size2),
		zap.Int64("current-db-size-in-use-bytes-diff", inUse2-inUse1),
		zap.Int64("current-db-size-in-use-bytes", inUse2),
		zap.Duration("took", time.Since(start)))
	return nil
}

// swapInCopyLocked copies the database into a temporary file next to it,
// makes that durable, and renames it over the original. A crash at any point
// leaves either the old or the new complete file at Path. Caller holds cmu
// and mu exclusively, with the shared read tx closed.
func (b *Backend) swapInCopyLocked() error {
	path := b.opts.Path
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp.*")
	if err != nil {
		return fmt.Errorf("backend: defrag: create temporary file: %w", err)
	}
	tmpPath := f.Name()
	f.Close()

	opts := boltOptions(b.opts)
	// The copy is synced once at the end; no need to sync every batch.
	opts.NoSync, opts.NoGrowSync = true, true
	opts.InitialMmapSize = 0
	tmp, err := bolt.Open(tmpPath, 0o600, opts)
	if err != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("backend: defrag: open %s: %w", tmpPath, err)
	}
	err = copyDB(b.db, tmp, defragLimit)
	if err == nil && !b.opts.NoFsync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("backend: defrag: copy into %s: %w", tmpPath, err)
	}

	if err := b.db.Close(); err != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("backend: defrag: close %s: %w", path, err)
	}
	// From here on b.db must be reopened whatever happens.
	renameErr := os.Rename(tmpPath, path)
	if renameErr != nil {
		os.Remove(tmpPath)
	} else if !b.opts.NoFsync {
		renameErr = fileutil.SyncDir(filepath.Dir(path))
	}
	db, err := openBolt(b.opts)
	if err != nil {
		return fmt.Errorf("backend: defrag: reopen %s failed, the backend is unusable; restart the server: %w", path, err)
	}
	b.db = db
	if renameErr != nil {
		return fmt.Errorf("backend: defrag: swap in %s: %w", tmpPath, renameErr)
	}
	return nil
}

// copyDB copies every bucket of src into dst, committing every limit keys.
func copyDB(src, dst *bolt.DB, limit int) error {
	stx, err := src.Begin(false)
	if err != nil {
		return err
	}
	defer stx.Rollback()
	dtx, err := dst.Begin(true)
	if err != nil {
		return err
	}
	defer func() {
		if dtx != nil {
			dtx.Rollback()
		}
	}()

	count := 0
	c := stx.Cursor()
	for name, _ := c.First(); name != nil; name, _ = c.Next() {
		sb := stx.Bucket(name)
		if sb == nil {
			return fmt.Errorf("cannot copy %q: not a bucket", name)
		}
		db, err := dtx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		// Keys arrive in order: fill pages almost completely.
		db.FillPercent = keyFillPercent
		err = sb.ForEach(func(k, v []byte) error {
			if count++; count > limit {
				if err := dtx.Commit(); err != nil {
					dtx = nil
					return err
				}
				if dtx, err = dst.Begin(true); err != nil {
					dtx = nil
					return err
				}
				db = dtx.Bucket(name)
				db.FillPercent = keyFillPercent
				count = 1
			}
			return db.Put(k, v)
		})
		if err != nil {
			return err
		}
	}
	err = dtx.Commit()
	dtx = nil
	return err
}
