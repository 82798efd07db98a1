package apply

import "github.com/ballastdb/ballast/node/mvcc"

// ReadView is a consistent view of the store at one revision.
//
// Range keys follow etcd: end == nil reads the single key, end == []byte{0}
// reads every key >= key, otherwise [key, end). Results are in ascending key
// order; Count ignores Limit; KVs is empty when CountOnly is set.
//
// The returned RangeResult and its KVs slice belong to the caller, which may
// reorder or shorten the slice. The KeyValue messages it points to may be
// shared with the store and are never mutated here.
type ReadView interface {
	// Rev is the store revision the view reads at. For a write view it is the
	// revision before the view's own writes.
	Rev() int64
	// Range reads keys as described above. A write view sees its own
	// earlier writes.
	Range(key, end []byte, o mvcc.RangeOptions) (*mvcc.RangeResult, error)
}

// WriteView is a ReadView that can change the store. All changes made
// through one view share the main revision Rev()+1; the store assigns sub
// revisions.
type WriteView interface {
	ReadView
	// Put writes value under key, attached to lease (0 for none). It does
	// not touch the lessor; Put and Txn keep Leases in step.
	Put(key, value []byte, lease int64)
	// DeleteRange deletes the keys in the range and returns them.
	DeleteRange(key, end []byte) (deleted [][]byte)
}

// Leases is the lessor as seen by the apply logic: which leases exist and
// which key is attached to which lease. Put, DeleteRange and Txn keep it in
// step with the keys' lease fields, so they need a non-nil Leases.
type Leases interface {
	Exists(id int64) bool
	// GetLease returns the lease key is attached to, 0 if none.
	GetLease(key []byte) int64
	// Attach attaches key to lease id. It fails only if id does not exist.
	Attach(id int64, key []byte) error
	Detach(id int64, key []byte)
}

// rangeEnd turns a request's range_end into the view's end argument. An
// empty range_end means a single key; gRPC cannot tell an empty bytes field
// from an absent one, so []byte{} is read as nil as well (etcd sees the same
// after the request went through raft).
func rangeEnd(end []byte) []byte {
	if len(end) == 0 {
		return nil
	}
	return end
}
