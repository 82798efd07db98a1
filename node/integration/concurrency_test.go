package integration

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ballastdb/ballast/node/concurrency"
	"github.com/ballastdb/ballast/node/concurrency/concurrencypb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	etcdconcurrency "go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestConcurrencyAPI drives the Lock and Election gRPC services, their
// gateway routes, and etcdctl's lock and elect (which run client/v3's
// concurrency package themselves, on the same keys as the services) on a
// 3-member cluster, with the clients of one scene on different members.
func TestConcurrencyAPI(t *testing.T) {
	c := startCluster(t, 3)
	cli := c.client()
	t.Run("lock", func(t *testing.T) { testLockService(t, c, cli) })
	t.Run("election", func(t *testing.T) { testElectionService(t, c, cli) })
	t.Run("gateway", func(t *testing.T) { testConcurrencyGateway(t, c.members[2], cli) })
	t.Run("etcdctl", func(t *testing.T) { testEtcdctlLockElect(t, c, cli) })
	t.Run("stop while waiting", func(t *testing.T) { testStopWhileWaiting(t, c, cli) })
}

// testStopWhileWaiting stops a member (SIGTERM) that serves a waiting Lock
// and an Observe stream: it exits cleanly and promptly, and the waiting
// calls end with an error instead of hanging.
func testStopWhileWaiting(t *testing.T, c *cluster, cli *clientv3.Client) {
	ctx := ctxT(t, time.Minute)
	m := c.members[0]
	conn := dialMember(t, m)
	holder := concurrencypb.NewLockClient(dialMember(t, c.members[1]))
	if _, err := holder.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("stop"), Lease: grantLease(t, cli, 60)}); err != nil {
		t.Fatal(err)
	}
	l := grantLease(t, cli, 60)
	waiting := async(func() (*concurrencypb.LockResponse, error) {
		return concurrencypb.NewLockClient(conn).Lock(ctx, &concurrencypb.LockRequest{Name: []byte("stop"), Lease: l})
	})
	waitKeyPut(t, ctx, cli, lockKey("stop", l))
	el := concurrencypb.NewElectionClient(conn)
	if _, err := el.Campaign(ctx, &concurrencypb.CampaignRequest{Name: []byte("stop-el"), Lease: l, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	obs, err := el.Observe(ctx, &concurrencypb.LeaderRequest{Name: []byte("stop-el")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Recv(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m.stop()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stopping took %v", d)
	}
	if _, err := awaitErr(t, waiting, 10*time.Second, "the Lock waiting on the stopped member"); err == nil {
		t.Error("the Lock waiting on the stopped member succeeded")
	}
	if _, err := obs.Recv(); err == nil {
		t.Error("Observe on the stopped member goes on")
	}
}

func testLockService(t *testing.T, c *cluster, cli *clientv3.Client) {
	ctx := ctxT(t, 2*time.Minute)
	lockA := concurrencypb.NewLockClient(dialMember(t, c.members[0]))
	lockB := concurrencypb.NewLockClient(dialMember(t, c.members[1]))
	lockC := concurrencypb.NewLockClient(dialMember(t, c.members[2]))

	// Mutual exclusion, released by Unlock.
	l1, l2 := grantLease(t, cli, 60), grantLease(t, cli, 60)
	r1, err := lockA.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("lk"), Lease: l1})
	if err != nil {
		t.Fatal(err)
	}
	if want := lockKey("lk", l1); string(r1.Key) != want {
		t.Fatalf("lock key = %q, want %q", r1.Key, want)
	}
	if kv := getKV(t, cli, string(r1.Key)); kv == nil || kv.Lease != l1 || r1.Header.Revision < kv.CreateRevision {
		t.Fatalf("lock key %q: kv %v, header %v", r1.Key, kv, r1.Header)
	}
	second := async(func() (*concurrencypb.LockResponse, error) {
		return lockB.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("lk"), Lease: l2})
	})
	// Once the second locker's key is queued, it must be waiting.
	waitKeyPut(t, ctx, cli, lockKey("lk", l2))
	assertPending(t, second, "a second Lock while the first holds the lock")
	ur, err := lockA.Unlock(ctx, &concurrencypb.UnlockRequest{Key: r1.Key})
	if err != nil {
		t.Fatal(err)
	}
	r2 := await(t, second, 20*time.Second, "the second Lock after Unlock")
	if string(r2.Key) != lockKey("lk", l2) || r2.Header.Revision < ur.Header.Revision {
		t.Fatalf("second lock = key %q header %v; unlock header %v", r2.Key, r2.Header, ur.Header)
	}
	if kv := getKV(t, cli, string(r1.Key)); kv != nil {
		t.Fatalf("Unlock left the key: %v", kv)
	}

	// Locking again with the holder's lease is the same hold.
	again, err := lockC.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("lk"), Lease: l2})
	if err != nil || string(again.Key) != string(r2.Key) {
		t.Fatalf("re-lock with the holder's lease = %v, %v", again, err)
	}

	// A waiter that gives up takes its key away, so that it holds up no
	// one behind it. It gives up once it waits: when the member has
	// started the watch it waits with (client/v3 takes the key back only
	// once the waiter's put has been answered).
	l3 := grantLease(t, cli, 60)
	from := getRev(t, cli) + 1
	watches := watchStreamsStarted(t, c.members[2])
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := async(func() (*concurrencypb.LockResponse, error) {
		return lockC.Lock(cctx, &concurrencypb.LockRequest{Name: []byte("lk"), Lease: l3})
	})
	for watchStreamsStarted(t, c.members[2]) == watches {
		select { // polling: the member's metrics are the only sign of the wait
		case <-ctx.Done():
			t.Fatal("the second Lock never started waiting")
		case <-time.After(20 * time.Millisecond):
		}
	}
	assertPending(t, gaveUp, "a Lock while another lease holds the lock")
	cancel()
	if _, err := awaitErr(t, gaveUp, 20*time.Second, "the abandoned Lock"); status.Code(err) != codes.Canceled {
		t.Fatalf("abandoned Lock: %v, want Canceled", err)
	}
	if err := <-watchDelete(ctx, cli, lockKey("lk", l3), from); err != nil {
		t.Fatalf("the abandoned waiter's key: %v", err)
	}

	// Released by the holder's lease expiring.
	if _, err := lockA.Unlock(ctx, &concurrencypb.UnlockRequest{Key: r2.Key}); err != nil {
		t.Fatal(err)
	}
	short, l4 := grantLease(t, cli, 5), grantLease(t, cli, 60)
	if _, err := lockA.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("lk"), Lease: short}); err != nil {
		t.Fatal(err)
	}
	afterExpiry := async(func() (*concurrencypb.LockResponse, error) {
		return lockB.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("lk"), Lease: l4})
	})
	waitKeyPut(t, ctx, cli, lockKey("lk", l4))
	assertPending(t, afterExpiry, "a Lock while a 5-second lease holds the lock")
	if r4 := await(t, afterExpiry, 20*time.Second, "the Lock after the holder's lease expired"); string(r4.Key) != lockKey("lk", l4) {
		t.Fatalf("lock after expiry = %q", r4.Key)
	}
	if kv := getKV(t, cli, lockKey("lk", short)); kv != nil {
		t.Fatalf("the expired lease's lock key is still there: %v", kv)
	}

	// Without a lease, the service grants one of 60 seconds, as etcd's.
	r5, err := lockA.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("own-lease")})
	if err != nil {
		t.Fatal(err)
	}
	kv := getKV(t, cli, string(r5.Key))
	if kv == nil || kv.Lease == 0 || string(r5.Key) != lockKey("own-lease", kv.Lease) {
		t.Fatalf("lock without a lease: key %q kv %v", r5.Key, kv)
	}
	if ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease)); err != nil || ttl.GrantedTTL != 60 {
		t.Fatalf("the granted lease: %v %v", ttl, err)
	}

	// A missing lease: etcd's message, and the code etcd's service
	// answers with (Unknown: it returns its client's error as is).
	_, err = lockA.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("lk2"), Lease: 0x7eadbeef})
	checkStatus(t, err, codes.Unknown, "etcdserver: requested lease not found")
}

