package concurrencypb

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
)

// The messages of etcd's v3election.proto (package v3electionpb).

// CampaignRequest enters the named election with Value as the value to
// proclaim once elected; leadership is tied to Lease.
type CampaignRequest struct {
	Name  []byte `protobuf:"bytes,1,opt,name=name,proto3" json:"name,omitempty"`
	Lease int64  `protobuf:"varint,2,opt,name=lease,proto3" json:"lease,omitempty"`
	Value []byte `protobuf:"bytes,3,opt,name=value,proto3" json:"value,omitempty"`
}

type CampaignResponse struct {
	Header *etcdserverpb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
	Leader *LeaderKey                   `protobuf:"bytes,2,opt,name=leader,proto3" json:"leader,omitempty"`
}

// LeaderKey is a held leadership: the election's name, the key that exists
// while it is held, that key's creation revision and its lease.
type LeaderKey struct {
	Name  []byte `protobuf:"bytes,1,opt,name=name,proto3" json:"name,omitempty"`
	Key   []byte `protobuf:"bytes,2,opt,name=key,proto3" json:"key,omitempty"`
	Rev   int64  `protobuf:"varint,3,opt,name=rev,proto3" json:"rev,omitempty"`
	Lease int64  `protobuf:"varint,4,opt,name=lease,proto3" json:"lease,omitempty"`
}

// LeaderRequest names the election whose leader Leader and Observe report.
type LeaderRequest struct {
	Name []byte `protobuf:"bytes,1,opt,name=name,proto3" json:"name,omitempty"`
}

// LeaderResponse carries the leader's key and its current value.
type LeaderResponse struct {
	Header *etcdserverpb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
	Kv     *mvccpb.KeyValue             `protobuf:"bytes,2,opt,name=kv,proto3" json:"kv,omitempty"`
}

type ResignRequest struct {
	Leader *LeaderKey `protobuf:"bytes,1,opt,name=leader,proto3" json:"leader,omitempty"`
}

type ResignResponse struct {
	Header *etcdserverpb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
}

// ProclaimRequest replaces the leader's value, if Leader still holds the
// leadership.
type ProclaimRequest struct {
	Leader *LeaderKey `protobuf:"bytes,1,opt,name=leader,proto3" json:"leader,omitempty"`
	Value  []byte     `protobuf:"bytes,2,opt,name=value,proto3" json:"value,omitempty"`
}

type ProclaimResponse struct {
	Header *etcdserverpb.ResponseHeader `protobuf:"bytes,1,opt,name=header,proto3" json:"header,omitempty"`
}

func (m *CampaignRequest) Reset()         { *m = CampaignRequest{} }
func (m *CampaignRequest) String() string { return text(m) }
func (*CampaignRequest) ProtoMessage()    {}

func (m *CampaignResponse) Reset()         { *m = CampaignResponse{} }
func (m *CampaignResponse) String() string { return text(m) }
func (*CampaignResponse) ProtoMessage()    {}

func (m *CampaignResponse) GetHeader() *etcdserverpb.ResponseHeader {
	if m == nil {
		return nil
	}
	return m.Header
}

func (m *CampaignResponse) GetLeader() *LeaderKey {
	if m == nil {
		return nil
	}
	return m.Leader
}

func (m *LeaderKey) Reset()         { *m = LeaderKey{} }
func (m *LeaderKey) String() string { return text(m) }
func (*LeaderKey) ProtoMessage()    {}

func (m *LeaderRequest) Reset()         { *m = LeaderRequest{} }
func (m *LeaderRequest) String() string { return text(m) }
func (*LeaderRequest) ProtoMessage()    {}

func (m *LeaderResponse) Reset()         { *m = LeaderResponse{} }
func (m *LeaderResponse) String() string { return text(m) }
func (*LeaderResponse) ProtoMessage()    {}

func (m *LeaderResponse) GetHeader() *etcdserverpb.ResponseHeader {
	if m == nil {
		return nil
	}
	return m.Header
}

func (m *LeaderResponse) GetKv() *mvccpb.KeyValue {
	if m == nil {
		return nil
	}
	return m.Kv
}

func (m *ResignRequest) Reset()         { *m = ResignRequest{} }
func (m *ResignRequest) String() string { return text(m) }
func (*ResignRequest) ProtoMessage()    {}

func (m *ResignResponse) Reset()         { *m = ResignResponse{} }
func (m *ResignResponse) String() string { return text(m) }
func (*ResignResponse) ProtoMessage()    {}

func (m *ResignResponse) GetHeader() *etcdserverpb.ResponseHeader {
	if m == nil {
		return nil
	}
	return m.Header
}

func (m *ProclaimRequest) Reset()         { *m = ProclaimRequest{} }
func (m *ProclaimRequest) String() string { return text(m) }
func (*ProclaimRequest) ProtoMessage()    {}

