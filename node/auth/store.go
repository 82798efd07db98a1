package auth

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/backend"
)

// Keys of the auth bucket, as etcd names them.
var (
	keyEnabled  = []byte("authEnabled")  // one byte: 1 enabled, 0 disabled
	keyRevision = []byte("authRevision") // uint64, 8 bytes big-endian
)

// Options configure Open.
type Options struct {
	// TokenSpec is --auth-token: "simple", or "jwt" followed by
	// comma-separated options (see newJWTProvider).
	TokenSpec string
	// TokenTTL is --auth-token-ttl, the idle lifetime of simple tokens;
	// 0 means etcd's 300 s.
	TokenTTL time.Duration
	// BcryptCost is --bcrypt-cost; 0 means bcrypt's default (10).
	BcryptCost int
	// WaitApplied returns a channel closed once the member has applied the
	// raft entry at index. A simple token names the index of the
	// Authenticate entry that created it, so a member that has not applied
	// it yet waits instead of refusing the token.
	WaitApplied func(index uint64) <-chan struct{}
	Logger      *zap.Logger
	// now is the clock of token expiry (tests).
	now func() time.Time
}

// Store is the auth state of one member. Its mutating methods (those taking
// a *backend.BatchTx) must be called from the apply loop only; all others
// are safe for concurrent use.
type Store struct {
	lg     *zap.Logger
	cost   int
	tokens tokenProvider

	enabled  atomic.Bool
	revision atomic.Uint64

	// mu guards the in-memory copy of the auth buckets. The apply loop
	// replaces entries (never modifies a stored message) under the write
	// lock; checks read under the read lock.
	mu    sync.RWMutex
	users map[string]*authpb.User
	roles map[string]*authpb.Role
	perms map[string]*userPerms // by user name; root-role users need none
}

// New checks o and builds the token provider (reading JWT keys), before
// the member touches its storage, so that a bad flag fails start-up early.
// Load the state with Load.
func New(o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.BcryptCost == 0 {
		o.BcryptCost = bcrypt.DefaultCost
	}
	if o.BcryptCost < bcrypt.MinCost || o.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("--bcrypt-cost must be between %d and %d, not %d", bcrypt.MinCost, bcrypt.MaxCost, o.BcryptCost)
	}
	tp, err := newTokenProvider(o)
	if err != nil {
		return nil, fmt.Errorf("--auth-token=%s: %w", o.TokenSpec, err)
	}
	return &Store{lg: o.Logger, cost: o.BcryptCost, tokens: tp,
		users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}, perms: map[string]*userPerms{}}, nil
}

// Load reads the auth state from be at start-up. A backend that never had
// auth state gets auth revision 1, as etcd writes.
func (s *Store) Load(be *backend.Backend) error {
	if _, ok := be.Get(backend.Auth, keyRevision); !ok {
		tx := be.BatchTx()
		saveRevision(tx, 1)
		tx.Unlock()
	}
	return s.Reload(be)
}

// Reload replaces the in-memory state with be's: at start-up, and after the
// backend was replaced by a snapshot from the leader. Tokens handed out
// stay valid if auth is still enabled; disabling drops them.
func (s *Store) Reload(be *backend.Backend) error {
	users := map[string]*authpb.User{}
	roles := map[string]*authpb.Role{}
	var err error
	// Names are proto strings, valid UTF-8, which never holds 0xff.
	be.Range(backend.AuthUsers, []byte{}, []byte{0xff}, 0, func(k, v []byte) bool {
		u := &authpb.User{}
		if err = proto.Unmarshal(v, u); err != nil {
			err = fmt.Errorf("the backend's authUsers/%q does not decode as an etcd user: %w", k, err)
			return false
		}
		users[string(u.GetName())] = u
		return true
	})
	if err != nil {
		return err
	}
	be.Range(backend.AuthRoles, []byte{}, []byte{0xff}, 0, func(k, v []byte) bool {
		r := &authpb.Role{}
		if err = proto.Unmarshal(v, r); err != nil {
			err = fmt.Errorf("the backend's authRoles/%q does not decode as an etcd role: %w", k, err)
			return false
		}
		roles[string(r.GetName())] = r
		return true
	})
	if err != nil {
		return err
	}
	enabledV, _ := be.Get(backend.Auth, keyEnabled)
	revV, _ := be.Get(backend.Auth, keyRevision)
	var rev uint64
	if len(revV) >= 8 {
		rev = binary.BigEndian.Uint64(revV)
	}
	enabled := len(enabledV) == 1 && enabledV[0] == 1

	s.mu.Lock()
	s.users, s.roles = users, roles
	s.refreshPermsLocked()
	s.revision.Store(rev)
	s.enabled.Store(enabled)
	s.mu.Unlock()
	if enabled {
		s.tokens.enable()
	} else {
		s.tokens.disable()
	}
	s.lg.Info("loaded authentication state", zap.Bool("enabled", enabled), zap.Uint64("auth-revision", rev),
		zap.Int("users", len(users)), zap.Int("roles", len(roles)))
	return nil
}

