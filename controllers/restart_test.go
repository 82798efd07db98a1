package controllers_test

import (
	"context"
	"sync"

	"github.com/ballastdb/ballast/controllers/member"
)

// crashAfterAdd is the real member client, except that the first
// successful AddLearner reports the new member's ID and then hangs until
// the operator is stopped: the operator dies between MemberAdd and
// whatever would have followed it.
func crashAfterAdd(added chan<- uint64) member.Factory {
	var once sync.Once
	return func(ctx context.Context, endpoints []string) (member.Client, error) {
		c, err := member.New(ctx, endpoints)
		if err != nil {
			return nil, err
		}
		return &addThenHang{Client: c, once: &once, added: added}, nil
	}
}

type addThenHang struct {
	member.Client
	once  *sync.Once
	added chan<- uint64
}

func (a *addThenHang) AddLearner(ctx context.Context, peerURL string) (member.Member, error) {
	m, err := a.Client.AddLearner(ctx, peerURL)
	if err != nil {
		return m, err
	}
	fired := false
	a.once.Do(func() {
		fired = true
		a.added <- m.ID
	})
	if fired {
		<-ctx.Done()
		return m, ctx.Err()
	}
	return m, nil
}
