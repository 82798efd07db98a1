package concurrencypb

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// The messages of etcd's v3lock.proto (package v3lockpb).

// LockRequest asks for the named lock. Lease is the lease the lock key is
// attached to (the lock goes when the lease does); locking twice with the
// same lease is one acquisition.
type LockRequest struct {
	Name  []byte `protobuf:"bytes,1,opt,name=name,proto3" json:"name,omitempty"`
	Lease int64  `protobuf:"varint,2,opt,name=lease,proto3" json:"lease,omitempty"`
}

// LockResponse carries the key that exists while the caller holds the
// lock.
type LockResponse struct {
	Header *etcdserverpb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
	Key    []byte                       `protobuf:"bytes,2,opt,name=key,proto3" json:"key,omitempty"`
}

// UnlockRequest releases the lock held through Key (from LockResponse).
type UnlockRequest struct {
	Key []byte `protobuf:"bytes,1,opt,name=key,proto3" json:"key,omitempty"`
}

type UnlockResponse struct {
	Header *etcdserverpb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
}

func (m *LockRequest) Reset()         { *m = LockRequest{} }
func (m *LockRequest) String() string { return text(m) }
func (*LockRequest) ProtoMessage()    {}

func (m *LockResponse) Reset()         { *m = LockResponse{} }
func (m *LockResponse) String() string { return text(m) }
func (*LockResponse) ProtoMessage()    {}

func (m *LockResponse) GetHeader() *etcdserverpb.ResponseHeader {
	if m == nil {
		return nil
	}
	return m.Header
}

func (m *UnlockRequest) Reset()         { *m = UnlockRequest{} }
func (m *UnlockRequest) String() string { return text(m) }
func (*UnlockRequest) ProtoMessage()    {}

func (m *UnlockResponse) Reset()         { *m = UnlockResponse{} }
func (m *UnlockResponse) String() string { return text(m) }
func (*UnlockResponse) ProtoMessage()    {}

func (m *UnlockResponse) GetHeader() *etcdserverpb.ResponseHeader {
	if m == nil {
		return nil
	}
	return m.Header
}

// The gRPC method paths of the Lock service, as etcd serves them.
const (
	LockServiceName = "v3lockpb.Lock"
	LockMethod      = "/v3lockpb.Lock/Lock"
	UnlockMethod    = "/v3lockpb.Lock/Unlock"
)

// LockServer is the server side of the Lock service.
type LockServer interface {
	// Lock blocks until the caller holds the named lock or ctx ends.
	Lock(context.Context, *LockRequest) (*LockResponse, error)
	Unlock(context.Context, *UnlockRequest) (*UnlockResponse, error)
}

// LockServiceDesc describes the Lock service to grpc.Server.
var LockServiceDesc = grpc.ServiceDesc{
	ServiceName: LockServiceName,
	HandlerType: (*LockServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Lock", Handler: unaryHandler(LockMethod, LockServer.Lock)},
		{MethodName: "Unlock", Handler: unaryHandler(UnlockMethod, LockServer.Unlock)},
	},
	Metadata: "v3lock.proto",
}

// RegisterLockServer registers srv on s as the Lock service.
func RegisterLockServer(s grpc.ServiceRegistrar, srv LockServer) {
	s.RegisterService(&LockServiceDesc, srv)
}

// LockClient calls the Lock service over cc.
type LockClient struct{ cc grpc.ClientConnInterface }

func NewLockClient(cc grpc.ClientConnInterface) *LockClient { return &LockClient{cc} }

func (c *LockClient) Lock(ctx context.Context, in *LockRequest, opts ...grpc.CallOption) (*LockResponse, error) {
	return invoke[LockResponse](ctx, c.cc, LockMethod, in, opts)
}

func (c *LockClient) Unlock(ctx context.Context, in *UnlockRequest, opts ...grpc.CallOption) (*UnlockResponse, error) {
	return invoke[UnlockResponse](ctx, c.cc, UnlockMethod, in, opts)
}
