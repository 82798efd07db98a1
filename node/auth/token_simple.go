package auth

import (
	"context"
	"crypto/rand"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// defaultSimpleTTL is --auth-token-ttl's default.
	defaultSimpleTTL = 300 * time.Second
	// simplePrefixLen letters of [a-zA-Z] start a simple token, as etcd's.
	simplePrefixLen = 16
	// sweepEvery bounds how often expired tokens are looked for.
	sweepEvery = time.Second
)

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// simpleProvider is etcd's "simple" token: "<16 random letters>.<raft
// index of the Authenticate entry>". The random part is drawn by the member
// that receives Authenticate and carried in the raft entry, so every member
// that applies the entry knows the token, and a client may use it on any
// member. Tokens live in memory only (a restart forgets them; clients then
// authenticate again) and expire after ttl without use.
type simpleProvider struct {
	ttl         time.Duration
	waitApplied func(index uint64) <-chan struct{}
	now         func() time.Time

	mu        sync.Mutex
	on        bool
	tokens    map[string]simpleToken
	lastSweep time.Time
}

type simpleToken struct {
	user    string
	expires time.Time
}

func newSimpleProvider(ttl time.Duration, waitApplied func(uint64) <-chan struct{}, now func() time.Time) *simpleProvider {
	if ttl <= 0 {
		ttl = defaultSimpleTTL
	}
	if waitApplied == nil {
		waitApplied = func(uint64) <-chan struct{} { c := make(chan struct{}); close(c); return c }
	}
	return &simpleProvider{ttl: ttl, waitApplied: waitApplied, now: now, tokens: map[string]simpleToken{}}
}

func (p *simpleProvider) prefix() (string, error) {
	b := make([]byte, simplePrefixLen)
	n := big.NewInt(int64(len(letters)))
	for i := range b {
		x, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		b[i] = letters[x.Int64()]
	}
	return string(b), nil
}

func (p *simpleProvider) assign(user string, _ uint64, prefix string, index uint64) (string, error) {
	token := prefix + "." + strconv.FormatUint(index, 10)
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		return token, nil
	}
	p.sweepLocked(now)
	p.tokens[token] = simpleToken{user: user, expires: now.Add(p.ttl)}
	return token, nil
}

// sweepLocked drops expired tokens, at most once per sweepEvery: lookups
// check expiry themselves, this only bounds memory.
func (p *simpleProvider) sweepLocked(now time.Time) {
	if now.Sub(p.lastSweep) < sweepEvery {
		return
	}
	p.lastSweep = now
	for t, st := range p.tokens {
		if !now.Before(st.expires) {
			delete(p.tokens, t)
		}
	}
}

// info waits until this member has applied the entry that created the
// token (it may come from a request made through another member a moment
// ago), then looks it up. A used token's lifetime starts over.
func (p *simpleProvider) info(ctx context.Context, token string, rev uint64) (*Info, bool) {
	pre, idx, ok := strings.Cut(token, ".")
	if !ok || pre == "" || strings.Contains(idx, ".") {
		return nil, false
	}
	index, err := strconv.ParseUint(idx, 10, 64)
	if err != nil {
		return nil, false
	}
	select {
	case <-p.waitApplied(index):
	case <-ctx.Done():
		return nil, false
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.tokens[token]
	if !ok {
		return nil, false
	}
	if !now.Before(st.expires) {
		delete(p.tokens, token)
		return nil, false
	}
	st.expires = now.Add(p.ttl)
	p.tokens[token] = st
	return &Info{User: st.user, Revision: rev}, true
}

func (p *simpleProvider) enable() {
	p.mu.Lock()
	p.on = true
	p.mu.Unlock()
}

func (p *simpleProvider) disable() {
	p.mu.Lock()
	p.on = false
	p.tokens = map[string]simpleToken{}
	p.mu.Unlock()
}

func (p *simpleProvider) invalidateUser(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for t, st := range p.tokens {
		if st.user == user {
			delete(p.tokens, t)
		}
	}
}
