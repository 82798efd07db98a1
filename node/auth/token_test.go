package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fakeClock is a settable clock for token expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestSimpleTokenLifecycle(t *testing.T) {
	clk := newFakeClock()
	p := newSimpleProvider(10*time.Second, nil, clk.now)
	ctx := context.Background()
	pre, err := p.prefix()
	if err != nil || len(pre) != simplePrefixLen || strings.Trim(pre, letters) != "" {
		t.Fatalf("prefix = %q, %v", pre, err)
	}
	// Disabled: the token is named but not kept.
	tok, _ := p.assign("alice", 3, pre, 42)
	if tok != pre+".42" {
		t.Fatalf("token = %q", tok)
	}
	if _, ok := p.info(ctx, tok, 3); ok {
		t.Fatal("a token assigned while disabled is valid")
	}
	p.enable()
	p.enable() // idempotent
	tok, _ = p.assign("alice", 3, pre, 43)
	ai, ok := p.info(ctx, tok, 7)
	if !ok || ai.User != "alice" || ai.Revision != 7 {
		t.Fatalf("info = %+v, %v; want alice at the current revision 7", ai, ok)
	}
	// Each use extends the lifetime.
	for range 3 {
		clk.advance(9 * time.Second)
		if _, ok := p.info(ctx, tok, 7); !ok {
			t.Fatal("a token used within its TTL expired")
		}
	}
	clk.advance(10 * time.Second)
	if _, ok := p.info(ctx, tok, 7); ok {
		t.Fatal("a token idle for its TTL is still valid")
	}

	bob, _ := p.assign("bob", 3, "Bbbbbbbbbbbbbbbb", 44)
	carol, _ := p.assign("carol", 3, "Cccccccccccccccc", 45)
	p.invalidateUser("bob")
	if _, ok := p.info(ctx, bob, 3); ok {
		t.Fatal("invalidated user's token still valid")
	}
	if _, ok := p.info(ctx, carol, 3); !ok {
		t.Fatal("another user's token was invalidated")
	}
	p.disable()
	p.enable()
	if _, ok := p.info(ctx, carol, 3); ok {
		t.Fatal("disabling auth kept a token")
	}
}

func TestSimpleTokenMalformed(t *testing.T) {
	p := newSimpleProvider(0, nil, time.Now)
	p.enable()
	for _, tok := range []string{"", "abc", "abc.", ".5", "abc.x", "a.b.5", "abc.-1"} {
		if _, ok := p.info(context.Background(), tok, 1); ok {
			t.Errorf("token %q accepted", tok)
		}
	}
}

// A token made through another member names a raft index this member may
// not have applied yet: the lookup waits for it, or for the request to end.
func TestSimpleTokenWaitsForItsIndex(t *testing.T) {
	applied := make(chan struct{})
	var asked uint64
	p := newSimpleProvider(0, func(i uint64) <-chan struct{} { asked = i; return applied }, time.Now)
	p.enable()
	tok, _ := p.assign("alice", 1, "Aaaaaaaaaaaaaaaa", 9)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := p.info(ctx, tok, 1); ok || asked != 9 {
		t.Fatalf("lookup before index 9 was applied: ok=%v asked=%d", ok, asked)
	}
	done := make(chan bool)
	go func() {
		_, ok := p.info(context.Background(), tok, 1)
		done <- ok
	}()
	close(applied)
	if !<-done {
		t.Fatal("token refused once its index was applied")
	}
}

