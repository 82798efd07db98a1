package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ballastdb/ballast/api/v1alpha1"
	"github.com/ballastdb/ballast/controllers/desired"
	"github.com/ballastdb/ballast/controllers/member"
	"github.com/ballastdb/ballast/controllers/plan"
)

// defaultQuota is etcd's --quota-backend-bytes default (2 GiB).
const defaultQuota = 2 << 30

// writeStatus writes everything observed and decided in one patch, and
// raises the QuorumLost / QuorumRestored events on a change of Quorate.
func (r *EtcdClusterReconciler) writeStatus(ctx context.Context, c *v1alpha1.EtcdCluster, obs *observation, a plan.Action, actErr error) error {
	before := c.DeepCopy()
	st := &c.Status
	gen := c.Generation
	st.ObservedGeneration = gen
	st.Selector = desired.Selector(c)

	// Members and their health.
	st.Members = nil
	var dbMax, dbInUseMax int64
	healthyVoters, voters := 0, 0
	names := map[uint64]string{}
	for _, m := range obs.members {
		s, answered := obs.statuses[m.ID]
		ms := v1alpha1.MemberStatus{
			Name:       m.Name,
			ID:         member.FormatID(m.ID),
			PeerURLs:   m.PeerURLs,
			ClientURLs: m.ClientURLs,
			Learner:    m.IsLearner,
			Leader:     obs.leaderID != 0 && m.ID == obs.leaderID,
			Healthy:    answered && s.Leader != 0 && len(s.Errors) == 0,
		}
		if answered {
			ms.Version = s.Version
			ms.DBSizeBytes = s.DBSize
			dbMax = max(dbMax, s.DBSize)
			dbInUseMax = max(dbInUseMax, s.DBSizeInUse)
		}
		if !m.IsLearner {
			voters++
			if ms.Healthy {
				healthyVoters++
			}
		}
		names[m.ID] = m.Name
		st.Members = append(st.Members, ms)
	}
	st.Size = int32(len(obs.members))
	st.Leader = ""
	if obs.leaderID != 0 {
		st.Leader = names[obs.leaderID]
		if st.Leader == "" {
			st.Leader = member.FormatID(obs.leaderID)
		}
	}
	if obs.plan.Listed {
		st.ClusterID = member.FormatID(obs.plan.ClusterID)
	}

	// Ready members: pods that are ready and hold a listed member.
	memberPods := map[string]bool{}
	for _, m := range obs.members {
		if m.Name != "" {
			memberPods[m.Name] = true
		}
	}
	st.ReadyMembers = 0
	versions := map[string]bool{}
	for _, p := range obs.pods {
		if podReady(p) && (memberPods[p.Name] || len(obs.members) == 0) {
			st.ReadyMembers++
		}
		versions[p.Labels[desired.LabelVersion]] = true
	}
	st.CurrentVersion = ""
	if len(versions) == 1 && len(obs.pods) > 0 {
		for v := range versions {
			st.CurrentVersion = v
		}
	}

	st.QuotaBackendBytes = defaultQuota
	if q := c.Spec.Options.QuotaBackendBytes; q != nil {
		st.QuotaBackendBytes = q.Value()
	}
	st.DBSizeBytes, st.DBSizeInUseBytes = dbMax, dbInUseMax
	st.DBQuotaUsedPercent = int32(dbMax * 100 / st.QuotaBackendBytes)
	st.Alarms = nil
	for _, al := range obs.alarms {
		st.Alarms = append(st.Alarms, v1alpha1.AlarmStatus{MemberID: member.FormatID(al.MemberID), Type: al.Type})
	}

	// Conditions.
	formed := obs.plan.Listed || st.ClusterID != "" || obs.plan.BootstrapState == desired.StateExisting
	quorate := metav1.Condition{Type: v1alpha1.ConditionQuorate, ObservedGeneration: gen}
	switch {
	case obs.plan.Listed && obs.leaderID != 0:
		quorate.Status, quorate.Reason = metav1.ConditionTrue, "LeaderElected"
		quorate.Message = fmt.Sprintf("member %s leads %d voting members", st.Leader, voters)
	case !formed:
		quorate.Status, quorate.Reason = metav1.ConditionUnknown, plan.ReasonBootstrapping
		quorate.Message = "the cluster has not formed yet"
	default:
		quorate.Status, quorate.Reason = metav1.ConditionFalse, plan.ReasonNoQuorum
		quorate.Message = fmt.Sprintf("%d of %d voting members are healthy and no linearizable member list succeeded", healthyVoters, voters)
		if obs.listErr != nil {
			quorate.Message += fmt.Sprintf(" (last error: %v)", obs.listErr)
		}
		quorate.Message += "; the operator changes no membership until quorum returns"
	}
	old := meta.FindStatusCondition(before.Status.Conditions, v1alpha1.ConditionQuorate)
	switch {
	case quorate.Status == metav1.ConditionFalse && (old == nil || old.Status != metav1.ConditionFalse):
		r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, plan.ReasonNoQuorum, "Observe", "%s", quorate.Message)
	case quorate.Status == metav1.ConditionTrue && old != nil && old.Status == metav1.ConditionFalse:
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "QuorumRestored", "Observe", "%s", quorate.Message)
	}
	meta.SetStatusCondition(&st.Conditions, quorate)

	available := metav1.Condition{Type: v1alpha1.ConditionAvailable, ObservedGeneration: gen}
	switch {
	case obs.plan.Listed && voters > 0 && healthyVoters >= desired.Quorum(voters):
		available.Status, available.Reason = metav1.ConditionTrue, "QuorumHealthy"
		available.Message = fmt.Sprintf("%d of %d voting members are healthy", healthyVoters, voters)
	case !formed:
		available.Status, available.Reason = metav1.ConditionFalse, plan.ReasonBootstrapping
		available.Message = "the cluster has not formed yet"
	default:
		available.Status, available.Reason = metav1.ConditionFalse, plan.ReasonNoQuorum
		available.Message = fmt.Sprintf("%d of %d voting members are healthy; %d are needed", healthyVoters, voters, desired.Quorum(voters))
	}
	meta.SetStatusCondition(&st.Conditions, available)

	progressing := metav1.Condition{Type: v1alpha1.ConditionProgressing, ObservedGeneration: gen, Reason: a.Reason, Message: a.Message}
	progressing.Status = metav1.ConditionFalse
	if a.Progressing() {
		progressing.Status = metav1.ConditionTrue
	}
	if actErr != nil {
		progressing.Message = fmt.Sprintf("%s: %v", a.Message, actErr)
	}
	meta.SetStatusCondition(&st.Conditions, progressing)

	degraded := metav1.Condition{Type: v1alpha1.ConditionDegraded, ObservedGeneration: gen, Status: metav1.ConditionFalse,
		Reason: "AllMembersHealthy", Message: "every member is healthy and no alarm is raised"}
	var unhealthy []string
	for _, m := range st.Members {
		if !m.Healthy {
			n := m.Name
			if n == "" {
				n = m.ID + " (not started)"
			}
			unhealthy = append(unhealthy, n)
		}
	}
	sort.Strings(unhealthy)
	switch {
	case quorate.Status == metav1.ConditionFalse:
		degraded.Status, degraded.Reason, degraded.Message = metav1.ConditionTrue, plan.ReasonNoQuorum, quorate.Message
	case a.Reason == plan.ReasonReplacing || a.Reason == plan.ReasonFreshVolume || a.Reason == plan.ReasonReplaceBlocked:
		degraded.Status, degraded.Reason, degraded.Message = metav1.ConditionTrue, "MemberReplacement", a.Message
	case len(st.Alarms) > 0:
		var as []string
		for _, al := range st.Alarms {
			as = append(as, al.Type+" on "+al.MemberID)
		}
		degraded.Status, degraded.Reason = metav1.ConditionTrue, "AlarmRaised"
		degraded.Message = "alarms raised: " + strings.Join(as, ", ")
	case len(unhealthy) > 0:
		degraded.Status, degraded.Reason = metav1.ConditionTrue, "MemberUnhealthy"
		degraded.Message = "unhealthy members: " + strings.Join(unhealthy, ", ")
	}
	meta.SetStatusCondition(&st.Conditions, degraded)

	switch {
	case c.Spec.Paused:
		st.Phase = v1alpha1.PhasePaused
	case !formed:
		st.Phase = v1alpha1.PhaseCreating
	case quorate.Status != metav1.ConditionTrue:
		st.Phase = v1alpha1.PhaseUnavailable
	case degraded.Reason == "MemberReplacement":
		st.Phase = v1alpha1.PhaseRepairing
	case a.Progressing():
		st.Phase = v1alpha1.PhaseScaling
	case degraded.Status == metav1.ConditionTrue:
		st.Phase = v1alpha1.PhaseDegraded
	default:
		st.Phase = v1alpha1.PhaseRunning
	}

	recordClusterMetrics(c, obs, healthyVoters, voters, quorate.Status == metav1.ConditionTrue)

	if equality.Semantic.DeepEqual(before.Status, c.Status) {
		return nil
	}
	return r.Status().Patch(ctx, c, client.MergeFrom(before))
}
