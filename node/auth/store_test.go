package auth

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/backend"
)

func openBackend(t *testing.T, path string) *backend.Backend {
	t.Helper()
	be, err := backend.Open(backend.Options{Path: path, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

type testStore struct {
	*Store
	t   *testing.T
	be  *backend.Backend
	clk *fakeClock
}

func newTestStore(t *testing.T, spec string) *testStore {
	t.Helper()
	be := openBackend(t, filepath.Join(t.TempDir(), "db"))
	t.Cleanup(func() { be.Close() })
	return openTestStore(t, be, spec)
}

func openTestStore(t *testing.T, be *backend.Backend, spec string) *testStore {
	t.Helper()
	clk := newFakeClock()
	s, err := New(Options{TokenSpec: spec, BcryptCost: bcrypt.MinCost, Logger: zap.NewNop(), now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(be); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &testStore{Store: s, t: t, be: be, clk: clk}
}

// do applies one mutation in its own batch, as the apply loop would.
func (ts *testStore) do(f func(tx *backend.BatchTx) error) error {
	tx := ts.be.BatchTx()
	defer tx.Unlock()
	return f(tx)
}

func (ts *testStore) must(f func(tx *backend.BatchTx) error) {
	ts.t.Helper()
	if err := ts.do(f); err != nil {
		ts.t.Fatal(err)
	}
}

func (ts *testStore) addUser(name, password string) {
	ts.t.Helper()
	h, err := ts.HashPassword(password)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.must(func(tx *backend.BatchTx) error {
		return ts.UserAdd(tx, &pb.AuthUserAddRequest{Name: name, HashedPassword: h})
	})
}

func (ts *testStore) login(name, password string) (string, error) {
	rev, err := ts.CheckPassword(name, password)
	if err != nil {
		return "", err
	}
	pre, err := ts.TokenPrefix()
	if err != nil {
		return "", err
	}
	_ = rev
	return ts.Authenticate(name, pre, 100)
}

func (ts *testStore) setupRootAndEnable() {
	ts.t.Helper()
	ts.addUser("root", "rootpw")
	ts.must(func(tx *backend.BatchTx) error { return ts.UserGrantRole(tx, "root", "root") })
	ts.must(ts.Enable)
}

func TestEnableNeedsRootWithRootRole(t *testing.T) {
	s := newTestStore(t, "simple")
	if s.Revision() != 1 || s.Enabled() {
		t.Fatalf("fresh store: revision %d enabled %v, want 1 false", s.Revision(), s.Enabled())
	}
	if err := s.do(s.Enable); err != rpctypes.ErrGRPCRootUserNotExist {
		t.Fatalf("enable without root: %v", err)
	}
	s.addUser("root", "pw")
	if err := s.do(s.Enable); err != rpctypes.ErrGRPCRootRoleNotExist {
		t.Fatalf("enable without root role: %v", err)
	}
	s.must(func(tx *backend.BatchTx) error { return s.UserGrantRole(tx, "root", "root") })
	rev := s.Revision()
	s.must(s.Enable)
	s.must(s.Enable) // twice is fine
	if !s.Enabled() || s.Revision() != rev {
		t.Fatalf("after enable: enabled %v revision %d, want true %d (enable does not move it)", s.Enabled(), s.Revision(), rev)
	}
	// root is protected while auth is on.
	for name, f := range map[string]func(tx *backend.BatchTx) error{
		"delete root":           func(tx *backend.BatchTx) error { return s.UserDelete(tx, "root") },
		"revoke root from root": func(tx *backend.BatchTx) error { return s.UserRevokeRole(tx, "root", "root") },
		"delete root role":      func(tx *backend.BatchTx) error { return s.RoleDelete(tx, "root") },
	} {
		if err := s.do(f); err != rpctypes.ErrGRPCInvalidAuthMgmt {
			t.Errorf("%s: %v, want %v", name, err, rpctypes.ErrGRPCInvalidAuthMgmt)
		}
	}
	s.do(func(tx *backend.BatchTx) error { s.Disable(tx); return nil })
	if s.Enabled() || s.Revision() != rev+1 {
		t.Fatalf("after disable: enabled %v revision %d, want false %d", s.Enabled(), s.Revision(), rev+1)
	}
}

// TestMutations runs user and role changes in order: each either fails
// with etcd's error and leaves the revision alone, or moves it by one.
func TestMutations(t *testing.T) {
	s := newTestStore(t, "simple")
	perm := func(typ authpb.Permission_Type, key, end string) *authpb.Permission {
		return &authpb.Permission{PermType: typ, Key: []byte(key), RangeEnd: []byte(end)}
	}
	h, _ := s.HashPassword("pw")
	steps := []struct {
		name string
		f    func(tx *backend.BatchTx) error
		err  error
		bump bool
	}{
		{"add alice", func(tx *backend.BatchTx) error {
			return s.UserAdd(tx, &pb.AuthUserAddRequest{Name: "alice", HashedPassword: h})
		}, nil, true},
		{"add alice again", func(tx *backend.BatchTx) error {
			return s.UserAdd(tx, &pb.AuthUserAddRequest{Name: "alice", HashedPassword: h})
		}, rpctypes.ErrGRPCUserAlreadyExist, false},
		{"add nameless", func(tx *backend.BatchTx) error { return s.UserAdd(tx, &pb.AuthUserAddRequest{HashedPassword: h}) }, rpctypes.ErrGRPCUserEmpty, false},
		{"add with bad hash", func(tx *backend.BatchTx) error {
			return s.UserAdd(tx, &pb.AuthUserAddRequest{Name: "x", HashedPassword: "!"})
		}, errNoPasswordUser, false},
		{"add nopass", func(tx *backend.BatchTx) error {
			return s.UserAdd(tx, &pb.AuthUserAddRequest{Name: "cert", Options: &authpb.UserAddOptions{NoPassword: true}})
		}, nil, true},
		{"grant missing role", func(tx *backend.BatchTx) error { return s.UserGrantRole(tx, "alice", "r") }, rpctypes.ErrGRPCRoleNotFound, false},
		{"grant to missing user", func(tx *backend.BatchTx) error { return s.UserGrantRole(tx, "bob", "root") }, rpctypes.ErrGRPCUserNotFound, false},
		{"add role", func(tx *backend.BatchTx) error { return s.RoleAdd(tx, "r") }, nil, true},
		{"add role again", func(tx *backend.BatchTx) error { return s.RoleAdd(tx, "r") }, rpctypes.ErrGRPCRoleAlreadyExist, false},
		{"add nameless role", func(tx *backend.BatchTx) error { return s.RoleAdd(tx, "") }, rpctypes.ErrGRPCRoleEmpty, false},
		{"grant role", func(tx *backend.BatchTx) error { return s.UserGrantRole(tx, "alice", "r") }, nil, true},
		{"grant role twice", func(tx *backend.BatchTx) error { return s.UserGrantRole(tx, "alice", "r") }, nil, false},
		{"grant perm", func(tx *backend.BatchTx) error {
			return s.RoleGrantPermission(tx, "r", perm(authpb.Permission_READ, "foo", "fop"))
		}, nil, true},
		{"grant perm upgrade", func(tx *backend.BatchTx) error {
			return s.RoleGrantPermission(tx, "r", perm(authpb.Permission_READWRITE, "foo", "fop"))
		}, nil, true},
		{"grant point", func(tx *backend.BatchTx) error {
			return s.RoleGrantPermission(tx, "r", perm(authpb.Permission_WRITE, "bar", ""))
		}, nil, true},
		{"grant empty key", func(tx *backend.BatchTx) error {
			return s.RoleGrantPermission(tx, "r", perm(authpb.Permission_READ, "", "\x00"))
		}, rpctypes.ErrGRPCInvalidAuthMgmt, false},
		{"grant inverted", func(tx *backend.BatchTx) error {
			return s.RoleGrantPermission(tx, "r", perm(authpb.Permission_READ, "b", "a"))
		}, rpctypes.ErrGRPCInvalidAuthMgmt, false},
		{"grant nil", func(tx *backend.BatchTx) error { return s.RoleGrantPermission(tx, "r", nil) }, rpctypes.ErrGRPCPermissionNotGiven, false},
		{"grant to missing role", func(tx *backend.BatchTx) error {
			return s.RoleGrantPermission(tx, "q", perm(authpb.Permission_READ, "a", ""))
		}, rpctypes.ErrGRPCRoleNotFound, false},
		{"revoke missing perm", func(tx *backend.BatchTx) error { return s.RoleRevokePermission(tx, "r", []byte("foo"), nil) }, rpctypes.ErrGRPCPermissionNotGranted, false},
		{"revoke role not granted", func(tx *backend.BatchTx) error { return s.UserRevokeRole(tx, "alice", "root") }, rpctypes.ErrGRPCRoleNotGranted, false},
		{"change password of missing user", func(tx *backend.BatchTx) error {
			return s.UserChangePassword(tx, &pb.AuthUserChangePasswordRequest{Name: "bob", HashedPassword: h})
		}, rpctypes.ErrGRPCUserNotFound, false},
		{"delete missing user", func(tx *backend.BatchTx) error { return s.UserDelete(tx, "bob") }, rpctypes.ErrGRPCUserNotFound, false},
		{"delete missing role", func(tx *backend.BatchTx) error { return s.RoleDelete(tx, "q") }, rpctypes.ErrGRPCRoleNotFound, false},
	}
	for _, st := range steps {
		before := s.Revision()
		err := s.do(st.f)
		if err != st.err {
			t.Fatalf("%s: err %v, want %v", st.name, err, st.err)
		}
		if moved := s.Revision() != before; moved != st.bump {
			t.Fatalf("%s: revision %d -> %d, want moved=%v", st.name, before, s.Revision(), st.bump)
		}
	}
	if got := s.UserList(); !slices.Equal(got, []string{"alice", "cert"}) {
		t.Errorf("users %v", got)
	}
	if roles, _ := s.UserGet("alice"); !slices.Equal(roles, []string{"r"}) {
		t.Errorf("alice's roles %v", roles)
	}
	perms, _ := s.RoleGet("r")
	want := []*authpb.Permission{perm(authpb.Permission_WRITE, "bar", ""), perm(authpb.Permission_READWRITE, "foo", "fop")}
	if !slices.EqualFunc(perms, want, func(a, b *authpb.Permission) bool { return proto.Equal(a, b) }) {
		t.Errorf("role r: %v, want %v", perms, want)
	}

	// Deleting the role takes it from alice.
	s.must(func(tx *backend.BatchTx) error { return s.RoleDelete(tx, "r") })
	if roles, _ := s.UserGet("alice"); len(roles) != 0 {
		t.Errorf("alice keeps %v after the role was deleted", roles)
	}
}

func TestChecks(t *testing.T) {
	s := newTestStore(t, "simple")
	s.addUser("alice", "pw")
	s.must(func(tx *backend.BatchTx) error { return s.RoleAdd(tx, "foo-rw") })
	s.must(func(tx *backend.BatchTx) error {
		return s.RoleGrantPermission(tx, "foo-rw", &authpb.Permission{PermType: authpb.Permission_READWRITE, Key: []byte("foo"), RangeEnd: []byte("fop")})
	})
	s.must(func(tx *backend.BatchTx) error { return s.UserGrantRole(tx, "alice", "foo-rw") })

	// Auth off: anything goes, even without a user.
	if err := s.CheckWrite(nil, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	s.setupRootAndEnable()
	alice := &Info{User: "alice", Revision: s.Revision()}
	root := &Info{User: "root", Revision: s.Revision()}
	noLease := func(int64) [][]byte { return nil }
	leaseWithBar := func(int64) [][]byte { return [][]byte{[]byte("bar")} }
	for _, tc := range []struct {
		name string
		err  error
		got  error
	}{
		{"no user", rpctypes.ErrGRPCUserEmpty, s.CheckRange(nil, []byte("foo"), nil)},
		{"alice reads foo", nil, s.CheckRange(alice, []byte("foo"), nil)},
		{"alice reads foo/ prefix", nil, s.CheckRange(alice, []byte("foo/"), []byte("foo0"))},
		{"alice reads all", rpctypes.ErrGRPCPermissionDenied, s.CheckRange(alice, []byte("\x00"), []byte("\x00"))},
		{"root reads all", nil, s.CheckRange(root, []byte("\x00"), []byte("\x00"))},
		{"unknown user", rpctypes.ErrGRPCPermissionDenied, s.CheckRange(&Info{User: "eve", Revision: s.Revision()}, []byte("foo"), nil)},
		{"stale revision", rpctypes.ErrGRPCAuthOldRevision, s.CheckRange(&Info{User: "alice", Revision: s.Revision() - 1}, []byte("foo"), nil)},
		{"put foo", nil, s.CheckPut(alice, &pb.PutRequest{Key: []byte("foo1")}, noLease)},
		{"put bar", rpctypes.ErrGRPCPermissionDenied, s.CheckPut(alice, &pb.PutRequest{Key: []byte("bar")}, noLease)},
		{"put on a lease holding bar", rpctypes.ErrGRPCPermissionDenied, s.CheckPut(alice, &pb.PutRequest{Key: []byte("foo1"), Lease: 5}, leaseWithBar)},
		{"delete foo prefix", nil, s.CheckDeleteRange(alice, &pb.DeleteRangeRequest{Key: []byte("foo"), RangeEnd: []byte("fop"), PrevKv: true})},
		{"txn comparing bar", rpctypes.ErrGRPCPermissionDenied, s.CheckTxn(alice, &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("bar")}},
		}, noLease)},
		{"txn with a nested put to bar in the failure branch", rpctypes.ErrGRPCPermissionDenied, s.CheckTxn(alice, &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("foo")}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("foo")}}}},
			Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{
				Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("bar")}}}},
			}}}},
		}, noLease)},
		{"alice is no admin", rpctypes.ErrGRPCPermissionDenied, s.IsAdmin(alice)},
		{"nobody is no admin", rpctypes.ErrGRPCUserEmpty, s.IsAdmin(nil)},
		{"a ghost is no admin", rpctypes.ErrGRPCUserNotFound, s.IsAdmin(&Info{User: "eve", Revision: 1})},
		{"root is admin", nil, s.IsAdmin(root)},
		{"root may revoke any lease", nil, s.CheckLeaseWrite(root, 1, leaseWithBar)},
		{"alice may not read bar on a lease", rpctypes.ErrGRPCPermissionDenied, s.CheckLeaseRead(alice, []int64{1}, leaseWithBar)},
	} {
		if tc.got != tc.err {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.err)
		}
	}
	if !s.HasRole("alice", "foo-rw") || s.HasRole("alice", "root") {
		t.Error("HasRole")
	}
}

