// Package concurrencypb holds the wire types of etcd's concurrency API —
// the gRPC services v3lockpb.Lock and v3electionpb.Election — with their
// gRPC service descriptions, client stubs and HTTP/JSON gateway routes.
//
// The messages have the field numbers, types and names of etcd's
// v3lock.proto and v3election.proto, so etcd's own generated clients and
// these types are interchangeable on the wire and in the gateway's JSON.
//
// They are written by hand, without protoc: plain Go structs whose
// `protobuf` struct tags describe each field, with the Reset, String and
// ProtoMessage methods of "v1" (pre-protoreflect) protobuf messages.
// google.golang.org/protobuf derives their descriptors from the tags
// (protoadapt.MessageV2Of), which is all that gRPC's codec and protojson
// need; their embedded etcdserverpb.ResponseHeader and mvccpb.KeyValue are
// etcd's generated messages. This keeps etcd's server module — where the
// generated v3lockpb and v3electionpb packages live — out of Ballast's
// dependencies, and needs no code generator in the build. The derived
// message names are Go-package based rather than "v3lockpb.LockRequest";
// nothing on the wire carries message names (the gRPC method paths, which
// do carry the service names, are spelled out below).
package concurrencypb
