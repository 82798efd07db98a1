package auth

import (
	"slices"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// userPerms is what a user may touch: the union of its roles' permissions,
// one set for reading and one for writing (READWRITE counts in both).
// Users holding the root role skip these sets altogether.
type userPerms struct {
	read, write rangeSet
}

// mergePerms computes a user's permissions from its roles. Roles that do
// not exist (any more) grant nothing.
func mergePerms(u *authpb.User, roles map[string]*authpb.Role) *userPerms {
	var read, write []span
	for _, name := range u.GetRoles() {
		for _, p := range roles[name].GetKeyPermission() {
			sp, ok := permSpan(p)
			if !ok {
				continue
			}
			switch p.GetPermType() {
			case authpb.Permission_READ:
				read = append(read, sp)
			case authpb.Permission_WRITE:
				write = append(write, sp)
			case authpb.Permission_READWRITE:
				read = append(read, sp)
				write = append(write, sp)
			}
		}
	}
	return &userPerms{read: newRangeSet(read), write: newRangeSet(write)}
}

func hasRootRole(u *authpb.User) bool { return slices.Contains(u.GetRoles(), RootRole) }

// access is what a check asks for.
type access int

const (
	readAccess access = iota
	writeAccess
)

// check is etcd's isOpPermitted: with auth on, the request needs a user, at
// the current auth revision, holding the root role or a role that allows
// the access on the whole range.
func (s *Store) check(ai *Info, key, end []byte, a access) error {
	if !s.Enabled() {
		return nil
	}
	if ai == nil || ai.Revision == 0 {
		return rpctypes.ErrGRPCUserEmpty
	}
	if rev := s.Revision(); ai.Revision < rev {
		return rpctypes.ErrGRPCAuthOldRevision
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[ai.User]
	if u == nil {
		return rpctypes.ErrGRPCPermissionDenied
	}
	if hasRootRole(u) {
		return nil
	}
	p := s.perms[ai.User]
	if p == nil {
		return rpctypes.ErrGRPCPermissionDenied
	}
	set := p.read
	if a == writeAccess {
		set = p.write
	}
	if !set.contains(key, end) {
		return rpctypes.ErrGRPCPermissionDenied
	}
	return nil
}

// CheckRange: may ai read [key, end)?
func (s *Store) CheckRange(ai *Info, key, end []byte) error { return s.check(ai, key, end, readAccess) }

// CheckWrite: may ai put key (end empty) or delete [key, end)?
func (s *Store) CheckWrite(ai *Info, key, end []byte) error {
	return s.check(ai, key, end, writeAccess)
}

// IsAdmin is etcd's IsAdminPermitted: with auth on, ai must be a user that
// holds the root role. Unlike key checks it ignores the auth revision.
func (s *Store) IsAdmin(ai *Info) error {
	if !s.Enabled() {
		return nil
	}
	if ai == nil || ai.User == "" {
		return rpctypes.ErrGRPCUserEmpty
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[ai.User]
	if u == nil {
		return rpctypes.ErrGRPCUserNotFound
	}
	if !hasRootRole(u) {
		return rpctypes.ErrGRPCPermissionDenied
	}
	return nil
}

// RequireUser is etcd's requireAuthInfo: with auth on, the request must
// name a user, whatever it may do.
func (s *Store) RequireUser(ai *Info) error {
	if s.Enabled() && ai == nil {
		return rpctypes.ErrGRPCUserEmpty
	}
	return nil
}

// HasRole reports whether user holds role (it may read that role).
func (s *Store) HasRole(user, role string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Contains(s.users[user].GetRoles(), role)
}

// LeaseKeys lists the keys attached to a lease; nil when it does not exist.
type LeaseKeys func(id int64) [][]byte

// CheckLeaseWrite: may ai write every key attached to lease id? That is what
// revoking it, or attaching another key to it, takes: revoking deletes them
// all. Admins may always.
func (s *Store) CheckLeaseWrite(ai *Info, id int64, leaseKeys LeaseKeys) error {
	if !s.Enabled() || s.IsAdmin(ai) == nil {
		return nil
	}
	for _, k := range leaseKeys(id) {
		if err := s.CheckWrite(ai, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// CheckLeaseRead: may ai read every key attached to these leases (to see
// their names with LeaseTimeToLive, or that they exist with LeaseLeases)?
// Admins may always.
func (s *Store) CheckLeaseRead(ai *Info, ids []int64, leaseKeys LeaseKeys) error {
	if !s.Enabled() || s.IsAdmin(ai) == nil {
		return nil
	}
	for _, id := range ids {
		for _, k := range leaseKeys(id) {
			if err := s.CheckRange(ai, k, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckPut: the key must be writable, every key already on the lease too
// (the user could not revoke the lease otherwise), and the key readable
// when the previous value is asked for.
func (s *Store) CheckPut(ai *Info, r *pb.PutRequest, leaseKeys LeaseKeys) error {
	if !s.Enabled() {
		return nil
	}
	if err := s.CheckWrite(ai, r.GetKey(), nil); err != nil {
		return err
	}
	if r.GetLease() != 0 {
		if err := s.CheckLeaseWrite(ai, r.GetLease(), leaseKeys); err != nil {
			return err
		}
	}
	if r.GetPrevKv() {
		return s.CheckRange(ai, r.GetKey(), nil)
	}
	return nil
}

// CheckDeleteRange: the range must be writable, and readable when the
// deleted values are asked for.
func (s *Store) CheckDeleteRange(ai *Info, r *pb.DeleteRangeRequest) error {
	if err := s.CheckWrite(ai, r.GetKey(), r.GetRangeEnd()); err != nil {
		return err
	}
	if r.GetPrevKv() {
		return s.CheckRange(ai, r.GetKey(), r.GetRangeEnd())
	}
	return nil
}

// CheckTxn checks every compare (a read) and every operation of both
// branches, nested transactions included, whichever branch will run: the
// outcome must not reveal what the user may not read.
func (s *Store) CheckTxn(ai *Info, r *pb.TxnRequest, leaseKeys LeaseKeys) error {
	if !s.Enabled() {
		return nil
	}
	for _, c := range r.GetCompare() {
		if err := s.CheckRange(ai, c.GetKey(), c.GetRangeEnd()); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		for _, op := range ops {
			if err := s.checkOp(ai, op, leaseKeys); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) checkOp(ai *Info, op *pb.RequestOp, leaseKeys LeaseKeys) error {
	switch {
	case op.GetRequestRange() != nil:
		rr := op.GetRequestRange()
		return s.CheckRange(ai, rr.GetKey(), rr.GetRangeEnd())
	case op.GetRequestPut() != nil:
		return s.CheckPut(ai, op.GetRequestPut(), leaseKeys)
	case op.GetRequestDeleteRange() != nil:
		// etcd checks the read first here, unlike for a plain DeleteRange.
		dr := op.GetRequestDeleteRange()
		if dr.GetPrevKv() {
			if err := s.CheckRange(ai, dr.GetKey(), dr.GetRangeEnd()); err != nil {
				return err
			}
		}
		return s.CheckWrite(ai, dr.GetKey(), dr.GetRangeEnd())
	case op.GetRequestTxn() != nil:
		return s.CheckTxn(ai, op.GetRequestTxn(), leaseKeys)
	}
	return nil
}
