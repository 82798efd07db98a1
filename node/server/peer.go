package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/membership"
)

// Paths of the member-to-member calls served next to the raft transport on
// the peer listener.
const (
	pathMembers    = "/members"
	pathLeaseRenew = "/ballast/lease/renew"
	pathLeaseTTL   = "/ballast/lease/ttl"
	pathPromote    = "/ballast/member/promote"
)

// peerClusterInfo is what GET /members answers: enough for a member that
// joins a running cluster to learn the cluster's ID and membership.
type peerClusterInfo struct {
	ClusterID string               `json:"cluster_id"`
	Members   []*membership.Member `json:"members"`
}

// raftAdapter is the local raft node as the transport sees it.
type raftAdapter struct{ s *Server }

func (a raftAdapter) Process(ctx context.Context, m *raftpb.Message) error {
	return a.s.rn.Step(ctx, m)
}
func (a raftAdapter) IsIDRemoved(id uint64) bool  { return a.s.cluster.IsRemoved(id) }
func (a raftAdapter) ReportUnreachable(id uint64) { a.s.rn.ReportUnreachable(id) }
func (a raftAdapter) ReportSnapshot(id uint64, st raft.SnapshotStatus) {
	a.s.rn.ReportSnapshot(id, st)
}

// peerHandler serves the peer listener: the raft transport and the
// member-to-member calls.
func (s *Server) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/raft/", s.raftHandler)
	mux.HandleFunc(pathMembers, s.serveMembers)
	mux.HandleFunc(pathVersion, s.servePeerVersion)
	mux.HandleFunc(pathHashKV, s.servePeerHashKV)
	mux.HandleFunc(pathLeaseRenew, s.serveLeaseRenew)
	mux.HandleFunc(pathLeaseTTL, s.serveLeaseTTL)
	mux.HandleFunc(pathPromote, s.servePromote)
	return mux
}

// servePeers listens on --listen-peer-urls: http:// in the clear,
// https:// with the peer TLS settings. The returned func closes them.
func (s *Server) servePeers() (stop func(), err error) {
	h := s.peerHandler()
	var servers []*http.Server
	stop = func() {
		for _, srv := range servers {
			srv.Close()
		}
	}
	var tlsCfg *tls.Config
	for _, u := range s.opts.ListenPeerURLs {
		switch u.Scheme {
		case "http":
			if s.peerTLS.CanServe() {
				s.lg.Warn("peer URL uses http:// while peer certificates are configured; they are ignored for it", zap.String("url", u.String()))
			}
		case "https":
			if tlsCfg == nil {
				if tlsCfg = s.peerServerTLS(); tlsCfg == nil {
					stop()
					return nil, fmt.Errorf("peer URL %s: no peer TLS certificate configured; set --peer-cert-file and --peer-key-file (or --peer-auto-tls)", u)
				}
			}
		default:
			stop()
			return nil, fmt.Errorf("peer URL %s: unsupported scheme %q; use http:// or https://", u, u.Scheme)
		}
		l, err := net.Listen("tcp", u.Host)
		if err != nil {
			stop()
			return nil, fmt.Errorf("cannot listen for peers on %s: %w", u, err)
		}
		if u.Scheme == "https" {
			l = tls.NewListener(l, tlsCfg)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(s.lg.Named("peer-http"))}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.lg.Error("peer listener stopped", zap.String("url", u.String()), zap.Error(err))
			}
		}()
		s.lg.Info("listening for peers", zap.String("url", u.String()), zap.Bool("tls", u.Scheme == "https"))
	}
	return stop, nil
}

func (s *Server) serveMembers(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(peerClusterInfo{
		ClusterID: membership.IDString(s.cluster.ID()),
		Members:   s.cluster.Members(),
	})
}

// Lease calls forwarded by followers: only the leader's lessor knows
// deadlines.
type leaseCall struct {
	ID   int64 `json:"id"`
	Keys bool  `json:"keys,omitempty"`
}

