package server

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/auth"
	"github.com/ballastdb/ballast/node/backend"
)

// Authentication, the apply side: what a raft entry may do is decided when
// it is applied, against the auth state at that point of the log, with the
// identity the proposing member wrote into its header. Every member thus
// decides alike, and a request checked against users or roles that changed
// before it was applied is refused (ErrAuthOldRevision).

// entryAuthor is who proposed r. An entry without a user (auth was off, or
// the member's own work) has revision 0, which fails every check while auth
// is on.
func entryAuthor(r *pb.InternalRaftRequest) *auth.Info {
	return &auth.Info{User: r.GetHeader().GetUsername(), Revision: r.GetHeader().GetAuthRevision()}
}

// needsAdmin lists the requests only root-role users may make (etcd's
// needAdminPermission). Users may still read themselves and their roles:
// see applyAuth.
func needsAdmin(r *pb.InternalRaftRequest) bool {
	return r.AuthEnable != nil || r.AuthDisable != nil ||
		r.AuthUserAdd != nil || r.AuthUserDelete != nil || r.AuthUserChangePassword != nil ||
		r.AuthUserGrantRole != nil || r.AuthUserRevokeRole != nil || r.AuthUserList != nil ||
		r.AuthRoleAdd != nil || r.AuthRoleDelete != nil || r.AuthRoleGrantPermission != nil ||
		r.AuthRoleRevokePermission != nil || r.AuthRoleList != nil
}

// isAuthRequest tells the requests applyAuth handles.
func isAuthRequest(r *pb.InternalRaftRequest) bool {
	return needsAdmin(r) || r.AuthStatus != nil || r.Authenticate != nil || r.AuthUserGet != nil || r.AuthRoleGet != nil
}

// applyAuth applies an auth request at raft index index.
func (s *Server) applyAuth(tx *backend.BatchTx, r *pb.InternalRaftRequest, ai *auth.Info, index uint64) *result {
	a := s.auth
	switch {
	case r.AuthEnable != nil:
		return authResult(&pb.AuthEnableResponse{}, a.Enable(tx))
	case r.AuthDisable != nil:
		a.Disable(tx)
		return authResult(&pb.AuthDisableResponse{}, nil)
	case r.AuthStatus != nil:
		return authResult(&pb.AuthStatusResponse{Enabled: a.Enabled(), AuthRevision: a.Revision()}, nil)
	case r.Authenticate != nil:
		token, err := a.Authenticate(r.Authenticate.GetName(), r.Authenticate.GetSimpleToken(), index)
		return authResult(&pb.AuthenticateResponse{Token: token}, err)
	case r.AuthUserAdd != nil:
		return authResult(&pb.AuthUserAddResponse{}, a.UserAdd(tx, r.AuthUserAdd))
	case r.AuthUserDelete != nil:
		return authResult(&pb.AuthUserDeleteResponse{}, a.UserDelete(tx, r.AuthUserDelete.GetName()))
	case r.AuthUserChangePassword != nil:
		return authResult(&pb.AuthUserChangePasswordResponse{}, a.UserChangePassword(tx, r.AuthUserChangePassword))
	case r.AuthUserGrantRole != nil:
		g := r.AuthUserGrantRole
		return authResult(&pb.AuthUserGrantRoleResponse{}, a.UserGrantRole(tx, g.GetUser(), g.GetRole()))
	case r.AuthUserRevokeRole != nil:
		g := r.AuthUserRevokeRole
		return authResult(&pb.AuthUserRevokeRoleResponse{}, a.UserRevokeRole(tx, g.GetName(), g.GetRole()))
	case r.AuthUserGet != nil:
		// A user may read itself.
		if err := a.IsAdmin(ai); err != nil && r.AuthUserGet.GetName() != ai.User {
			return &result{err: err}
		}
		roles, err := a.UserGet(r.AuthUserGet.GetName())
		return authResult(&pb.AuthUserGetResponse{Roles: roles}, err)
	case r.AuthUserList != nil:
		return authResult(&pb.AuthUserListResponse{Users: a.UserList()}, nil)
	case r.AuthRoleAdd != nil:
		return authResult(&pb.AuthRoleAddResponse{}, a.RoleAdd(tx, r.AuthRoleAdd.GetName()))
	case r.AuthRoleDelete != nil:
		return authResult(&pb.AuthRoleDeleteResponse{}, a.RoleDelete(tx, r.AuthRoleDelete.GetRole()))
	case r.AuthRoleGrantPermission != nil:
		g := r.AuthRoleGrantPermission
		return authResult(&pb.AuthRoleGrantPermissionResponse{}, a.RoleGrantPermission(tx, g.GetName(), g.GetPerm()))
	case r.AuthRoleRevokePermission != nil:
		g := r.AuthRoleRevokePermission
		return authResult(&pb.AuthRoleRevokePermissionResponse{}, a.RoleRevokePermission(tx, g.GetRole(), g.GetKey(), g.GetRangeEnd()))
	case r.AuthRoleGet != nil:
		// A user may read the roles it holds.
		if err := a.IsAdmin(ai); err != nil && !a.HasRole(ai.User, r.AuthRoleGet.GetRole()) {
			return &result{err: err}
		}
		perms, err := a.RoleGet(r.AuthRoleGet.GetRole())
		return authResult(&pb.AuthRoleGetResponse{Perm: perms}, err)
	case r.AuthRoleList != nil:
		return authResult(&pb.AuthRoleListResponse{Roles: a.RoleList()}, nil)
	}
	return &result{}
}

// authResult is resp, or err alone. The API layer fills the header.
func authResult(resp proto.Message, err error) *result {
	if err != nil {
		return &result{err: err}
	}
	return &result{resp: resp}
}
