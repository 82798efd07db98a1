// Package watch is the watch hub: it turns committed write events into
// etcd v3 WatchResponses for many watchers on many streams.
//
// It owns etcd's watch semantics but not gRPC: the API layer creates one
// Stream per client Watch RPC, forwards create/cancel/progress requests to
// it and sends whatever appears on Stream.Responses(), filling the response
// header's cluster, member and term fields.
//
// The guarantees are etcd's:
//
//   - ordered: a watcher sees events in revision order;
//   - unique: no event is delivered twice to a watcher;
//   - atomic: the events of one revision travel in one response (unless the
//     watcher asked for fragmentation, and then in consecutive fragments);
//   - reliable: no event in a watcher's range is skipped, even when its
//     stream is slow;
//   - resumable: a watch may start at any revision that is not compacted;
//   - bookmarkable: a progress notification at revision R (no events) means
//     every event up to and including R has already been sent.
//
// Watchers are either synced or unsynced. A synced watcher has been sent
// everything up to the hub's revision; Notify hands it new events inline.
// An unsynced watcher (a watch that starts in the past, or a victim whose
// stream buffer was full) is brought forward by the hub goroutine, which
// reads history from the Source in batches until the watcher reaches the
// hub's revision and becomes synced again. Notify never blocks on a
// consumer: a full stream turns the affected watchers unsynced instead.
package watch
