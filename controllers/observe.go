package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ballastdb/ballast/api/v1alpha1"
	"github.com/ballastdb/ballast/controllers/desired"
	"github.com/ballastdb/ballast/controllers/member"
	"github.com/ballastdb/ballast/controllers/plan"
	"github.com/ballastdb/ballast/node/join"
)

// observation is everything one reconcile saw.
type observation struct {
	plan      plan.Observed
	stsExists bool
	pods      map[int]*corev1.Pod
	// members as listed (or, without quorum, as last reported in
	// status), with their status answers.
	members  []member.Member
	statuses map[uint64]member.Status // by member ID; absent = no answer
	leaderID uint64
	alarms   []member.Alarm
	// listErr is why the member list failed, when it did.
	listErr error
}

func (o *observation) clientURL(id uint64) string {
	for _, m := range o.members {
		if m.ID == id && len(m.ClientURLs) > 0 {
			return m.ClientURLs[0]
		}
	}
	return ""
}

func (r *EtcdClusterReconciler) observe(ctx context.Context, c *v1alpha1.EtcdCluster) (*observation, error) {
	obs := &observation{
		plan: plan.Observed{
			Name:   c.Name,
			Size:   int(c.Spec.Size),
			Paused: c.Spec.Paused,
			Pods:   map[int]plan.Pod{},
		},
		pods:     map[int]*corev1.Pod{},
		statuses: map[uint64]member.Status{},
	}

	sts := &appsv1.StatefulSet{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: desired.StatefulSetName(c)}, sts); {
	case err == nil:
		obs.stsExists = true
		if sts.Spec.Replicas != nil {
			obs.plan.Replicas = int(*sts.Spec.Replicas)
		} else {
			obs.plan.Replicas = 1
		}
	case !apierrors.IsNotFound(err):
		return nil, err
	}

	cm := &corev1.ConfigMap{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: desired.ConfigMapName(c)}, cm); {
	case err == nil:
		obs.plan.BootstrapState = cm.Data[desired.KeyInitialClusterState]
	case !apierrors.IsNotFound(err):
		return nil, err
	}

	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(c.Namespace), client.MatchingLabels(desired.SelectorLabels(c))); err != nil {
		return nil, err
	}
	anyReady := false
	for i := range pods.Items {
		p := &pods.Items[i]
		ord, ok := desired.Ordinal(c, p.Name)
		if !ok {
			continue
		}
		obs.pods[ord] = p
		obs.plan.Pods[ord] = plan.Pod{ReplaceRequested: ReplaceRequested(p), Deleting: !p.DeletionTimestamp.IsZero()}
		if podReady(p) {
			anyReady = true
		}
	}

	// A cluster that has not formed has nobody to ask yet: skip the
	// member list (and its timeout) until a pod is ready.
	if obs.plan.BootstrapState != desired.StateExisting && c.Status.ClusterID == "" && !anyReady {
		return obs, nil
	}
	r.observeMembers(ctx, c, obs)
	return obs, nil
}

// observeMembers lists the members (linearizable: it needs quorum), asks
// each for its status and reads the alarms. Without quorum it still probes
// the members status last reported, so their health stays visible.
func (r *EtcdClusterReconciler) observeMembers(ctx context.Context, c *v1alpha1.EtcdCluster, obs *observation) {
	lg := log.FromContext(ctx)
	eps := r.endpoints(c, nil)
	for _, m := range c.Status.Members {
		for _, u := range m.ClientURLs {
			eps = appendNew(eps, u)
		}
	}
	mc, err := r.Members(ctx, eps)
	if err != nil {
		obs.listErr = err
		return
	}
	defer mc.Close()

	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	clusterID, members, err := mc.MemberList(lctx)
	cancel()
	if err != nil {
		obs.listErr = err
		lg.V(1).Info("member list failed", "error", err)
		members = membersFromStatus(c)
	} else {
		obs.plan.Listed = true
		obs.plan.ClusterID = clusterID
	}
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	obs.members = members

	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range members {
		if len(m.ClientURLs) == 0 {
			continue
		}
		wg.Add(1)
		go func(m member.Member) {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, statusTimeout)
			defer cancel()
			st, err := mc.Status(sctx, m.ClientURLs[0])
			if err != nil {
				return
			}
			mu.Lock()
			obs.statuses[m.ID] = st
			mu.Unlock()
		}(m)
	}
	wg.Wait()

	// The leader is the one a healthy member names; members that know no
	// leader report 0.
	for _, st := range obs.statuses {
		if st.Leader != 0 {
			obs.leaderID = st.Leader
			break
		}
	}
	if obs.plan.Listed {
		actx, cancel := context.WithTimeout(ctx, statusTimeout)
		alarms, err := mc.Alarms(actx)
		cancel()
		if err == nil {
			obs.alarms = alarms
		}
	}

	for _, m := range members {
		ord := -1
		if len(m.PeerURLs) > 0 {
			if i, ok := desired.OrdinalOfPeerURL(r.URLs, c, m.PeerURLs[0]); ok {
				ord = i
			}
		}
		st, answered := obs.statuses[m.ID]
		obs.plan.Members = append(obs.plan.Members, plan.Member{
			ID:      m.ID,
			Ordinal: ord,
			Learner: m.IsLearner,
			Started: m.Started(),
			Healthy: answered && st.Leader != 0 && len(st.Errors) == 0,
			Leader:  m.ID == obs.leaderID && obs.leaderID != 0,
		})
	}
}

// membersFromStatus is the member list last written to status, used to
// probe members while the cluster has no quorum.
func membersFromStatus(c *v1alpha1.EtcdCluster) []member.Member {
	var out []member.Member
	for _, s := range c.Status.Members {
		var id uint64
		if _, err := fmt.Sscanf(s.ID, "%x", &id); err != nil {
			continue
		}
		out = append(out, member.Member{ID: id, Name: s.Name, PeerURLs: s.PeerURLs, ClientURLs: s.ClientURLs, IsLearner: s.Learner})
	}
	return out
}

// ReplaceRequested reports whether the member container of pod p is not
// running and its last run ended with a termination message carrying
// join.ReplaceMarker: the member cannot go on as the member the cluster
// knows. A container that runs again has moved on; its old message in
// lastState no longer counts.
func ReplaceRequested(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != desired.ContainerName {
			continue
		}
		if cs.State.Running != nil {
			return false
		}
		if t := cs.State.Terminated; t != nil {
			return strings.Contains(t.Message, join.ReplaceMarker)
		}
		if t := cs.LastTerminationState.Terminated; cs.State.Waiting != nil && t != nil {
			return strings.Contains(t.Message, join.ReplaceMarker)
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	if !p.DeletionTimestamp.IsZero() {
		return false
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
