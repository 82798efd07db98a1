package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// tokenProvider issues and checks auth tokens (--auth-token).
type tokenProvider interface {
	// prefix is chosen by the member that receives Authenticate and travels
	// in the raft entry; "" when the provider needs none.
	prefix() (string, error)
	// assign issues a token for user, in the apply loop: rev is the auth
	// revision, prefix and index those of the Authenticate entry.
	assign(user string, rev uint64, prefix string, index uint64) (string, error)
	// info checks a token; rev is the store's current auth revision. It
	// may wait (until ctx ends) for this member to catch up with the token.
	info(ctx context.Context, token string, rev uint64) (*Info, bool)
	// enable and disable follow auth being turned on and off: disabling
	// forgets every token. Both are idempotent.
	enable()
	disable()
	// invalidateUser forgets a deleted user's tokens, or those issued
	// before a password change, where the provider can.
	invalidateUser(user string)
}

// newTokenProvider parses --auth-token: "simple", or
// "jwt,<key>=<value>,..." (see newJWTProvider).
func newTokenProvider(o Options) (tokenProvider, error) {
	kind, opts, err := parseTokenSpec(o.TokenSpec)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "simple", "":
		if len(opts) > 0 {
			return nil, errors.New("simple tokens take no options")
		}
		o.Logger.Warn("simple auth tokens are not cryptographically signed and are only known to the members that applied them; use --auth-token=jwt,... in production")
		return newSimpleProvider(o.TokenTTL, o.WaitApplied, o.now), nil
	case "jwt":
		return newJWTProvider(opts, o.now, o.Logger)
	}
	return nil, fmt.Errorf("unknown token type %q; use 'simple' or 'jwt,...'", kind)
}

// parseTokenSpec splits "kind,k1=v1,k2=v2". A key given twice, or an option
// without '=', is an error, as in etcd.
func parseTokenSpec(spec string) (kind string, opts map[string]string, err error) {
	parts := strings.Split(spec, ",")
	opts = map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.Contains(v, "=") {
			return "", nil, fmt.Errorf("option %q is not key=value", p)
		}
		if _, dup := opts[k]; dup {
			return "", nil, fmt.Errorf("option %q is given twice", k)
		}
		opts[k] = v
	}
	return parts[0], opts, nil
}

// redactToken names a token in logs without giving it away.
func redactToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}
