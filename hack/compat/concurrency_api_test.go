package compat

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	lpb "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.uber.org/zap"
)

// TestLockElectionAPI calls the server-side concurrency services,
// v3lockpb.Lock and v3electionpb.Election, with etcd's own generated
// clients and through the JSON gateway: same keys, revisions, values,
// errors and gRPC codes from both servers prove the wire format and the
// semantics.
func TestLockElectionAPI(t *testing.T) {
	t.Parallel()
	steps := []step{
		fn("Lock: contention, Unlock, re-lock", lockContention),
		fn("Lock: no lease, empty name, missing lease, missing key", lockEdges),
		fn("Lock: the holder's lease expires", lockExpiry),
		fn("Election: campaign, observe, proclaim, resign", electionFlow),
		fn("Election: the leader's lease expires", electionExpiry),
		fn("gateway: /v3/lock and /v3/election", gatewayConcurrency),
		fn("what is left", func(ctx context.Context, e *env) string {
			return fmtGet(e.c.Get(ctx, "", clientv3.WithFromKey()))
		}),
		fn("auth: the services act as their caller", lockWithAuth),
	}
	runScenario(t, scenario{name: "lock-election-api", steps: steps})
}

// grant grants a lease and registers it with the normaliser.
func grant(ctx context.Context, e *env, ttl int64) (int64, error) {
	r, err := e.c.Grant(ctx, ttl)
	if err != nil {
		return 0, err
	}
	e.addLease(int64(r.ID))
	return int64(r.ID), nil
}

// waitPut waits until key exists (a waiter has queued its key).
func waitPut(ctx context.Context, e *env, key string) string {
	for {
		r, err := e.c.Get(ctx, key)
		if err != nil {
			return fmtErr(err)
		}
		if len(r.Kvs) > 0 {
			return "queued"
		}
		wctx, cancel := context.WithCancel(ctx)
		wch := e.c.Watch(wctx, key, clientv3.WithRev(r.Header.Revision+1))
		select {
		case <-wch:
		case <-ctx.Done():
		}
		cancel()
		if ctx.Err() != nil {
			return "never queued"
		}
	}
}

// pending says whether ch has no answer yet.
func pending(ch <-chan string) string {
	select {
	case s := <-ch:
		return "answered early: " + s
	default:
		return "waits"
	}
}

func fmtLock(r *lpb.LockResponse, err error) string {
	if err != nil {
		return fmtErr(err) + "\n"
	}
	return fmt.Sprintf("key=%q %s\n", r.Key, fmtHeader(r.Header))
}

func fmtLeaderKey(k *epb.LeaderKey) string {
	if k == nil {
		return "leader=<nil>"
	}
	return fmt.Sprintf("leader name=%q key=%q rev=%d lease=%x", k.Name, k.Key, k.Rev, k.Lease)
}

func fmtCampaign(r *epb.CampaignResponse, err error) string {
	if err != nil {
		return fmtErr(err) + "\n"
	}
	return fmtLeaderKey(r.Leader) + " " + fmtHeader(r.Header) + "\n"
}

func fmtLeader(r *epb.LeaderResponse, err error) string {
	if err != nil {
		return fmtErr(err) + "\n"
	}
	return fmtKV(r.Kv) + " " + fmtHeader(r.Header) + "\n"
}

// hdrOf formats the header of a response that carries only a header.
func hdrOf[R interface{ GetHeader() *pb.ResponseHeader }](r R, err error) string {
	if err != nil {
		return fmtErr(err) + "\n"
	}
	return fmtHeader(r.GetHeader()) + "\n"
}

