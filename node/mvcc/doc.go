// Package mvcc is Ballast's multi-version key-value store: etcd's MVCC
// semantics (revisions, versions, generations, compaction, hashes) stored in
// etcd's on-disk layout in the "key" bucket of node/backend.
//
// On disk every change is one entry of the key bucket. Its key is the
// revision (8-byte big-endian main, '_', 8-byte big-endian sub, plus a
// trailing 't' for a tombstone) and its value a marshalled mvccpb.KeyValue
// (for a tombstone only the key). In memory a B-tree maps each key to its
// revisions, packed into machine words (see key_index.go); values are always
// read from the backend by revision.
//
// Concurrency: one writer (the holder of the backend's BatchTx, through a
// WriteTxn) and any number of readers. Writers append revisions newer than
// the published revision, so readers, which filter by the revision captured
// when they started, never see half a transaction. Compaction removes
// revisions from the index in short chunks and from the backend in separate
// batches, so neither readers nor the writer wait for a whole compaction.
package mvcc
