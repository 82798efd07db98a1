// Package backend is Ballast's storage backend: a bbolt database in etcd's
// exact on-disk layout (bucket names, meta keys and their encodings), so that
// snapshot files are interchangeable with etcd's and `etcdutl snapshot
// status/restore` accept them.
//
// Writes go through a single BatchTx holder. They are buffered in memory and
// visible to reads at once; a background loop commits the buffer to bbolt in
// batches (every BatchInterval, or as soon as BatchLimit writes are pending).
// Reads (Get, Range) merge the buffer with the committed data and take only a
// read lock, so readers are never serialised behind the writer's fsync.
//
// Every bucket argument must be one of the exported bucket names (Key, Meta,
// ...); any other name is a programming error and panics.
package backend