func (m *ProclaimResponse) Reset()         { *m = ProclaimResponse{} }
func (m *ProclaimResponse) String() string { return text(m) }
func (*ProclaimResponse) ProtoMessage()    {}

func (m *ProclaimResponse) GetHeader() *etcdserverpb.ResponseHeader {
	if m == nil {
		return nil
	}
	return m.Header
}

// The gRPC method paths of the Election service, as etcd serves them.
const (
	ElectionServiceName = "v3electionpb.Election"
	CampaignMethod      = "/v3electionpb.Election/Campaign"
	ProclaimMethod      = "/v3electionpb.Election/Proclaim"
	LeaderMethod        = "/v3electionpb.Election/Leader"
	ObserveMethod       = "/v3electionpb.Election/Observe"
	ResignMethod        = "/v3electionpb.Election/Resign"
)

// ObserveServer is the server's end of an Observe stream.
type ObserveServer = grpc.ServerStreamingServer[LeaderResponse]

// ObserveClient is the client's end of an Observe stream.
type ObserveClient = grpc.ServerStreamingClient[LeaderResponse]

// ElectionServer is the server side of the Election service.
type ElectionServer interface {
	// Campaign blocks until the caller is elected or ctx ends.
	Campaign(context.Context, *CampaignRequest) (*CampaignResponse, error)
	Proclaim(context.Context, *ProclaimRequest) (*ProclaimResponse, error)
	Leader(context.Context, *LeaderRequest) (*LeaderResponse, error)
	// Observe sends the current leader, then every change of leader or of
	// its value, until the stream ends.
	Observe(*LeaderRequest, ObserveServer) error
	Resign(context.Context, *ResignRequest) (*ResignResponse, error)
}

// ElectionServiceDesc describes the Election service to grpc.Server.
var ElectionServiceDesc = grpc.ServiceDesc{
	ServiceName: ElectionServiceName,
	HandlerType: (*ElectionServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Campaign", Handler: unaryHandler(CampaignMethod, ElectionServer.Campaign)},
		{MethodName: "Proclaim", Handler: unaryHandler(ProclaimMethod, ElectionServer.Proclaim)},
		{MethodName: "Leader", Handler: unaryHandler(LeaderMethod, ElectionServer.Leader)},
		{MethodName: "Resign", Handler: unaryHandler(ResignMethod, ElectionServer.Resign)},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Observe",
		Handler:       observeHandler,
		ServerStreams: true,
	}},
	Metadata: "v3election.proto",
}

func observeHandler(srv any, stream grpc.ServerStream) error {
	in := new(LeaderRequest)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(ElectionServer).Observe(in, &grpc.GenericServerStream[LeaderRequest, LeaderResponse]{ServerStream: stream})
}

// RegisterElectionServer registers srv on s as the Election service.
func RegisterElectionServer(s grpc.ServiceRegistrar, srv ElectionServer) {
	s.RegisterService(&ElectionServiceDesc, srv)
}

// ElectionClient calls the Election service over cc.
type ElectionClient struct{ cc grpc.ClientConnInterface }

func NewElectionClient(cc grpc.ClientConnInterface) *ElectionClient { return &ElectionClient{cc} }

func (c *ElectionClient) Campaign(ctx context.Context, in *CampaignRequest, opts ...grpc.CallOption) (*CampaignResponse, error) {
	return invoke[CampaignResponse](ctx, c.cc, CampaignMethod, in, opts)
}

func (c *ElectionClient) Proclaim(ctx context.Context, in *ProclaimRequest, opts ...grpc.CallOption) (*ProclaimResponse, error) {
	return invoke[ProclaimResponse](ctx, c.cc, ProclaimMethod, in, opts)
}

func (c *ElectionClient) Leader(ctx context.Context, in *LeaderRequest, opts ...grpc.CallOption) (*LeaderResponse, error) {
	return invoke[LeaderResponse](ctx, c.cc, LeaderMethod, in, opts)
}

func (c *ElectionClient) Resign(ctx context.Context, in *ResignRequest, opts ...grpc.CallOption) (*ResignResponse, error) {
	return invoke[ResignResponse](ctx, c.cc, ResignMethod, in, opts)
}

// Observe opens an Observe stream; Recv returns the leader responses.
func (c *ElectionClient) Observe(ctx context.Context, in *LeaderRequest, opts ...grpc.CallOption) (ObserveClient, error) {
	stream, err := c.cc.NewStream(ctx, &ElectionServiceDesc.Streams[0], ObserveMethod, opts...)
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(in); err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	return &grpc.GenericClientStream[LeaderRequest, LeaderResponse]{ClientStream: stream}, nil
}
