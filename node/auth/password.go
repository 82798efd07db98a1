package auth

import (
	"encoding/base64"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// HashPassword hashes a new password with bcrypt at --bcrypt-cost, base64
// encoded as AuthUserAddRequest.hashed_password carries it. The member that
// receives the request hashes it before proposing, so that the raft log
// never holds a password and bcrypt's cost is paid once, not on every
// member.
func (s *Store) HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		// etcd passes bcrypt's error (a password over 72 bytes) through as
		// an unknown error.
		return "", status.Error(codes.Unknown, err.Error())
	}
	return base64.StdEncoding.EncodeToString(h), nil
}

// storedPassword is the bcrypt hash to store for a request that carries a
// password (an entry written before etcd 3.5 did, hashed on apply) or its
// hash.
func (s *Store) storedPassword(password, hashed string) ([]byte, error) {
	if password != "" && hashed == "" {
		h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
		if err != nil {
			return nil, errNoPasswordUser
		}
		return h, nil
	}
	h, err := base64.StdEncoding.DecodeString(hashed)
	if err != nil {
		return nil, errNoPasswordUser
	}
	return h, nil
}

// CheckPassword verifies a user's password before its Authenticate request
// is proposed, and returns the auth revision it was checked at: if the
// revision moved by the time the token is issued, the password may have
// changed in between, and the caller checks again.
func (s *Store) CheckPassword(name, password string) (uint64, error) {
	if !s.Enabled() {
		return 0, rpctypes.ErrGRPCAuthNotEnabled
	}
	s.mu.RLock()
	u := s.users[name]
	rev := s.Revision()
	s.mu.RUnlock()
	if u == nil {
		return 0, rpctypes.ErrGRPCAuthFailed
	}
	if u.GetOptions().GetNoPassword() {
		return 0, errNoPasswordUser
	}
	// bcrypt is slow on purpose: outside the lock.
	if bcrypt.CompareHashAndPassword(u.GetPassword(), []byte(password)) != nil {
		s.lg.Info("refused authentication: wrong password", zap.String("user-name", name))
		return 0, rpctypes.ErrGRPCAuthFailed
	}
	return rev, nil
}

// TokenPrefix is the random part of a simple token, chosen by the member
// that receives Authenticate and carried in the raft entry so that every
// member registers the same token; "" for JWT.
func (s *Store) TokenPrefix() (string, error) { return s.tokens.prefix() }

// Authenticate issues a token for a user whose password was checked by
// CheckPassword (apply loop). index is the raft index of the entry.
func (s *Store) Authenticate(name, prefix string, index uint64) (string, error) {
	if !s.Enabled() {
		return "", rpctypes.ErrGRPCAuthNotEnabled
	}
	s.mu.RLock()
	u := s.users[name]
	s.mu.RUnlock()
	if u == nil || u.GetOptions().GetNoPassword() {
		return "", rpctypes.ErrGRPCAuthFailed
	}
	return s.tokens.assign(name, s.Revision(), prefix, index)
}
