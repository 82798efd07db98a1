// Package api serves etcd's v3 client API (gRPC services KV, Watch, Lease,
// Maintenance, Cluster, Auth and grpc.health.v1) and the HTTP endpoints
// /health, /livez, /readyz, /version and /metrics, all on the same client
// port, on top of a Server that holds the actual state.
//
// This package owns what etcd's v3rpc layer owns: request validation, the
// request size limit, response header filling, stream plumbing and the
// listeners. It never touches raft or storage itself.
package api

import (
	"context"
	"io"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Server is the member as the client API sees it. Every error it returns is
// already an etcd gRPC error (rpctypes.ErrGRPC*) or a context error.
type Server interface {
	Header() *etcdserverpb.ResponseHeader // cluster_id, member_id, raft_term, revision = current
	Range(ctx context.Context, r *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error)
	Put(ctx context.Context, r *etcdserverpb.PutRequest) (*etcdserverpb.PutResponse, error)
	DeleteRange(ctx context.Context, r *etcdserverpb.DeleteRangeRequest) (*etcdserverpb.DeleteRangeResponse, error)
	Txn(ctx context.Context, r *etcdserverpb.TxnRequest) (*etcdserverpb.TxnResponse, error)
	Compact(ctx context.Context, r *etcdserverpb.CompactionRequest) (*etcdserverpb.CompactionResponse, error)
	LeaseGrant(ctx context.Context, r *etcdserverpb.LeaseGrantRequest) (*etcdserverpb.LeaseGrantResponse, error)
	LeaseRevoke(ctx context.Context, r *etcdserverpb.LeaseRevokeRequest) (*etcdserverpb.LeaseRevokeResponse, error)
	LeaseRenew(ctx context.Context, id int64) (ttl int64, err error) // ErrGRPCLeaseNotFound when missing/expired
	LeaseTimeToLive(ctx context.Context, r *etcdserverpb.LeaseTimeToLiveRequest) (*etcdserverpb.LeaseTimeToLiveResponse, error)
	LeaseLeases(ctx context.Context, r *etcdserverpb.LeaseLeasesRequest) (*etcdserverpb.LeaseLeasesResponse, error)
	NewWatchStream() WatchStream
	Alarm(ctx context.Context, r *etcdserverpb.AlarmRequest) (*etcdserverpb.AlarmResponse, error)
	Status(ctx context.Context) (*etcdserverpb.StatusResponse, error)
	Defragment(ctx context.Context) error
	Hash(ctx context.Context) (*etcdserverpb.HashResponse, error)
	HashKV(ctx context.Context, rev int64) (*etcdserverpb.HashKVResponse, error)
	Snapshot(ctx context.Context) (Snapshot, error) // consistent db snapshot to stream
	MoveLeader(ctx context.Context, r *etcdserverpb.MoveLeaderRequest) (*etcdserverpb.MoveLeaderResponse, error)
	Downgrade(ctx context.Context, r *etcdserverpb.DowngradeRequest) (*etcdserverpb.DowngradeResponse, error)
	MemberList(ctx context.Context, r *etcdserverpb.MemberListRequest) (*etcdserverpb.MemberListResponse, error)
	MemberAdd(ctx context.Context, r *etcdserverpb.MemberAddRequest) (*etcdserverpb.MemberAddResponse, error)
	MemberRemove(ctx context.Context, r *etcdserverpb.MemberRemoveRequest) (*etcdserverpb.MemberRemoveResponse, error)
	MemberUpdate(ctx context.Context, r *etcdserverpb.MemberUpdateRequest) (*etcdserverpb.MemberUpdateResponse, error)
	MemberPromote(ctx context.Context, r *etcdserverpb.MemberPromoteRequest) (*etcdserverpb.MemberPromoteResponse, error)
	Version() (server, cluster string) // for /version

	// Added by node/api (see the package report):

	// Leader is the local view of the current leader's member ID, 0 when
	// there is none. It must not block: it backs the "require leader"
	// metadata check on every request and /health.
	Leader() uint64
	// Alarms lists the active alarms from local state without a round trip
	// through raft, for /health and /readyz.
	Alarms() []*etcdserverpb.AlarmMember

	Authenticator
	// WatchPermitted tells whether the caller of the Watch stream ctx
	// belongs to may watch [key, rangeEnd); checked when a watcher is
	// created.
	WatchPermitted(ctx context.Context, key, rangeEnd []byte) error
}

// Authenticator is the Auth service: users, roles, permissions, tokens.
// Its errors, like Server's, are etcd's gRPC errors.
type Authenticator interface {
	AuthEnable(ctx context.Context, r *etcdserverpb.AuthEnableRequest) (*etcdserverpb.AuthEnableResponse, error)
	AuthDisable(ctx context.Context, r *etcdserverpb.AuthDisableRequest) (*etcdserverpb.AuthDisableResponse, error)
	AuthStatus(ctx context.Context, r *etcdserverpb.AuthStatusRequest) (*etcdserverpb.AuthStatusResponse, error)
	Authenticate(ctx context.Context, r *etcdserverpb.AuthenticateRequest) (*etcdserverpb.AuthenticateResponse, error)
	UserAdd(ctx context.Context, r *etcdserverpb.AuthUserAddRequest) (*etcdserverpb.AuthUserAddResponse, error)
	UserGet(ctx context.Context, r *etcdserverpb.AuthUserGetRequest) (*etcdserverpb.AuthUserGetResponse, error)
	UserList(ctx context.Context, r *etcdserverpb.AuthUserListRequest) (*etcdserverpb.AuthUserListResponse, error)
	UserDelete(ctx context.Context, r *etcdserverpb.AuthUserDeleteRequest) (*etcdserverpb.AuthUserDeleteResponse, error)
	UserChangePassword(ctx context.Context, r *etcdserverpb.AuthUserChangePasswordRequest) (*etcdserverpb.AuthUserChangePasswordResponse, error)
	UserGrantRole(ctx context.Context, r *etcdserverpb.AuthUserGrantRoleRequest) (*etcdserverpb.AuthUserGrantRoleResponse, error)
	UserRevokeRole(ctx context.Context, r *etcdserverpb.AuthUserRevokeRoleRequest) (*etcdserverpb.AuthUserRevokeRoleResponse, error)
	RoleAdd(ctx context.Context, r *etcdserverpb.AuthRoleAddRequest) (*etcdserverpb.AuthRoleAddResponse, error)
	RoleGet(ctx context.Context, r *etcdserverpb.AuthRoleGetRequest) (*etcdserverpb.AuthRoleGetResponse, error)
	RoleList(ctx context.Context, r *etcdserverpb.AuthRoleListRequest) (*etcdserverpb.AuthRoleListResponse, error)
	RoleDelete(ctx context.Context, r *etcdserverpb.AuthRoleDeleteRequest) (*etcdserverpb.AuthRoleDeleteResponse, error)
	RoleGrantPermission(ctx context.Context, r *etcdserverpb.AuthRoleGrantPermissionRequest) (*etcdserverpb.AuthRoleGrantPermissionResponse, error)
	RoleRevokePermission(ctx context.Context, r *etcdserverpb.AuthRoleRevokePermissionRequest) (*etcdserverpb.AuthRoleRevokePermissionResponse, error)
}

// WatchStream is one client watch stream (node/watch.Stream satisfies it).
//
// Responses carries, in order, each watcher's "created" acknowledgement (or
// the refusal of a create, WatchId -1), its events, progress notifications,
// and its cancellation (on request, or by compaction with CompactRevision
// set). Watch and Cancel queue their acknowledgements themselves, under the
// same lock that orders events, so no event can overtake them. The watch
// implementation owns filters, prev_kv and progress_notify.
type WatchStream interface {
	Watch(req *etcdserverpb.WatchCreateRequest) (id int64, err error)
	Cancel(id int64) error
	RequestProgress()
	Responses() <-chan *etcdserverpb.WatchResponse // Header carries Revision only; the API fills the rest from Server.Header()
	Close()
}

// Snapshot is a consistent copy of the backend database being streamed out.
type Snapshot interface {
	Size() int64
	WriteTo(w io.Writer) (int64, error)
	Close() error
}

// Limits are the request limits and gRPC keepalive settings of the client
// API. Zero values take etcd's defaults.
type Limits struct {
	MaxRequestBytes   int
	MaxTxnOps         int
	KeepAliveMinTime  time.Duration
	KeepAliveInterval time.Duration
	KeepAliveTimeout  time.Duration
}

// etcd's defaults (embed/config.go) for zero Limits fields.
const (
	defaultMaxRequestBytes   = 1536 * 1024
	defaultMaxTxnOps         = 128
	defaultKeepAliveMinTime  = 5 * time.Second
	defaultKeepAliveInterval = 2 * time.Hour
	defaultKeepAliveTimeout  = 20 * time.Second
)

func (l Limits) withDefaults() Limits {
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = defaultMaxRequestBytes
	}
	if l.MaxTxnOps <= 0 {
		l.MaxTxnOps = defaultMaxTxnOps
	}
	if l.KeepAliveMinTime <= 0 {
		l.KeepAliveMinTime = defaultKeepAliveMinTime
	}
	if l.KeepAliveInterval <= 0 {
		l.KeepAliveInterval = defaultKeepAliveInterval
	}
	if l.KeepAliveTimeout <= 0 {
		l.KeepAliveTimeout = defaultKeepAliveTimeout
	}
	return l
}
