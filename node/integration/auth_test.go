package integration

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballastdb/ballast/node/concurrency/concurrencypb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Authentication, through real etcdctl and client/v3: users, roles,
// permissions, simple and JWT tokens, across members, restarts, snapshots
// and client certificates. The exact texts are compared with etcd's by
// hack/compat (TestAuth*); here they show what each step does.

const (
	errUserEmpty   = "etcdserver: user name is empty"
	errDenied      = "etcdserver: permission denied"
	errAuthFailed  = "etcdserver: authentication failed, invalid user ID or password"
	errInvalidMgmt = "etcdserver: invalid auth management"
)

// authSetupSteps create root, a reader and a writer of app/, and carol who
// may do anything through a role granted on the empty key with --prefix
// (etcd's "every key"), then enable auth.
func authSetupSteps() []step {
	return []step{
		{args: []string{"auth", "status"}, want: "Authentication Status: false\nAuthRevision: 1\n"},
		{args: []string{"user", "add", "root:rootpw"}, want: "User root created\n"},
		{args: []string{"role", "add", "reader"}, want: "Role reader created\n"},
		{args: []string{"role", "grant-permission", "reader", "--prefix", "read", "app/"}, want: "Role reader updated\n"},
		{args: []string{"role", "add", "writer"}, want: "Role writer created\n"},
		{args: []string{"role", "grant-permission", "writer", "--prefix", "readwrite", "app/"}, want: "Role writer updated\n"},
		{args: []string{"role", "add", "everything"}, want: "Role everything created\n"},
		{args: []string{"role", "grant-permission", "everything", "--prefix", "readwrite", ""}, want: "Role everything updated\n"},
		{args: []string{"user", "add", "alice:alicepw"}, want: "User alice created\n"},
		{args: []string{"user", "grant-role", "alice", "writer"}, want: "Role writer is granted to user alice\n"},
		{args: []string{"user", "add", "bob:bobpw"}, want: "User bob created\n"},
		{args: []string{"user", "grant-role", "bob", "reader"}, want: "Role reader is granted to user bob\n"},
		{args: []string{"user", "add", "carol:carolpw"}, want: "User carol created\n"},
		{args: []string{"user", "grant-role", "carol", "everything"}, want: "Role everything is granted to user carol\n"},
		// etcdctl creates the root role and grants it to root on the way.
		{args: []string{"auth", "enable"}, want: "Authentication Enabled\n"},
	}
}