func lockContention(ctx context.Context, e *env) string {
	var b strings.Builder
	lc := lpb.NewLockClient(e.c.ActiveConnection())
	l1, err := grant(ctx, e, 60)
	if err != nil {
		return fmtErr(err)
	}
	l2, err := grant(ctx, e, 60)
	if err != nil {
		return fmtErr(err)
	}
	r1, err := lc.Lock(ctx, &lpb.LockRequest{Name: []byte("lk"), Lease: l1})
	b.WriteString("lock 1: " + fmtLock(r1, err))
	if err != nil {
		return b.String()
	}
	second := make(chan string, 1)
	go func() { second <- fmtLock(lc.Lock(ctx, &lpb.LockRequest{Name: []byte("lk"), Lease: l2})) }()
	fmt.Fprintf(&b, "lock 2 %s, %s\n", waitPut(ctx, e, fmt.Sprintf("lk/%x", l2)), pending(second))
	b.WriteString("unlock 1: " + hdrOf(lc.Unlock(ctx, &lpb.UnlockRequest{Key: r1.Key})))
	b.WriteString("lock 2: " + <-second)
	b.WriteString("lock 2 again, same lease: " + fmtLock(lc.Lock(ctx, &lpb.LockRequest{Name: []byte("lk"), Lease: l2})))
	b.WriteString(fmtGet(e.c.Get(ctx, "lk/", clientv3.WithPrefix())))
	b.WriteString("unlock 2: " + hdrOf(lc.Unlock(ctx, &lpb.UnlockRequest{Key: []byte(fmt.Sprintf("lk/%x", l2))})))
	b.WriteString("unlock 2 again: " + hdrOf(lc.Unlock(ctx, &lpb.UnlockRequest{Key: []byte(fmt.Sprintf("lk/%x", l2))})))
	return b.String()
}

func lockEdges(ctx context.Context, e *env) string {
	var b strings.Builder
	lc := lpb.NewLockClient(e.c.ActiveConnection())
	r, err := lc.Lock(ctx, &lpb.LockRequest{Name: []byte("own")})
	b.WriteString("no lease: " + fmtLock(r, err))
	if err == nil {
		g, err := e.c.Get(ctx, string(r.Key))
		if err == nil && len(g.Kvs) == 1 {
			ttl, err := e.c.TimeToLive(ctx, clientv3.LeaseID(g.Kvs[0].Lease))
			if err == nil {
				fmt.Fprintf(&b, "  granted lease %x ttl=%d\n", int64(ttl.ID), ttl.GrantedTTL)
			}
		}
	}
	l, err := grant(ctx, e, 60)
	if err != nil {
		return b.String() + fmtErr(err)
	}
	b.WriteString("empty name: " + fmtLock(lc.Lock(ctx, &lpb.LockRequest{Lease: l})))
	b.WriteString("missing lease: " + fmtLock(lc.Lock(ctx, &lpb.LockRequest{Name: []byte("lk2"), Lease: 0x7eadbeef})))
	b.WriteString("unlock a missing key: " + hdrOf(lc.Unlock(ctx, &lpb.UnlockRequest{Key: []byte("nothing")})))
	b.WriteString("unlock no key: " + hdrOf(lc.Unlock(ctx, &lpb.UnlockRequest{})))
	return b.String()
}

func lockExpiry(ctx context.Context, e *env) string {
	var b strings.Builder
	lc := lpb.NewLockClient(e.c.ActiveConnection())
	short, err := grant(ctx, e, 3)
	if err != nil {
		return fmtErr(err)
	}
	long, err := grant(ctx, e, 60)
	if err != nil {
		return fmtErr(err)
	}
	b.WriteString("lock with a 3s lease: " + fmtLock(lc.Lock(ctx, &lpb.LockRequest{Name: []byte("exp"), Lease: short})))
	next := make(chan string, 1)
	go func() { next <- fmtLock(lc.Lock(ctx, &lpb.LockRequest{Name: []byte("exp"), Lease: long})) }()
	fmt.Fprintf(&b, "next %s, %s\n", waitPut(ctx, e, fmt.Sprintf("exp/%x", long)), pending(next))
	b.WriteString("next after expiry: " + <-next)
	b.WriteString(fmtGet(e.c.Get(ctx, "exp/", clientv3.WithPrefix())))
	return b.String()
}

// observer collects an Observe stream's responses.
func observer(ctx context.Context, ec epb.ElectionClient, name string) (<-chan string, error) {
	s, err := ec.Observe(ctx, &epb.LeaderRequest{Name: []byte(name)})
	if err != nil {
		return nil, err
	}
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		for {
			r, err := s.Recv()
			if err != nil {
				ch <- "observe ended: " + fmtErr(err) + "\n"
				return
			}
			ch <- "observed " + fmtLeader(r, nil)
		}
	}()
	return ch, nil
}

func next(ctx context.Context, ch <-chan string) string {
	select {
	case s := <-ch:
		return s
	case <-ctx.Done():
		return "nothing observed\n"
	}
}