func testElectionService(t *testing.T, c *cluster, cli *clientv3.Client) {
	ctx := ctxT(t, 2*time.Minute)
	elA := concurrencypb.NewElectionClient(dialMember(t, c.members[0]))
	elB := concurrencypb.NewElectionClient(dialMember(t, c.members[1]))
	elC := concurrencypb.NewElectionClient(dialMember(t, c.members[2]))
	name := []byte("el")

	// An observer from before the first campaign.
	obs, err := elC.Observe(ctx, &concurrencypb.LeaderRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	observed := make(chan *mvccpb.KeyValue, 16)
	go func() {
		defer close(observed)
		for {
			r, err := obs.Recv()
			if err != nil {
				return
			}
			observed <- r.Kv
		}
	}()
	expectObserved := func(key, value string) {
		t.Helper()
		select {
		case kv, ok := <-observed:
			if !ok || string(kv.Key) != key || string(kv.Value) != value {
				t.Fatalf("observed %v (stream open: %v), want %s=%s", kv, ok, key, value)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("Observe did not report %s=%s", key, value)
		}
	}

	_, err = elA.Leader(ctx, &concurrencypb.LeaderRequest{Name: name})
	checkStatus(t, err, codes.Unknown, etcdconcurrency.ErrElectionNoLeader.Error())

	l1 := grantLease(t, cli, 60)
	c1, err := elA.Campaign(ctx, &concurrencypb.CampaignRequest{Name: name, Lease: l1, Value: []byte("v1")})
	if err != nil {
		t.Fatal(err)
	}
	key1 := lockKey("el", l1)
	kv := getKV(t, cli, key1)
	if k := c1.Leader; string(k.Name) != "el" || string(k.Key) != key1 || k.Lease != l1 || kv == nil || k.Rev != kv.CreateRevision {
		t.Fatalf("leader key %v, kv %v", k, kv)
	}
	expectObserved(key1, "v1")
	if lr, err := elB.Leader(ctx, &concurrencypb.LeaderRequest{Name: name}); err != nil || string(lr.Kv.Value) != "v1" {
		t.Fatalf("Leader = %v, %v", lr, err)
	}

	// A second candidate waits. Its lease is kept alive until the
	// lease-expiry hand-over below.
	kaCtx, stopKeepAlive := context.WithCancel(ctx)
	defer stopKeepAlive()
	l2 := grantLease(t, cli, 4)
	keepAlive(t, kaCtx, cli, l2)
	second := async(func() (*concurrencypb.CampaignResponse, error) {
		return elB.Campaign(ctx, &concurrencypb.CampaignRequest{Name: name, Lease: l2, Value: []byte("v2")})
	})
	key2 := lockKey("el", l2)
	waitKeyPut(t, ctx, cli, key2)
	assertPending(t, second, "a second Campaign while the first leads")

	if _, err := elA.Proclaim(ctx, &concurrencypb.ProclaimRequest{Leader: c1.Leader, Value: []byte("v1b")}); err != nil {
		t.Fatal(err)
	}
	expectObserved(key1, "v1b")
	// A leader key whose revision is not its key's is no leadership.
	forged := &concurrencypb.LeaderKey{Name: name, Key: []byte(key2), Rev: c1.Leader.Rev, Lease: l2}
	_, err = elB.Proclaim(ctx, &concurrencypb.ProclaimRequest{Leader: forged, Value: []byte("x")})
	checkStatus(t, err, codes.Unknown, etcdconcurrency.ErrElectionNotLeader.Error())

	// Resign hands over to the next candidate.
	rs, err := elA.Resign(ctx, &concurrencypb.ResignRequest{Leader: c1.Leader})
	if err != nil {
		t.Fatal(err)
	}
	c2 := await(t, second, 20*time.Second, "the second Campaign after Resign")
	// (a Campaign's header is that of its put, from before the wait)
	if string(c2.Leader.Key) != key2 || c2.Leader.Lease != l2 || c2.Leader.Rev <= c1.Leader.Rev || c2.Leader.Rev >= rs.Header.Revision {
		t.Fatalf("second leader %v; first %v; resign header %v", c2.Leader, c1.Leader, rs.Header)
	}
	expectObserved(key2, "v2")
	// The former leader is refused, with etcd's error.
	_, err = elA.Proclaim(ctx, &concurrencypb.ProclaimRequest{Leader: c1.Leader, Value: []byte("late")})
	checkStatus(t, err, codes.Unknown, etcdconcurrency.ErrElectionNotLeader.Error())
	if _, err := elA.Resign(ctx, &concurrencypb.ResignRequest{Leader: c1.Leader}); err != nil {
		t.Fatalf("resigning a lost leadership: %v (etcd answers success)", err)
	}
	_, err = elA.Proclaim(ctx, &concurrencypb.ProclaimRequest{Value: []byte("x")})
	checkStatus(t, err, codes.Unknown, concurrency.ErrMissingLeaderKey.Error())
	_, err = elA.Resign(ctx, &concurrencypb.ResignRequest{})
	checkStatus(t, err, codes.Unknown, concurrency.ErrMissingLeaderKey.Error())

	// The leader's lease expires: the next candidate is elected.
	l3 := grantLease(t, cli, 60)
	third := async(func() (*concurrencypb.CampaignResponse, error) {
		return elC.Campaign(ctx, &concurrencypb.CampaignRequest{Name: name, Lease: l3, Value: []byte("v3")})
	})
	key3 := lockKey("el", l3)
	waitKeyPut(t, ctx, cli, key3)
	assertPending(t, third, "a third Campaign while the second leads")
	stopKeepAlive()
	c3 := await(t, third, 30*time.Second, "the third Campaign after the leader's lease expired")
	if string(c3.Leader.Key) != key3 {
		t.Fatalf("third leader %v", c3.Leader)
	}
	expectObserved(key3, "v3")
	if lr, err := elA.Leader(ctx, &concurrencypb.LeaderRequest{Name: name}); err != nil || string(lr.Kv.Key) != key3 {
		t.Fatalf("Leader = %v, %v", lr, err)
	}

	if _, err := elC.Resign(ctx, &concurrencypb.ResignRequest{Leader: c3.Leader}); err != nil {
		t.Fatal(err)
	}
	_, err = elB.Leader(ctx, &concurrencypb.LeaderRequest{Name: name})
	checkStatus(t, err, codes.Unknown, etcdconcurrency.ErrElectionNoLeader.Error())
	select {
	case kv, ok := <-observed:
		t.Fatalf("Observe reported %v (open %v) with no leader", kv, ok)
	default:
	}
}

// testConcurrencyGateway drives the services through etcd's JSON routes,
// as curl would: keys and values base64, 64-bit integers as strings.
func testConcurrencyGateway(t *testing.T, m *member, cli *clientv3.Client) {
	ctx := ctxT(t, 2*time.Minute)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	l1, l2 := grantLease(t, cli, 60), grantLease(t, cli, 60)

	var lock gwResponse
	gwPost(t, ctx, m, "/v3/lock/lock", fmt.Sprintf(`{"name":%q,"lease":"%d"}`, b64("gw"), l1), http.StatusOK, &lock)
	if string(lock.Key) != lockKey("gw", l1) || lock.Header == nil || lock.Header.Revision == 0 {
		t.Fatalf("lock = %+v", lock)
	}
	second := async(func() (gwResponse, error) {
		var r gwResponse
		code, err := gwDo(ctx, m, "/v3/lock/lock", fmt.Sprintf(`{"name":%q,"lease":"%d"}`, b64("gw"), l2), &r)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("HTTP %d: %+v", code, r)
		}
		return r, err
	})
	waitKeyPut(t, ctx, cli, lockKey("gw", l2))
	assertPending(t, second, "a second /v3/lock/lock while the first holds the lock")
	gwPost(t, ctx, m, "/v3/lock/unlock", fmt.Sprintf(`{"key":%q}`, b64(string(lock.Key))), http.StatusOK, nil)
	if r := await(t, second, 20*time.Second, "the second /v3/lock/lock"); string(r.Key) != lockKey("gw", l2) {
		t.Fatalf("second lock = %+v", r)
	}

	// Observe streams one {"result":{...}} per line. The gateway answers
	// with the first leader, so the response comes after the campaign.
	octx, stopObserve := context.WithCancel(ctx)
	defer stopObserve()
	observing := async(func() (*http.Response, error) {
		req, err := http.NewRequestWithContext(octx, http.MethodPost, m.client+"/v3/election/observe", strings.NewReader(fmt.Sprintf(`{"name":%q}`, b64("gwel"))))
		if err != nil {
			return nil, err
		}
		return http.DefaultClient.Do(req)
	})
	var lines chan []byte
	expectObserved := func(key, value string) {
		t.Helper()
		if lines == nil {
			resp := await(t, observing, 20*time.Second, "POST /v3/election/observe")
			t.Cleanup(func() { resp.Body.Close() })
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("observe: HTTP %d", resp.StatusCode)
			}
			lines = make(chan []byte, 8)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					lines <- append([]byte(nil), sc.Bytes()...)
				}
			}()
		}
		select {
		case l, ok := <-lines:
			var r struct{ Result gwResponse }
			if !ok || json.Unmarshal(l, &r) != nil || r.Result.Kv == nil || string(r.Result.Kv.Key) != key || string(r.Result.Kv.Value) != value {
				t.Fatalf("observe line %s (open %v), want %s=%s", l, ok, key, value)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("observe did not report %s=%s", key, value)
		}
	}

	var camp struct {
		Header *gwHeader
		Leader json.RawMessage
	}
	gwPost(t, ctx, m, "/v3/election/campaign", fmt.Sprintf(`{"name":%q,"lease":"%d","value":%q}`, b64("gwel"), l1, b64("a")), http.StatusOK, &camp)
	var lk struct {
		Name, Key  []byte
		Rev, Lease int64 `json:",string"`
	}
	if err := json.Unmarshal(camp.Leader, &lk); err != nil || string(lk.Name) != "gwel" || string(lk.Key) != lockKey("gwel", l1) || lk.Lease != l1 || lk.Rev == 0 {
		t.Fatalf("campaign leader %s: %+v %v", camp.Leader, lk, err)
	}
	expectObserved(lockKey("gwel", l1), "a")
	gwPost(t, ctx, m, "/v3/election/proclaim", fmt.Sprintf(`{"leader":%s,"value":%q}`, camp.Leader, b64("b")), http.StatusOK, nil)
	expectObserved(lockKey("gwel", l1), "b")
	var leader gwResponse
	gwPost(t, ctx, m, "/v3/election/leader", fmt.Sprintf(`{"name":%q}`, b64("gwel")), http.StatusOK, &leader)
	if leader.Kv == nil || string(leader.Kv.Value) != "b" || leader.Kv.Lease != l1 {
		t.Fatalf("leader = %+v", leader)
	}
	gwPost(t, ctx, m, "/v3/election/resign", fmt.Sprintf(`{"leader":%s}`, camp.Leader), http.StatusOK, nil)

	// etcd's errors, with the HTTP status grpc-gateway gives code Unknown.
	var e gwResponse
	gwPost(t, ctx, m, "/v3/election/leader", fmt.Sprintf(`{"name":%q}`, b64("gwel")), http.StatusInternalServerError, &e)
	if e.Code != int(codes.Unknown) || e.Message != "election: no leader" {
		t.Fatalf("leader with none = %+v", e)
	}
	e = gwResponse{}
	gwPost(t, ctx, m, "/v3/election/proclaim", fmt.Sprintf(`{"leader":%s,"value":%q}`, camp.Leader, b64("c")), http.StatusInternalServerError, &e)
	if e.Code != int(codes.Unknown) || e.Message != "election: not leader" {
		t.Fatalf("proclaim after resign = %+v", e)
	}
}

