package server

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/membership"
)

// learnerReadyPercent: a learner may be promoted once its log has reached
// this share of the leader's (etcd's rule).
const learnerReadyPercent = 0.9

// MemberAdd adds a member (a voter, or a learner) through a raft conf change.
func (s *Server) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	urls, err := checkPeerURLs(r.GetPeerURLs())
	if err != nil {
		return nil, err
	}
	members := s.cluster.Members()
	for _, m := range members {
		for _, u := range m.PeerURLs {
			if slices.Contains(urls, u) {
				return nil, rpctypes.ErrGRPCPeerURLExist
			}
		}
	}
	now := time.Now()
	m := &membership.Member{
		ID:        membership.ComputeMemberID(urls, s.opts.InitialClusterToken, &now),
		PeerURLs:  urls,
		IsLearner: r.GetIsLearner(),
	}
	if s.cluster.Member(m.ID) != nil || s.cluster.IsRemoved(m.ID) {
		return nil, rpctypes.ErrGRPCMemberExist
	}
	if m.IsLearner && learners(members) >= s.opts.maxLearners() {
		return nil, rpctypes.ErrGRPCTooManyLearners
	}
	if err := s.mayAddMember(m); err != nil {
		return nil, err
	}
	typ := raftpb.ConfChangeAddNode
	if m.IsLearner {
		typ = raftpb.ConfChangeAddLearnerNode
	}
	if err := s.configure(ctx, typ, m); err != nil {
		return nil, err
	}
	s.lg.Info("added a member", zap.String("member-id", membership.IDString(m.ID)),
		zap.Strings("peer-urls", m.PeerURLs), zap.Bool("learner", m.IsLearner))
	return &pb.MemberAddResponse{Member: toPBMember(m), Members: s.pbMembers()}, nil
}

// MemberRemove removes a member. With strict checks on, removing a voter
// must leave a quorum of started voters.
func (s *Server) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	m := s.cluster.Member(r.GetID())
	if m == nil {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if err := s.mayRemoveMember(m); err != nil {
		return nil, err
	}
	if err := s.configure(ctx, raftpb.ConfChangeRemoveNode, m); err != nil {
		return nil, err
	}
	s.lg.Info("removed a member", zap.String("member-id", membership.IDString(m.ID)))
	return &pb.MemberRemoveResponse{Members: s.pbMembers()}, nil
}

// MemberUpdate changes a member's peer URLs.
func (s *Server) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	urls, err := checkPeerURLs(r.GetPeerURLs())
	if err != nil {
		return nil, err
	}
	old := s.cluster.Member(r.GetID())
	if old == nil {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	for _, m := range s.cluster.Members() {
		if m.ID == old.ID {
			continue
		}
		for _, u := range m.PeerURLs {
			if slices.Contains(urls, u) {
				return nil, rpctypes.ErrGRPCPeerURLExist
			}
		}
	}
	updated := *old
	updated.PeerURLs = urls
	if err := s.configure(ctx, raftpb.ConfChangeUpdateNode, &updated); err != nil {
		return nil, err
	}
	return &pb.MemberUpdateResponse{Members: s.pbMembers()}, nil
}

// MemberPromote turns an in-sync learner into a voter. Only the leader knows
// how far a learner's log is, so only the leader promotes.
func (s *Server) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	return s.promoteMember(ctx, r)
}

// promoteMember promotes here, or on the leader.
func (s *Server) promoteMember(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	m := s.cluster.Member(r.GetID())
	if m == nil {
		return nil, rpctypes.ErrGRPCMemberNotFound
	}
	if !m.IsLearner {
		return nil, rpctypes.ErrGRPCMemberNotLearner
	}
	if s.rn.Leader() != s.id {
		// Only the leader knows how far the learner's log is.
		var out struct{}
		if err := s.callLeader(ctx, pathPromote, struct {
			ID uint64 `json:"id"`
		}{m.ID}, &out); err != nil {
			return nil, err
		}
		if err := s.linearizableReadNotify(ctx); err != nil {
			return nil, err
		}
		return &pb.MemberPromoteResponse{Members: s.pbMembers()}, nil
	}
	st := s.rn.Status()
	leader, learner := st.Progress[s.id], st.Progress[m.ID]
	if learner.Match < uint64(float64(leader.Match)*learnerReadyPercent) {
		return nil, rpctypes.ErrGRPCLearnerNotReady
	}
	promoted := *m
	promoted.IsLearner = false
	if s.opts.StrictReconfigCheck && !readyToPromote(s.cluster.Members()) {
		return nil, rpctypes.ErrGRPCMemberNotEnoughStarted
	}
	if err := s.configure(ctx, raftpb.ConfChangeAddNode, &promoted); err != nil {
		return nil, err
	}
	return &pb.MemberPromoteResponse{Members: s.pbMembers()}, nil
}