func electionFlow(ctx context.Context, e *env) string {
	var b strings.Builder
	ec := epb.NewElectionClient(e.c.ActiveConnection())
	name := []byte("el")
	b.WriteString("leader of an empty election: " + fmtLeader(ec.Leader(ctx, &epb.LeaderRequest{Name: name})))
	octx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	obs, err := observer(octx, ec, "el")
	if err != nil {
		return b.String() + fmtErr(err)
	}
	l1, err := grant(ctx, e, 60)
	if err != nil {
		return fmtErr(err)
	}
	l2, err := grant(ctx, e, 60)
	if err != nil {
		return fmtErr(err)
	}
	c1, err := ec.Campaign(ctx, &epb.CampaignRequest{Name: name, Lease: l1, Value: []byte("v1")})
	b.WriteString("campaign 1: " + fmtCampaign(c1, err))
	if err != nil {
		return b.String()
	}
	b.WriteString(next(ctx, obs))
	second := make(chan string, 1)
	var c2 *epb.CampaignResponse
	go func() {
		var err error
		c2, err = ec.Campaign(ctx, &epb.CampaignRequest{Name: name, Lease: l2, Value: []byte("v2")})
		second <- fmtCampaign(c2, err)
	}()
	fmt.Fprintf(&b, "campaign 2 %s, %s\n", waitPut(ctx, e, fmt.Sprintf("el/%x", l2)), pending(second))
	b.WriteString("proclaim by the leader: " + hdrOf(ec.Proclaim(ctx, &epb.ProclaimRequest{Leader: c1.Leader, Value: []byte("v1b")})))
	b.WriteString(next(ctx, obs))
	b.WriteString("leader: " + fmtLeader(ec.Leader(ctx, &epb.LeaderRequest{Name: name})))
	forged := &epb.LeaderKey{Name: name, Key: []byte(fmt.Sprintf("el/%x", l2)), Rev: c1.Leader.Rev, Lease: l2}
	b.WriteString("proclaim with a forged leader key: " + hdrOf(ec.Proclaim(ctx, &epb.ProclaimRequest{Leader: forged, Value: []byte("x")})))
	b.WriteString("resign 1: " + hdrOf(ec.Resign(ctx, &epb.ResignRequest{Leader: c1.Leader})))
	b.WriteString("campaign 2: " + <-second)
	b.WriteString(next(ctx, obs))
	b.WriteString("proclaim by the former leader: " + hdrOf(ec.Proclaim(ctx, &epb.ProclaimRequest{Leader: c1.Leader, Value: []byte("late")})))
	b.WriteString("resign 1 again: " + hdrOf(ec.Resign(ctx, &epb.ResignRequest{Leader: c1.Leader})))
	b.WriteString("proclaim without a leader key: " + hdrOf(ec.Proclaim(ctx, &epb.ProclaimRequest{Value: []byte("x")})))
	b.WriteString("resign without a leader key: " + hdrOf(ec.Resign(ctx, &epb.ResignRequest{})))
	if c2 != nil {
		b.WriteString("proclaim by leader 2: " + hdrOf(ec.Proclaim(ctx, &epb.ProclaimRequest{Leader: c2.Leader, Value: []byte("v2b")})))
		b.WriteString(next(ctx, obs))
		b.WriteString("campaign again with leader 2's lease: " + fmtCampaign(ec.Campaign(ctx, &epb.CampaignRequest{Name: name, Lease: l2, Value: []byte("v2c")})))
		b.WriteString(next(ctx, obs))
		b.WriteString("resign 2: " + hdrOf(ec.Resign(ctx, &epb.ResignRequest{Leader: c2.Leader})))
	}
	b.WriteString("leader after all resigned: " + fmtLeader(ec.Leader(ctx, &epb.LeaderRequest{Name: name})))
	b.WriteString(fmtGet(e.c.Get(ctx, "el/", clientv3.WithPrefix())))
	return b.String()
}

