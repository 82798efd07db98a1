// Package auth is etcd's v3 authentication and authorization: users, roles
// and the key ranges roles may read or write, the auth tokens handed out by
// Authenticate, and the permission checks every request passes.
//
// State lives in the backend's auth buckets in etcd's layout (bucket "auth"
// with keys authEnabled and authRevision, buckets "authUsers" and
// "authRoles" holding authpb.User and authpb.Role messages keyed by name),
// so it survives restarts and travels in snapshots, and etcdutl reads it.
// A Store mirrors it in memory for the checks.
//
// Two kinds of callers:
//   - the apply loop, the only writer: every mutation is a raft entry, and
//     the methods that take a *backend.BatchTx apply it, in log order, on
//     every member alike. Their results depend only on replicated state.
//   - request handlers, which only read: Identify turns a request's token or
//     client certificate into an Info, and the Check methods decide whether
//     that Info may do what the request asks.
//
// Every error returned is etcd's gRPC error (rpctypes.ErrGRPC*, same code
// and message), or one of the few errors etcd itself sends as codes.Unknown.
package auth
