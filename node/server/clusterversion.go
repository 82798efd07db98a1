package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/coreos/go-semver/semver"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/membership"
	"github.com/ballastdb/ballast/node/version"
)

// The cluster version, as etcd keeps it: the leader asks every member for
// its server version (GET /version on its peer URLs) and records the
// version node/version.DecideCluster picks through raft; every member then
// moves its storage schema to match. See downgrade.go for downgrades.

// versionMonitorInterval is how often the leader reviews the cluster
// version (etcd: its peer write timeout less a second).
const versionMonitorInterval = 4 * time.Second

// pathVersion is the peer listener's /version, etcd's: the member's server
// and cluster versions.
const pathVersion = "/version"

// peerVersions is /version's answer, etcd's version.Versions.
type peerVersions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
}

func (s *Server) servePeerVersion(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	cv := s.cluster.Version()
	if cv == "" {
		cv = "not_decided" // etcd's word for it
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(peerVersions{Server: version.APIVersion, Cluster: cv})
}

// clusterSemver is the recorded cluster version, nil while there is none.
func (s *Server) clusterSemver() *semver.Version {
	v, err := semver.NewVersion(s.cluster.Version())
	if err != nil {
		return nil
	}
	return v
}

// versionLoop runs the version monitor on every member: each round moves
// the local storage version to the cluster version; on the leader it also
// reviews the cluster version, and every --downgrade-check-time it ends a
// downgrade that every member has completed. A new leader reviews at once
// (versionCheckc).
func (s *Server) versionLoop() {
	t := time.NewTicker(versionMonitorInterval)
	defer t.Stop()
	var downgradeCheck <-chan time.Time
	if d := s.opts.DowngradeCheckTime; d > 0 {
		dt := time.NewTicker(d)
		defer dt.Stop()
		downgradeCheck = dt.C
	}
	for {
		select {
		case <-t.C:
		case <-s.versionCheckc:
		case <-downgradeCheck:
			if s.rn.Leader() == s.id {
				s.cancelDowngradeIfDone()
			}
			continue
		case <-s.stopping:
			return
		}
		s.syncStorageVersion()
		if s.rn.Leader() == s.id {
			s.updateClusterVersion()
		}
	}
}

// reviewClusterVersion asks the version monitor for a round now (a new
// leader does, as etcd's does on its first commit in the term).
func (s *Server) reviewClusterVersion() {
	select {
	case s.versionCheckc <- struct{}{}:
	default:
	}
}

// updateClusterVersion is one leader round: decide, and record a change.
func (s *Server) updateClusterVersion() {
	cv, target := s.clusterSemver(), s.downgradeTarget()
	// Without a downgrade the version can only rise to the lowest member
	// version, and no member runs below the cluster version: at this
	// member's own version there is nothing to ask the others.
	if cv != nil && target == nil && cv.Equal(*version.MajorMinor(version.Server())) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.requestTimeout())
	defer cancel()
	versions, unknown := s.membersVersions(ctx)
	if target != nil && len(unknown) > 0 && (cv == nil || !target.Equal(*cv)) {
		if !s.downgradeWaitLogged {
			s.lg.Info("the downgrade waits until every member tells its version; start the members that are down, or check their peer URLs",
				zap.String("downgrade-target", target.String()), zap.Strings("unknown-members", unknown))
			s.downgradeWaitLogged = true
		}
	} else {
		s.downgradeWaitLogged = false
	}
	next, err := version.DecideCluster(cv, version.MinServer(versions), target)
	if err != nil {
		s.lg.Error("cannot move the cluster version to the downgrade target; cancel the downgrade with 'etcdctl downgrade cancel'",
			zap.String("cluster-version", s.cluster.Version()), zap.Stringer("downgrade-target", target), zap.Error(err))
		return
	}
	if next == nil || (cv != nil && next.Equal(*cv)) {
		return
	}
	from := s.cluster.Version()
	r := &pb.InternalRaftRequest{ClusterVersionSet: &membershippb.ClusterVersionSetRequest{Ver: next.String()}}
	if _, err := s.propose(ctx, r); err != nil {
		s.lg.Warn("could not record the cluster version; the leader retries", zap.String("to", next.String()), zap.Error(err))
		return
	}
	s.lg.Info("updated the cluster version", zap.String("from", from), zap.String("to", next.String()))
}

// cancelDowngradeIfDone cancels an enabled downgrade once every member
// runs the target version (etcd's monitorDowngrade).
func (s *Server) cancelDowngradeIfDone() {
	target := s.downgradeTarget()
	if target == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.requestTimeout())
	defer cancel()
	if versions, _ := s.membersVersions(ctx); !version.DowngradeDone(target, versions) {
		return
	}
	s.lg.Info("the cluster has been downgraded; ending the downgrade", zap.String("cluster-version", s.cluster.Version()))
	if err := s.proposeDowngrade(ctx, membership.Downgrade{}); err != nil {
		s.lg.Warn("could not end the downgrade; the leader retries", zap.Error(err))
	}
}

// membersVersions are the members' server versions, "" for a member that
// did not answer; unknown names those.
func (s *Server) membersVersions(ctx context.Context) (versions, unknown []string) {
	members := s.cluster.Members()
	versions = make([]string, len(members))
	for i, m := range members {
		if m.ID == s.id {
			versions[i] = version.APIVersion
			continue
		}
		for _, u := range m.PeerURLs {
			if v, err := s.fetchPeerVersion(ctx, u); err == nil {
				versions[i] = v.Server
				break
			} else {
				s.lg.Debug("could not get a member's version", zap.String("member-id", membership.IDString(m.ID)),
					zap.String("peer-url", u), zap.Error(err))
			}
		}
		if versions[i] == "" {
			unknown = append(unknown, membership.IDString(m.ID))
		}
	}
	return versions, unknown
}

func (s *Server) fetchPeerVersion(ctx context.Context, peerURL string) (*peerVersions, error) {
	ctx, cancel := context.WithTimeout(ctx, versionMonitorInterval/2)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL+pathVersion, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.peerClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v peerVersions
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&v); err != nil {
		return nil, err
	}
	return &v, nil
}

// syncStorageVersion moves this member's storage schema to the cluster
// version, as etcd's storage version monitor does, within the schemas
// Ballast writes: 3.5's (no meta/storageVersion) while the cluster runs at
// 3.5, else its own (backend.StorageVersion), which is also what a fresh
// backend, or one that lost the key, gets.
func (s *Server) syncStorageVersion() {
	cur, ok := s.be.Get(backend.Meta, storageVersionKey)
	cv := s.clusterSemver()
	downgraded := cv != nil && cv.Major == 3 && cv.Minor == 5
	switch {
	case downgraded && ok:
		tx := s.be.BatchTx()
		backend.DeleteStorageVersion(tx)
		tx.Unlock()
		s.lg.Info("moved the storage to the cluster version's schema", zap.String("from", string(cur)), zap.String("to", "3.5.0"))
	case !downgraded && !ok:
		tx := s.be.BatchTx()
		backend.SetStorageVersion(tx)
		tx.Unlock()
		if cv != nil { // not a fresh backend: back from a downgrade
			s.lg.Info("moved the storage to the cluster version's schema", zap.String("to", backend.StorageVersion))
		}
	}
}

var storageVersionKey = []byte("storageVersion")
