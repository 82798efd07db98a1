package auth

import (
	"bytes"
	"slices"
	"sort"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/backend"
)

// RoleAdd creates a role without permissions.
func (s *Store) RoleAdd(tx *backend.BatchTx, name string) error {
	if name == "" {
		return rpctypes.ErrGRPCRoleEmpty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[name] != nil {
		return rpctypes.ErrGRPCRoleAlreadyExist
	}
	s.putRoleLocked(tx, &authpb.Role{Name: []byte(name)})
	s.changedLocked(tx)
	s.lg.Info("created a role", zap.String("role-name", name))
	return nil
}

// RoleDelete removes a role and takes it from every user holding it. The
// root role cannot go while auth is on.
func (s *Store) RoleDelete(tx *backend.BatchTx, name string) error {
	if s.Enabled() && name == RootRole {
		s.lg.Warn("refused to delete the root role while authentication is enabled; disable it first")
		return rpctypes.ErrGRPCInvalidAuthMgmt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[name] == nil {
		return rpctypes.ErrGRPCRoleNotFound
	}
	tx.Delete(backend.AuthRoles, []byte(name))
	delete(s.roles, name)
	// Users in name order, as etcd rewrites them: the writes land in the
	// backend in the same order on every member.
	users := make([]string, 0, len(s.users))
	for n := range s.users {
		users = append(users, n)
	}
	sort.Strings(users)
	for _, n := range users {
		old := s.users[n]
		if !slices.Contains(old.GetRoles(), name) {
			continue
		}
		u := &authpb.User{Name: old.GetName(), Password: old.GetPassword(), Options: old.GetOptions()}
		for _, r := range old.GetRoles() {
			if r != name {
				u.Roles = append(u.Roles, r)
			}
		}
		s.putUserLocked(tx, u)
	}
	s.changedLocked(tx)
	s.lg.Info("deleted a role", zap.String("role-name", name))
	return nil
}

// RoleGrantPermission adds a permission to a role, or changes the type of
// the one on the same range. Permissions stay sorted by key.
//
// Like etcd, only the first permission at the key is looked at for "the
// same range": granting [k, e2) after [k, e1) adds a second permission at
// k, and granting [k, e2) again adds it again.
func (s *Store) RoleGrantPermission(tx *backend.BatchTx, name string, perm *authpb.Permission) error {
	if perm == nil {
		return rpctypes.ErrGRPCPermissionNotGiven
	}
	if !validPermRange(perm.GetKey(), perm.GetRangeEnd()) {
		return rpctypes.ErrGRPCInvalidAuthMgmt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.roles[name]
	if old == nil {
		return rpctypes.ErrGRPCRoleNotFound
	}
	perms := make([]*authpb.Permission, 0, len(old.GetKeyPermission())+1)
	for _, p := range old.GetKeyPermission() {
		perms = append(perms, &authpb.Permission{PermType: p.GetPermType(), Key: p.GetKey(), RangeEnd: p.GetRangeEnd()})
	}
	i := sort.Search(len(perms), func(i int) bool { return bytes.Compare(perms[i].GetKey(), perm.GetKey()) >= 0 })
	if i < len(perms) && bytes.Equal(perms[i].GetKey(), perm.GetKey()) && bytes.Equal(perms[i].GetRangeEnd(), perm.GetRangeEnd()) {
		perms[i].PermType = perm.GetPermType()
	} else {
		perms = append(perms, &authpb.Permission{PermType: perm.GetPermType(), Key: perm.GetKey(), RangeEnd: perm.GetRangeEnd()})
		slices.SortStableFunc(perms, func(a, b *authpb.Permission) int { return bytes.Compare(a.GetKey(), b.GetKey()) })
	}
	s.putRoleLocked(tx, &authpb.Role{Name: old.GetName(), KeyPermission: perms})
	s.changedLocked(tx)
	s.lg.Info("granted a permission to a role", zap.String("role-name", name),
		zap.String("permission", perm.GetPermType().String()),
		zap.ByteString("key", perm.GetKey()), zap.ByteString("range-end", perm.GetRangeEnd()))
	return nil
}

// validPermRange is etcd's rule for a permission's range: a non-empty key,
// and no range end (one key), "\x00" (open ended), or an end after the key.
func validPermRange(key, end []byte) bool {
	switch {
	case len(key) == 0:
		return false
	case len(end) == 0, isOpenEnd(end):
		return true
	}
	return bytes.Compare(key, end) < 0
}

// RoleRevokePermission removes the permissions on exactly [key, end).
func (s *Store) RoleRevokePermission(tx *backend.BatchTx, name string, key, end []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.roles[name]
	if old == nil {
		return rpctypes.ErrGRPCRoleNotFound
	}
	r := &authpb.Role{Name: old.GetName()}
	for _, p := range old.GetKeyPermission() {
		if !bytes.Equal(p.GetKey(), key) || !bytes.Equal(p.GetRangeEnd(), end) {
			r.KeyPermission = append(r.KeyPermission, p)
		}
	}
	if len(r.KeyPermission) == len(old.GetKeyPermission()) {
		return rpctypes.ErrGRPCPermissionNotGranted
	}
	s.putRoleLocked(tx, r)
	s.changedLocked(tx)
	s.lg.Info("revoked a permission from a role", zap.String("role-name", name),
		zap.ByteString("key", key), zap.ByteString("range-end", end))
	return nil
}

// RoleGet lists a role's permissions. The root role, whatever it stores,
// shows as read-write on every key, which is what it grants.
func (s *Store) RoleGet(name string) ([]*authpb.Permission, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.roles[name]
	if r == nil {
		return nil, rpctypes.ErrGRPCRoleNotFound
	}
	if name == RootRole {
		return []*authpb.Permission{{PermType: authpb.Permission_READWRITE, Key: []byte{}, RangeEnd: []byte{0}}}, nil
	}
	return slices.Clone(r.GetKeyPermission()), nil
}

// RoleList lists every role's name in byte order.
func (s *Store) RoleList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.roles))
	for n := range s.roles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