type leaseAnswer struct {
	TTL        int64    `json:"ttl"`
	GrantedTTL int64    `json:"granted_ttl,omitempty"`
	Keys       [][]byte `json:"keys,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func (s *Server) serveLeaseRenew(w http.ResponseWriter, r *http.Request) {
	var c leaseCall
	if !decodePeerCall(w, r, &c) {
		return
	}
	ttl, err := s.renewLease(r.Context(), c.ID) // the forwarding member checked the caller
	writePeerAnswer(w, leaseAnswer{TTL: ttl}, err)
}

func (s *Server) serveLeaseTTL(w http.ResponseWriter, r *http.Request) {
	var c leaseCall
	if !decodePeerCall(w, r, &c) {
		return
	}
	resp, err := s.leaseTimeToLive(r.Context(), &pb.LeaseTimeToLiveRequest{ID: c.ID, Keys: c.Keys}) // checked by the forwarding member
	a := leaseAnswer{}
	if resp != nil {
		a = leaseAnswer{TTL: resp.TTL, GrantedTTL: resp.GrantedTTL, Keys: resp.Keys}
	}
	writePeerAnswer(w, a, err)
}

func (s *Server) servePromote(w http.ResponseWriter, r *http.Request) {
	var c struct {
		ID uint64 `json:"id"`
	}
	if !decodePeerCall(w, r, &c) {
		return
	}
	_, err := s.promoteMember(r.Context(), &pb.MemberPromoteRequest{ID: c.ID}) // checked by the forwarding member
	writePeerAnswer(w, struct {
		Error string `json:"error,omitempty"`
	}{}, err)
}

func decodePeerCall(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// writePeerAnswer sends v, or the error's etcd message (which the caller
// maps back to the same rpctypes error).
func writePeerAnswer(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		_ = json.NewEncoder(w).Encode(map[string]string{"error": rpctypes.ErrorDesc(err)})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// callLeader POSTs a call to the leader's peer listener and decodes its
// answer into out. Errors in the answer come back as etcd's errors.
func (s *Server) callLeader(ctx context.Context, path string, in, out any) error {
	lead := s.rn.Leader()
	if lead == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	m := s.cluster.Member(lead)
	if m == nil || len(m.PeerURLs) == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	var lastErr error
	for _, u := range m.PeerURLs {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.peerClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		var raw json.RawMessage
		err = json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&raw)
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return errorFromDesc(e.Error)
		}
		return json.Unmarshal(raw, out)
	}
	s.lg.Warn("could not reach the leader for a forwarded call", zap.String("path", path), zap.Error(lastErr))
	return rpctypes.ErrGRPCLeaderChanged
}

// errorFromDesc turns an etcd error message back into its gRPC error.
func errorFromDesc(desc string) error {
	if err := rpctypes.Error(fmt.Errorf("%s", desc)); err != nil {
		for _, known := range []error{
			rpctypes.ErrGRPCLeaseNotFound, rpctypes.ErrGRPCNotLeader, rpctypes.ErrGRPCNoLeader,
			rpctypes.ErrGRPCTimeout, rpctypes.ErrGRPCStopped, rpctypes.ErrGRPCMemberNotFound,
			rpctypes.ErrGRPCMemberNotLearner, rpctypes.ErrGRPCLearnerNotReady,
			rpctypes.ErrGRPCMemberNotEnoughStarted, rpctypes.ErrGRPCUnhealthy,
		} {
			if rpctypes.ErrorDesc(known) == desc {
				return known
			}
		}
	}
	return fmt.Errorf("%s", desc)
}

// fetchCluster asks the members listed in --initial-cluster (other than this
// one) for the running cluster's ID and membership.
func (s *Server) fetchCluster(ctx context.Context, urls []string) (*peerClusterInfo, error) {
	var errs []error
	for _, u := range urls {
		if _, err := url.Parse(u); err != nil {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+pathMembers, nil)
		if err != nil {
			return nil, err
		}
		resp, err := s.peerClient.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var info peerClusterInfo
		err = json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&info)
		resp.Body.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			continue
		}
		return &info, nil
	}
	return nil, fmt.Errorf("could not get the cluster's membership from any of %v: %w", urls, errors.Join(errs...))
}
