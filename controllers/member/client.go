// Package member is the operator's view of an etcd cluster's membership:
// the member list, learner add/promote, remove, leadership transfer and
// per-member status, over go.etcd.io/etcd/client/v3. The reconciler only
// sees the Client interface, so tests can point it at loopback members or
// wrap it to stop the operator between two steps.
package member

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Member is one entry of the member list.
type Member struct {
	ID         uint64
	Name       string // empty until an added member has started
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// Started reports whether the member has joined and published its name.
func (m Member) Started() bool { return m.Name != "" }

// Status is one member's answer to a status request.
type Status struct {
	MemberID    uint64
	Leader      uint64 // 0 when the member knows no leader
	Version     string
	DBSize      int64
	DBSizeInUse int64
	IsLearner   bool
	Errors      []string
}

// Alarm is a raised alarm.
type Alarm struct {
	MemberID uint64
	Type     string // "NOSPACE", "CORRUPT"
}

// Client is what the reconciler needs from a cluster. Every call is bounded
// by its context.
type Client interface {
	// MemberList is linearizable: it fails without quorum, which is how
	// the operator tells a quorate cluster from one that is not.
	MemberList(ctx context.Context) (clusterID uint64, members []Member, err error)
	// AddLearner adds a non-voting member with peerURL.
	AddLearner(ctx context.Context, peerURL string) (Member, error)
	// Promote makes a learner vote. It fails with an error for which
	// IsLearnerNotReady is true while the learner is behind.
	Promote(ctx context.Context, id uint64) error
	// Remove removes a member.
	Remove(ctx context.Context, id uint64) error
	// MoveLeader asks the leader, reached at leaderEndpoint, to hand
	// leadership to transferee.
	MoveLeader(ctx context.Context, leaderEndpoint string, transferee uint64) error
	// Status asks one member, at endpoint, about itself.
	Status(ctx context.Context, endpoint string) (Status, error)
	// Alarms lists the raised alarms.
	Alarms(ctx context.Context) ([]Alarm, error)
	Close() error
}

// Factory opens a Client on a cluster's client endpoints.
type Factory func(ctx context.Context, endpoints []string) (Client, error)

// DialTimeout bounds the connection set-up of a new client.
const DialTimeout = 3 * time.Second

// New is the Factory of real clients.
func New(_ context.Context, endpoints []string) (Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("member: no endpoints")
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: DialTimeout,
		// Requests carry their own deadlines; a quiet logger keeps the
		// client's retry chatter out of the operator's log.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("member: client for %v: %w", endpoints, err)
	}
	return &etcdClient{c: c}, nil
}

type etcdClient struct {
	c *clientv3.Client
}

func (e *etcdClient) MemberList(ctx context.Context) (uint64, []Member, error) {
	resp, err := e.c.MemberList(ctx)
	if err != nil {
		return 0, nil, err
	}
	out := make([]Member, 0, len(resp.Members))
	for _, m := range resp.Members {
		out = append(out, Member{
			ID:         m.ID,
			Name:       m.Name,
			PeerURLs:   m.PeerURLs,
			ClientURLs: m.ClientURLs,
			IsLearner:  m.IsLearner,
		})
	}
	return resp.Header.GetClusterId(), out, nil
}

func (e *etcdClient) AddLearner(ctx context.Context, peerURL string) (Member, error) {
	resp, err := e.c.MemberAddAsLearner(ctx, []string{peerURL})
	if err != nil {
		return Member{}, err
	}
	m := resp.Member
	return Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}, nil
}

func (e *etcdClient) Promote(ctx context.Context, id uint64) error {
	_, err := e.c.MemberPromote(ctx, id)
	return err
}

func (e *etcdClient) Remove(ctx context.Context, id uint64) error {
	_, err := e.c.MemberRemove(ctx, id)
	return err
}

func (e *etcdClient) MoveLeader(ctx context.Context, leaderEndpoint string, transferee uint64) error {
	// Only the leader accepts MoveLeader, so the request goes to its
	// endpoint alone rather than through the balancer.
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{leaderEndpoint},
		DialTimeout: DialTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return fmt.Errorf("member: client for leader %s: %w", leaderEndpoint, err)
	}
	defer c.Close()
	_, err = c.MoveLeader(ctx, transferee)
	return err
}

func (e *etcdClient) Status(ctx context.Context, endpoint string) (Status, error) {
	resp, err := e.c.Status(ctx, endpoint)
	if err != nil {
		return Status{}, err
	}
	return Status{
		MemberID:    resp.Header.GetMemberId(),
		Leader:      resp.Leader,
		Version:     resp.Version,
		DBSize:      resp.DbSize,
		DBSizeInUse: resp.DbSizeInUse,
		IsLearner:   resp.IsLearner,
		Errors:      resp.Errors,
	}, nil
}

func (e *etcdClient) Alarms(ctx context.Context) ([]Alarm, error) {
	resp, err := e.c.AlarmList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Alarm, 0, len(resp.Alarms))
	for _, a := range resp.Alarms {
		out = append(out, Alarm{MemberID: a.MemberID, Type: a.Alarm.String()})
	}
	return out, nil
}

func (e *etcdClient) Close() error { return e.c.Close() }

// IsLearnerNotReady reports etcd's refusal to promote a learner that has
// not caught up with the leader: wait and try again.
func IsLearnerNotReady(err error) bool {
	return hasDesc(err, rpctypes.ErrGRPCLearnerNotReady)
}

// IsUnhealthy reports etcd's strict-reconfiguration refusal: the change
// would leave too few started, connected voters for quorum.
func IsUnhealthy(err error) bool {
	return hasDesc(err, rpctypes.ErrGRPCUnhealthy)
}

// IsMemberNotFound reports a change to a member that is no longer listed
// (an earlier attempt already removed it).
func IsMemberNotFound(err error) bool {
	return hasDesc(err, rpctypes.ErrGRPCMemberNotFound)
}

// IsPeerURLExist reports an add of a peer URL that a member already has.
func IsPeerURLExist(err error) bool {
	return hasDesc(err, rpctypes.ErrGRPCPeerURLExist)
}

// hasDesc matches by etcd's error text, as clientv3 does: the error may
// arrive as a gRPC status or as the client's typed EtcdError.
func hasDesc(err, want error) bool {
	if err == nil {
		return false
	}
	return strings.Contains(err.Error(), rpctypes.ErrorDesc(want))
}

// FormatID prints a member or cluster ID the way etcdctl does.
func FormatID(id uint64) string { return fmt.Sprintf("%x", id) }