// Close stops the token provider's background work.
func (s *Store) Close() { s.tokens.disable() }

// Enabled reports whether authentication is on.
func (s *Store) Enabled() bool { return s.enabled.Load() }

// Revision is the auth revision: it moves on every change of users, roles,
// permissions, and when auth is disabled.
func (s *Store) Revision() uint64 { return s.revision.Load() }

// refreshPermsLocked recomputes every user's permissions, as etcd does
// after any change: users and roles are few, and changes rare.
func (s *Store) refreshPermsLocked() {
	s.perms = make(map[string]*userPerms, len(s.users))
	for name, u := range s.users {
		s.perms[name] = mergePerms(u, s.roles)
	}
}

// changedLocked ends every change to users or roles: the auth revision
// moves (so tokens and in-flight requests of the old state are checked
// again) and the merged permissions are rebuilt.
func (s *Store) changedLocked(tx *backend.BatchTx) {
	s.bump(tx)
	s.refreshPermsLocked()
}

// bump moves the auth revision after a change and records it with the
// change.
func (s *Store) bump(tx *backend.BatchTx) {
	saveRevision(tx, s.revision.Add(1))
}

func saveRevision(tx *backend.BatchTx, rev uint64) {
	tx.Put(backend.Auth, keyRevision, binary.BigEndian.AppendUint64(make([]byte, 0, 8), rev))
}

func saveEnabled(tx *backend.BatchTx, on bool) {
	v := byte(0)
	if on {
		v = 1
	}
	tx.Put(backend.Auth, keyEnabled, []byte{v})
}

// putUserLocked stores u, which nobody may modify afterwards.
func (s *Store) putUserLocked(tx *backend.BatchTx, u *authpb.User) {
	tx.Put(backend.AuthUsers, append([]byte(nil), u.GetName()...), mustMarshal(u))
	s.users[string(u.GetName())] = u
}

func (s *Store) putRoleLocked(tx *backend.BatchTx, r *authpb.Role) {
	tx.Put(backend.AuthRoles, append([]byte(nil), r.GetName()...), mustMarshal(r))
	s.roles[string(r.GetName())] = r
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		// Users and roles hold bytes and strings that arrived as valid
		// protobuf; they always marshal.
		panic(fmt.Sprintf("auth: marshal %T: %v", m, err))
	}
	return b
}

// Enable turns authentication on (AuthEnable). It needs a user named root
// holding the root role, so that somebody can still administer the cluster.
// Enabling twice is a no-op. The auth revision does not move.
func (s *Store) Enable(tx *backend.BatchTx) error {
	if s.Enabled() {
		s.lg.Info("authentication is already enabled; ignored auth enable request")
		return nil
	}
	s.mu.RLock()
	root := s.users[RootUser]
	s.mu.RUnlock()
	if root == nil {
		return rpctypes.ErrGRPCRootUserNotExist
	}
	if !hasRootRole(root) {
		return rpctypes.ErrGRPCRootRoleNotExist
	}
	saveEnabled(tx, true)
	s.enabled.Store(true)
	s.tokens.enable()
	s.lg.Info("enabled authentication")
	return nil
}

// Disable turns authentication off (AuthDisable) and drops every token.
// Disabling twice is a no-op.
func (s *Store) Disable(tx *backend.BatchTx) {
	if !s.Enabled() {
		return
	}
	saveEnabled(tx, false)
	s.bump(tx)
	s.enabled.Store(false)
	s.tokens.disable()
	s.lg.Info("disabled authentication")
}

// Identify tells who a request comes from: the member itself (WithRoot),
// the user of its token, or the common name of its client certificate, in
// that order; nil when auth is off or the request carries no credentials.
// A token that is unknown, expired or badly signed is ErrInvalidAuthToken.
func (s *Store) Identify(ctx context.Context, c Credentials) (*Info, error) {
	if !s.Enabled() {
		return nil, nil
	}
	rev := s.Revision()
	switch {
	case isRoot(ctx):
		return &Info{User: RootUser, Revision: rev}, nil
	case c.HasToken:
		ai, ok := s.tokens.info(ctx, c.Token, rev)
		if !ok {
			s.lg.Warn("refused a request with an invalid auth token; the client must authenticate again",
				zap.String("token-fingerprint", redactToken(c.Token)))
			return nil, rpctypes.ErrGRPCInvalidAuthToken
		}
		return ai, nil
	case c.HasCert:
		return &Info{User: c.CommonName, Revision: rev}, nil
	}
	return nil, nil
}