// authUseSteps use and change what authSetupSteps made.
func authUseSteps() []step {
	root, alice, bob, carol := "--user=root:rootpw", "--user=alice:alicepw", "--user=bob:bobpw", "--user=carol:carolpw"
	return []step{
		{args: []string{"put", "app/x", "1"}, wantErr: errUserEmpty},
		{args: []string{alice, "put", "app/x", "1"}, want: "OK\n"},
		{args: []string{alice, "put", "other", "1"}, wantErr: errDenied},
		{args: []string{bob, "get", "app/x", "--print-value-only"}, want: "1\n"},
		{args: []string{bob, "put", "app/y", "1"}, wantErr: errDenied},
		{args: []string{bob, "get", "", "--prefix"}, wantErr: errDenied},
		{args: []string{"--user=bob:wrong", "get", "app/x"}, wantErr: errAuthFailed},
		{args: []string{"--user=nobody:pw", "get", "app/x"}, wantErr: errAuthFailed},
		{args: []string{carol, "put", "zzz", "1"}, want: "OK\n"},
		{args: []string{carol, "get", "", "--prefix", "--keys-only"}, want: "app/x\n\nzzz\n\n"},
		{args: []string{carol, "compaction", "2"}, wantErr: errDenied},
		{args: []string{root, "compaction", "2"}, want: "compacted revision 2\n"},
		{args: []string{alice, "user", "list"}, wantErr: errDenied},
		{args: []string{root, "user", "list"}, want: "alice\nbob\ncarol\nroot\n"},
		{args: []string{root, "role", "list"}, want: "everything\nreader\nroot\nwriter\n"},
		{args: []string{alice, "user", "get", "alice"}, want: "User: alice\nRoles: writer\n"},
		{args: []string{alice, "user", "get", "bob"}, wantErr: errDenied},
		{args: []string{alice, "role", "get", "writer"}, want: "Role writer\nKV Read:\n\t[app/, app0) (prefix app/)\nKV Write:\n\t[app/, app0) (prefix app/)\n"},
		{args: []string{alice, "role", "get", "reader"}, wantErr: errDenied},
		{args: []string{root, "role", "get", "root"}, want: "Role root\nKV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n"},
		{args: []string{alice, "snapshot", "save", "/dev/null"}, wantErr: errDenied},
		{args: []string{alice, "member", "list"}, wantRe: `, started, m1, `},
		{args: []string{root, "user", "passwd", "bob", "--interactive=false"}, stdin: "newpw\n", want: "Password updated\n"},
		{args: []string{bob, "get", "app/x"}, wantErr: errAuthFailed},
		{args: []string{"--user=bob:newpw", "get", "app/x", "--print-value-only"}, want: "1\n"},
		{args: []string{root, "user", "revoke-role", "root", "root"}, wantErr: errInvalidMgmt},
		{args: []string{root, "user", "delete", "root"}, wantErr: errInvalidMgmt},
		{args: []string{root, "role", "delete", "root"}, wantErr: errInvalidMgmt},
		{args: []string{root, "user", "delete", "bob"}, want: "User bob deleted\n"},
		{args: []string{"--user=bob:newpw", "get", "app/x"}, wantErr: errAuthFailed},
		{args: []string{root, "role", "revoke-permission", "writer", "--prefix", "app/"}, want: "Permission of range [app/, app0) is revoked from role writer\n"},
		{args: []string{alice, "put", "app/x", "2"}, wantErr: errDenied},
		{args: []string{root, "auth", "status"}, wantRe: `^Authentication Status: true\nAuthRevision: \d+\n$`},
		{args: []string{root, "auth", "disable"}, want: "Authentication Disabled\n"},
		{args: []string{"put", "app/x", "3"}, want: "OK\n"},
		{args: []string{"auth", "status"}, wantRe: `^Authentication Status: false\nAuthRevision: \d+\n$`},
		{args: []string{"user", "list"}, want: "alice\ncarol\nroot\n"},
	}
}

func TestEtcdctlAuthSimpleToken(t *testing.T) {
	m := startMember(t)
	runSteps(t, m, append(authSetupSteps(), authUseSteps()...))
}

