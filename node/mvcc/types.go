package mvcc

import (
	"errors"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Errors returned by reads and compactions. The API layer maps them to etcd's
// rpctypes errors (ErrGRPCCompacted, ErrGRPCFutureRev).
var (
	// ErrCompacted: the requested revision is older than the compaction revision.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev: the requested revision is newer than the store's revision.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
)

// RangeOptions narrows a Range. Sorting and revision filters are applied by
// the caller (node/apply); the store only knows keys, revisions and limits.
type RangeOptions struct {
	// Limit caps len(RangeResult.KVs); 0 means no limit. Count is unaffected.
	Limit int64
	// Rev is the revision to read at; 0 means the store's current revision.
	Rev int64
	// CountOnly skips loading values: RangeResult.KVs stays empty.
	CountOnly bool
	// KeysOnly returns each key with its create and mod revisions and its
	// version, but neither value nor lease: what etcd (3.7) answers a
	// keys-only range that is not sorted by value.
	KeysOnly bool
}

// RangeResult is what a Range saw.
type RangeResult struct {
	// KVs are ordered by key, ascending, at most Limit of them.
	KVs []*mvccpb.KeyValue
	// Rev is the store revision the read was served at (the header revision),
	// which is the current revision even when an older RangeOptions.Rev was asked.
	Rev int64
	// Count is the number of keys in the range at the read revision, ignoring Limit.
	Count int64
}
