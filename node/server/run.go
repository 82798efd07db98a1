package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/api"
	"github.com/ballastdb/ballast/node/config"
	"github.com/ballastdb/ballast/node/procs"
	"github.com/ballastdb/ballast/node/raftnode"
)

// OptionsFromConfig turns the command-line configuration into Options.
func OptionsFromConfig(cfg *config.Config, lg *zap.Logger) (Options, error) {
	members, err := cfg.InitialClusterMembers()
	if err != nil {
		return Options{}, err
	}
	ic := map[string][]string{}
	for _, m := range members {
		ic[m.Name] = urlStrings(m.PeerURLs)
	}
	quota := cfg.QuotaBytes()
	if quota == 0 {
		quota = 1 << 62 // "no quota"
	}
	return Options{
		Name:                    cfg.Name,
		DataDir:                 cfg.DataDir,
		WALDir:                  cfg.WALDir,
		ListenClientURLs:        urlPtrs(cfg.ListenClientURLs),
		AdvertiseClientURLs:     urlStrings(cfg.AdvertiseClientURLs),
		ListenPeerURLs:          urlPtrs(cfg.ListenPeerURLs),
		AdvertisePeerURLs:       urlStrings(cfg.InitialAdvertisePeerURLs),
		ListenMetricsURLs:       urlPtrs(cfg.ListenMetricsURLs),
		InitialCluster:          ic,
		InitialClusterState:     cfg.InitialClusterState,
		InitialClusterToken:     cfg.InitialClusterToken,
		StrictReconfigCheck:     cfg.StrictReconfigCheck,
		ForceNewCluster:         cfg.ForceNewCluster,
		MaxLearners:             cfg.MaxLearners,
		SnapshotCount:           cfg.SnapshotCount,
		SnapshotCatchUpEntries:  cfg.SnapshotCatchUpEntries,
		TickInterval:            cfg.HeartbeatInterval,
		ElectionTimeout:         cfg.ElectionTimeout,
		QuotaBackendBytes:       quota,
		AutoCompactionMode:      cfg.AutoCompactionMode,
		AutoCompactionPeriod:    cfg.AutoCompactionPeriod,
		AutoCompactionRevisions: cfg.AutoCompactionRevisions,
		MaxRequestBytes:         int(cfg.MaxRequestBytes),
		MaxTxnOps:               int(cfg.MaxTxnOps),
		GRPCKeepAliveMinTime:    cfg.GRPCKeepAliveMinTime,
		GRPCKeepAliveInterval:   cfg.GRPCKeepAliveInterval,
		GRPCKeepAliveTimeout:    cfg.GRPCKeepAliveTimeout,
		BackendBatchInterval:    cfg.BackendBatchInterval,
		BackendBatchLimit:       cfg.BackendBatchLimit,
		UnsafeNoFsync:           cfg.UnsafeNoFsync,
		EnablePprof:             cfg.EnablePprof,
		EnableGRPCGateway:       cfg.EnableGRPCGateway,
		CORS:                    cfg.CORS,
		WatchProgressInterval:   cfg.WatchProgressNotifyInterval,
		DowngradeCheckTime:      cfg.DowngradeCheckTime,
		InitialCorruptCheck:     cfg.FeatureEnabled(config.FeatureInitialCorruptCheck),
		CorruptCheckTime:        cfg.CorruptCheckTime,
		CompactHashCheck:        cfg.FeatureEnabled(config.FeatureCompactHashCheck),
		CompactHashCheckTime:    cfg.CompactHashCheckTime,
		ClientTLS:               tlsConfig(cfg, cfg.ClientTLS),
		PeerTLS:                 tlsConfig(cfg, cfg.PeerTLS),
		AuthToken:               cfg.AuthToken,
		AuthTokenTTL:            time.Duration(cfg.AuthTokenTTL) * time.Second,
		BcryptCost:              int(cfg.BcryptCost),
		Logger:                  lg,
	}, nil
}

// Run starts a member with cfg and serves clients until ctx is cancelled.
// The caller has logged cfg.Warnings.
func Run(ctx context.Context, cfg *config.Config, lg *zap.Logger) error {
	opts, err := OptionsFromConfig(cfg, lg)
	if err != nil {
		return err
	}
	opts.Join = joinFunc(ctx, cfg, lg)
	initialized := memberInitialized(opts)
	s, err := New(opts)
	if err != nil {
		return err
	}
	if opts.InitialCorruptCheck && initialized {
		if err := s.initialCorruptCheck(); err != nil {
			s.Stop()
			return err
		}
	}
	s.Start()
	// The process is this member's: its GOMAXPROCS follows the load.
	go procs.Run(ctx, procs.Options{Alone: s.alone}, os.Environ(), lg)
	stop, err := s.Serve(ctx)
	if err != nil {
		s.Stop()
		if ctx.Err() != nil && !s.removed.Load() {
			lg.Info("received a stop signal before the member was ready; shut down")
			return nil
		}
		return s.removedOr(err)
	}
	select {
	case <-ctx.Done():
		lg.Info("received a stop signal; shutting down")
		// Hand leadership over while the peer listener still answers.
		s.transferLeadershipOnStop()
		stop()
		s.Stop()
		return nil
	case <-s.stopping:
		stop()
		s.Stop()
		return s.removedOr(fmt.Errorf("the member stopped on its own; see the errors above"))
	}
}