// jwtKeyFiles writes a fresh key pair for alg as PEM files; HMAC gets only
// a secret (as priv).
func jwtKeyFiles(t *testing.T, alg string) (pub, priv string) {
	t.Helper()
	dir := t.TempDir()
	pub, priv = filepath.Join(dir, "pub.pem"), filepath.Join(dir, "priv.pem")
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var key any
	var err error
	switch {
	case strings.HasPrefix(alg, "HS"):
		if err := os.WriteFile(priv, []byte("a shared secret of enough length"), 0o600); err != nil {
			t.Fatal(err)
		}
		return "", priv
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case alg == "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case alg == "ES384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case alg == "ES512":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case alg == "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	write(priv, "PRIVATE KEY", privDER)
	write(pub, "PUBLIC KEY", pubDER)
	return pub, priv
}

func newJWT(t *testing.T, spec string, clk *fakeClock) (*jwtProvider, error) {
	t.Helper()
	_, opts, err := parseTokenSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	return newJWTProvider(opts, clk.now, zap.NewNop())
}

func TestJWTEverySignMethod(t *testing.T) {
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"} {
		t.Run(alg, func(t *testing.T) {
			clk := newFakeClock()
			pub, priv := jwtKeyFiles(t, alg)
			spec := "jwt,sign-method=" + alg + ",priv-key=" + priv + ",ttl=1m"
			if pub != "" {
				spec += ",pub-key=" + pub
			}
			signer, err := newJWT(t, spec, clk)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := signer.assign("alice", 5, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			ai, ok := signer.info(context.Background(), tok, 9)
			if !ok || ai.User != "alice" || ai.Revision != 5 {
				t.Fatalf("info = %+v, %v; want alice at the token's revision 5", ai, ok)
			}
			if pub != "" {
				// A member with only the public key verifies but cannot sign.
				verifier, err := newJWT(t, "jwt,sign-method="+alg+",pub-key="+pub, clk)
				if err != nil {
					t.Fatal(err)
				}
				if ai, ok := verifier.info(context.Background(), tok, 9); !ok || ai.User != "alice" {
					t.Fatalf("verify-only info = %+v, %v", ai, ok)
				}
				if _, err := verifier.assign("alice", 5, "", 0); err != errVerifyOnly {
					t.Fatalf("verify-only assign: %v", err)
				}
			}
			if _, ok := signer.info(context.Background(), breakSignature(tok), 9); ok {
				t.Fatal("a token with a broken signature was accepted")
			}
			clk.advance(61 * time.Second)
			if _, ok := signer.info(context.Background(), tok, 9); ok {
				t.Fatal("an expired token was accepted")
			}
		})
	}
}

func TestJWTRefusesOtherMethodsAndKeys(t *testing.T) {
	clk := newFakeClock()
	rsPub, rsPriv := jwtKeyFiles(t, "RS256")
	_, esPriv := jwtKeyFiles(t, "ES256")
	rs, err := newJWT(t, "jwt,sign-method=RS256,priv-key="+rsPriv+",pub-key="+rsPub, clk)
	if err != nil {
		t.Fatal(err)
	}
	es, err := newJWT(t, "jwt,sign-method=ES256,priv-key="+esPriv, clk)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := es.assign("mallory", 1, "", 0)
	if _, ok := rs.info(context.Background(), tok, 1); ok {
		t.Fatal("an RS256 provider accepted an ES256 token")
	}
	otherPub, _ := jwtKeyFiles(t, "RS256")
	for _, tc := range []struct{ spec, want string }{
		{"jwt,sign-method=RS256,priv-key=" + rsPriv + ",pub-key=" + otherPub, "do not match"},
		{"jwt,sign-method=RS256", "no key"},
		{"jwt,sign-method=ES256,pub-key=" + rsPub, "ES256 key"},
		{"jwt,sign-method=XX999,priv-key=" + rsPriv, "not a JWT signing method"},
		{"jwt,sign-method=HS256", "shared secret"},
		{"jwt,sign-method=RS256,priv-key=/nonexistent", "priv-key"},
		{"jwt,sign-method=RS256,priv-key=" + rsPriv + ",ttl=soon", "ttl=soon"},
	} {
		if _, err := newJWT(t, tc.spec, clk); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.spec, err, tc.want)
		}
	}
}

func TestTokenSpec(t *testing.T) {
	for _, tc := range []struct {
		spec, wantErr string
	}{
		{"simple", ""},
		{"simple,ttl=5m", "take no options"},
		{"jwt,sign-method", "not key=value"},
		{"jwt,ttl=1m,ttl=2m", "given twice"},
		{"oauth", "unknown token type"},
	} {
		_, err := newTokenProvider(Options{TokenSpec: tc.spec, Logger: zap.NewNop(), now: time.Now})
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: err = %v, want %q", tc.spec, err, tc.wantErr)
		}
	}
}

// breakSignature changes one character well inside a JWT's signature (the
// last characters of base64 may carry only padding bits).
func breakSignature(tok string) string {
	b := []byte(tok)
	i := len(b) - 10
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
