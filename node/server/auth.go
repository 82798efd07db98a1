package server

import (
	"context"
	"errors"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/api"
	"github.com/ballastdb/ballast/node/auth"
)

// Authentication, the request side. Who a request comes from is worked out
// here, from its gRPC metadata and client certificate, when a check needs
// it; the checks themselves are node/auth's. Writes are checked where they
// are applied (apply_auth.go), against the auth state at that point of the
// log, so every member decides alike; reads are checked here, before and
// after they run.

// authInfo identifies the caller: nil when auth is off or the request
// carries no credentials, ErrInvalidAuthToken for a bad token. The client
// certificate's common name counts only with --client-cert-auth, as etcd's.
func (s *Server) authInfo(ctx context.Context) (*auth.Info, error) {
	if !s.auth.Enabled() {
		return nil, nil
	}
	return s.auth.Identify(ctx, api.CredentialsOf(ctx, s.opts.ClientTLS.Info.ClientCertAuth))
}

// requireAdmin lets through root-role users only (when auth is on).
func (s *Server) requireAdmin(ctx context.Context) error {
	ai, err := s.authInfo(ctx)
	if err != nil {
		return err
	}
	return s.auth.IsAdmin(ai)
}

// requireUser lets through any authenticated user (when auth is on).
func (s *Server) requireUser(ctx context.Context) error {
	ai, err := s.authInfo(ctx)
	if err != nil {
		return err
	}
	return s.auth.RequireUser(ai)
}

// anonymous is a request without credentials: checks refuse it with
// ErrUserEmpty when auth is on. Shared, so never modified.
var anonymous = &auth.Info{}

// checkedRead runs a read that does not go through raft: check decides with
// the caller's identity, then read runs, then, if the auth state moved
// meanwhile, the answer is withheld (ErrAuthOldRevision; the client
// authenticates and retries), since it may hold what the caller may no
// longer see.
func (s *Server) checkedRead(ctx context.Context, check func(*auth.Info) error, read func() error) error {
	ai, err := s.authInfo(ctx)
	if err != nil {
		return err
	}
	if ai == nil {
		ai = anonymous
	}
	if err := check(ai); err != nil {
		return err
	}
	if err := read(); err != nil {
		return err
	}
	if ai.Revision != 0 && ai.Revision != s.auth.Revision() {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	return nil
}

// WatchPermitted: may the caller watch [key, rangeEnd)? Checked once, when
// the watcher is created, as etcd does.
func (s *Server) WatchPermitted(ctx context.Context, key, rangeEnd []byte) error {
	ai, err := s.authInfo(ctx)
	if err != nil {
		return err
	}
	if ai == nil {
		ai = anonymous
	}
	return s.auth.CheckRange(ai, key, rangeEnd)
}

func (s *Server) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return proposeKV[*pb.AuthEnableResponse](s, ctx, &pb.InternalRaftRequest{AuthEnable: r})
}

func (s *Server) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return proposeKV[*pb.AuthDisableResponse](s, ctx, &pb.InternalRaftRequest{AuthDisable: r})
}

// AuthStatus goes through raft like etcd's, so that it answers with the
// state every member has agreed on.
func (s *Server) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return proposeKV[*pb.AuthStatusResponse](s, ctx, &pb.InternalRaftRequest{AuthStatus: r})
}

// Authenticate checks the password here (bcrypt is slow: neither in the
// apply loop nor on every member), then proposes the user's name, never the
// password, for the token to be issued in log order. Should users change in
// between, the check is made again.
func (s *Server) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if err := s.linearizableReadNotify(ctx); err != nil {
		return nil, err
	}
	for {
		rev, err := s.auth.CheckPassword(r.GetName(), r.GetPassword())
		if err != nil {
			if !errors.Is(err, rpctypes.ErrGRPCAuthNotEnabled) {
				s.lg.Warn("refused an authentication request", zap.String("user-name", r.GetName()), zap.Error(err))
			}
			return nil, err
		}
		prefix, err := s.auth.TokenPrefix()
		if err != nil {
			return nil, err
		}
		resp, err := proposeKV[*pb.AuthenticateResponse](s, ctx, &pb.InternalRaftRequest{
			Authenticate: &pb.InternalAuthenticateRequest{Name: r.GetName(), SimpleToken: prefix},
		})
		if err != nil {
			return nil, err
		}
		if rev == s.auth.Revision() {
			return resp, nil
		}
		s.lg.Info("users or roles changed while a password was checked; checking it again", zap.String("user-name", r.GetName()))
	}
}

// UserAdd hashes the password before proposing it: the raft log (and every
// member's apply) never sees it.
func (s *Server) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	req := proto.Clone(r).(*pb.AuthUserAddRequest)
	if !req.GetOptions().GetNoPassword() {
		h, err := s.auth.HashPassword(req.GetPassword())
		if err != nil {
			return nil, err
		}
		req.HashedPassword, req.Password = h, ""
	}
	return proposeKV[*pb.AuthUserAddResponse](s, ctx, &pb.InternalRaftRequest{AuthUserAdd: req})
}

func (s *Server) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	req := proto.Clone(r).(*pb.AuthUserChangePasswordRequest)
	if req.GetPassword() != "" {
		h, err := s.auth.HashPassword(req.GetPassword())
		if err != nil {
			return nil, err
		}
		req.HashedPassword, req.Password = h, ""
	}
	return proposeKV[*pb.AuthUserChangePasswordResponse](s, ctx, &pb.InternalRaftRequest{AuthUserChangePassword: req})
}

func (s *Server) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return proposeKV[*pb.AuthUserGetResponse](s, ctx, &pb.InternalRaftRequest{AuthUserGet: r})
}

func (s *Server) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return proposeKV[*pb.AuthUserListResponse](s, ctx, &pb.InternalRaftRequest{AuthUserList: r})
}

func (s *Server) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return proposeKV[*pb.AuthUserDeleteResponse](s, ctx, &pb.InternalRaftRequest{AuthUserDelete: r})
}

func (s *Server) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return proposeKV[*pb.AuthUserGrantRoleResponse](s, ctx, &pb.InternalRaftRequest{AuthUserGrantRole: r})
}

func (s *Server) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return proposeKV[*pb.AuthUserRevokeRoleResponse](s, ctx, &pb.InternalRaftRequest{AuthUserRevokeRole: r})
}

func (s *Server) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return proposeKV[*pb.AuthRoleAddResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleAdd: r})
}

func (s *Server) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return proposeKV[*pb.AuthRoleGetResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleGet: r})
}

func (s *Server) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return proposeKV[*pb.AuthRoleListResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleList: r})
}

func (s *Server) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return proposeKV[*pb.AuthRoleDeleteResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleDelete: r})
}

func (s *Server) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return proposeKV[*pb.AuthRoleGrantPermissionResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleGrantPermission: r})
}

func (s *Server) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return proposeKV[*pb.AuthRoleRevokePermissionResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleRevokePermission: r})
}
