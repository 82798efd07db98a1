package compat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Authentication: users, roles, permissions, tokens, and what each user
// may do once auth is on.

const (
	asRoot  = "--user=root:rootpw"
	asAlice = "--user=alice:alicepw"
)

// authAdminSteps build users and roles with every kind of permission, every
// refusal on the way, and enable auth.
func authAdminSteps() []step {
	return []step{
		ctl("auth", "status"),
		ctl("auth", "status", "-w", "json"),
		ctlFail("auth", "enable"), // no root user yet
		ctl("user", "add", "root:rootpw"),
		ctlFail("user", "add", "root:other"),
		ctl("user", "add", "alice:alicepw"),
		ctl("user", "add", "nopass", "--no-password"),
		ctl("user", "list"),
		ctl("user", "list", "-w", "json"),
		ctl("role", "add", "app"),
		ctlFail("role", "add", "app"),
		ctl("role", "grant-permission", "app", "--prefix", "readwrite", "app/"),
		ctl("role", "grant-permission", "app", "read", "single"),
		ctl("role", "grant-permission", "app", "write", "a", "c"),
		ctl("role", "grant-permission", "app", "--from-key", "read", "m"),
		ctl("role", "grant-permission", "app", "readwrite", "single"), // changes the type in place
		ctl("role", "get", "app"),
		ctl("role", "get", "app", "-w", "json"),
		ctl("role", "add", "all"),
		ctl("role", "grant-permission", "all", "--prefix", "readwrite", ""),
		ctl("role", "grant-permission", "all", "--from-key", "read", ""),
		ctl("role", "get", "all", "-w", "json"),
		ctlFail("role", "grant-permission", "missing", "read", "x"),
		ctlFail("role", "get", "missing"),
		ctlFail("role", "revoke-permission", "app", "nothing"),
		ctlFail("role", "revoke-permission", "missing", "x"),
		ctl("role", "list"),
		ctl("role", "list", "-w", "json"),
		ctl("user", "grant-role", "alice", "app"),
		ctl("user", "grant-role", "alice", "app"), // twice: nothing changes
		ctlFail("user", "grant-role", "alice", "missing"),
		ctlFail("user", "grant-role", "missing", "app"),
		ctl("user", "grant-role", "nopass", "all"),
		ctl("user", "get", "alice"),
		ctl("user", "get", "alice", "--detail"),
		ctl("user", "get", "alice", "-w", "json"),
		ctlFail("user", "get", "missing"),
		ctlFail("user", "revoke-role", "alice", "all"),
		ctlFail("user", "revoke-role", "missing", "all"),
		ctl("auth", "status", "-w", "json"),
		// etcdctl adds the root role and grants it to root, then enables.
		ctl("auth", "enable"),
		ctl("auth", "status", asRoot),
		ctl("auth", "status", asRoot, "-w", "json"),
		ctl("role", "list", asRoot),
		ctl("user", "get", "root", asRoot),
		ctl("role", "get", "root", asRoot),
		ctl("role", "get", "root", asRoot, "-w", "json"),
	}
}

