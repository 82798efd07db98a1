package auth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// defaultJWTTTL is the lifetime of a JWT without a ttl option (etcd's).
const defaultJWTTTL = 5 * time.Minute

// jwtProvider is etcd's "jwt" token: a JWT signed by the member that
// applies the Authenticate entry, with claims "username", "revision" (the
// auth revision it was issued at) and "exp". Any member holding the public
// key verifies it without shared state; its revision makes it stale as
// soon as users, roles or permissions change.
type jwtProvider struct {
	method jwt.SigningMethod
	// sign is nil on a verify-only member (public key only); verify is
	// the key Parse checks signatures with.
	sign, verify any
	ttl          time.Duration
	now          func() time.Time
	lg           *zap.Logger
}

var jwtOptionNames = []string{"sign-method", "pub-key", "priv-key", "ttl"}

// newJWTProvider reads the options of --auth-token=jwt,...:
//
//	sign-method  RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512|EdDSA|HS256|HS384|HS512 (required)
//	pub-key      PEM public key file: enough to verify tokens
//	priv-key     PEM private key file (for HS*, the secret itself): needed to issue them
//	ttl          token lifetime, a Go duration (default 5m)
func newJWTProvider(opts map[string]string, now func() time.Time, lg *zap.Logger) (*jwtProvider, error) {
	for k := range opts {
		if !slices.Contains(jwtOptionNames, k) {
			lg.Warn("ignoring an unknown JWT option of --auth-token", zap.String("option", k), zap.Strings("known", jwtOptionNames))
		}
	}
	p := &jwtProvider{ttl: defaultJWTTTL, now: now, lg: lg}
	if v := opts["ttl"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("ttl=%s: %w", v, err)
		}
		p.ttl = d
	}
	p.method = jwt.GetSigningMethod(opts["sign-method"])
	if p.method == nil {
		return nil, fmt.Errorf("sign-method=%q is not a JWT signing method (RS256, ES256, EdDSA, HS256, ...)", opts["sign-method"])
	}
	var pub, priv []byte
	var err error
	if f := opts["pub-key"]; f != "" {
		if pub, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("pub-key: %w", err)
		}
	}
	if f := opts["priv-key"]; f != "" {
		if priv, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("priv-key: %w", err)
		}
	}
	if p.sign, p.verify, err = jwtKeys(p.method, pub, priv); err != nil {
		return nil, err
	}
	return p, nil
}

// jwtKeys parses the keys for method. With a private key, the public one
// (when given) must match it.
func jwtKeys(method jwt.SigningMethod, pubPEM, privPEM []byte) (sign, verify any, err error) {
	if _, ok := method.(*jwt.SigningMethodHMAC); ok {
		if len(privPEM) == 0 {
			return nil, nil, errors.New("an HMAC sign-method needs priv-key (the shared secret)")
		}
		return privPEM, privPEM, nil
	}
	var priv crypto.Signer
	var pub crypto.PublicKey
	switch method.(type) {
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if len(privPEM) > 0 {
			priv, err = jwt.ParseRSAPrivateKeyFromPEM(privPEM)
		}
		if err == nil && len(pubPEM) > 0 {
			pub, err = jwt.ParseRSAPublicKeyFromPEM(pubPEM)
		}
	case *jwt.SigningMethodECDSA:
		if len(privPEM) > 0 {
			priv, err = jwt.ParseECPrivateKeyFromPEM(privPEM)
		}
		if err == nil && len(pubPEM) > 0 {
			pub, err = jwt.ParseECPublicKeyFromPEM(pubPEM)
		}
	case *jwt.SigningMethodEd25519:
		var k any
		if len(privPEM) > 0 {
			if k, err = jwt.ParseEdPrivateKeyFromPEM(privPEM); err == nil {
				priv = k.(ed25519.PrivateKey)
			}
		}
		if err == nil && len(pubPEM) > 0 {
			pub, err = jwt.ParseEdPublicKeyFromPEM(pubPEM)
		}
	default:
		return nil, nil, fmt.Errorf("sign-method %s is not supported", method.Alg())
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the %s key: %w", method.Alg(), err)
	}
	switch {
	case priv == nil && pub == nil:
		return nil, nil, errors.New("no key: give pub-key (to verify tokens) and priv-key (to issue them)")
	case priv == nil:
		return nil, pub, nil
	case pub != nil && !samePublicKey(pub, priv.Public()):
		return nil, nil, errors.New("pub-key and priv-key do not match")
	}
	return priv, priv.Public(), nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func (p *jwtProvider) prefix() (string, error) { return "", nil }

func (p *jwtProvider) assign(user string, rev uint64, _ string, _ uint64) (string, error) {
	if p.sign == nil {
		return "", errVerifyOnly
	}
	t := jwt.NewWithClaims(p.method, jwt.MapClaims{
		"username": user,
		"revision": rev,
		"exp":      p.now().Add(p.ttl).Unix(),
	})
	return t.SignedString(p.sign)
}

// info verifies the signature (with this provider's method only) and the
// expiry; the Info carries the token's revision, not the current one.
func (p *jwtProvider) info(_ context.Context, token string, _ uint64) (*Info, bool) {
	parsed, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return p.verify, nil },
		jwt.WithValidMethods([]string{p.method.Alg()}), jwt.WithTimeFunc(p.now))
	if err != nil {
		p.lg.Debug("refused a JWT", zap.Error(err))
		return nil, false
	}
	claims, ok := parsed.Claims.(jwt.MapClaims)
	if !ok {
		return nil, false
	}
	user, ok1 := claims["username"].(string)
	rev, ok2 := claims["revision"].(float64)
	if !ok1 || !ok2 {
		p.lg.Warn("refused a JWT without username and revision claims")
		return nil, false
	}
	return &Info{User: user, Revision: uint64(rev)}, true
}

func (p *jwtProvider) enable()               {}
func (p *jwtProvider) disable()              {}
func (p *jwtProvider) invalidateUser(string) {}