// testEtcdctlLockElect runs etcdctl's lock and elect, which implement
// locks and elections in the client on the same keys as the services: an
// etcdctl lock and a gRPC Lock of the same name exclude each other.
func testEtcdctlLockElect(t *testing.T, c *cluster, cli *clientv3.Client) {
	ctx := ctxT(t, 2*time.Minute)
	lock := concurrencypb.NewLockClient(dialMember(t, c.members[1]))

	holder := startCtl(t, c.members[0], "lock", "ctl-lock")
	if k := holder.line(); !strings.HasPrefix(k, "ctl-lock/") {
		t.Fatalf("etcdctl lock printed %q", k)
	}
	l := grantLease(t, cli, 60)
	viaGRPC := async(func() (*concurrencypb.LockResponse, error) {
		return lock.Lock(ctx, &concurrencypb.LockRequest{Name: []byte("ctl-lock"), Lease: l})
	})
	waitKeyPut(t, ctx, cli, lockKey("ctl-lock", l))
	waiter := startCtl(t, c.members[2], "lock", "ctl-lock", "echo", "got it")
	waitPrefixCount(t, ctx, cli, "ctl-lock/", 3)
	assertPending(t, viaGRPC, "a gRPC Lock while etcdctl holds the lock")
	waiter.quiet()

	holder.interrupt() // etcdctl unlocks on SIGINT
	r := await(t, viaGRPC, 20*time.Second, "the gRPC Lock after etcdctl released the lock")
	waiter.quiet() // queued behind the gRPC lock
	if _, err := lock.Unlock(ctx, &concurrencypb.UnlockRequest{Key: r.Key}); err != nil {
		t.Fatal(err)
	}
	if got := waiter.line(); got != "got it" {
		t.Fatalf("the waiting etcdctl lock printed %q", got)
	}
	waiter.wait()

	observer := startCtl(t, c.members[2], "elect", "-l", "ctl-el")
	cand1 := startCtl(t, c.members[0], "elect", "ctl-el", "p1")
	k1 := cand1.line()
	if !strings.HasPrefix(k1, "ctl-el/") || cand1.line() != "p1" {
		t.Fatalf("etcdctl elect printed %q", k1)
	}
	if k, v := observer.line(), observer.line(); k != k1 || v != "p1" {
		t.Fatalf("etcdctl elect -l printed %q %q", k, v)
	}
	el := concurrencypb.NewElectionClient(dialMember(t, c.members[1]))
	if lr, err := el.Leader(ctx, &concurrencypb.LeaderRequest{Name: []byte("ctl-el")}); err != nil || string(lr.Kv.Key) != k1 || string(lr.Kv.Value) != "p1" {
		t.Fatalf("Leader of etcdctl's election = %v, %v", lr, err)
	}
	cand2 := startCtl(t, c.members[1], "elect", "ctl-el", "p2")
	waitPrefixCount(t, ctx, cli, "ctl-el/", 2)
	cand2.quiet()
	cand1.interrupt() // etcdctl resigns on SIGINT
	k2 := cand2.line()
	if k2 == k1 || !strings.HasPrefix(k2, "ctl-el/") || cand2.line() != "p2" {
		t.Fatalf("the second etcdctl elect printed %q", k2)
	}
	if k, v := observer.line(), observer.line(); k != k2 || v != "p2" {
		t.Fatalf("etcdctl elect -l printed %q %q after the hand-over", k, v)
	}
	cand2.interrupt()
	observer.interrupt()
}

