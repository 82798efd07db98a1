package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/hashcheck"
	"github.com/ballastdb/ballast/node/membership"
	"github.com/ballastdb/ballast/node/mvcc"
	"github.com/ballastdb/ballast/node/wal"
)

// Corruption checks, as etcd makes them: members hash their key-value data
// (mvcc HashKV, and the hashes compactions keep) and compare over the peer
// listener (GET /members/hashkv, etcd's path and JSON); node/hashcheck
// decides. A divergence found while running raises the CORRUPT alarm
// through raft, after which every member refuses writes with etcd's
// "etcdserver: corrupt cluster"; one found at start-up
// (InitialCorruptCheck) stops the member before it serves. All three
// checks are off by default and then cost nothing.

// pathHashKV is etcd's peer path for a member's hash at a revision.
const pathHashKV = "/members/hashkv"

// clusterIDHeader names the cluster a peer call is for, as etcd's.
const clusterIDHeader = "X-Etcd-Cluster-ID"

// errClusterIDMismatch is etcd's (rafthttp) refusal of a call from another
// cluster.
var errClusterIDMismatch = errors.New("cluster ID mismatch")

// peerHashKVRequest and peerHashKVResponse are etcd's JSON of
// HashKVRequest and HashKVResponse on that path.
type peerHashKVRequest struct {
	Revision int64 `json:"revision,omitempty"`
}

type peerHashKVResponse struct {
	Header struct {
		Revision int64 `json:"revision,omitempty"`
	} `json:"header"`
	Hash            uint32 `json:"hash,omitempty"`
	CompactRevision int64  `json:"compact_revision,omitempty"`
	HashRevision    int64  `json:"hash_revision,omitempty"`
}

func (s *Server) servePeerHashKV(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if cid := r.Header.Get(clusterIDHeader); cid != "" && cid != membership.IDString(s.cluster.ID()) {
		http.Error(w, errClusterIDMismatch.Error(), http.StatusPreconditionFailed)
		return
	}
	var req peerHashKVRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(w, "error unmarshalling request", http.StatusBadRequest)
		return
	}
	h, cur, err := s.hashByRev(req.Revision)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var resp peerHashKVResponse
	resp.Header.Revision = cur
	resp.Hash, resp.CompactRevision, resp.HashRevision = h.Hash, h.CompactRevision, h.Revision
	w.Header().Set(clusterIDHeader, membership.IDString(s.cluster.ID()))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// hashByRev is this member's hash at rev (0: its current revision) and its
// current revision: the hash its compaction at rev kept, if it keeps one,
// else the hash of its data now (etcd's HashStorage.HashByRev).
func (s *Server) hashByRev(rev int64) (hashcheck.Hash, int64, error) {
	cur := s.kv.Rev()
	if h, ok := s.kv.CompactionHash(rev); ok && rev > 0 {
		return hashcheck.Hash{Hash: h.Hash, Revision: h.Revision, CompactRevision: h.CompactRevision}, cur, nil
	}
	hash, hashRev, compactRev, err := s.kv.HashKV(rev)
	if err != nil {
		return hashcheck.Hash{}, cur, err
	}
	return hashcheck.Hash{Hash: hash, Revision: hashRev, CompactRevision: compactRev}, cur, nil
}

// peerHashes asks every other member for its hash at rev, each through its
// peer URLs in turn.
func (s *Server) peerHashes(rev int64) []hashcheck.Peer {
	var out []hashcheck.Peer
	for _, m := range s.cluster.Members() {
		if m.ID == s.id || len(m.PeerURLs) == 0 {
			continue
		}
		p := hashcheck.Peer{ID: m.ID}
		for _, u := range m.PeerURLs {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.requestTimeout())
			resp, err := s.fetchPeerHash(ctx, u, rev)
			cancel()
			if err == nil {
				p.OK, p.Err, p.CurrentRevision = true, nil, resp.Header.Revision
				p.Hash = hashcheck.Hash{Hash: resp.Hash, Revision: resp.HashRevision, CompactRevision: resp.CompactRevision}
				break
			}
			p.Err = err
			s.lg.Warn("could not get a member's hash", zap.String("member-id", membership.IDString(m.ID)),
				zap.String("peer-url", u), zap.Int64("revision", rev), zap.Error(err))
		}
		out = append(out, p)
	}
	return out
}

