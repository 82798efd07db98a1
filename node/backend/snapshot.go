package backend

import (
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a point-in-time, read-only view of the committed database that
// can be streamed as a complete bbolt file. It pins a bbolt read tx: close it
// promptly, because Defrag and Close wait for it, and pages freed by later
// commits cannot be reused while it is open.
type Snapshot struct {
	tx *bolt.Tx
}

// Snapshot commits pending writes and returns a snapshot of the database as
// of that commit (or a later one). The file is streamed by WriteTo, never held
// whole in memory. It must not be called while holding BatchTx.
func (b *Backend) Snapshot() (*Snapshot, error) {
	if err := b.ForceCommit(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	tx, err := b.db.Begin(false)
	b.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("backend: begin snapshot tx on %s: %w", b.opts.Path, err)
	}
	return &Snapshot{tx: tx}, nil
}

// Size is the number of bytes WriteTo writes.
func (s *Snapshot) Size() int64 { return s.tx.Size() }

// WriteTo writes the database as a bbolt file to w.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) { return s.tx.WriteTo(w) }

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.tx.Rollback() }