// --- helpers ---

func dialMember(t *testing.T, m *member) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(m.client, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func grantLease(t *testing.T, cli *clientv3.Client, ttl int64) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cli.Grant(ctx, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return int64(r.ID)
}

func getRev(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cli.Get(ctx, "any")
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Revision
}

// watchStreamsStarted is how many Watch streams m has served, from its
// grpc_server_started_total.
func watchStreamsStarted(t *testing.T, m *member) float64 {
	t.Helper()
	return metricValue(t, m, `grpc_server_started_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} `)
}

// keepAlive keeps the lease alive until ctx ends.
func keepAlive(t *testing.T, ctx context.Context, cli *clientv3.Client, id int64) {
	t.Helper()
	ch, err := cli.KeepAlive(ctx, clientv3.LeaseID(id))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ch { // drain, or client/v3 complains that nobody listens
		}
	}()
}

// lockKey is the key client/v3's concurrency package uses for a lease.
func lockKey(name string, lease int64) string { return fmt.Sprintf("%s/%x", name, lease) }

func getKV(t *testing.T, cli *clientv3.Client, key string) *mvccpb.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) == 0 {
		return nil
	}
	return r.Kvs[0]
}

// waitUntil reads key (the keys under it, with prefix) until done says
// so, watching for the next change between reads. It returns the last
// read.
func waitUntil(t *testing.T, ctx context.Context, cli *clientv3.Client, key string, prefix bool, done func(*clientv3.GetResponse) bool) *clientv3.GetResponse {
	t.Helper()
	var opts []clientv3.OpOption
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	for {
		r, err := cli.Get(ctx, key, opts...)
		if err != nil {
			t.Fatalf("get %q: %v", key, err)
		}
		if done(r) {
			return r
		}
		wctx, cancel := context.WithCancel(ctx)
		wch := cli.Watch(wctx, key, append(opts, clientv3.WithRev(r.Header.Revision+1))...)
		select {
		case <-wch:
		case <-ctx.Done():
			cancel()
			t.Fatalf("%q: condition not met before the deadline", key)
		}
		cancel()
	}
}