func TestEtcdctlAuthJWT(t *testing.T) {
	pub, priv := rsaKeyFiles(t)
	m := startMember(t, withArgs("--auth-token", "jwt,pub-key="+pub+",priv-key="+priv+",sign-method=RS512,ttl=10m"))
	runSteps(t, m, authSetupSteps())

	// The token is a JWT; once the auth state moves, it is stale.
	conn := grpcConn(t, m)
	tok := authenticate(t, conn, "alice", "alicepw")
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q is not a JWT", tok)
	}
	kv := pb.NewKVClient(conn)
	ctx := ctxT(t, 30*time.Second)
	if _, err := kv.Put(withToken(ctx, tok), &pb.PutRequest{Key: []byte("app/x"), Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	m.mustEtcdctl("--user=root:rootpw", "role", "add", "another")
	if _, err := kv.Put(withToken(ctx, tok), &pb.PutRequest{Key: []byte("app/x"), Value: []byte("1")}); !sameStatus(err, rpctypes.ErrGRPCAuthOldRevision) {
		t.Fatalf("put with a token issued before a role was added: %v, want %v", err, rpctypes.ErrGRPCAuthOldRevision)
	}
	if _, err := kv.Range(withToken(ctx, "not.a.jwt"), &pb.RangeRequest{Key: []byte("app/x")}); !sameStatus(err, rpctypes.ErrGRPCInvalidAuthToken) {
		t.Fatalf("range with a bad token: %v", err)
	}
	m.mustEtcdctl("--user=root:rootpw", "role", "delete", "another")
	// etcdctl (client/v3) authenticates again by itself.
	runSteps(t, m, authUseSteps())
}

// TestAuthClientV3 drives the permission checks beyond plain keys with
// client/v3: watches, leases, transactions, and the HTTP gateway.
func TestAuthClientV3(t *testing.T) {
	m := startMember(t)
	runSteps(t, m, authSetupSteps())
	ctx := ctxT(t, 60*time.Second)
	root := m.userClient("root", "rootpw")
	alice := m.userClient("alice", "alicepw")

	// Watches: refused at creation outside alice's range.
	wch := alice.Watch(ctx, "other")
	wr := <-wch
	if !wr.Canceled || !strings.Contains(wr.Err().Error(), errDenied) {
		t.Fatalf("watch on a key alice may not read: canceled=%v err=%v", wr.Canceled, wr.Err())
	}
	wch = alice.Watch(ctx, "app/", clientv3.WithPrefix())
	if _, err := root.Put(ctx, "app/w", "1"); err != nil {
		t.Fatal(err)
	}
	if wr := <-wch; wr.Err() != nil || len(wr.Events) != 1 || string(wr.Events[0].Kv.Key) != "app/w" {
		t.Fatalf("watch on app/: %+v %v", wr, wr.Err())
	}

	// Leases: revoking (or extending, or listing the keys of) a lease that
	// holds a key alice may not write is refused.
	lease, err := root.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "other", "1", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Revoke(ctx, lease.ID); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice revokes root's lease: %v", err)
	}
	if _, err := alice.KeepAliveOnce(ctx, lease.ID); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice keeps root's lease alive: %v", err)
	}
	if _, err := alice.TimeToLive(ctx, lease.ID, clientv3.WithAttachedKeys()); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice lists root's lease keys: %v", err)
	}
	if _, err := alice.TimeToLive(ctx, lease.ID); err != nil {
		t.Fatalf("alice asks the lease's TTL: %v", err)
	}
	if _, err := alice.Put(ctx, "app/leased", "1", clientv3.WithLease(lease.ID)); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice attaches a key to root's lease: %v", err)
	}
	own, err := alice.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Put(ctx, "app/leased", "1", clientv3.WithLease(own.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Revoke(ctx, own.ID); err != nil {
		t.Fatalf("alice revokes her own lease: %v", err)
	}
	if _, err := alice.Leases(ctx); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice lists leases holding root's key: %v", err)
	}
	if _, err := root.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}

	// Transactions: every compare and both branches are checked.
	_, err = alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("other"), "=", "1")).Then(clientv3.OpPut("app/t", "1")).Commit()
	if !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("txn comparing a key alice may not read: %v", err)
	}
	_, err = alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("app/x"), "=", "1")).Then(clientv3.OpGet("app/x")).Else(clientv3.OpGet("other")).Commit()
	if !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("read-only txn with a read of other in its else branch: %v", err)
	}
	if _, err := alice.Txn(ctx).Then(clientv3.OpPut("app/t", "1"), clientv3.OpGet("app/", clientv3.WithPrefix())).Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Compact(ctx, 2); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice compacts: %v", err)
	}
	if _, err := alice.Status(ctx, m.client); err != nil {
		t.Fatalf("alice asks for the status: %v", err)
	}
	if _, err := alice.Defragment(ctx, m.client); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice defragments: %v", err)
	}
	if _, err := alice.MemberAdd(ctx, []string{"http://127.0.0.1:1"}); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice adds a member: %v", err)
	}

	// The HTTP gateway: authenticate, then send the token as the
	// Authorization header.
	var auth struct {
		Token string `json:"token"`
	}
	gatewayPost(t, m, "/v3/auth/authenticate", "", `{"name":"alice","password":"alicepw"}`, http.StatusOK, &auth)
	if auth.Token == "" {
		t.Fatal("no token from /v3/auth/authenticate")
	}
	gatewayPost(t, m, "/v3/kv/put", auth.Token, `{"key":"YXBwL2d3","value":"MQ=="}`, http.StatusOK, nil) // app/gw = 1
	var denied struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	gatewayPost(t, m, "/v3/kv/put", auth.Token, `{"key":"b3RoZXI=","value":"MQ=="}`, http.StatusForbidden, &denied) // other
	if denied.Message != errDenied {
		t.Fatalf("gateway put outside alice's range: %+v", denied)
	}
	gatewayPost(t, m, "/v3/kv/put", "", `{"key":"YXBwL2d3","value":"MQ=="}`, http.StatusBadRequest, &denied)
	if denied.Message != errUserEmpty {
		t.Fatalf("gateway put without a token: %+v", denied)
	}
	// /health reads as the member itself.
	resp, err := http.Get(m.client + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		t.Fatalf("/health with auth on: %d %s", resp.StatusCode, body)
	}
}

