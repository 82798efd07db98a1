package server

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.uber.org/zap"

	"github.com/ballastdb/ballast/node/auth"
)

// revisionCompactInterval is how often revision-mode auto compaction looks at
// the store (etcd checks every 5 minutes).
const revisionCompactInterval = 5 * time.Minute

// autoCompactLoop runs --auto-compaction-mode on the leader:
//   - periodic: every period/10 (at least a second) it samples the current
//     revision and compacts to the sample taken one period ago, so that one
//     period of history is kept;
//   - revision: every few minutes it compacts to current - retention.
func (s *Server) autoCompactLoop() {
	o := &s.opts
	var every time.Duration
	switch {
	case o.AutoCompactionMode == "revision" && o.AutoCompactionRevisions > 0:
		every = revisionCompactInterval
		if o.autoCompactInterval > 0 {
			every = o.autoCompactInterval
		}
	case o.AutoCompactionMode != "revision" && o.AutoCompactionPeriod > 0:
		every = max(o.AutoCompactionPeriod/10, time.Second)
	default:
		return
	}
	s.lg.Info("auto compaction enabled", zap.String("mode", o.AutoCompactionMode),
		zap.Duration("period", o.AutoCompactionPeriod), zap.Int64("revisions", o.AutoCompactionRevisions))
	type sample struct {
		at  time.Time
		rev int64
	}
	var samples []sample
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			if s.rn.Leader() != s.id {
				samples = samples[:0]
				continue
			}
			rev := s.kv.Rev()
			var target int64
			if o.AutoCompactionMode == "revision" {
				target = rev - o.AutoCompactionRevisions
			} else {
				samples = append(samples, sample{now, rev})
				for len(samples) > 0 && now.Sub(samples[0].at) >= o.AutoCompactionPeriod {
					target = samples[0].rev
					samples = samples[1:]
				}
			}
			if target <= s.kv.CompactRev() || target <= 0 {
				continue
			}
			// As root, like etcd's compactor: only admins may compact.
			ctx, cancel := context.WithTimeout(auth.WithRoot(context.Background()), o.requestTimeout())
			_, err := s.Compact(ctx, &pb.CompactionRequest{Revision: target})
			cancel()
			if err != nil {
				s.lg.Warn("auto compaction failed; will retry", zap.Int64("revision", target), zap.Error(err))
			} else {
				s.lg.Info("auto compacted", zap.Int64("revision", target))
			}
		case <-s.stopping:
			return
		}
	}
}

func memberAttrRequest(id uint64, name string, clientURLs []string) *pb.InternalRaftRequest {
	return &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID:        id,
		MemberAttributes: &membershippb.Attributes{Name: name, ClientUrls: clientURLs},
	}}
}