// waitKeyPut waits until key exists and returns its mod revision.
func waitKeyPut(t *testing.T, ctx context.Context, cli *clientv3.Client, key string) int64 {
	t.Helper()
	r := waitUntil(t, ctx, cli, key, false, func(r *clientv3.GetResponse) bool { return len(r.Kvs) > 0 })
	return r.Kvs[0].ModRevision
}

func waitPrefixCount(t *testing.T, ctx context.Context, cli *clientv3.Client, prefix string, n int64) {
	t.Helper()
	waitUntil(t, ctx, cli, prefix, true, func(r *clientv3.GetResponse) bool { return r.Count >= n })
}

// watchDelete reports nil once key is deleted at or after revision rev.
func watchDelete(ctx context.Context, cli *clientv3.Client, key string, rev int64) <-chan error {
	ch := make(chan error, 1)
	go func() {
		for wr := range cli.Watch(ctx, key, clientv3.WithRev(rev)) {
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					ch <- nil
					return
				}
			}
		}
		ch <- errors.New("not deleted before the watch ended")
	}()
	return ch
}

type result[T any] struct {
	v   T
	err error
}

// async runs f in the background; the channel gets its result.
func async[T any](f func() (T, error)) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() {
		v, err := f()
		ch <- result[T]{v, err}
	}()
	return ch
}

