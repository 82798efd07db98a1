package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/config"
	"github.com/ballastdb/ballast/node/join"
	"github.com/ballastdb/ballast/node/membership"
	"github.com/ballastdb/ballast/node/wal"
)

// joinFunc is Options.Join for --join-endpoints (nil without them). ctx
// ends the wait for this member to be added (SIGTERM).
func joinFunc(ctx context.Context, cfg *config.Config, lg *zap.Logger) func(*tls.Config) (map[string][]string, error) {
	if len(cfg.JoinEndpoints) == 0 {
		return nil
	}
	return func(clientTLS *tls.Config) (map[string][]string, error) {
		return join.InitialCluster(ctx, join.Request{
			Endpoints: urlStrings(cfg.JoinEndpoints),
			Name:      cfg.Name,
			PeerURLs:  urlStrings(cfg.InitialAdvertisePeerURLs),
			DataDir:   cfg.DataDir,
			TLS:       clientTLS,
			Logger:    lg.Named("join"),
		})
	}
}

// startJoined starts a member with no data whose membership the running
// cluster tells (Options.Join), then joins as with --initial-cluster.
func (s *Server) startJoined(walOpts wal.Options) error {
	var clientTLS *tls.Config
	if s.clientTLS != nil {
		clientTLS = s.clientTLS.ClientConfig()
	}
	ic, err := s.opts.Join(clientTLS)
	if err != nil {
		return err
	}
	s.opts.InitialCluster = ic
	if err := s.startNewCluster(walOpts); err != nil {
		return fmt.Errorf("joining with the membership from --join-endpoints: %w", err)
	}
	return nil
}

// stopRemoved stops a member the cluster removed, after delay; Run then
// reports it with removedOr.
func (s *Server) stopRemoved(delay time.Duration) {
	s.removed.Store(true)
	time.AfterFunc(delay, s.stop)
}

// removedStopDelay is how long a member that applied its own removal keeps
// running (etcd waits one second, ten default heartbeats). A removed leader
// broadcasts the commit index of its removal as it commits it; if that
// message is lost, only its heartbeats resend it, and stopping at once could
// leave the remaining members waiting for its vote in the configuration
// they know.
func (s *Server) removedStopDelay() time.Duration { return 10 * s.opts.TickInterval }

// removedOr is the error Run returns once the member stopped: a
// *join.ReplaceError when the cluster removed it, err otherwise.
func (s *Server) removedOr(err error) error {
	if !s.removed.Load() {
		return err
	}
	s.lg.Error("the member has been permanently removed from the cluster; the data-dir used by this member must be removed",
		zap.String("member-id", membership.IDString(s.id)), zap.String("data-dir", s.opts.DataDir))
	return join.RemovedError(membership.IDString(s.id), s.opts.DataDir)
}