// configure proposes one conf change and waits until it is applied here.
func (s *Server) configure(ctx context.Context, typ raftpb.ConfChangeType, m *membership.Member) error {
	if s.rn.Leader() == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	mctx, err := json.Marshal(m)
	if err != nil {
		return err
	}
	id := s.reqIDs.Next()
	cc := &raftpb.ConfChange{Id: proto.Uint64(id), Type: typ.Enum(), NodeId: proto.Uint64(m.ID), Context: mctx}
	ch := s.waits.register(id)
	cctx, cancel := context.WithTimeout(ctx, s.opts.requestTimeout())
	defer cancel()
	if err := s.rn.ProposeConfChange(cctx, cc); err != nil {
		s.waits.trigger(id, nil)
		return s.waitError(ctx, cctx)
	}
	select {
	case res := <-ch:
		return res.err
	case <-cctx.Done():
		s.waits.trigger(id, nil)
		return s.waitError(ctx, cctx)
	case <-s.stopping:
		return rpctypes.ErrGRPCStopped
	}
}

// healthInterval: a peer counts as connected once the transport has been
// talking to it for this long (etcd's HealthInterval).
const healthInterval = 5 * time.Second

// isStarted is etcd's notion: the member has run and published its name.
// A member added with MemberAdd is "unstarted" until it does.
func isStarted(m *membership.Member) bool { return m.Name != "" }

// readyToAddVoter: once a voter is added, the voters already started must
// make a quorum on their own, or the cluster stalls until the new member
// starts (the trap of adding never-started members). As in etcd, a lone
// started member may always add a second one.
func readyToAddVoter(members []*membership.Member) bool {
	voters := voterList(members)
	nmembers, nstarted := len(voters)+1, 0
	for _, m := range voters {
		if isStarted(m) {
			nstarted++
		}
	}
	if nstarted == 1 && nmembers == 2 {
		return true
	}
	return nstarted >= quorum(nmembers)
}

// readyToRemoveVoter: the started voters that remain must be a quorum of
// the voters that remain.
func readyToRemoveVoter(members []*membership.Member, id uint64) bool {
	nmembers, nstarted := 0, 0
	for _, m := range voterList(members) {
		if m.ID == id {
			continue
		}
		nmembers++
		if isStarted(m) {
			nstarted++
		}
	}
	return nstarted >= quorum(nmembers)
}

// readyToPromote counts the learner as a started voter of the future
// cluster, as etcd does.
func readyToPromote(members []*membership.Member) bool {
	nmembers, nstarted := 1, 1
	for _, m := range voterList(members) {
		nmembers++
		if isStarted(m) {
			nstarted++
		}
	}
	return nstarted >= quorum(nmembers)
}

// connectedSince counts the voters this member has been connected to since
// t (itself included).
func (s *Server) connectedSince(voters []*membership.Member, t time.Time) int {
	n := 0
	for _, m := range voters {
		if m.ID == s.id {
			n++
			continue
		}
		if since := s.transport.ActiveSince(m.ID); !since.IsZero() && since.Before(t) {
			n++
		}
	}
	return n
}

// mayAddMember is etcd's strict check for an add: enough started voters,
// and this member connected to every voter (so the change cannot be made
// by a member cut off from the others).
func (s *Server) mayAddMember(m *membership.Member) error {
	if !s.opts.StrictReconfigCheck {
		return nil
	}
	members := s.cluster.Members()
	if !m.IsLearner && !readyToAddVoter(members) {
		return rpctypes.ErrGRPCMemberNotEnoughStarted
	}
	voters := voterList(members)
	if s.connectedSince(voters, time.Now().Add(-healthInterval)) != len(voters) {
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

// mayRemoveMember is etcd's strict check for a remove: enough started
// voters remain, and removing a connected voter leaves an active quorum.
func (s *Server) mayRemoveMember(m *membership.Member) error {
	if !s.opts.StrictReconfigCheck || m.IsLearner {
		return nil
	}
	members := s.cluster.Members()
	if !readyToRemoveVoter(members, m.ID) {
		return rpctypes.ErrGRPCMemberNotEnoughStarted
	}
	// A member that is down is not part of the active quorum: safe to drop.
	if m.ID != s.id && s.transport.ActiveSince(m.ID).IsZero() {
		return nil
	}
	voters := voterList(members)
	active := s.connectedSince(voters, time.Now().Add(-healthInterval))
	if active-1 < quorum(len(voters)-1) {
		return rpctypes.ErrGRPCUnhealthy
	}
	return nil
}

func quorum(n int) int { return n/2 + 1 }

func voterList(ms []*membership.Member) []*membership.Member {
	var out []*membership.Member
	for _, m := range ms {
		if !m.IsLearner {
			out = append(out, m)
		}
	}
	return out
}

func learners(ms []*membership.Member) int { return len(ms) - len(voterList(ms)) }

// checkPeerURLs validates and normalises peer URLs as etcd does.
func checkPeerURLs(raw []string) ([]string, error) {
	if len(raw) == 0 {
		return nil, rpctypes.ErrGRPCMemberBadURLs
	}
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, rpctypes.ErrGRPCMemberBadURLs
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	slices.Sort(out)
	return out, nil
}

func toPBMember(m *membership.Member) *pb.Member {
	return &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
}

func (s *Server) pbMembers() []*pb.Member {
	var out []*pb.Member
	for _, m := range s.cluster.Members() {
		out = append(out, toPBMember(m))
	}
	return out
}

// alone reports whether this member is its cluster's only one.
func (s *Server) alone() bool { return s.cluster.Len() == 1 }
