package watch

import (
	"errors"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Source is the history the hub reads when a watcher is behind: the
// committed key space of the MVCC store.
//
// The hub calls Source methods from its own goroutine and, for prev_kv, from
// inside Notify; Notify's caller must therefore not hold locks that Source
// methods take.
type Source interface {
	// Rev is the revision of the last committed write. The hub reads it once,
	// in NewHub; afterwards Notify is its clock.
	Rev() int64
	// CompactRev is the revision of the last compaction (0 if none). History
	// strictly below it is gone.
	CompactRev() int64
	// Events returns the events with from <= revision < to, in revision
	// order (and in their order inside a revision). limit <= 0 means no
	// limit; a limited read never splits a revision. A DELETE event's Kv
	// carries the key and ModRevision = the deletion revision. A read with
	// from < CompactRev() fails; one with from == CompactRev() may serve the
	// history (etcd) or fail (node/mvcc): any failed read starting at or
	// below CompactRev() cancels the watchers concerned as compacted.
	Events(from, to int64, limit int) ([]*mvccpb.Event, error)
	// KeyAt returns the key's value as of rev (the newest version with
	// ModRevision <= rev), or nil if the key did not exist then.
	KeyAt(key []byte, rev int64) (*mvccpb.KeyValue, error)
}

// Errors returned by Stream methods. The texts are etcd's: the ones that end
// up in a WatchResponse's cancel_reason are what etcd clients show users.
var (
	// ErrCompacted is the cancel reason of a create request with a negative
	// start revision (etcd's rpctypes.ErrCompacted text).
	ErrCompacted = errors.New("etcdserver: mvcc: required revision has been compacted")
	// ErrEmptyRange: the range end is not greater than the key.
	ErrEmptyRange = errors.New("mvcc: watcher range is empty")
	// ErrDuplicateID: the client chose a watch ID already used on the stream.
	ErrDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	// ErrWatcherNotExist: Cancel of an unknown watch ID.
	ErrWatcherNotExist = errors.New("mvcc: watcher does not exist")
	// ErrClosed: the stream or the hub is closed.
	ErrClosed = errors.New("watch: stream closed")
)