func TestAuthEtcdctl(t *testing.T) {
	t.Parallel()
	steps := append(authAdminSteps(),
		// Keys.
		ctlFail("put", "app/x", "1"),
		ctl("put", "app/x", "1", asAlice),
		ctlFail("put", "zz", "1", asAlice),
		ctl("get", "zz", asAlice),
		ctlFail("get", "app/x", "--user=alice:wrong"),
		ctlFail("get", "app/x", "--user=nobody:pw"),
		ctlFail("get", "app/x", "--user=nopass:pw"),
		ctl("get", "app/", "--prefix", asAlice, "-w", "json"),
		ctlFail("get", "", "--prefix", asAlice),
		ctl("get", "single", asAlice),
		ctl("put", "single", "1", asAlice),
		ctl("put", "b", "1", asAlice),
		ctlFail("get", "b", asAlice),
		ctlFail("del", "b", "--prev-kv", asAlice),
		ctl("del", "b", asAlice),
		ctl("get", "m", "--from-key", asAlice),
		ctlFail("get", "l", "--from-key", asAlice),
		ctl("get", "", "--prefix", "--user=root:rootpw", "-w", "json"),
		step{ctl: []string{"txn", "--interactive=false", asAlice}, stdin: txn([]string{`value("b") = "1"`}, []string{"put app/t 1"}, nil), fail: true},
		step{ctl: []string{"txn", "--interactive=false", asAlice}, stdin: txn([]string{`value("app/x") = "1"`}, []string{"put app/t 1"}, []string{"get b"}), fail: true},
		step{ctl: []string{"txn", "--interactive=false", asAlice}, stdin: txn([]string{`value("app/x") = "1"`}, []string{"put app/t 1"}, []string{"get app/x"})},
		step{ctl: []string{"txn", "--interactive=false", asAlice}, stdin: txn(nil, []string{"get single"}, nil)},
		step{ctl: []string{"txn", "--interactive=false", asAlice}, stdin: txn(nil, []string{"get b"}, nil), fail: true},
		watchCtl(3, "app/x", asAlice, "--rev", "1"),
		watchCtl(3, "b", asAlice, "--rev", "1"),
		// Administration.
		ctlFail("compaction", "1", asAlice),
		ctl("compaction", "2", asRoot),
		ctlFail("endpoint", "hashkv", asAlice),
		ctl("endpoint", "hashkv", asRoot, "-w", "json"),
		ctlFail("defrag", asAlice),
		ctlFail("snapshot", "save", "{{tmp}}/s.db", asAlice),
		ctlFail("member", "list"),
		ctl("member", "list", asAlice, "-w", "json"),
		ctlFail("member", "remove", "1234", asAlice),
		ctlFail("member", "add", "m9", "--peer-urls=http://127.0.0.1:1", asAlice),
		ctl("alarm", "list", asAlice),
		ctlFail("alarm", "list"),
		ctl("alarm", "disarm", asAlice), // no alarm: etcdctl sends no disarm
		ctl("alarm", "disarm", asRoot),
		ctlFail("move-leader", "{{member}}", asAlice),
		ctl("move-leader", "{{member}}", asRoot),
		ctlFail("endpoint", "status"),
		ctlFail("lease", "grant", "100"),
		ctl("lease", "grant", "100", asAlice),
		ctl("lease", "list", asAlice),
		ctl("lease", "timetolive", "{{lease1}}", "--keys", asAlice),
		ctl("lease", "revoke", "{{lease1}}", asAlice),
		// Users and roles, as alice and as root.
		ctl("user", "get", "alice", asAlice),
		ctlFail("user", "get", "root", asAlice),
		ctl("role", "get", "app", asAlice),
		ctlFail("role", "get", "all", asAlice),
		ctlFail("user", "list", asAlice),
		ctlFail("role", "list", asAlice),
		ctlFail("role", "add", "x", asAlice),
		ctlFail("user", "add", "x:y", asAlice),
		ctlFail("auth", "disable", asAlice),
		ctl("auth", "status", asAlice),
		ctlFail("user", "delete", "root", asRoot),
		ctlFail("user", "revoke-role", "root", "root", asRoot),
		ctlFail("role", "delete", "root", asRoot),
		ctl("auth", "enable", asRoot),
		step{ctl: []string{"user", "passwd", "alice", "--interactive=false", asRoot}, stdin: "newpw\n"},
		ctlFail("get", "app/x", asAlice),
		ctl("get", "app/x", "--user=alice:newpw"),
		ctl("role", "revoke-permission", "app", "--prefix", "app/", asRoot),
		ctlFail("role", "revoke-permission", "app", "--prefix", "app/", asRoot),
		ctlFail("get", "app/x", "--user=alice:newpw"),
		ctl("role", "get", "app", asRoot, "-w", "json"),
		ctl("user", "revoke-role", "alice", "app", asRoot),
		ctl("user", "get", "alice", asRoot, "-w", "json"),
		ctl("role", "delete", "all", asRoot),
		ctlFail("role", "delete", "all", asRoot),
		ctl("user", "get", "nopass", asRoot),
		ctl("user", "delete", "alice", asRoot),
		ctlFail("user", "delete", "alice", asRoot),
		ctl("auth", "status", asRoot, "-w", "json"),
		ctl("auth", "disable", asRoot),
		ctl("auth", "disable"),
		ctl("auth", "status"),
		ctl("put", "zz", "1"),
		ctl("user", "delete", "root"),
		ctl("role", "delete", "root"),
		ctl("user", "list"),
		ctl("role", "list"),
		ctlFail("auth", "enable"),
		ctl("endpoint", "status", "-w", "json"),
	)
	runScenario(t, scenario{name: "auth-etcdctl", steps: steps})
}

