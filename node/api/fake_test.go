package api

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeServer is a canned Server for this layer's own tests; the real one is
// exercised by the lead's integration tests.
type fakeServer struct {
	fakeAuth
	leader  atomic.Uint64
	alarms  []*pb.AlarmMember
	snap    []byte
	watches chan *fakeWatchStream // every new watch stream
}

func newFakeServer() *fakeServer {
	s := &fakeServer{watches: make(chan *fakeWatchStream, 8)}
	s.leader.Store(2)
	return s
}

func (s *fakeServer) Header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: 1, MemberId: 2, RaftTerm: 3, Revision: 10}
}

func (s *fakeServer) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return &pb.RangeResponse{
		Header: &pb.ResponseHeader{Revision: 5},
		Kvs:    []*mvccpb.KeyValue{{Key: r.Key, Value: []byte("v"), ModRevision: 4, CreateRevision: 4, Version: 1}},
		Count:  1,
	}, nil
}

func (s *fakeServer) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return &pb.PutResponse{}, nil
}

func (s *fakeServer) DeleteRange(context.Context, *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{Revision: 7}, Deleted: 1}, nil
}

func (s *fakeServer) Txn(context.Context, *pb.TxnRequest) (*pb.TxnResponse, error) {
	return &pb.TxnResponse{Succeeded: true}, nil
}

func (s *fakeServer) Compact(context.Context, *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return &pb.CompactionResponse{}, nil
}

func (s *fakeServer) LeaseGrant(_ context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	return &pb.LeaseGrantResponse{ID: 1, TTL: r.TTL}, nil
}

func (s *fakeServer) LeaseRevoke(context.Context, *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	return &pb.LeaseRevokeResponse{}, nil
}

func (s *fakeServer) LeaseRenew(_ context.Context, id int64) (int64, error) {
	if id == 1 {
		return 10, nil
	}
	return 0, rpctypes.ErrGRPCLeaseNotFound
}

func (s *fakeServer) LeaseTimeToLive(_ context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if r.ID == 1 {
		return &pb.LeaseTimeToLiveResponse{ID: 1, TTL: 9, GrantedTTL: 10}, nil
	}
	return nil, rpctypes.ErrGRPCLeaseNotFound
}

func (s *fakeServer) LeaseLeases(context.Context, *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	return &pb.LeaseLeasesResponse{Leases: []*pb.LeaseStatus{{ID: 1}}}, nil
}

func (s *fakeServer) NewWatchStream() WatchStream {
	w := &fakeWatchStream{ch: make(chan *pb.WatchResponse, 16), created: make(chan int64, 16), canceled: make(chan int64, 16), closed: make(chan struct{})}
	s.watches <- w
	return w
}

func (s *fakeServer) Alarm(context.Context, *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	return &pb.AlarmResponse{}, nil
}

func (s *fakeServer) Status(context.Context) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{Version: "3.6.0", Leader: s.leader.Load(), StorageVersion: "3.6.0"}, nil
}

func (s *fakeServer) Defragment(context.Context) error { return nil }

func (s *fakeServer) Hash(context.Context) (*pb.HashResponse, error) {
	return &pb.HashResponse{Hash: 42}, nil
}

func (s *fakeServer) HashKV(_ context.Context, rev int64) (*pb.HashKVResponse, error) {
	return &pb.HashKVResponse{Header: &pb.ResponseHeader{Revision: rev}, Hash: 43}, nil
}

func (s *fakeServer) Snapshot(context.Context) (Snapshot, error) {
	return &fakeSnapshot{data: s.snap}, nil
}

func (s *fakeServer) MoveLeader(context.Context, *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	return &pb.MoveLeaderResponse{}, nil
}
func (s *fakeServer) Downgrade(context.Context, *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return &pb.DowngradeResponse{}, nil
}

func (s *fakeServer) MemberList(context.Context, *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return &pb.MemberListResponse{Members: []*pb.Member{{ID: 2, Name: "m"}}}, nil
}

// MemberAdd refuses voters (as a cluster without enough started members
// does) and accepts learners.
func (s *fakeServer) MemberAdd(_ context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if !r.IsLearner {
		return nil, rpctypes.ErrGRPCMemberNotEnoughStarted
	}
	m := &pb.Member{ID: 3, PeerURLs: r.PeerURLs, IsLearner: true}
	return &pb.MemberAddResponse{Member: m, Members: []*pb.Member{{ID: 2, Name: "m"}, m}}, nil
}

func (s *fakeServer) MemberRemove(context.Context, *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return nil, rpctypes.ErrGRPCMemberNotFound
}