func (s *Server) fetchPeerHash(ctx context.Context, peerURL string, rev int64) (*peerHashKVResponse, error) {
	body, err := json.Marshal(peerHashKVRequest{Revision: rev})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL+pathHashKV, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(clusterIDHeader, membership.IDString(s.cluster.ID()))
	resp, err := s.peerClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest && strings.Contains(string(b), mvcc.ErrCompacted.Error()):
		return nil, rpctypes.ErrCompacted
	case resp.StatusCode == http.StatusBadRequest && strings.Contains(string(b), mvcc.ErrFutureRev.Error()):
		return nil, rpctypes.ErrFutureRev
	case resp.StatusCode == http.StatusPreconditionFailed:
		return nil, rpctypes.ErrClusterIDMismatch
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("unexpected answer %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	var out peerHashKVResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// memberInitialized tells whether the member has started before (its WAL
// exists): only such a member has data to check at start-up.
func memberInitialized(o Options) bool { return wal.Exist(o.walDir()) }

// initialCorruptCheck compares this member's data with its peers' before
// it serves (etcd's InitialCheck): an error means this member must not
// start. Peers that cannot answer are passed over.
func (s *Server) initialCorruptCheck() error {
	s.lg.Info("starting the initial corruption check", zap.String("local-member-id", membership.IDString(s.id)),
		zap.Duration("timeout", s.opts.requestTimeout()))
	local, _, err := s.hashByRev(0)
	if err != nil {
		return fmt.Errorf("%s failed to fetch hash (%w)", membership.IDString(s.id), err)
	}
	mismatch := 0
	for _, f := range hashcheck.Initial(local, s.peerHashes(local.Revision)) {
		fields := []zap.Field{zap.String("local-member-id", membership.IDString(s.id)),
			zap.String("remote-peer-id", membership.IDString(f.Member)), zap.Int64("revision", local.Revision),
			zap.Int64("local-member-compact-revision", local.CompactRevision), zap.Uint32("local-member-hash", local.Hash),
			zap.String("reason", f.Reason)}
		if f.Corrupt {
			mismatch++
			s.lg.Error("this member's data differ from a peer's", fields...)
		} else {
			s.lg.Warn("could not compare this member's data with a peer's", fields...)
		}
	}
	if mismatch > 0 {
		s.lg.Error("refusing to start: this member's data differ from its peers'. Compare the members (etcdctl endpoint hashkv --cluster); "+
			"if this member's copy is the bad one, remove it from the cluster, delete its data dir and add it again",
			zap.String("local-member-id", membership.IDString(s.id)), zap.Int("mismatched-peers", mismatch))
		return fmt.Errorf("%s found data inconsistency with peers", membership.IDString(s.id))
	}
	s.lg.Info("initial corruption check passed; no corruption", zap.String("local-member-id", membership.IDString(s.id)))
	return nil
}

// corruptCheckLoop runs the leader's periodic check every
// --corrupt-check-time.
func (s *Server) corruptCheckLoop() {
	every := s.opts.CorruptCheckTime
	if every <= 0 {
		return
	}
	s.lg.Info("enabled corruption checking", zap.String("local-member-id", membership.IDString(s.id)), zap.Duration("interval", every))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.stopping:
			return
		}
		if s.rn.Leader() != s.id {
			continue
		}
		if err := s.periodicCorruptCheck(); err != nil {
			s.lg.Warn("failed to check hash KV", zap.Error(err))
		}
	}
}

// periodicCorruptCheck is one round of etcd's PeriodicCheck on the leader.
func (s *Server) periodicCorruptCheck() error {
	first, _, err := s.hashByRev(0)
	if err != nil {
		return err
	}
	peers := s.peerHashes(first.Revision)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.requestTimeout())
	err = s.linearizableReadNotify(ctx)
	cancel()
	if err != nil {
		return err
	}
	second, secondRev, err := s.hashByRev(0)
	if err != nil {
		return err
	}
	alarmed := false
	for _, f := range hashcheck.Periodic(s.id, first, second, secondRev, peers) {
		s.lg.Warn("found a hash mismatch", zap.String("member-id", membership.IDString(f.Member)), zap.String("reason", f.Reason),
			zap.Int64("revision", first.Revision), zap.Uint32("leader-hash", first.Hash))
		if f.Corrupt && !alarmed { // one alarm per round, as etcd
			alarmed = true
			s.raiseCorrupt(f.Member)
		}
	}
	s.lg.Info("finished peer corruption check", zap.Int("number-of-peers-checked", countOK(peers)))
	return nil
}