// TestAuthClusterSimpleToken: auth changes reach every member, also one
// that was down and catches up by raft snapshot, and a simple token
// obtained through one member works on the others (each waits until it has
// applied the Authenticate entry).
func TestAuthClusterSimpleToken(t *testing.T) {
	c := startCluster(t, 3, snapArgs...)
	m1 := c.members[0]
	runSteps(t, m1, authSetupSteps())
	ctx := ctxT(t, 120*time.Second)

	// A follower misses a user, a role grant and enough writes that the
	// leader's log no longer holds them: it gets them in a snapshot.
	lead := authLeader(t, ctx, c)
	f := followers(c, lead)[0]
	f.stop()
	lead.mustEtcdctl("--user=root:rootpw", "user", "add", "dave:davepw")
	lead.mustEtcdctl("--user=root:rootpw", "user", "grant-role", "dave", "writer")
	carol := lead.userClient("carol", "carolpw")
	for i := range 200 {
		if _, err := carol.Put(ctx, fmt.Sprintf("bulk/%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	f.restart()
	waitLog(t, f, logInstalled, 10*time.Second)
	want := lead.mustEtcdctl("--user=root:rootpw", "auth", "status")
	runSteps(t, f, []step{
		{args: []string{"--user=root:rootpw", "auth", "status"}, want: want},
		{args: []string{"--user=dave:davepw", "put", "app/dave", "1"}, want: "OK\n"},
		{args: []string{"--user=dave:davepw", "put", "other", "1"}, wantErr: errDenied},
	})

	for i := range 3 {
		from := c.members[i]
		tok := authenticate(t, grpcConn(t, from), "alice", "alicepw")
		for _, to := range c.members {
			kv := pb.NewKVClient(grpcConn(t, to))
			key := "app/" + from.name + "-" + to.name
			if _, err := kv.Put(withToken(ctx, tok), &pb.PutRequest{Key: []byte(key), Value: []byte("v")}); err != nil {
				t.Fatalf("token from %s used on %s: %v", from.name, to.name, err)
			}
			if _, err := kv.Put(withToken(ctx, tok), &pb.PutRequest{Key: []byte("other"), Value: []byte("v")}); !sameStatus(err, rpctypes.ErrGRPCPermissionDenied) {
				t.Fatalf("token from %s used on %s outside its range: %v", from.name, to.name, err)
			}
		}
	}
	for _, m := range c.members {
		if out := m.mustEtcdctl("--user=root:rootpw", "user", "list"); out != "alice\nbob\ncarol\ndave\nroot\n" {
			t.Fatalf("%s: user list %q", m.name, out)
		}
		if out := m.mustEtcdctl("--user=carol:carolpw", "get", "app/", "--prefix", "--keys-only", "--consistency=s"); strings.Count(out, "app/") != 10 {
			t.Fatalf("%s: keys %q", m.name, out)
		}
	}
}

// TestAuthClusterJWT: JWTs signed by one member are checked by the others
// with the public key alone; a member without the private key verifies
// tokens but cannot issue them.
func TestAuthClusterJWT(t *testing.T) {
	pub, priv := rsaKeyFiles(t)
	c := newCluster(t, 3)
	for i, m := range c.members {
		spec := "jwt,sign-method=RS256,pub-key=" + pub
		if i < 2 {
			spec += ",priv-key=" + priv
		}
		m.args = append(m.args, "--auth-token", spec)
	}
	c.start()
	runSteps(t, c.members[0], authSetupSteps())
	ctx := ctxT(t, 60*time.Second)
	tok := authenticate(t, grpcConn(t, c.members[1]), "alice", "alicepw")
	for _, m := range c.members {
		if _, err := pb.NewKVClient(grpcConn(t, m)).Put(withToken(ctx, tok), &pb.PutRequest{Key: []byte("app/" + m.name), Value: []byte("v")}); err != nil {
			t.Fatalf("JWT from m2 used on %s: %v", m.name, err)
		}
	}
	_, err := pb.NewAuthClient(grpcConn(t, c.members[2])).Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	if st, _ := status.FromError(err); err == nil || st.Message() != "auth: token signing attempted with verify-only key" {
		t.Fatalf("authenticate on the verify-only member: %v", err)
	}
}

// TestAuthSurvivesRestartAndSnapshotRestore: users, roles, permissions and
// the enabled flag are in the backend: a restart keeps them, and so does a
// snapshot restored with etcdutl.
func TestAuthSurvivesRestartAndSnapshotRestore(t *testing.T) {
	m := startMember(t)
	runSteps(t, m, authSetupSteps())
	m.mustEtcdctl("--user=alice:alicepw", "put", "app/x", "1")
	authStatus := m.mustEtcdctl("--user=root:rootpw", "auth", "status")
	check := func(m *member) {
		t.Helper()
		runSteps(t, m, []step{
			{args: []string{"--user=root:rootpw", "auth", "status"}, want: authStatus},
			{args: []string{"get", "app/x"}, wantErr: errUserEmpty},
			{args: []string{"--user=alice:alicepw", "get", "app/x", "--print-value-only"}, want: "1\n"},
			{args: []string{"--user=alice:alicepw", "put", "other", "1"}, wantErr: errDenied},
			{args: []string{"--user=bob:bobpw", "get", "app/x", "--print-value-only"}, want: "1\n"},
			{args: []string{"--user=root:rootpw", "user", "list"}, want: "alice\nbob\ncarol\nroot\n"},
			{args: []string{"--user=root:rootpw", "role", "get", "reader"}, want: "Role reader\nKV Read:\n\t[app/, app0) (prefix app/)\nKV Write:\n"},
		})
	}
	m.stop()
	m.restart()
	check(m)

	file := filepath.Join(t.TempDir(), "snap.db")
	m.mustEtcdctl("--user=root:rootpw", "snapshot", "save", file)
	restored := newMember(t)
	restored.name = "restored"
	if _, errOut, err := runTool(etcdutlBin, "snapshot", "restore", file, "--data-dir", restored.dataDir,
		"--name", restored.name, "--initial-cluster", restored.name+"="+restored.peer,
		"--initial-advertise-peer-urls", restored.peer); err != nil {
		t.Fatalf("etcdutl snapshot restore: %v: %s", err, errOut)
	}
	restored.start()
	check(restored)
}

// TestAuthClientCertCommonName: with --client-cert-auth, a client that
// sends no token is the user its certificate's CN names; a token (from
// --user) wins over the certificate.
func TestAuthClientCertCommonName(t *testing.T) {
	p := newPKI(t)
	srvCert, srvKey, _ := p.issue("server", "server")
	aliceCert, aliceKey, _ := p.issue("alice", "alice")
	rootCert, rootKey, _ := p.issue("root", "root")
	m := newMember(t)
	m.client = httpsURL(m.client)
	m.args = append(m.args, "--cert-file", srvCert, "--key-file", srvKey, "--client-cert-auth", "--trusted-ca-file", p.caFile)
	m.start()
	asRoot := []string{"--cacert=" + p.caFile, "--cert=" + rootCert, "--key=" + rootKey}
	asAlice := []string{"--cacert=" + p.caFile, "--cert=" + aliceCert, "--key=" + aliceKey}
	run := func(flags []string, wantErr string, args ...string) string {
		t.Helper()
		out, errOut, err := etcdctlTLS(m.client, flags, args...)
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("etcdctl %v: %v\n%s%s", args, err, out, errOut)
		case wantErr != "" && (err == nil || !strings.Contains(errOut, wantErr)):
			t.Fatalf("etcdctl %v: err %v, stderr %q; want %q", args, err, errOut, wantErr)
		}
		return out
	}
	run(asRoot, "", "user", "add", "root:rootpw")
	run(asRoot, "", "user", "add", "alice", "--no-password")
	run(asRoot, "", "role", "add", "app")
	run(asRoot, "", "role", "grant-permission", "app", "--prefix", "readwrite", "app/")
	run(asRoot, "", "user", "grant-role", "alice", "app")
	run(asRoot, "", "auth", "enable")
	// No password needed: the certificates say who is who.
	run(asRoot, "", "put", "other", "1")
	run(asAlice, "", "put", "app/x", "1")
	if out := run(asAlice, "", "get", "app/x", "--print-value-only"); out != "1\n" {
		t.Fatalf("alice reads app/x: %q", out)
	}
	run(asAlice, errDenied, "get", "other")
	run(asAlice, errDenied, "user", "list")
	// Username and password win over the certificate.
	if out := run(append(asAlice, "--user=root:rootpw"), "", "get", "other", "--print-value-only"); out != "1\n" {
		t.Fatalf("root over alice's certificate reads other: %q", out)
	}
	// A no-password user cannot log in with a password.
	run(append(asRoot, "--user=alice:x"), "password was given for no password user", "get", "app/x")
	testCertUserLockService(t, m, p, aliceCert, aliceKey)
}

// testCertUserLockService: the Lock service acts for a caller known only by
// its client certificate (it reaches the member over an in-memory
// connection, so the certificate's CN must travel with its calls), and a
// network client cannot claim another CN through that channel.
func testCertUserLockService(t *testing.T, m *member, p *testPKI, certFile, keyFile string) {
	ctx := ctxT(t, time.Minute)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.client}, DialTimeout: 5 * time.Second,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: p.pool()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	lock := concurrencypb.NewLockClient(cli.ActiveConnection())
	r, err := lock.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("app/lock"), Lease: int64(lease.ID)})
	if err != nil {
		t.Fatalf("alice locks app/lock with her certificate: %v", err)
	}
	if want := lockKey("app/lock", int64(lease.ID)); string(r.Key) != want {
		t.Fatalf("lock key = %q, want %q", r.Key, want)
	}
	if _, err := lock.Unlock(ctx, &concurrencypb.UnlockRequest{Key: r.Key}); err != nil {
		t.Fatalf("alice unlocks: %v", err)
	}
	// (The service passes client/v3's error on as etcd's does: code Unknown.)
	_, err = lock.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("other"), Lease: int64(lease.ID)})
	checkStatus(t, err, codes.Unknown, errDenied)

	// The metadata that carries the CN inside the member means nothing
	// from the network: alice stays alice, whatever she claims.
	claim := metadata.AppendToOutgoingContext(ctx, "ballast-forwarded-cn-bin", "root")
	_, err = pb.NewKVClient(cli.ActiveConnection()).Range(claim, &pb.RangeRequest{Key: []byte("other")})
	checkStatus(t, err, codes.PermissionDenied, errDenied)
	_, err = lock.Lock(claim, &concurrencypb.LockRequest{Name: []byte("other"), Lease: int64(lease.ID)})
	checkStatus(t, err, codes.Unknown, errDenied)
}

