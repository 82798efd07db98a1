package wal

import (
	"errors"
	"fmt"
)

// ErrCorrupt reports damage that recovery must not paper over: a bad record
// followed by valid ones, damage in a segment that is not the newest, or a
// log whose structure is inconsistent. Match it with errors.As and a
// *ErrCorrupt target.
type ErrCorrupt struct {
	File   string // path of the segment file
	Offset int64  // byte offset of the first bad record in File
	Reason string
}

func (e *ErrCorrupt) Error() string {
	return fmt.Sprintf("wal: corrupt data in %s at byte offset %d: %s; "+
		"this member's log cannot be trusted and it must not start from this data dir: "+
		"restore the member from a snapshot, or remove it from the cluster and add it back with an empty data dir",
		e.File, e.Offset, e.Reason)
}

var (
	// ErrLocked is returned by Open and Create when another WAL instance,
	// in this or another process, holds the directory.
	ErrLocked = errors.New("wal: directory is locked by another process (is another member running with this data dir?)")
	// ErrSnapshotNotFound is returned by ReadAll when the WAL holds no
	// marker for the snapshot given to Open: the snapshot file and the WAL
	// do not belong together.
	ErrSnapshotNotFound = errors.New("wal: snapshot given to Open is not recorded in the WAL")
	// ErrSnapshotMismatch is returned by ReadAll when the WAL records the
	// snapshot index given to Open with a different term.
	ErrSnapshotMismatch = errors.New("wal: snapshot term given to Open does not match the WAL")
)
