package auth

import (
	"slices"
	"sort"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/backend"
)

// The user and role mutations below run in the apply loop, in log order.
// Each refusal depends only on the replicated state; each change is written
// to tx, mirrored in memory, and moves the auth revision, so that tokens
// and in-flight requests checked against the old state are refused.

// UserAdd adds a user with the hashed password the request carries, or
// with none when its options say NoPassword (such a user can only log in
// with a client certificate).
func (s *Store) UserAdd(tx *backend.BatchTx, r *pb.AuthUserAddRequest) error {
	if r.GetName() == "" {
		return rpctypes.ErrGRPCUserEmpty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[r.GetName()] != nil {
		return rpctypes.ErrGRPCUserAlreadyExist
	}
	opts := r.GetOptions()
	if opts == nil {
		opts = &authpb.UserAddOptions{}
	}
	u := &authpb.User{Name: []byte(r.GetName()), Options: proto.Clone(opts).(*authpb.UserAddOptions)}
	if !opts.GetNoPassword() {
		pw, err := s.storedPassword(r.GetPassword(), r.GetHashedPassword())
		if err != nil {
			return err
		}
		u.Password = pw
	}
	s.putUserLocked(tx, u)
	s.changedLocked(tx)
	s.lg.Info("added a user", zap.String("user-name", r.GetName()))
	return nil
}

// UserDelete removes a user and its tokens. root cannot go while auth is on.
func (s *Store) UserDelete(tx *backend.BatchTx, name string) error {
	if s.Enabled() && name == RootUser {
		s.lg.Warn("refused to delete the root user while authentication is enabled; disable it first")
		return rpctypes.ErrGRPCInvalidAuthMgmt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	tx.Delete(backend.AuthUsers, []byte(name))
	delete(s.users, name)
	s.changedLocked(tx)
	s.tokens.invalidateUser(name)
	s.lg.Info("deleted a user", zap.String("user-name", name), zap.Strings("user-roles", u.GetRoles()))
	return nil
}

// UserChangePassword replaces a user's password and drops its tokens. A
// no-password user stays one.
func (s *Store) UserChangePassword(tx *backend.BatchTx, r *pb.AuthUserChangePasswordRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.users[r.GetName()]
	if old == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	u := &authpb.User{Name: old.GetName(), Roles: old.GetRoles(), Options: old.GetOptions()}
	if !old.GetOptions().GetNoPassword() {
		pw, err := s.storedPassword(r.GetPassword(), r.GetHashedPassword())
		if err != nil {
			return err
		}
		u.Password = pw
	}
	s.putUserLocked(tx, u)
	s.changedLocked(tx)
	s.tokens.invalidateUser(r.GetName())
	s.lg.Info("changed the password of a user", zap.String("user-name", r.GetName()))
	return nil
}

// UserGrantRole gives a user a role; roles stay sorted. The root role need
// not exist as a role to be granted. Granting a role twice changes nothing.
func (s *Store) UserGrantRole(tx *backend.BatchTx, user, role string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.users[user]
	if old == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	if role != RootRole && s.roles[role] == nil {
		return rpctypes.ErrGRPCRoleNotFound
	}
	if slices.Contains(old.GetRoles(), role) {
		s.lg.Info("ignored granting a role the user already has", zap.String("user-name", user), zap.String("role-name", role))
		return nil
	}
	u := proto.Clone(old).(*authpb.User)
	u.Roles = append(u.Roles, role)
	sort.Strings(u.Roles)
	s.putUserLocked(tx, u)
	s.changedLocked(tx)
	s.lg.Info("granted a role to a user", zap.String("user-name", user), zap.String("role-name", role), zap.Strings("user-roles", u.GetRoles()))
	return nil
}

// UserRevokeRole takes a role from a user. root keeps the root role while
// auth is on.
func (s *Store) UserRevokeRole(tx *backend.BatchTx, user, role string) error {
	if s.Enabled() && user == RootUser && role == RootRole {
		s.lg.Warn("refused to revoke the root role from the root user while authentication is enabled")
		return rpctypes.ErrGRPCInvalidAuthMgmt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.users[user]
	if old == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	if !slices.Contains(old.GetRoles(), role) {
		return rpctypes.ErrGRPCRoleNotGranted
	}
	u := &authpb.User{Name: old.GetName(), Password: old.GetPassword(), Options: old.GetOptions()}
	for _, r := range old.GetRoles() {
		if r != role {
			u.Roles = append(u.Roles, r)
		}
	}
	s.putUserLocked(tx, u)
	s.changedLocked(tx)
	s.lg.Info("revoked a role from a user", zap.String("user-name", user), zap.String("role-name", role), zap.Strings("user-roles", u.GetRoles()))
	return nil
}

// UserGet lists a user's roles.
func (s *Store) UserGet(name string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[name]
	if u == nil {
		return nil, rpctypes.ErrGRPCUserNotFound
	}
	return slices.Clone(u.GetRoles()), nil
}

// UserList lists every user's name in byte order (the backend's order).
func (s *Store) UserList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.users))
	for n := range s.users {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
