// Package server wires raft, storage, leases, watches and the client API into
// one running member. The request path, top to bottom:
//
//	write: api → Server.Put/Txn/… → propose (raft) → WAL fsync → commit
//	       → apply loop → mvcc write txn + lease + watch notify → waiter
//	read:  api → Server.Range → (linearizable: ReadIndex barrier, wait for
//	       apply) → mvcc read txn, never through the raft log
package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/auth"
	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/lease"
	"github.com/ballastdb/ballast/node/membership"
	"github.com/ballastdb/ballast/node/mvcc"
	"github.com/ballastdb/ballast/node/raftnode"
	"github.com/ballastdb/ballast/node/tlsutil"
	"github.com/ballastdb/ballast/node/transport"
	"github.com/ballastdb/ballast/node/watch"
)

// Server is one member. Create it with New, then Start it.
type Server struct {
	opts Options
	lg   *zap.Logger

	id      uint64 // this member's ID
	cluster *membership.Cluster

	be        *backend.Backend
	kv        *mvcc.Store
	lessor    *lease.Lessor
	hub       *watch.Hub
	auth      *auth.Store
	storage   *raftStorage
	rn        *raftnode.Node
	raftCfg   *raft.Config
	bootPeers []raft.Peer // founding members when bootstrapping a new cluster
	// initialPeers are the members the transport talks to from the start.
	initialPeers map[uint64][]string
	transport    *transport.Transport
	raftHandler  http.Handler // the transport's, mounted on the peer listener

	// clientTLS and peerTLS are nil when not configured.
	clientTLS, peerTLS *tlsutil.Set
	// peerClient makes the member-to-member calls (not raft traffic).
	peerClient *http.Client

	reqIDs  *idGenerator
	waits   *waitRegistry
	applied indexWaiter
	alarms  *alarmStore
	metrics *metrics

	// Owned by the apply loop.
	consistentIndex uint64
	confState       *raftpb.ConfState
	snapshotIndex   uint64

	appliedIndex atomic.Uint64

	// Linearizable reads share one ReadIndex round per batch of waiters.
	readMu       sync.RWMutex
	readNotifier *notifier
	readwaitc    chan struct{}

	// versionCheckc asks the version monitor for a round now.
	versionCheckc chan struct{}
	// downgradeWaitLogged: the version monitor said why a downgrade
	// waits (owned by versionLoop).
	downgradeWaitLogged bool

	stopping chan struct{}
	// readyc is closed once the member is ready to serve clients (Serve);
	// client calls wait for it (api.ReadyNotifier).
	readyc    chan struct{}
	readyOnce sync.Once
	stopOnce  sync.Once
	wg        sync.WaitGroup

	// removed is set when this member stops because the cluster removed it.
	removed atomic.Bool
}

// New opens (or creates) the member's data dir and prepares raft, but does not
// start it.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	s := &Server{
		opts:         opts,
		lg:           opts.Logger,
		waits:        newWaitRegistry(),
		readNotifier: newNotifier(),
		readwaitc:    make(chan struct{}, 1),
		stopping:     make(chan struct{}),
		readyc:       make(chan struct{}),

		versionCheckc: make(chan struct{}, 1),
	}
	s.metrics = newMetrics(s)
	var err error
	s.auth, err = auth.New(auth.Options{
		TokenSpec:   opts.AuthToken,
		TokenTTL:    opts.AuthTokenTTL,
		BcryptCost:  opts.BcryptCost,
		WaitApplied: s.applied.wait,
		Logger:      s.lg.Named("auth"),
	})
	if err != nil {
		return nil, err
	}
	if err := s.setupTLS(); err != nil {
		return nil, err
	}
	if err := s.bootstrap(); err != nil {
		s.closeStorage()
		return nil, err
	}
	s.reqIDs = newIDGenerator(s.id, time.Now())
	s.transport = transport.New(transport.Config{
		LocalID:    s.id,
		ClusterID:  s.cluster.ID(),
		Raft:       raftAdapter{s},
		Snapshots:  s.snapshotSource,
		Receive:    s.receiveSnapshot,
		TLS:        s.peerClientTLS(),
		Registerer: s.metrics.reg,
		Logger:     s.lg.Named("transport"),
		OnRemoved: func() {
			s.lg.Warn("a peer says this member was removed from the cluster; stopping. To rejoin, remove the data dir and add the member again")
			s.stopRemoved(0) // the cluster already refuses this member's messages
		},
	})
	s.raftHandler = s.transport.Handler()
	for id, urls := range s.initialPeers {
		if id != s.id {
			s.transport.AddPeer(id, urls)
		}
	}
	return s, nil
}