// login is a client/v3 client of e's server, logged in as user.
func login(e *env, user, password string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: []string{e.srv.client}, DialTimeout: 5 * time.Second,
		Username: user, Password: password, Logger: zap.NewNop()})
}

// asUser runs f with a client/v3 client logged in as user; a failed login
// is the step's answer.
func asUser(user, password string, f func(ctx context.Context, c *clientv3.Client) string) func(ctx context.Context, e *env) string {
	return func(ctx context.Context, e *env) string {
		c, err := login(e, user, password)
		if err != nil {
			return "login: " + fmtErr(err) + "\n"
		}
		defer c.Close()
		return f(ctx, c)
	}
}

// rawConn is a plain gRPC connection, for calls with a token of the step's
// choosing (client/v3 manages its token itself).
func rawConn(e *env) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+strings.TrimPrefix(e.srv.client, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, tok)
}

// httpAuth posts body to the gateway with an Authorization header.
func httpAuth(ctx context.Context, e *env, path, token, body string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.client+path, strings.NewReader(body))
	if err != nil {
		return err.Error() + "\n"
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("POST %s: %v\n", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return fmt.Sprintf("POST %s: %d\n%s\n", path, resp.StatusCode, compactJSON(out))
}

var tokenJSONRe = regexp.MustCompile(`"token":"[^"]*"`)

func TestAuthClient(t *testing.T) {
	t.Parallel()
	steps := append(authAdminSteps(),
		fn("alice watches outside her range", asUser("alice", "alicepw", func(ctx context.Context, c *clientv3.Client) string {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return collectWatchEnd(c.Watch(wctx, "b"), 5*time.Second)
		})),
		fn("alice watches all keys", asUser("alice", "alicepw", func(ctx context.Context, c *clientv3.Client) string {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return collectWatchEnd(c.Watch(wctx, "", clientv3.WithPrefix()), 5*time.Second)
		})),
		fn("a watch without a user", func(ctx context.Context, e *env) string {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return collectWatchEnd(e.c.Watch(wctx, "app/x"), 5*time.Second)
		}),
		fn("root leases a key alice may not write", func(ctx context.Context, e *env) string {
			c, err := login(e, "root", "rootpw")
			if err != nil {
				return "login: " + fmtErr(err) + "\n"
			}
			defer c.Close()
			l, err := c.Grant(ctx, 600)
			if err != nil {
				return fmtErr(err) + "\n"
			}
			e.addLease(int64(l.ID))
			return fmt.Sprintf("granted %x\n", l.ID) + fmtPut(c.Put(ctx, "0", "1", clientv3.WithLease(l.ID)))
		}),
		fn("alice and root's lease", asUser("alice", "alicepw", func(ctx context.Context, c *clientv3.Client) string {
			var b strings.Builder
			ls, err := c.Leases(ctx)
			fmt.Fprintf(&b, "leases: %s\n", fmtErr(err))
			if err != nil {
				// etcd lists no lease: take it from root.
				return b.String()
			}
			for _, l := range ls.Leases {
				fmt.Fprintf(&b, "lease %x\n", l.ID)
			}
			return b.String()
		})),
		fn("alice revokes, renews, inspects and reuses root's lease", func(ctx context.Context, e *env) string {
			id := e.lease(1)
			return asUser("alice", "alicepw", func(ctx context.Context, c *clientv3.Client) string {
				var b strings.Builder
				_, err := c.Revoke(ctx, id)
				fmt.Fprintf(&b, "revoke: %s\n", fmtErr(err))
				_, err = c.KeepAliveOnce(ctx, id)
				fmt.Fprintf(&b, "keep-alive: %s\n", fmtErr(err))
				_, err = c.TimeToLive(ctx, id, clientv3.WithAttachedKeys())
				fmt.Fprintf(&b, "time-to-live with keys: %s\n", fmtErr(err))
				r, err := c.TimeToLive(ctx, id)
				if err == nil {
					fmt.Fprintf(&b, "time-to-live: granted=%d keys=%d\n", r.GrantedTTL, len(r.Keys))
				} else {
					fmt.Fprintf(&b, "time-to-live: %s\n", fmtErr(err))
				}
				b.WriteString("put on it: " + fmtPut(c.Put(ctx, "app/l", "1", clientv3.WithLease(id))))
				return b.String()
			})(ctx, e)
		}),
		fn("alice uses her own lease", asUser("alice", "alicepw", func(ctx context.Context, c *clientv3.Client) string {
			l, err := c.Grant(ctx, 600)
			if err != nil {
				return fmtErr(err) + "\n"
			}
			s := fmtPut(c.Put(ctx, "app/l", "1", clientv3.WithLease(l.ID)))
			_, err = c.Revoke(ctx, l.ID)
			return s + "revoke: " + fmtErr(err) + "\n"
		})),
		fn("alice's transactions", asUser("alice", "alicepw", func(ctx context.Context, c *clientv3.Client) string {
			var b strings.Builder
			b.WriteString(fmtTxn(c.Txn(ctx).If(clientv3.Compare(clientv3.Value("b"), "=", "1")).Then(clientv3.OpPut("app/t", "1")).Commit()))
			b.WriteString(fmtTxn(c.Txn(ctx).Then(clientv3.OpTxn(nil, nil, []clientv3.Op{clientv3.OpDelete("zz")})).Commit()))
			b.WriteString(fmtTxn(c.Txn(ctx).Then(clientv3.OpDelete("b", clientv3.WithPrevKV())).Commit()))
			b.WriteString(fmtTxn(c.Txn(ctx).Then(clientv3.OpPut("app/t", "1", clientv3.WithPrevKV()), clientv3.OpGet("single")).Commit()))
			return b.String()
		})),
		fn("alice's maintenance calls", asUser("alice", "alicepw", func(ctx context.Context, c *clientv3.Client) string {
			var b strings.Builder
			ep := c.Endpoints()[0]
			_, err := c.Status(ctx, ep)
			fmt.Fprintf(&b, "status: %s\n", fmtErr(err))
			_, err = c.HashKV(ctx, ep, 0)
			fmt.Fprintf(&b, "hashkv: %s\n", fmtErr(err))
			_, err = c.Defragment(ctx, ep)
			fmt.Fprintf(&b, "defragment: %s\n", fmtErr(err))
			_, err = c.Compact(ctx, 1)
			fmt.Fprintf(&b, "compact: %s\n", fmtErr(err))
			_, err = c.AlarmList(ctx)
			fmt.Fprintf(&b, "alarm list: %s\n", fmtErr(err))
			_, err = c.MemberList(ctx)
			fmt.Fprintf(&b, "member list: %s\n", fmtErr(err))
			_, err = c.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:1"})
			fmt.Fprintf(&b, "member add: %s\n", fmtErr(err))
			_, err = c.MoveLeader(ctx, 1)
			fmt.Fprintf(&b, "move leader: %s\n", fmtErr(err))
			u, err := c.UserGet(ctx, "alice")
			if err == nil {
				fmt.Fprintf(&b, "user get alice: %v\n", u.Roles)
			}
			_, err = c.UserGet(ctx, "root")
			fmt.Fprintf(&b, "user get root: %s\n", fmtErr(err))
			_, err = c.AuthStatus(ctx)
			fmt.Fprintf(&b, "auth status: %s\n", fmtErr(err))
			return b.String()
		})),
		fn("raw tokens", func(ctx context.Context, e *env) string {
			conn, err := rawConn(e)
			if err != nil {
				return err.Error() + "\n"
			}
			defer conn.Close()
			var b strings.Builder
			a, err := pb.NewAuthClient(conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
			fmt.Fprintf(&b, "authenticate: %s\n", fmtErr(err))
			if err != nil {
				return b.String()
			}
			kv := pb.NewKVClient(conn)
			_, err = kv.Put(withToken(ctx, a.Token), &pb.PutRequest{Key: []byte("app/raw"), Value: []byte("1")})
			fmt.Fprintf(&b, "put with the token: %s\n", fmtErr(err))
			_, err = kv.Put(withToken(ctx, "bogus.1"), &pb.PutRequest{Key: []byte("app/raw"), Value: []byte("1")})
			fmt.Fprintf(&b, "put with a bogus token: %s\n", fmtErr(err))
			_, err = kv.Range(withToken(ctx, ""), &pb.RangeRequest{Key: []byte("app/raw")})
			fmt.Fprintf(&b, "range with an empty token: %s\n", fmtErr(err))
			_, err = pb.NewAuthClient(conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: "nopass", Password: "x"})
			fmt.Fprintf(&b, "authenticate a no-password user: %s\n", fmtErr(err))
			_, err = pb.NewAuthClient(conn).UserAdd(ctx, &pb.AuthUserAddRequest{Name: "", Password: "x"})
			fmt.Fprintf(&b, "add a nameless user: %s\n", fmtErr(err))
			return b.String()
		}),
		fn("gateway with the Authorization header", func(ctx context.Context, e *env) string {
			var b strings.Builder
			out := httpAuth(ctx, e, "/v3/auth/authenticate", "", `{"name":"alice","password":"alicepw"}`)
			tok := tokenJSONRe.FindString(out)
			b.WriteString(tokenJSONRe.ReplaceAllString(out, `"token":"<token>"`))
			tok = strings.TrimSuffix(strings.TrimPrefix(tok, `"token":"`), `"`)
			b.WriteString(httpAuth(ctx, e, "/v3/kv/put", tok, `{"key":"YXBwL2d3","value":"MQ=="}`))
			b.WriteString(httpAuth(ctx, e, "/v3/kv/put", tok, `{"key":"eno=","value":"MQ=="}`))
			b.WriteString(httpAuth(ctx, e, "/v3/kv/put", "", `{"key":"YXBwL2d3","value":"MQ=="}`))
			b.WriteString(httpAuth(ctx, e, "/v3/kv/range", "bogus.1", `{"key":"YXBwL2d3"}`))
			b.WriteString(httpAuth(ctx, e, "/v3/auth/authenticate", "", `{"name":"alice","password":"wrong"}`))
			return b.String()
		}),
		fn("GET /health with auth on", httpGet("/health")),
		fn("GET /readyz with auth on", httpGet("/readyz")),
		fn("GET /version with auth on", httpGet("/version")),
		ctl("get", "", "--prefix", asRoot, "-w", "json"),
	)
	runScenario(t, scenario{name: "auth-client", steps: steps})
}

// TestAuthJWT runs with --auth-token jwt (an ECDSA key made for the test,
// the same for both servers): tokens carry the auth revision, so a token
// from before an auth change is refused with etcd's "revision of auth store
// is old", and clients authenticate again.
func TestAuthJWT(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(dir, "jwt.key"), filepath.Join(dir, "jwt.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := fn("a token from before an auth change", func(ctx context.Context, e *env) string {
		conn, err := rawConn(e)
		if err != nil {
			return err.Error() + "\n"
		}
		defer conn.Close()
		var b strings.Builder
		a, err := pb.NewAuthClient(conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
		fmt.Fprintf(&b, "authenticate: %s, %d dots\n", fmtErr(err), strings.Count(a.GetToken(), "."))
		kv := pb.NewKVClient(conn)
		_, err = kv.Put(withToken(ctx, a.GetToken()), &pb.PutRequest{Key: []byte("app/jwt"), Value: []byte("1")})
		fmt.Fprintf(&b, "put: %s\n", fmtErr(err))
		_, err = pb.NewAuthClient(conn).RoleAdd(withToken(ctx, a.GetToken()), &pb.AuthRoleAddRequest{Name: "x"})
		fmt.Fprintf(&b, "alice adds a role: %s\n", fmtErr(err))
		root, err := pb.NewAuthClient(conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: "root", Password: "rootpw"})
		fmt.Fprintf(&b, "authenticate root: %s\n", fmtErr(err))
		_, err = pb.NewAuthClient(conn).RoleAdd(withToken(ctx, root.GetToken()), &pb.AuthRoleAddRequest{Name: "x"})
		fmt.Fprintf(&b, "root adds a role: %s\n", fmtErr(err))
		_, err = kv.Put(withToken(ctx, a.GetToken()), &pb.PutRequest{Key: []byte("app/jwt"), Value: []byte("2")})
		fmt.Fprintf(&b, "put with the old token: %s\n", fmtErr(err))
		_, err = kv.Range(withToken(ctx, a.GetToken()), &pb.RangeRequest{Key: []byte("app/jwt")})
		fmt.Fprintf(&b, "range with the old token: %s\n", fmtErr(err))
		wc, err := pb.NewWatchClient(conn).Watch(withToken(ctx, a.GetToken()))
		if err == nil {
			err = wc.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("app/jwt")}}})
		}
		if err == nil {
			var wr *pb.WatchResponse
			if wr, err = wc.Recv(); err == nil {
				fmt.Fprintf(&b, "watch with the old token: created=%v canceled=%v reason=%q\n", wr.Created, wr.Canceled, wr.CancelReason)
			}
		}
		if err != nil {
			fmt.Fprintf(&b, "watch: %s\n", fmtErr(err))
		}
		_, err = kv.Range(withToken(ctx, a.GetToken()+"x"), &pb.RangeRequest{Key: []byte("app/jwt")})
		fmt.Fprintf(&b, "range with a broken token: %s\n", fmtErr(err))
		return b.String()
	})
	steps := append(authAdminSteps(),
		ctl("put", "app/x", "1", asAlice),
		ctlFail("put", "zz", "1", asAlice),
		stale,
		ctl("get", "app/", "--prefix", asAlice),
		ctl("role", "delete", "x", asRoot),
		ctl("get", "app/", "--prefix", asAlice),
		ctl("auth", "disable", asRoot),
		ctl("auth", "status"),
	)
	runScenario(t, scenario{name: "auth-jwt", flags: []string{"--auth-token", "jwt,pub-key=" + pub + ",priv-key=" + priv + ",sign-method=ES384,ttl=5m"}, steps: steps})
}