func assertPending[T any](t *testing.T, ch <-chan result[T], what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned instead of waiting: %v, %v", what, r.v, r.err)
	default:
	}
}

func await[T any](t *testing.T, ch <-chan result[T], d time.Duration, what string) T {
	t.Helper()
	v, err := awaitErr(t, ch, d, what)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func awaitErr[T any](t *testing.T, ch <-chan result[T], d time.Duration, what string) (T, error) {
	t.Helper()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(d):
		t.Fatalf("%s: no answer within %v", what, d)
		panic("unreachable")
	}
}

func checkStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if s, _ := status.FromError(err); err == nil || s.Code() != code || s.Message() != msg {
		t.Fatalf("error = %v, want code %v %q", err, code, msg)
	}
}

// gwResponse holds the fields of the gateway's answers the tests read.
type gwResponse struct {
	Header  *gwHeader `json:"header"`
	Key     []byte    `json:"key"`
	Kv      *gwKV     `json:"kv"`
	Code    int       `json:"code"`
	Message string    `json:"message"`
}

type gwHeader struct {
	Revision int64 `json:"revision,string"`
}

type gwKV struct {
	Key   []byte `json:"key"`
	Value []byte `json:"value"`
	Lease int64  `json:"lease,string"`
}

// gwDo POSTs body to path and decodes the JSON answer into out.
func gwDo(ctx context.Context, m *member, path, body string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.client+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

func gwPost(t *testing.T, ctx context.Context, m *member, path, body string, wantCode int, out any) {
	t.Helper()
	code, err := gwDo(ctx, m, path, body, out)
	if err != nil || code != wantCode {
		t.Fatalf("POST %s %s: HTTP %d, %v (want %d)", path, body, code, err, wantCode)
	}
}

// ctlProc is a long-running etcdctl (lock, elect) whose output is read
// line by line.
type ctlProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	exited chan struct{}
	err    error
}