func electionExpiry(ctx context.Context, e *env) string {
	var b strings.Builder
	ec := epb.NewElectionClient(e.c.ActiveConnection())
	name := []byte("exp-el")
	octx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	obs, err := observer(octx, ec, string(name))
	if err != nil {
		return fmtErr(err)
	}
	short, err := grant(ctx, e, 3)
	if err != nil {
		return fmtErr(err)
	}
	long, err := grant(ctx, e, 60)
	if err != nil {
		return fmtErr(err)
	}
	b.WriteString("campaign with a 3s lease: " + fmtCampaign(ec.Campaign(ctx, &epb.CampaignRequest{Name: name, Lease: short, Value: []byte("a")})))
	b.WriteString(next(ctx, obs))
	second := make(chan string, 1)
	go func() {
		second <- fmtCampaign(ec.Campaign(ctx, &epb.CampaignRequest{Name: name, Lease: long, Value: []byte("b")}))
	}()
	fmt.Fprintf(&b, "campaign 2 %s, %s\n", waitPut(ctx, e, fmt.Sprintf("exp-el/%x", long)), pending(second))
	b.WriteString("campaign 2 after expiry: " + <-second)
	b.WriteString(next(ctx, obs))
	b.WriteString("leader: " + fmtLeader(ec.Leader(ctx, &epb.LeaderRequest{Name: name})))
	return b.String()
}

// b64Field matches the base64 fields of the gateway's JSON; gwDecode
// shows them decoded, so that lease IDs in keys can be normalised.
var b64Field = regexp.MustCompile(`"(key|name|value)":"([A-Za-z0-9+/=]*)"`)

func gwDecode(s string) string {
	return b64Field.ReplaceAllStringFunc(s, func(m string) string {
		sm := b64Field.FindStringSubmatch(m)
		d, err := base64.StdEncoding.DecodeString(sm[2])
		if err != nil {
			return m
		}
		return fmt.Sprintf(`"%s":base64(%q)`, sm[1], d)
	})
}

