package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the member's Prometheus metrics, under etcd's names so that
// existing dashboards and alerts work.
type metrics struct {
	reg *prometheus.Registry

	hasLeader          prometheus.Gauge
	leaderChanges      prometheus.Counter
	proposalsCommitted prometheus.Counter
	proposalsApplied   prometheus.Counter
	proposalsPending   prometheus.Gauge
	proposalsFailed    prometheus.Counter
	walFsync           prometheus.Histogram
	backendCommit      prometheus.Histogram
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.hasLeader = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "has_leader",
		Help: "Whether or not a leader exists. 1 is existence, 0 is not."})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "leader_changes_seen_total",
		Help: "The number of leader changes seen."})
	m.proposalsCommitted = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_committed_total",
		Help: "The total number of consensus proposals committed."})
	m.proposalsApplied = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_applied_total",
		Help: "The total number of consensus proposals applied."})
	m.proposalsPending = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_pending",
		Help: "The current number of pending proposals to commit."})
	m.proposalsFailed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_failed_total",
		Help: "The total number of failed proposals seen."})
	m.walFsync = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
		Help: "The latency distributions of fsync called by WAL.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.backendCommit = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
		Help: "The latency distributions of commit called by backend.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.reg.MustRegister(m.hasLeader, m.leaderChanges, m.proposalsCommitted, m.proposalsApplied, m.proposalsPending,
		m.proposalsFailed, m.walFsync, m.backendCommit,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(subsystem, name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: subsystem, Name: name, Help: help}, f))
	}
	gauge("mvcc", "db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.",
		func() float64 { return float64(s.be.Size()) })
	gauge("mvcc", "db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.",
		func() float64 { return float64(s.be.SizeInUse()) })
	gauge("server", "quota_backend_bytes", "Current backend storage quota size in bytes.",
		func() float64 { return float64(s.opts.quota()) })
	gauge("mvcc", "db_compaction_revision", "The current compaction revision (Ballast).",
		func() float64 { return float64(s.kv.CompactRev()) })
	gauge("server", "is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", func() float64 {
		if s.rn != nil && s.rn.Leader() == s.id {
			return 1
		}
		return 0
	})
	return m
}

// Registry is the member's metrics registry (the API layer adds its own).
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

func (m *metrics) observeWALFsync(d time.Duration)      { m.walFsync.Observe(d.Seconds()) }
func (m *metrics) observeBackendCommit(d time.Duration) { m.backendCommit.Observe(d.Seconds()) }
