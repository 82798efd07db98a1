package compat

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcd lists a lease's attached keys in map order; sort them.
var (
	attachedRe = regexp.MustCompile(`attached keys\(\[([^\]]*)\]\)`)
	keysJSONRe = regexp.MustCompile(`"keys":\[([^\]]*)\]`)
)

func sortAttachedKeys(s string) string {
	s = attachedRe.ReplaceAllStringFunc(s, func(m string) string {
		ks := strings.Fields(attachedRe.FindStringSubmatch(m)[1])
		slices.Sort(ks)
		return "attached keys([" + strings.Join(ks, " ") + "])"
	})
	return keysJSONRe.ReplaceAllStringFunc(s, func(m string) string {
		ks := strings.Split(keysJSONRe.FindStringSubmatch(m)[1], ",")
		slices.Sort(ks)
		return `"keys":[` + strings.Join(ks, ",") + "]"
	})
}

func ctlKeys(args ...string) step { return step{ctl: args, norm: sortAttachedKeys} }

func TestLeaseEtcdctl(t *testing.T) {
	t.Parallel()
	steps := []step{
		ctl("lease", "grant", "600"),
		ctl("lease", "grant", "300", "-w", "json"),
		// TTLs below the minimum are raised to it; these short leases are
		// revoked at once so that none expires during the scenario.
		ctl("lease", "grant", "1"),
		ctl("lease", "revoke", "{{lease3}}"),
		ctl("lease", "grant", "0", "-w", "json"),
		ctl("lease", "revoke", "{{lease4}}", "-w", "json"),
		ctl("lease", "grant", "9000000000"),
		ctlFail("lease", "grant", "9000000001"),
		ctl("lease", "grant", "--", "-5"),
		ctl("lease", "revoke", "{{lease6}}"),
		ctl("get", "x", "-w", "json"),
		// etcd lists leases by remaining time
		ctl("lease", "list"),
		ctl("lease", "list", "-w", "json"),
		ctl("put", "lk", "v", "--lease", "{{lease1}}"),
		ctl("put", "lk2", "v", "--lease", "{{lease1}}", "-w", "json"),
		ctl("put", "lk3", "v", "--lease", "{{lease2}}"),
		ctl("get", "lk", "--prefix", "-w", "json"),
		ctl("lease", "timetolive", "{{lease1}}"),
		ctlKeys("lease", "timetolive", "{{lease1}}", "--keys"),
		ctlKeys("lease", "timetolive", "{{lease1}}", "--keys", "-w", "json"),
		ctl("lease", "timetolive", "{{lease3}}", "--keys"),
		ctl("lease", "keep-alive", "--once", "{{lease1}}"),
		ctl("lease", "keep-alive", "--once", "{{lease2}}", "-w", "json"),
		ctl("put", "lk2", "v2", "--ignore-lease"),
		ctl("put", "lk", "v3"),
		ctl("put", "lk3", "--ignore-value", "--lease", "{{lease1}}"),
		ctlKeys("lease", "timetolive", "{{lease1}}", "--keys"),
		ctl("lease", "timetolive", "{{lease2}}", "--keys"),
		ctl("get", "lk", "--prefix", "-w", "json"),
		ctl("lease", "revoke", "{{lease1}}"),
		ctl("get", "", "--prefix", "-w", "json"),
		ctl("lease", "revoke", "{{lease2}}", "-w", "json"),
		ctl("get", "", "--prefix", "-w", "json"),
		ctl("lease", "timetolive", "{{lease1}}"),
		ctl("lease", "timetolive", "{{lease1}}", "--keys", "-w", "json"),
		ctlFail("lease", "revoke", "{{lease1}}"),
		ctlFail("lease", "keep-alive", "--once", "{{lease1}}"),
		ctlFail("put", "k", "v", "--lease", "1234"),
		ctlFail("lease", "revoke", "1234"),
		ctl("lease", "timetolive", "1234"),
		ctlFail("lease", "revoke", "zz"),
		ctl("lease", "list"),
	}
	runScenario(t, scenario{name: "lease-etcdctl", steps: steps})
}

