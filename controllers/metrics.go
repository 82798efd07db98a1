package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ballastdb/ballast/api/v1alpha1"
)

// The operator's own metrics, on controller-runtime's registry (served at
// the manager's /metrics next to controller_runtime_reconcile_total,
// controller_runtime_reconcile_errors_total and
// controller_runtime_reconcile_time_seconds, which count and time every
// reconcile of the "etcdcluster" controller).
var (
	membershipChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ballast_operator_membership_changes_total",
		Help: "Membership changes the operator attempted, by change (add_learner, promote, remove, move_leader) and result (success, error, refused: strict reconfiguration said not yet, not_ready: learner not in sync).",
	}, []string{"namespace", "cluster", "change", "result"})

	clusterLabels = []string{"namespace", "cluster"}

	clusterMembers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ballast_operator_cluster_members",
		Help: "Members in the cluster's member list, learners included.",
	}, clusterLabels)
	clusterVoters = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ballast_operator_cluster_voting_members",
		Help: "Voting members in the cluster's member list.",
	}, clusterLabels)
	clusterHealthyVoters = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ballast_operator_cluster_healthy_voting_members",
		Help: "Voting members that answered a status request and know a leader.",
	}, clusterLabels)
	clusterDesired = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ballast_operator_cluster_desired_size",
		Help: "spec.size of the cluster.",
	}, clusterLabels)
	clusterQuorate = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ballast_operator_cluster_quorate",
		Help: "1 when the cluster has a leader and answers a linearizable member list, else 0.",
	}, clusterLabels)
	clusterDBSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ballast_operator_cluster_db_size_bytes",
		Help: "Largest member database file of the cluster.",
	}, clusterLabels)
	clusterQuota = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ballast_operator_cluster_quota_backend_bytes",
		Help: "Backend quota the cluster's members enforce.",
	}, clusterLabels)
	clusterAlarms = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ballast_operator_cluster_alarms",
		Help: "Alarms raised in the cluster.",
	}, clusterLabels)

	clusterGauges = []*prometheus.GaugeVec{clusterMembers, clusterVoters, clusterHealthyVoters, clusterDesired, clusterQuorate, clusterDBSize, clusterQuota, clusterAlarms}
)

func init() {
	metrics.Registry.MustRegister(membershipChanges)
	for _, g := range clusterGauges {
		metrics.Registry.MustRegister(g)
	}
}

func recordChange(c *v1alpha1.EtcdCluster, change, result string) {
	membershipChanges.WithLabelValues(c.Namespace, c.Name, change, result).Inc()
}

func recordClusterMetrics(c *v1alpha1.EtcdCluster, obs *observation, healthyVoters, voters int, quorate bool) {
	l := prometheus.Labels{"namespace": c.Namespace, "cluster": c.Name}
	clusterMembers.With(l).Set(float64(len(obs.members)))
	clusterVoters.With(l).Set(float64(voters))
	clusterHealthyVoters.With(l).Set(float64(healthyVoters))
	clusterDesired.With(l).Set(float64(c.Spec.Size))
	q := 0.0
	if quorate {
		q = 1
	}
	clusterQuorate.With(l).Set(q)
	clusterDBSize.With(l).Set(float64(c.Status.DBSizeBytes))
	clusterQuota.With(l).Set(float64(c.Status.QuotaBackendBytes))
	clusterAlarms.With(l).Set(float64(len(c.Status.Alarms)))
}

// forgetClusterMetrics drops a deleted cluster's series.
func forgetClusterMetrics(namespace, name string) {
	l := prometheus.Labels{"namespace": namespace, "cluster": name}
	for _, g := range clusterGauges {
		g.Delete(l)
	}
	membershipChanges.DeletePartialMatch(l)
}