// gwPost posts body and returns the status, content type and body, with
// base64 fields decoded.
func gwPost(ctx context.Context, e *env, path, body string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.client+path, strings.NewReader(body))
	if err != nil {
		return err.Error() + "\n"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("POST %s: %v\n", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return fmt.Sprintf("POST %s: %d %s\n%s\n", path, resp.StatusCode, resp.Header.Get("Content-Type"), gwDecode(compactJSON(b)))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func gatewayConcurrency(ctx context.Context, e *env) string {
	var b strings.Builder
	l1, err := grant(ctx, e, 60)
	if err != nil {
		return fmtErr(err)
	}
	l2, err := grant(ctx, e, 60)
	if err != nil {
		return fmtErr(err)
	}
	b.WriteString(gwPost(ctx, e, "/v3/lock/lock", fmt.Sprintf(`{"name":%q,"lease":"%d"}`, b64("gw"), l1)))
	second := make(chan string, 1)
	go func() {
		second <- gwPost(ctx, e, "/v3/lock/lock", fmt.Sprintf(`{"name":%q,"lease":"%d"}`, b64("gw"), l2))
	}()
	fmt.Fprintf(&b, "lock 2 %s, %s\n", waitPut(ctx, e, fmt.Sprintf("gw/%x", l2)), pending(second))
	b.WriteString(gwPost(ctx, e, "/v3/lock/unlock", fmt.Sprintf(`{"key":%q}`, b64(fmt.Sprintf("gw/%x", l1)))))
	b.WriteString(<-second)
	b.WriteString(gwPost(ctx, e, "/v3/lock/unlock", fmt.Sprintf(`{"key":%q}`, b64(fmt.Sprintf("gw/%x", l2)))))
	b.WriteString(gwPost(ctx, e, "/v3/lock/lock", `{"name":`))

	// The observe stream answers once there is a leader.
	octx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	observed := make(chan string, 4)
	go func() {
		req, err := http.NewRequestWithContext(octx, http.MethodPost, e.srv.client+"/v3/election/observe", strings.NewReader(fmt.Sprintf(`{"name":%q}`, b64("gwel"))))
		if err != nil {
			observed <- err.Error() + "\n"
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			observed <- fmt.Sprintf("observe: %v\n", err)
			return
		}
		defer resp.Body.Close()
		observed <- fmt.Sprintf("POST /v3/election/observe: %d %s\n", resp.StatusCode, resp.Header.Get("Content-Type"))
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			observed <- "observed " + gwDecode(sc.Text()) + "\n"
		}
	}()
	b.WriteString(gwPost(ctx, e, "/v3/election/leader", fmt.Sprintf(`{"name":%q}`, b64("gwel"))))
	leader := fmt.Sprintf(`{"name":%q,"key":%q,"rev":"%%d","lease":"%d"}`, b64("gwel"), b64(fmt.Sprintf("gwel/%x", l1)), l1)
	camp := gwPost(ctx, e, "/v3/election/campaign", fmt.Sprintf(`{"name":%q,"lease":"%d","value":%q}`, b64("gwel"), l1, b64("a")))
	b.WriteString(camp)
	rev := 0
	if m := regexp.MustCompile(`"rev":"(\d+)"`).FindStringSubmatch(camp); m != nil {
		fmt.Sscan(m[1], &rev)
	}
	leader = fmt.Sprintf(leader, rev)
	b.WriteString(next(ctx, observed))
	b.WriteString(next(ctx, observed))
	b.WriteString(gwPost(ctx, e, "/v3/election/proclaim", fmt.Sprintf(`{"leader":%s,"value":%q}`, leader, b64("b"))))
	b.WriteString(next(ctx, observed))
	b.WriteString(gwPost(ctx, e, "/v3/election/leader", fmt.Sprintf(`{"name":%q}`, b64("gwel"))))
	b.WriteString(gwPost(ctx, e, "/v3/election/resign", fmt.Sprintf(`{"leader":%s}`, leader)))
	b.WriteString(gwPost(ctx, e, "/v3/election/proclaim", fmt.Sprintf(`{"leader":%s,"value":%q}`, leader, b64("c"))))
	b.WriteString(gwPost(ctx, e, "/v3/election/resign", `{}`))
	b.WriteString(gwPost(ctx, e, "/v3/election/leader", fmt.Sprintf(`{"name":%q}`, b64("gwel"))))
	return b.String()
}

// lockWithAuth turns authentication on: the services make their KV calls
// as the caller (its token, over gRPC or the gateway), and refuse callers
// without one as etcd does. Auth is off again at the end.
func lockWithAuth(ctx context.Context, e *env) string {
	var b strings.Builder
	step := func(what string, err error) bool {
		if err != nil {
			b.WriteString(what + ": " + fmtErr(err) + "\n")
		}
		return err == nil
	}
	if _, err := e.c.UserAdd(ctx, "root", "pw"); !step("user add", err) {
		return b.String()
	}
	if _, err := e.c.UserGrantRole(ctx, "root", "root"); !step("grant role", err) {
		return b.String()
	}
	if _, err := e.c.AuthEnable(ctx); !step("auth enable", err) {
		return b.String()
	}
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{e.srv.client}, Username: "root", Password: "pw", DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if !step("root client", err) {
		return b.String()
	}
	defer root.Close()
	defer func() { step("auth disable", func() error { _, err := root.AuthDisable(ctx); return err }()) }()
	b.WriteString("lock without a token: " + fmtLock(lpb.NewLockClient(e.c.ActiveConnection()).Lock(ctx, &lpb.LockRequest{Name: []byte("auth")})))
	r, err := lpb.NewLockClient(root.ActiveConnection()).Lock(ctx, &lpb.LockRequest{Name: []byte("auth")})
	b.WriteString("lock as root: " + fmtLock(r, err))
	if err == nil {
		b.WriteString("unlock as root: " + hdrOf(lpb.NewLockClient(root.ActiveConnection()).Unlock(ctx, &lpb.UnlockRequest{Key: r.Key})))
	}
	b.WriteString("leader without a token: " + fmtLeader(epb.NewElectionClient(e.c.ActiveConnection()).Leader(ctx, &epb.LeaderRequest{Name: []byte("auth")})))
	tok := gwPost(ctx, e, "/v3/auth/authenticate", `{"name":"root","password":"pw"}`)
	m := regexp.MustCompile(`"token":"([^"]+)"`).FindStringSubmatch(tok)
	if m == nil {
		return b.String() + tok
	}
	b.WriteString(gwPost(ctx, e, "/v3/lock/lock", fmt.Sprintf(`{"name":%q}`, b64("gw-auth"))))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.client+"/v3/lock/lock", strings.NewReader(fmt.Sprintf(`{"name":%q}`, b64("gw-auth"))))
	req.Header.Set("Authorization", m[1])
	resp, err := http.DefaultClient.Do(req)
	if !step("gateway lock with a token", err) {
		return b.String()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(&b, "gateway lock with a token: %d\n%s\n", resp.StatusCode, gwDecode(compactJSON(body)))
	return b.String()
}
