package wal

import (
	"os"

	"go.uber.org/zap"
)

// ReleaseTo deletes the segments whose live entries all have an index at or
// below index. Call it with the index of the newest durable snapshot (or
// lower): afterwards the WAL can only be opened at a snapshot at or above
// index. The segment being written is never deleted.
func (w *WAL) ReleaseTo(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateWritable {
		return w.writable()
	}
	// Segment k holds no live entry above index if some later segment m
	// has firstIndex <= index+1, because every live entry before segment m
	// is below m's firstIndex. So everything before the last such m goes.
	keep := 0
	for m := len(w.segs) - 1; m > 0; m-- {
		if w.segs[m].firstIndex <= index || w.segs[m].firstIndex-1 == index {
			keep = m
			break
		}
	}
	// Oldest first, so a crash part way leaves a contiguous suffix, which
	// Open accepts. Deletions need no directory fsync: a segment that
	// reappears after a crash is still consistent, merely redundant.
	for keep > 0 {
		seg := w.segs[0]
		if err := os.Remove(seg.path); err != nil && !os.IsNotExist(err) {
			return err
		}
		w.lg.Info("released WAL segment", zap.String("file", seg.path), zap.Uint64("released-to-index", index))
		w.segs = w.segs[1:]
		keep--
	}
	return nil
}
