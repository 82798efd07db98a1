// Package apply executes etcd's KV requests (Range, Put, DeleteRange, Txn)
// against views of the MVCC store.
//
// It is pure logic: it holds no state, starts no goroutines and does no I/O
// of its own. The raft apply loop opens one write view per committed request
// and passes it here; the read path passes a read view to Range and
// ReadOnlyTxn. Opening, ending and committing views is the caller's job.
//
// Responses carry a Header whose only field set is Revision; the caller fills
// in cluster ID, member ID and raft term. Errors are etcd's gRPC errors from
// go.etcd.io/etcd/api/v3/v3rpc/rpctypes, so the API layer can return them
// unchanged.
//
// A request that fails returns an error and leaves the write view untouched:
// everything that could fail is checked before the first write.
package apply