func TestAuthenticateAndIdentify(t *testing.T) {
	s := newTestStore(t, "simple")
	s.addUser("alice", "pw")
	if _, err := s.CheckPassword("alice", "pw"); err != rpctypes.ErrGRPCAuthNotEnabled {
		t.Fatalf("check password with auth off: %v", err)
	}
	if ai, err := s.Identify(context.Background(), Credentials{Token: "x", HasToken: true}); ai != nil || err != nil {
		t.Fatalf("identify with auth off: %v %v", ai, err)
	}
	s.must(func(tx *backend.BatchTx) error {
		return s.UserAdd(tx, &pb.AuthUserAddRequest{Name: "cert", Options: &authpb.UserAddOptions{NoPassword: true}})
	})
	s.setupRootAndEnable()
	for _, tc := range []struct{ user, pw string }{{"alice", "wrong"}, {"nobody", "pw"}} {
		if _, err := s.login(tc.user, tc.pw); err != rpctypes.ErrGRPCAuthFailed {
			t.Errorf("login %s/%s: %v", tc.user, tc.pw, err)
		}
	}
	if _, err := s.login("cert", ""); err != errNoPasswordUser {
		t.Errorf("login of a no-password user: %v", err)
	}
	tok, err := s.login("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ai, err := s.Identify(ctx, Credentials{Token: tok, HasToken: true, CommonName: "ignored", HasCert: true})
	if err != nil || ai.User != "alice" || ai.Revision != s.Revision() {
		t.Fatalf("identify = %+v, %v", ai, err)
	}
	if _, err := s.Identify(ctx, Credentials{Token: "bogus.1", HasToken: true}); err != rpctypes.ErrGRPCInvalidAuthToken {
		t.Fatalf("bogus token: %v", err)
	}
	if ai, _ := s.Identify(ctx, Credentials{CommonName: "cert", HasCert: true}); ai == nil || ai.User != "cert" {
		t.Fatalf("certificate identity: %+v", ai)
	}
	if ai, _ := s.Identify(WithRoot(ctx), Credentials{}); ai == nil || ai.User != "root" {
		t.Fatalf("member's own identity: %+v", ai)
	}
	if ai, err := s.Identify(ctx, Credentials{}); ai != nil || err != nil {
		t.Fatalf("no credentials: %+v %v", ai, err)
	}
	// A password change drops alice's tokens.
	h, _ := s.HashPassword("pw2")
	s.must(func(tx *backend.BatchTx) error {
		return s.UserChangePassword(tx, &pb.AuthUserChangePasswordRequest{Name: "alice", HashedPassword: h})
	})
	if _, err := s.Identify(ctx, Credentials{Token: tok, HasToken: true}); err != rpctypes.ErrGRPCInvalidAuthToken {
		t.Fatalf("token after password change: %v", err)
	}
	if _, err := s.login("alice", "pw2"); err != nil {
		t.Fatal(err)
	}
}

// A JWT carries the auth revision it was issued at: any change of users,
// roles or permissions makes it stale everywhere, with etcd's error.
func TestJWTGoesStaleWhenAuthChanges(t *testing.T) {
	pub, priv := jwtKeyFiles(t, "ES256")
	s := newTestStore(t, "jwt,sign-method=ES256,pub-key="+pub+",priv-key="+priv)
	s.addUser("alice", "pw")
	s.must(func(tx *backend.BatchTx) error { return s.RoleAdd(tx, "all") })
	s.must(func(tx *backend.BatchTx) error {
		return s.RoleGrantPermission(tx, "all", &authpb.Permission{PermType: authpb.Permission_READ, Key: []byte{0}, RangeEnd: []byte{0}})
	})
	s.must(func(tx *backend.BatchTx) error { return s.UserGrantRole(tx, "alice", "all") })
	s.setupRootAndEnable()
	tok, err := s.login("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	ai, err := s.Identify(context.Background(), Credentials{Token: tok, HasToken: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckRange(ai, []byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	s.must(func(tx *backend.BatchTx) error { return s.RoleAdd(tx, "other") })
	ai, _ = s.Identify(context.Background(), Credentials{Token: tok, HasToken: true})
	if err := s.CheckRange(ai, []byte("k"), nil); err != rpctypes.ErrGRPCAuthOldRevision {
		t.Fatalf("check with a token from before a role was added: %v", err)
	}
	s.clk.advance(6 * time.Minute)
	if _, err := s.Identify(context.Background(), Credentials{Token: tok, HasToken: true}); err != rpctypes.ErrGRPCInvalidAuthToken {
		t.Fatalf("expired JWT: %v", err)
	}
}

// TestStateSurvivesReopen: users, roles, permissions, the enabled flag and
// the revision are in the backend, in etcd's encoding.
func TestStateSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	be := openBackend(t, path)
	s := openTestStore(t, be, "simple")
	s.addUser("alice", "pw")
	s.must(func(tx *backend.BatchTx) error { return s.RoleAdd(tx, "r") })
	s.must(func(tx *backend.BatchTx) error {
		return s.RoleGrantPermission(tx, "r", &authpb.Permission{PermType: authpb.Permission_WRITE, Key: []byte("a"), RangeEnd: []byte("b")})
	})
	s.must(func(tx *backend.BatchTx) error { return s.UserGrantRole(tx, "alice", "r") })
	s.setupRootAndEnable()
	rev := s.Revision()
	if v, _ := be.Get(backend.Auth, []byte("authRevision")); binary.BigEndian.Uint64(v) != rev {
		t.Fatalf("auth/authRevision = %x, want %d", v, rev)
	}
	if v, _ := be.Get(backend.Auth, []byte("authEnabled")); len(v) != 1 || v[0] != 1 {
		t.Fatalf("auth/authEnabled = %x", v)
	}
	v, _ := be.Get(backend.AuthUsers, []byte("alice"))
	u := &authpb.User{}
	if err := proto.Unmarshal(v, u); err != nil || string(u.Name) != "alice" || !slices.Equal(u.Roles, []string{"r"}) || bcrypt.CompareHashAndPassword(u.Password, []byte("pw")) != nil {
		t.Fatalf("authUsers/alice = %v, %v", u, err)
	}
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}

	be2 := openBackend(t, path)
	t.Cleanup(func() { be2.Close() })
	s2 := openTestStore(t, be2, "simple")
	if !s2.Enabled() || s2.Revision() != rev {
		t.Fatalf("reopened: enabled %v revision %d, want true %d", s2.Enabled(), s2.Revision(), rev)
	}
	if err := s2.CheckWrite(&Info{User: "alice", Revision: rev}, []byte("a1"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.login("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if got := s2.RoleList(); !slices.Equal(got, []string{"r"}) {
		t.Fatalf("roles %v", got)
	}
}
