package join

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Request describes the member that wants to join.
type Request struct {
	// Endpoints are client URLs of the running cluster (--join-endpoints).
	Endpoints []string
	// Name is this member's --name.
	Name string
	// PeerURLs are this member's --initial-advertise-peer-urls: the cluster
	// knows an added member by them.
	PeerURLs []string
	// DataDir appears in messages only.
	DataDir string
	// TLS is used for https:// and unixs:// endpoints: the CAs to trust and
	// the certificate to present. nil means the system roots and no
	// certificate.
	TLS    *tls.Config
	Logger *zap.Logger
}

// Timing of the attempts: each MemberList gets attemptTimeout; between
// attempts the wait doubles from minBackoff up to maxBackoff, so a member
// added while this one waits starts within a couple of seconds. The
// "waiting" line is repeated every repeatLog while nothing changes.
const (
	attemptTimeout = 5 * time.Second
	minBackoff     = 250 * time.Millisecond
	maxBackoff     = 2 * time.Second
	repeatLog      = 30 * time.Second
)

// InitialCluster asks the running cluster (a linearizable MemberList) for the
// member whose peer URLs are r.PeerURLs and returns the initial cluster this
// member joins with: every member by name, itself by r.Name, as
// `etcdctl member add` prints it. It never bootstraps anything itself:
//
//   - listed and unstarted (added, never run): the initial cluster;
//   - listed and started: this member ran before and its data is gone: a
//     *ReplaceError (DataLost);
//   - not listed, or the cluster unreachable: it logs "waiting to be added"
//     and asks again, until listed or ctx ends (then ctx.Err()).
func InitialCluster(ctx context.Context, r Request) (map[string][]string, error) {
	lg := r.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	lg = lg.With(zap.String("name", r.Name), zap.Strings("peer-urls", r.PeerURLs), zap.Strings("join-endpoints", r.Endpoints))
	lg.Info("no member data and --initial-cluster-state=existing: asking the running cluster for this member's membership")
	var cli *clientv3.Client
	defer func() {
		if cli != nil {
			cli.Close()
		}
	}()
	var w waitLog
	backoff := minBackoff
	for {
		if cli == nil {
			var err error
			if cli, err = newClient(ctx, r, lg); err != nil {
				w.unreachable(lg, err)
			}
		}
		if cli != nil {
			actx, cancel := context.WithTimeout(ctx, attemptTimeout)
			resp, err := cli.MemberList(actx) // linearizable: a stale member must not answer
			cancel()
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case err != nil:
				w.unreachable(lg, err)
			default:
				ic, done, err := decide(resp, r, lg, &w)
				if done {
					return ic, err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// decide acts on one membership answer; done is false while this member
// must wait.
func decide(resp *clientv3.MemberListResponse, r Request, lg *zap.Logger, w *waitLog) (ic map[string][]string, done bool, err error) {
	clusterID := idString(resp.Header.GetClusterId())
	m, st := find(resp.Members, r.PeerURLs)
	switch st {
	case unstarted:
		ic, err := initialCluster(resp.Members, m.ID, r.Name)
		if err != nil {
			return nil, true, err
		}
		lg.Info("this member was added to the running cluster; joining it",
			zap.String("member-id", idString(m.ID)), zap.String("cluster-id", clusterID),
			zap.Bool("learner", m.IsLearner), zap.String("initial-cluster", format(ic)))
		return ic, true, nil
	case started:
		return nil, true, &ReplaceError{Reason: DataLost, Detail: fmt.Sprintf(
			"the cluster %s lists member %s (name %q, peer URLs %s) as started, but the data dir %s holds no member data: its data was lost. Remove the member (etcdctl member remove %s) and add it again as a learner with the same peer URLs; it then joins with an empty data dir",
			clusterID, idString(m.ID), m.Name, strings.Join(m.PeerURLs, ","), r.DataDir, idString(m.ID))}
	case overlapping:
		w.waiting(lg, "conflict", "a member of the running cluster shares some but not all of this member's peer URLs; waiting for it to be fixed. Remove that member or correct --initial-advertise-peer-urls",
			zap.String("cluster-id", clusterID), zap.String("member-id", idString(m.ID)), zap.Strings("member-peer-urls", m.PeerURLs))
	default:
		w.waiting(lg, "absent", "waiting to be added to the running cluster: it does not list this member's peer URLs. Add it with `etcdctl member add "+r.Name+" --learner --peer-urls="+strings.Join(r.PeerURLs, ",")+"` (the operator does this itself)",
			zap.String("cluster-id", clusterID), zap.Int("members", len(resp.Members)))
	}
	return nil, false, nil
}

func newClient(ctx context.Context, r Request, lg *zap.Logger) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   r.Endpoints,
		DialTimeout: attemptTimeout,
		Context:     ctx,
		// The client's own retries log at warn on every failed dial; this
		// loop reports the waiting itself.
		Logger: lg.Named("join-client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	}
	if needsTLS(r.Endpoints) {
		cfg.TLS = r.TLS
		if cfg.TLS == nil {
			cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	return clientv3.New(cfg)
}

// needsTLS: client/v3 uses its TLS configuration for https:// and unixs://
// endpoints only; giving it one otherwise would change nothing.
func needsTLS(endpoints []string) bool {
	for _, ep := range endpoints {
		if u, err := url.Parse(ep); err == nil && (u.Scheme == "https" || u.Scheme == "unixs") {
			return true
		}
	}
	return false
}

// membership states of this member as the cluster sees it.
type state int

const (
	absent      state = iota // no member has these peer URLs
	overlapping              // a member has some of them, not all: a misconfiguration
	unstarted                // added, never run (no name yet)
	started                  // has run: it published its name
)

// find looks for the member whose peer URLs are exactly peerURLs (in any
// order).
func find(members []*pb.Member, peerURLs []string) (*pb.Member, state) {
	var partial *pb.Member
	for _, m := range members {
		switch {
		case sameURLs(m.PeerURLs, peerURLs):
			if m.Name == "" {
				return m, unstarted
			}
			return m, started
		case partial == nil && slices.ContainsFunc(m.PeerURLs, func(u string) bool { return slices.Contains(peerURLs, u) }):
			partial = m
		}
	}
	if partial != nil {
		return partial, overlapping
	}
	return nil, absent
}

// initialCluster is the --initial-cluster of the member self joining with
// name: every member by its name and self by name. Only peer URLs matter to
// the bootstrap (it checks them against the running cluster); names must
// only be unique, so a member without one (another added, unstarted member)
// or with a name taken already is listed by its ID.
func initialCluster(members []*pb.Member, self uint64, name string) (map[string][]string, error) {
	ic := map[string][]string{}
	for _, m := range members {
		if m.ID == self {
			ic[name] = slices.Clone(m.PeerURLs)
		}
	}
	if len(ic) == 0 {
		return nil, fmt.Errorf("member %s is not in the membership", idString(self))
	}
	others := slices.Clone(members)
	// Started members first, so that they keep their names when an
	// unstarted one would need the same key.
	sort.SliceStable(others, func(i, j int) bool { return others[i].Name != "" && others[j].Name == "" })
	for _, m := range others {
		if m.ID == self {
			continue
		}
		key := m.Name
		if _, taken := ic[key]; key == "" || taken {
			key = idString(m.ID)
		}
		if _, taken := ic[key]; taken {
			return nil, fmt.Errorf("cannot name member %s in the initial cluster: %q is taken; rename the member with that name", idString(m.ID), key)
		}
		ic[key] = slices.Clone(m.PeerURLs)
	}
	return ic, nil
}

// format renders an initial cluster the way --initial-cluster is written,
// sorted by name.
func format(ic map[string][]string) string {
	names := make([]string, 0, len(ic))
	for n := range ic {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		for _, u := range ic[n] {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

func sameURLs(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return len(x) > 0 && slices.Equal(slices.Compact(x), slices.Compact(y))
}

// idString prints a member or cluster ID as etcd does (hex, no padding).
func idString(id uint64) string { return strconv.FormatUint(id, 16) }

// waitLog keeps the "waiting" lines to one per change of situation, and one
// every repeatLog while nothing changes.
type waitLog struct {
	what string
	last time.Time
}

func (w *waitLog) waiting(lg *zap.Logger, what, msg string, fields ...zap.Field) {
	if what == w.what && time.Since(w.last) < repeatLog {
		return
	}
	w.what, w.last = what, time.Now()
	lg.Warn(msg, fields...)
}

func (w *waitLog) unreachable(lg *zap.Logger, err error) {
	msg := "waiting to be added: cannot ask the running cluster for its membership; retrying. Check that --join-endpoints reach a member with a quorum"
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v: %w", attemptTimeout, err)
	}
	w.waiting(lg, "unreachable", msg, zap.Error(err))
}