func startCtl(t *testing.T, m *member, args ...string) *ctlProc {
	t.Helper()
	p := &ctlProc{t: t, lines: make(chan string, 64), exited: make(chan struct{})}
	p.cmd = exec.Command(etcdctlBin, append([]string{"--endpoints=" + m.client}, args...)...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	p.cmd.Stderr = &stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = p.cmd.Wait()
		if p.err != nil {
			p.err = fmt.Errorf("%w: %s", p.err, stderr.String())
		}
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// line returns the next line of output.
func (p *ctlProc) line() string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.exited
			p.t.Fatalf("etcdctl %v ended: %v", p.cmd.Args[2:], p.err)
		}
		return l
	case <-time.After(30 * time.Second):
		p.t.Fatalf("etcdctl %v printed nothing within 30s", p.cmd.Args[2:])
		return ""
	}
}

// quiet checks that nothing was printed so far and the process runs.
func (p *ctlProc) quiet() {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		p.t.Fatalf("etcdctl %v printed %q (running: %v) while it should wait", p.cmd.Args[2:], l, ok)
	default:
	}
}

// interrupt sends SIGINT, on which etcdctl unlocks or resigns, and waits
// for a clean exit.
func (p *ctlProc) interrupt() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	p.wait()
}

func (p *ctlProc) wait() {
	p.t.Helper()
	select {
	case <-p.exited:
		if p.err != nil {
			p.t.Fatalf("etcdctl %v: %v", p.cmd.Args[2:], p.err)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("etcdctl %v did not exit", p.cmd.Args[2:])
	}
}
