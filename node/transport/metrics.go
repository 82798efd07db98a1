package transport

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the transport's Prometheus metrics, under etcd's names and
// labels (peer IDs in hex) so that existing dashboards and alerts work.
// A peer counts in active_peers while our stream to it is established, and
// each loss of that stream counts in disconnected_peers_total. Sent failures
// are messages dropped (peer down, queue full, write failed) and failed
// snapshots.
type metrics struct {
	rtt          *prometheus.HistogramVec
	sentBytes    *prometheus.CounterVec
	recvBytes    *prometheus.CounterVec
	sentFailures *prometheus.CounterVec
	activePeers  *prometheus.GaugeVec
	disconnected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "network", Name: "peer_round_trip_time_seconds",
			Help:    "Round-Trip-Time histogram between peers",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"To"}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "network", Name: "peer_sent_bytes_total",
			Help: "The total number of bytes sent to peers.",
		}, []string{"To"}),
		recvBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "network", Name: "peer_received_bytes_total",
			Help: "The total number of bytes received from peers.",
		}, []string{"From"}),
		sentFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "network", Name: "peer_sent_failures_total",
			Help: "The total number of send failures from peers.",
		}, []string{"To"}),
		activePeers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "etcd", Subsystem: "network", Name: "active_peers",
			Help: "The current number of active peer connections.",
		}, []string{"Local", "Remote"}),
		disconnected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "network", Name: "disconnected_peers_total",
			Help: "The total number of disconnected peers.",
		}, []string{"Local", "Remote"}),
	}
	if reg == nil {
		return m
	}
	m.rtt = register(reg, m.rtt)
	m.sentBytes = register(reg, m.sentBytes)
	m.recvBytes = register(reg, m.recvBytes)
	m.sentFailures = register(reg, m.sentFailures)
	m.activePeers = register(reg, m.activePeers)
	m.disconnected = register(reg, m.disconnected)
	return m
}

// register registers c, or returns the collector already registered under
// its name (a transport re-created in the same process shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting, differently shaped collector: keep ours
		// unregistered rather than failing the member.
	}
	return c
}