func TestLeaseClient(t *testing.T) {
	t.Parallel()
	lc := func(e *env) pb.LeaseClient { return clientv3.RetryLeaseClient(e.c) }
	grant := func(desc string, req *pb.LeaseGrantRequest) step {
		return fn("LeaseGrant "+desc, func(ctx context.Context, e *env) string {
			r, err := lc(e).LeaseGrant(ctx, req)
			if err != nil {
				return fmtErr(err) + "\n"
			}
			e.addLease(r.ID)
			return fmt.Sprintf("granted %x TTL=%d error=%q %s\n", r.ID, r.TTL, r.Error, fmtHeader(r.Header))
		})
	}
	ttl := func(desc string, n int, keys bool) step {
		return fn("TimeToLive "+desc, func(ctx context.Context, e *env) string {
			var opts []clientv3.LeaseOption
			if keys {
				opts = append(opts, clientv3.WithAttachedKeys())
			}
			r, err := e.c.TimeToLive(ctx, e.lease(n), opts...)
			if err != nil {
				return fmtErr(err) + "\n"
			}
			var ks []string
			for _, k := range r.Keys {
				ks = append(ks, string(k))
			}
			slices.Sort(ks)
			return fmt.Sprintf("lease %x ttl=%d granted=%d keys=%q %s\n", r.ID, r.TTL, r.GrantedTTL, ks, fmtHeader(r.ResponseHeader))
		})
	}
	steps := []step{
		grant("with an ID", &pb.LeaseGrantRequest{ID: 0x1234, TTL: 600}),
		grant("with the same ID", &pb.LeaseGrantRequest{ID: 0x1234, TTL: 60}),
		grant("with a negative ID", &pb.LeaseGrantRequest{ID: -5, TTL: 60}),
		grant("with a negative TTL", &pb.LeaseGrantRequest{TTL: -5}),
		fn("revoke the negative-TTL lease before it expires", func(ctx context.Context, e *env) string {
			r, err := e.c.Revoke(ctx, e.lease(3))
			if err != nil {
				return fmtErr(err) + "\n"
			}
			return "revoked " + fmtHeader(r.Header) + "\n"
		}),
		grant("with the maximum TTL", &pb.LeaseGrantRequest{TTL: 9000000000}),
		grant("with too large a TTL", &pb.LeaseGrantRequest{TTL: 9000000001}),
		fn("Grant 1s (raised to the minimum TTL), attach two keys", func(ctx context.Context, e *env) string {
			l, err := e.c.Grant(ctx, 1)
			if err != nil {
				return fmtErr(err) + "\n"
			}
			e.addLease(int64(l.ID))
			var b strings.Builder
			fmt.Fprintf(&b, "granted %x TTL=%d %s\n", l.ID, l.TTL, fmtHeader(l.ResponseHeader))
			b.WriteString(fmtPut(e.c.Put(ctx, "eph/1", "v", clientv3.WithLease(l.ID))))
			b.WriteString(fmtPut(e.c.Put(ctx, "eph/2", "v", clientv3.WithLease(l.ID))))
			return b.String()
		}),
		ttl("of the short lease", 5, true),
		fn("the short lease expires: both keys go in one revision", func(ctx context.Context, e *env) string {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return collectWatch(e.c.Watch(ctx, "eph/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(4)), 2, 15*time.Second)
		}),
		ttl("of the expired lease", 5, true),
		fn("state after expiry", func(ctx context.Context, e *env) string {
			return fmtGet(e.c.Get(ctx, "\x00", clientv3.WithFromKey()))
		}),
		fn("Leases", func(ctx context.Context, e *env) string {
			r, err := e.c.Leases(ctx)
			if err != nil {
				return fmtErr(err) + "\n"
			}
			var ids []string
			for _, l := range r.Leases {
				ids = append(ids, fmt.Sprintf("%x", l.ID))
			}
			return fmt.Sprintf("leases %v %s\n", ids, fmtHeader(r.ResponseHeader))
		}),
		fn("put on the explicit-ID lease", func(ctx context.Context, e *env) string {
			return fmtPut(e.c.Put(ctx, "held", "v", clientv3.WithLease(0x1234), clientv3.WithPrevKV()))
		}),
		ttl("with keys", 1, true),
		fn("KeepAliveOnce", func(ctx context.Context, e *env) string {
			r, err := e.c.KeepAliveOnce(ctx, e.lease(1))
			if err != nil {
				return fmtErr(err) + "\n"
			}
			return fmt.Sprintf("keepalive %x TTL=%d %s\n", r.ID, r.TTL, fmtHeader(r.ResponseHeader))
		}),
		fn("KeepAlive stream, first response", func(ctx context.Context, e *env) string {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch, err := e.c.KeepAlive(ctx, e.lease(1))
			if err != nil {
				return fmtErr(err) + "\n"
			}
			select {
			case r := <-ch:
				if r == nil {
					return "keepalive channel closed\n"
				}
				return fmt.Sprintf("keepalive %x TTL=%d %s\n", r.ID, r.TTL, fmtHeader(r.ResponseHeader))
			case <-time.After(5 * time.Second):
				return "no keepalive response in 5s\n"
			}
		}),
		fn("Revoke", func(ctx context.Context, e *env) string {
			r, err := e.c.Revoke(ctx, e.lease(1))
			if err != nil {
				return fmtErr(err) + "\n"
			}
			return "revoked " + fmtHeader(r.Header) + "\n" + fmtGet(e.c.Get(ctx, "held"))
		}),
		fn("operations on a revoked lease", func(ctx context.Context, e *env) string {
			var b strings.Builder
			_, err := e.c.Revoke(ctx, e.lease(1))
			b.WriteString("revoke: " + fmtErr(err) + "\n")
			_, err = e.c.KeepAliveOnce(ctx, e.lease(1))
			b.WriteString("keepalive once: " + fmtErr(err) + "\n")
			r, err := e.c.TimeToLive(ctx, e.lease(1), clientv3.WithAttachedKeys())
			if err != nil {
				b.WriteString("timetolive: " + fmtErr(err) + "\n")
			} else {
				fmt.Fprintf(&b, "timetolive: ttl=%d granted=%d keys=%d\n", r.TTL, r.GrantedTTL, len(r.Keys))
			}
			b.WriteString("put: " + fmtPut(e.c.Put(ctx, "k", "v", clientv3.WithLease(e.lease(1)))))
			return b.String()
		}),
		fn("KeepAlive stream on a missing lease", func(ctx context.Context, e *env) string {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch, err := e.c.KeepAlive(ctx, 0x9999)
			if err != nil {
				return fmtErr(err) + "\n"
			}
			select {
			case r, ok := <-ch:
				if !ok || r == nil {
					return "keepalive channel closed\n"
				}
				return fmt.Sprintf("keepalive %x TTL=%d\n", r.ID, r.TTL)
			case <-time.After(5 * time.Second):
				return "no keepalive response in 5s\n"
			}
		}),
	}
	runScenario(t, scenario{name: "lease-client", steps: steps})
}