func (s *fakeServer) MemberUpdate(context.Context, *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return nil, rpctypes.ErrGRPCMemberNotFound
}

func (s *fakeServer) MemberPromote(context.Context, *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return nil, rpctypes.ErrGRPCMemberNotLearner
}

func (s *fakeServer) Version() (string, string) { return "3.6.0", "3.6.0" }
func (s *fakeServer) Leader() uint64            { return s.leader.Load() }
func (s *fakeServer) Alarms() []*pb.AlarmMember { return s.alarms }
func (s *fakeSnapshot) Size() int64             { return int64(len(s.data)) }
func (s *fakeSnapshot) Close() error            { return nil }
func (s *fakeSnapshot) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, bytes.NewReader(s.data))
}

type fakeSnapshot struct{ data []byte }

// fakeWatchStream hands out IDs from 0 and reports what the API asked of it.
// Like the real hub it queues the created and canceled acknowledgements
// itself; a watch on key "early" gets an event queued before Watch even
// returns, right behind its acknowledgement.
type fakeWatchStream struct {
	mu       sync.Mutex
	next     int64
	ch       chan *pb.WatchResponse
	created  chan int64
	canceled chan int64
	closed   chan struct{}
}

func (w *fakeWatchStream) Watch(req *pb.WatchCreateRequest) (int64, error) {
	w.mu.Lock()
	id := w.next
	w.next++
	w.mu.Unlock()
	w.ch <- &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 10}, WatchId: id, Created: true}
	if string(req.Key) == "early" {
		w.ch <- &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 11}, WatchId: id, Events: []*mvccpb.Event{{Kv: &mvccpb.KeyValue{Key: req.Key, Value: []byte("e"), ModRevision: 11}}}}
	}
	w.created <- id
	return id, nil
}

func (w *fakeWatchStream) Cancel(id int64) error {
	w.ch <- &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 12}, WatchId: id, Canceled: true}
	w.canceled <- id
	return nil
}

func (w *fakeWatchStream) RequestProgress() {
	w.ch <- &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: 12}, WatchId: invalidWatchID}
}

func (w *fakeWatchStream) Responses() <-chan *pb.WatchResponse { return w.ch }

func (w *fakeWatchStream) Close() { close(w.closed) }

func (s *fakeServer) WatchPermitted(context.Context, []byte, []byte) error { return nil }

// fakeAuth answers as a member with authentication off and no users or
// roles; changes are refused.
type fakeAuth struct{}

var errFakeAuth = status.Error(codes.Unimplemented, "fake: no auth changes")

func (fakeAuth) AuthEnable(context.Context, *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return nil, errFakeAuth
}

func (fakeAuth) AuthDisable(context.Context, *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return &pb.AuthDisableResponse{}, nil
}

func (fakeAuth) AuthStatus(context.Context, *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return &pb.AuthStatusResponse{AuthRevision: 1}, nil
}

func (fakeAuth) Authenticate(context.Context, *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	return nil, rpctypes.ErrGRPCAuthNotEnabled
}

func (fakeAuth) UserAdd(context.Context, *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	return nil, errFakeAuth
}

func (fakeAuth) UserGet(context.Context, *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return nil, rpctypes.ErrGRPCUserNotFound
}

func (fakeAuth) UserList(context.Context, *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return &pb.AuthUserListResponse{}, nil
}

func (fakeAuth) UserDelete(context.Context, *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return nil, rpctypes.ErrGRPCUserNotFound
}

func (fakeAuth) UserChangePassword(context.Context, *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	return nil, rpctypes.ErrGRPCUserNotFound
}

func (fakeAuth) UserGrantRole(context.Context, *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return nil, rpctypes.ErrGRPCUserNotFound
}

func (fakeAuth) UserRevokeRole(context.Context, *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return nil, rpctypes.ErrGRPCUserNotFound
}

func (fakeAuth) RoleAdd(context.Context, *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return nil, errFakeAuth
}

func (fakeAuth) RoleGet(context.Context, *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return nil, rpctypes.ErrGRPCRoleNotFound
}

func (fakeAuth) RoleList(context.Context, *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return &pb.AuthRoleListResponse{}, nil
}

func (fakeAuth) RoleDelete(context.Context, *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return nil, rpctypes.ErrGRPCRoleNotFound
}

func (fakeAuth) RoleGrantPermission(context.Context, *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return nil, rpctypes.ErrGRPCRoleNotFound
}

func (fakeAuth) RoleRevokePermission(context.Context, *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return nil, rpctypes.ErrGRPCRoleNotFound
}