func countOK(peers []hashcheck.Peer) int {
	n := 0
	for _, p := range peers {
		if p.OK {
			n++
		}
	}
	return n
}

// compactHashCheckLoop runs the leader's compaction hash check every
// --compact-hash-check-time.
func (s *Server) compactHashCheckLoop() {
	if !s.opts.CompactHashCheck || s.opts.CompactHashCheckTime <= 0 {
		return
	}
	t := time.NewTicker(s.opts.CompactHashCheckTime)
	defer t.Stop()
	var checked int64 // the newest compaction verified on every member
	for {
		select {
		case <-t.C:
		case <-s.stopping:
			return
		}
		if s.rn.Leader() == s.id {
			checked = s.compactHashCheck(checked)
		}
	}
}

// compactHashCheck compares, newest first, the compaction hashes this
// member keeps above checked with the peers' hashes of the same
// compactions, until one compaction is verified on every member or found
// corrupt. It returns the newest verified compaction revision.
func (s *Server) compactHashCheck(checked int64) int64 {
	hashes := s.kv.CompactionHashes()
	s.lg.Info("starting compact hash check", zap.String("local-member-id", membership.IDString(s.id)))
	n := 0
	for i := len(hashes) - 1; i >= 0 && hashes[i].Revision > checked; i-- {
		n++
		h := hashcheck.Hash{Hash: hashes[i].Hash, Revision: hashes[i].Revision, CompactRevision: hashes[i].CompactRevision}
		peers := s.peerHashes(h.Revision)
		if len(peers) == 0 {
			continue
		}
		findings, done := hashcheck.Compaction(s.id, h, peers)
		for _, f := range findings {
			fields := []zap.Field{zap.String("member-id", membership.IDString(f.Member)), zap.String("reason", f.Reason),
				zap.Int64("revision", h.Revision), zap.Int64("compact-revision", h.CompactRevision), zap.Uint32("leader-hash", h.Hash)}
			if f.Corrupt {
				s.lg.Error("detected a compaction hash mismatch", fields...)
				s.raiseCorrupt(f.Member)
			} else {
				s.lg.Warn("skipped a peer's compaction hash", fields...)
			}
		}
		if done {
			s.lg.Info("finished compaction hash check", zap.Int("number-of-hashes-checked", n))
			return max(checked, h.Revision)
		}
	}
	s.lg.Info("finished compaction hash check", zap.Int("number-of-hashes-checked", n))
	return checked
}

// raiseCorrupt raises the CORRUPT alarm for member (0: the cluster as a
// whole) through raft.
func (s *Server) raiseCorrupt(member uint64) {
	s.lg.Error("raising the CORRUPT alarm: the cluster refuses writes until it is disarmed. Compare the members' data "+
		"(etcdctl endpoint hashkv --cluster), replace the corrupt member (member remove, delete its data dir, member add), "+
		"then run 'etcdctl alarm disarm'", zap.String("member-id", idOrNone(member)))
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.requestTimeout())
	defer cancel()
	_, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: member, Alarm: pb.AlarmType_CORRUPT,
	}})
	if err != nil {
		s.lg.Warn("could not raise the CORRUPT alarm; the next check retries", zap.Error(err))
	}
}

// corruptRefusal is the answer to a request the cluster refuses while the
// CORRUPT alarm is raised (etcd's applierV3Corrupt: the writes, compaction
// and lease grants and revocations), nil for the others.
func (s *Server) corruptRefusal(r *pb.InternalRaftRequest) *result {
	if r.Put == nil && r.DeleteRange == nil && r.Txn == nil && r.Compaction == nil &&
		r.LeaseGrant == nil && r.LeaseRevoke == nil {
		return nil
	}
	if !s.alarms.has(pb.AlarmType_CORRUPT) {
		return nil
	}
	return &result{err: rpctypes.ErrGRPCCorrupt}
}