// Start runs raft and the loops that serve it. It returns once they run.
func (s *Server) Start() {
	s.rn = raftnode.Start(raftnode.Config{
		Raft:           s.raftCfg,
		Storage:        s.storage.mem,
		Peers:          s.bootPeers,
		TickInterval:   s.opts.TickInterval,
		Persister:      s.storage,
		Transport:      s.transport,
		Logger:         s.lg,
		OnLeaderChange: s.onLeaderChange,
	})
	s.rn.ElectSoleVoter()
	s.goAttached(s.applyLoop)
	s.goAttached(s.linearizableReadLoop)
	s.goAttached(s.leaseExpiryLoop)
	s.goAttached(s.autoCompactLoop)
	s.goAttached(s.versionLoop)
	s.goAttached(s.corruptCheckLoop)
	s.goAttached(s.compactHashCheckLoop)
	s.goAttached(func() {
		<-s.rn.Done()
		if err := s.rn.Err(); err != nil {
			s.lg.Error("raft stopped with an error; stopping the member", zap.Error(err))
			s.stop()
		}
	})
}

func (s *Server) goAttached(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// WaitReady blocks until the member has a leader and has applied everything
// committed before it started, so that reads served afterwards are current.
func (s *Server) WaitReady(ctx context.Context) error {
	if err := s.rn.WaitLeader(ctx); err != nil {
		return err
	}
	if err := s.linearizableReadNotify(ctx); err != nil {
		return err
	}
	return nil
}

// ReadyNotify is closed once the member serves clients.
func (s *Server) ReadyNotify() <-chan struct{} { return s.readyc }

// ID is this member's ID.
func (s *Server) ID() uint64 { return s.id }

// ClusterID is the cluster's ID.
func (s *Server) ClusterID() uint64 { return s.cluster.ID() }

// Stop stops the member: when it leads a multi-member cluster it first hands
// leadership to another member, then stops raft and closes the storage.
func (s *Server) Stop() {
	s.transferLeadershipOnStop()
	s.stop()
	s.wg.Wait()
	s.closeStorage()
}

func (s *Server) stop() {
	s.stopOnce.Do(func() {
		close(s.stopping)
		if s.rn != nil {
			s.rn.Stop()
		}
	})
}

func (s *Server) closeStorage() {
	if s.transport != nil {
		s.transport.Stop()
	}
	if s.hub != nil {
		s.hub.Close()
	}
	if s.lessor != nil {
		s.lessor.Stop()
	}
	if s.auth != nil {
		s.auth.Close()
	}
	if s.kv != nil {
		s.kv.Close()
	}
	if s.storage != nil {
		if err := s.storage.Close(); err != nil {
			s.lg.Warn("closing the WAL failed", zap.Error(err))
		}
	}
	if s.be != nil {
		if err := s.be.Close(); err != nil {
			s.lg.Warn("closing the backend failed", zap.Error(err))
		}
	}
}

// transferLeadershipOnStop moves leadership away before a leader stops, so
// that clients see no election timeout. With one voter there is nobody to
// move to.
func (s *Server) transferLeadershipOnStop() {
	if s.rn == nil || s.rn.Leader() != s.id {
		return
	}
	var target uint64
	for _, m := range s.cluster.Members() {
		if m.ID != s.id && !m.IsLearner {
			target = m.ID
			break
		}
	}
	if target == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ElectionTimeout*2)
	defer cancel()
	if err := s.moveLeader(ctx, target); err != nil {
		s.lg.Warn("could not hand leadership over before stopping; the cluster will elect a new leader after an election timeout",
			zap.String("target", membership.IDString(target)), zap.Error(err))
		return
	}
	s.lg.Info("handed leadership over before stopping", zap.String("new-leader", membership.IDString(target)))
}

func (s *Server) String() string {
	return fmt.Sprintf("member %s of cluster %s", membership.IDString(s.id), membership.IDString(s.cluster.ID()))
}