// authLeader is c.leader for a cluster with auth on: Status needs a user.
func authLeader(t *testing.T, ctx context.Context, c *cluster) *member {
	t.Helper()
	clients := map[*member]*clientv3.Client{}
	for _, m := range c.members {
		clients[m] = m.userClient("root", "rootpw")
	}
	for {
		for _, m := range c.members {
			st, err := clients[m].Status(ctx, m.client)
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return m
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no leader found")
		case <-time.After(100 * time.Millisecond): // polling: no leader event across processes
		}
	}
}

// userClient is a client/v3 client logged in as user.
func (m *member) userClient(user, password string) *clientv3.Client {
	m.t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{m.client}, DialTimeout: 5 * time.Second,
		Username: user, Password: password, Logger: zap.NewNop()})
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { c.Close() })
	return c
}

// grpcConn is a plain gRPC connection to m, for calls with a token of the
// test's choosing (client/v3 manages its token itself).
func grpcConn(t *testing.T, m *member) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(m.client, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func authenticate(t *testing.T, conn *grpc.ClientConn, user, password string) string {
	t.Helper()
	resp, err := pb.NewAuthClient(conn).Authenticate(ctxT(t, 30*time.Second), &pb.AuthenticateRequest{Name: user, Password: password})
	if err != nil {
		t.Fatalf("authenticate %s: %v", user, err)
	}
	return resp.Token
}

// withToken sends tok the way client/v3 does.
func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, tok)
}

func sameStatus(err, want error) bool {
	a, _ := status.FromError(err)
	b, _ := status.FromError(want)
	return err != nil && a.Code() == b.Code() && a.Message() == b.Message()
}

// rsaKeyFiles writes a fresh RSA key pair as PEM files for --auth-token jwt.
func rsaKeyFiles(t *testing.T) (pub, priv string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pub, priv = filepath.Join(dir, "jwt.pub"), filepath.Join(dir, "jwt.key")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{pub, "PUBLIC KEY", pubDER}, {priv, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return pub, priv
}

// gatewayPost sends a JSON body to the HTTP gateway, with the token (if
// any) in the Authorization header as etcd's gateway expects, and decodes
// the answer into out.
func gatewayPost(t *testing.T, m *member, path, token, body string, wantStatus int, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, m.client+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("POST %s: %d %s, want status %d", path, resp.StatusCode, data, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("POST %s: %s: %v", path, data, err)
		}
	}
}