// Serve opens the client (and metrics) listeners, waits until the member is
// ready, and logs "ready to serve client requests". The returned func closes
// the listeners.
func (s *Server) Serve(ctx context.Context) (stop func(), err error) {
	o := &s.opts
	limits := api.Limits{
		MaxRequestBytes:   o.MaxRequestBytes,
		MaxTxnOps:         o.MaxTxnOps,
		KeepAliveMinTime:  o.GRPCKeepAliveMinTime,
		KeepAliveInterval: o.GRPCKeepAliveInterval,
		KeepAliveTimeout:  o.GRPCKeepAliveTimeout,
	}
	// Peers first: with other members, no leader is elected without them.
	stopPeers, err := s.servePeers()
	if err != nil {
		return nil, err
	}
	g := api.NewGRPCServer(s, limits, s.metrics.reg, s.lg.Named("api"))
	var httpOpts []api.HTTPOption
	if o.EnablePprof {
		httpOpts = append(httpOpts, api.WithPprof())
	}
	if !o.EnableGRPCGateway {
		httpOpts = append(httpOpts, api.WithoutGateway())
	}
	if len(o.CORS) > 0 {
		httpOpts = append(httpOpts, api.WithCORS(o.CORS))
	}
	h := api.NewHTTPHandler(s, s.metrics.reg, s.lg.Named("http"), httpOpts...)
	stopClient, err := api.Serve(ctx, o.ListenClientURLs, g, h, s.lg, api.WithTLS(s.clientTLSConfig()))
	if err != nil {
		stopPeers()
		return nil, fmt.Errorf("cannot listen for clients: %w", err)
	}
	stopMetrics := func() {}
	if len(o.ListenMetricsURLs) > 0 {
		if stopMetrics, err = api.ServeMetrics(ctx, o.ListenMetricsURLs, h, s.lg, api.WithTLS(s.clientTLSConfig())); err != nil {
			stopClient()
			stopPeers()
			return nil, fmt.Errorf("cannot listen for metrics: %w", err)
		}
	}
	if err := s.waitReadyLogging(ctx); err != nil {
		stopMetrics()
		stopClient()
		stopPeers()
		return nil, fmt.Errorf("the member did not become ready: %w", err)
	}
	s.readyOnce.Do(func() { close(s.readyc) })
	s.publishAttributes(ctx)
	s.lg.Info("ready to serve client requests", zap.Strings("client-urls", urlStringsP(o.ListenClientURLs)))
	return func() { stopMetrics(); stopClient(); stopPeers() }, nil
}

// readyReportInterval is how often a member still waiting to become ready
// says so.
const readyReportInterval = 10 * time.Second

// waitReadyLogging waits, as long as it takes (as etcd does: a member whose
// peers are down waits for them rather than giving up), until the member is
// ready, and reports every readyReportInterval what it is waiting for.
func (s *Server) waitReadyLogging(ctx context.Context) error {
	start := time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, readyReportInterval)
		err := s.WaitReady(wctx)
		if err != nil && ctx.Err() == nil && !s.isStopping() && !errors.Is(err, raftnode.ErrStopped) {
			<-wctx.Done() // a fast failure ("no leader" after a lost election) is retried, not spun on
		}
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case s.isStopping() || errors.Is(err, raftnode.ErrStopped):
			return err
		}
		voters, reachable := 0, 0
		for _, m := range s.cluster.Members() {
			if m.IsLearner {
				continue
			}
			voters++
			if m.ID == s.id || !s.transport.ActiveSince(m.ID).IsZero() {
				reachable++
			}
		}
		what := "an election"
		if s.rn.Leader() != 0 {
			what = "applying the committed log"
		}
		s.lg.Warn("not ready to serve clients yet: waiting for "+what+"; a leader needs a majority of the voting members, check that they run and that their peer URLs are reachable",
			zap.Duration("waiting", time.Since(start).Round(time.Second)),
			zap.Int("voting-members", voters), zap.Int("reachable-including-self", reachable), zap.Error(err))
	}
}

func (s *Server) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// publishAttributes records this member's name and client URLs in the
// replicated membership, as etcd does at start-up.
func (s *Server) publishAttributes(ctx context.Context) {
	m := s.cluster.Member(s.id)
	if m != nil && m.Name == s.opts.Name && sameURLs(m.ClientURLs, s.opts.AdvertiseClientURLs) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(ctx, s.opts.requestTimeout())
		defer cancel()
		if _, err := s.propose(ctx, memberAttrRequest(s.id, s.opts.Name, s.opts.AdvertiseClientURLs)); err != nil {
			s.lg.Warn("could not publish this member's name and client URLs; MemberList will miss them until the next start",
				zap.Error(err))
		}
	}()
}

func urlPtrs(us []url.URL) []*url.URL {
	out := make([]*url.URL, len(us))
	for i := range us {
		out[i] = &us[i]
	}
	return out
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i := range us {
		out[i] = us[i].String()
	}
	return out
}

func urlStringsP(us []*url.URL) []string {
	out := make([]string, len(us))
	for i := range us {
		out[i] = us[i].String()
	}
	return out
}