// bcryptRe matches a bcrypt hash as protoText prints it: random salt, so
// the same password never hashes alike twice.
var bcryptRe = regexp.MustCompile(`"\$2a\$\d\d\$[^"]*"\.\.\.\(60 bytes\)`)

// authEnv is an env whose client logs in as root: with auth on, newEnv's
// anonymous client can do nothing.
func authEnv(t *testing.T, s *server) *env {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.client}, DialTimeout: 5 * time.Second,
		Username: "root", Password: "rootpw", Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("%s: login as root: %v", s.kind, err)
	}
	t.Cleanup(func() { c.Close() })
	ml, err := c.MemberList(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("%s: member list: %v", s.kind, err)
	}
	return &env{t: t, srv: s, c: c, tmp: t.TempDir(), member: ml.Header.MemberId, cluster: ml.Header.ClusterId}
}

// TestAuthLayoutAndSnapshots: the same auth history leaves the same bbolt
// contents in etcd and Ballast (users, roles, the enabled flag, the auth
// revision: etcd's buckets, keys and protobuf encodings; password hashes
// aside, their salt being random), and a snapshot of either, restored with
// etcdutl, serves the other's users and permissions.
func TestAuthLayoutAndSnapshots(t *testing.T) {
	t.Parallel()
	setup := append(authAdminSteps(), ctl("put", "app/x", "1", asAlice))
	se, sb := newServer(t, etcd, ""), newServer(t, ballast, "")
	startServers(t, se, sb)
	var snaps, layouts [2]string
	for i, s := range []*server{se, sb} {
		e := newEnv(t, s)
		for _, st := range setup {
			e.run(st)
		}
		snaps[i] = filepath.Join(e.tmp, "snap.db")
		if out, errOut, code := runTool(etcdctlBin, []string{"--endpoints=" + s.client, asRoot, "snapshot", "save", snaps[i]}, ""); code != 0 {
			t.Fatalf("%s: snapshot save: %s%s", s.kind, out, errOut)
		}
		l, err := dumpBolt(snaps[i])
		if err != nil {
			t.Fatalf("%s: %v", s.kind, err)
		}
		layouts[i] = bcryptRe.ReplaceAllString(normLayout(e.normalize(l)), "<bcrypt-hash>")
	}
	if !strings.Contains(layouts[0], `bucket "authUsers" (3 keys)`) {
		t.Fatalf("etcd's snapshot has no users?\n%s", layouts[0])
	}
	if layouts[0] != layouts[1] {
		t.Errorf("snapshot bbolt contents differ:\n%s", unifiedDiff("etcd", "ballast", layouts[0], layouts[1]))
	}
	if dir := lookupTranscripts(); dir != "" {
		writeTranscript(dir, t.Name()+"_etcd_layout", layouts[0])
		writeTranscript(dir, t.Name()+"_ballast_layout", layouts[1])
	}

	// Each serves the other's snapshot.
	re, err := restore(t, etcd, snaps[1])
	if err != nil {
		t.Fatal(err)
	}
	rb, err := restore(t, ballast, snaps[0])
	if err != nil {
		t.Fatal(err)
	}
	startServers(t, re, rb)
	ee, eb := authEnv(t, re), authEnv(t, rb)
	for i, st := range []step{
		ctl("auth", "status", asRoot),
		ctl("user", "list", asRoot),
		ctl("role", "get", "app", asRoot),
		ctl("user", "get", "alice", "--detail", asRoot),
		ctl("get", "app/x", asAlice),
		ctlFail("get", "app/x"),
		ctlFail("get", "app/x", "--user=alice:wrong"),
		ctlFail("put", "zz", "1", asAlice),
		ctl("put", "app/y", "2", asAlice),
		ctlFail("get", "app/x", "--user=nopass:x"),
		ctl("auth", "disable", asRoot),
		ctl("auth", "status"),
	} {
		oe, _ := ee.run(st)
		ob, _ := eb.run(st)
		if oe != ob {
			t.Errorf("step %d: %s: etcd serving Ballast's snapshot and Ballast serving etcd's differ:\n%s", i, st, unifiedDiff("etcd", "ballast", oe, ob))
		}
	}
}
