// Package controllers holds the EtcdCluster reconciler of `ballast
// operator`. One reconcile observes the cluster (its objects, its pods and
// its member list), makes the objects it owns match the spec, asks package
// plan for the one next step, performs it, and writes status once. Nothing
// is remembered between reconciles: the observation is the only input, so
// an operator restarted at any point picks up where the cluster is.
package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ballastdb/ballast/api/v1alpha1"
	"github.com/ballastdb/ballast/controllers/desired"
	"github.com/ballastdb/ballast/controllers/member"
	"github.com/ballastdb/ballast/controllers/plan"
)

// FieldOwner is the server-side apply field manager of the operator.
const FieldOwner = "ballast-operator"

// Timeouts of the calls one reconcile makes to a cluster. They bound a
// reconcile of a cluster that does not answer to a few seconds.
const (
	listTimeout   = 5 * time.Second
	statusTimeout = 2 * time.Second
	changeTimeout = 10 * time.Second
)

// Requeue delays. Member health changes produce no Kubernetes event, so a
// resting cluster is still looked at periodically.
var (
	requeueAfterAction = 500 * time.Millisecond
	requeueWaiting     = 2 * time.Second
	requeueNoQuorum    = 10 * time.Second
	requeueResting     = 30 * time.Second
)

// EtcdClusterReconciler reconciles EtcdClusters.
type EtcdClusterReconciler struct {
	client.Client
	Recorder events.EventRecorder
	// URLs says how members and the operator reach each other
	// (desired.DNS in a cluster).
	URLs desired.URLs
	// Members opens member clients (member.New in a cluster).
	Members member.Factory
	// StatefulSet holds the operator-wide pod settings.
	StatefulSet desired.StatefulSetOptions
}

// +kubebuilder:rbac:groups=etcd.ballast.dev,resources=etcdclusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=etcd.ballast.dev,resources=etcdclusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=etcd.ballast.dev,resources=etcdclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;configmaps,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch;update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch;update

// SetupWithManager registers the reconciler as controller name (default
// "etcdcluster"; names must be unique in a process). Pods are not owned by
// the EtcdCluster (the StatefulSet owns them), so they are mapped to their
// cluster by label.
func (r *EtcdClusterReconciler) SetupWithManager(mgr ctrl.Manager, name string) error {
	if name == "" {
		name = "etcdcluster"
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.EtcdCluster{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToCluster)).
		// A cluster without quorum keeps its reconcile in timeouts for a
		// few seconds; others go on meanwhile. One cluster is never
		// reconciled twice at once.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named(name).
		Complete(r)
}

func podToCluster(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[desired.LabelCluster]
	if name == "" || o.GetLabels()[desired.LabelManagedBy] != desired.ManagedBy {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// Reconcile is one observe → ensure → decide → act → report round.
func (r *EtcdClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	lg := log.FromContext(ctx)
	c := &v1alpha1.EtcdCluster{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			forgetClusterMetrics(req.Namespace, req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !c.DeletionTimestamp.IsZero() {
		// The owned objects go with it through their owner references.
		return ctrl.Result{}, nil
	}

	obs, err := r.observe(ctx, c)
	if err != nil {
		return ctrl.Result{}, err
	}
	var action plan.Action
	var actErr error
	if !c.Spec.Paused {
		if err := r.ensureObjects(ctx, c, obs); err != nil {
			return ctrl.Result{}, r.reportError(ctx, c, obs, "EnsureObjectsFailed", err)
		}
	}
	action = plan.Next(obs.plan)
	requeue := requeueFor(action)
	if action.Kind != plan.Wait {
		lg.Info("acting", "action", action.Kind, "reason", action.Reason, "message", action.Message)
		var after time.Duration
		after, actErr = r.act(ctx, c, obs, action)
		if after > 0 {
			requeue = after
		}
	}
	if err := r.writeStatus(ctx, c, obs, action, actErr); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: requeueAfterAction}, nil
		}
		return ctrl.Result{}, err
	}
	if actErr != nil {
		return ctrl.Result{}, actErr
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

func requeueFor(a plan.Action) time.Duration {
	switch {
	case a.Kind != plan.Wait:
		return requeueAfterAction
	case a.Reason == plan.ReasonNoQuorum:
		return requeueNoQuorum
	case a.Progressing():
		return requeueWaiting
	default:
		return requeueResting
	}
}

// reportError records a failure to make the owned objects match in status
// and returns it, so the reconcile is retried with backoff.
func (r *EtcdClusterReconciler) reportError(ctx context.Context, c *v1alpha1.EtcdCluster, obs *observation, reason string, err error) error {
	r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, reason, "Reconcile", "%v", err)
	a := plan.Action{Kind: plan.Wait, Ordinal: -1, Reason: reason, Message: err.Error()}
	if serr := r.writeStatus(ctx, c, obs, a, err); serr != nil {
		log.FromContext(ctx).Error(serr, "cannot write status")
	}
	return err
}

// ensureObjects applies the Services, ConfigMap, PodDisruptionBudget and
// StatefulSet. Replicas are kept as they are (or set for a new
// StatefulSet): only plan decides to change them.
func (r *EtcdClusterReconciler) ensureObjects(ctx context.Context, c *v1alpha1.EtcdCluster, obs *observation) error {
	state := obs.plan.BootstrapState
	if state == "" {
		// A cluster whose ID was ever seen is never bootstrapped again,
		// even if someone deleted its ConfigMap.
		state = desired.StateNew
		if c.Status.ClusterID != "" || obs.plan.Listed {
			state = desired.StateExisting
		}
		obs.plan.BootstrapState = state
	}
	replicas := int32(obs.plan.Replicas)
	if !obs.stsExists {
		replicas = int32(plan.InitialReplicas(obs.plan))
		obs.plan.Replicas = int(replicas)
	}
	for _, o := range []client.Object{
		desired.HeadlessService(c),
		desired.ClientService(c),
		desired.BootstrapConfigMap(c, state, r.URLs),
		desired.PodDisruptionBudget(c),
		desired.StatefulSet(c, replicas, r.StatefulSet),
	} {
		if err := r.apply(ctx, c, o); err != nil {
			return err
		}
	}
	return nil
}

// act performs one plan action. It returns a requeue delay when the action
// needs a specific one, and the error of a step that failed.
func (r *EtcdClusterReconciler) act(ctx context.Context, c *v1alpha1.EtcdCluster, obs *observation, a plan.Action) (time.Duration, error) {
	ns := c.Namespace
	switch a.Kind {
	case plan.SetBootstrapExisting:
		if err := r.apply(ctx, c, desired.BootstrapConfigMap(c, desired.StateExisting, r.URLs)); err != nil {
			return 0, err
		}
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, a.Reason, "Bootstrap", "%s", a.Message)
		return 0, nil

	case plan.SetReplicas:
		if err := r.apply(ctx, c, desired.StatefulSet(c, int32(a.Replicas), r.StatefulSet)); err != nil {
			return 0, err
		}
		if a.Replicas < obs.plan.Replicas {
			r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, a.Reason, "Scale", "%s", a.Message)
		}
		return 0, nil

	case plan.RecreatePod:
		if !c.Spec.Storage.Ephemeral {
			pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: desired.PVCName(c, a.Ordinal)}}
			if err := r.Delete(ctx, pvc); err != nil && !apierrors.IsNotFound(err) {
				return 0, fmt.Errorf("deleting volume claim %s: %w", pvc.Name, err)
			}
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: desired.PodName(c, a.Ordinal)}}
		if err := r.Delete(ctx, pod); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("deleting pod %s: %w", pod.Name, err)
		}
		r.Recorder.Eventf(c, memberPod(c, a), corev1.EventTypeNormal, a.Reason, "ReplaceVolume", "%s", a.Message)
		return 0, nil
	}

	// Membership changes.
	mc, err := r.Members(ctx, r.endpoints(c, obs))
	if err != nil {
		return 0, err
	}
	defer mc.Close()
	cctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	var change string
	switch a.Kind {
	case plan.AddLearner:
		change = "add_learner"
		var m member.Member
		m, err = mc.AddLearner(cctx, r.URLs.PeerURL(c, a.Ordinal))
		if err == nil {
			a.Message = fmt.Sprintf("added %s as learner %s; its pod joins with a fresh data dir", desired.PodName(c, a.Ordinal), member.FormatID(m.ID))
		} else if member.IsPeerURLExist(err) {
			// An earlier attempt succeeded; the next list shows it.
			return 0, nil
		}
	case plan.Promote:
		change = "promote"
		err = mc.Promote(cctx, a.MemberID)
		if member.IsLearnerNotReady(err) {
			// Not an error: the learner is still catching up.
			recordChange(c, change, "not_ready")
			return requeueWaiting, nil
		}
	case plan.Remove:
		change = "remove"
		err = mc.Remove(cctx, a.MemberID)
		if member.IsMemberNotFound(err) {
			// An earlier attempt went through but its answer was lost.
			log.FromContext(ctx).Info("member already removed", "member", member.FormatID(a.MemberID), "ordinal", a.Ordinal)
			return 0, nil
		}
	case plan.MoveLeader:
		change = "move_leader"
		ep := obs.clientURL(a.MemberID)
		if ep == "" {
			return requeueWaiting, nil
		}
		err = mc.MoveLeader(cctx, ep, a.TargetID)
	default:
		return 0, fmt.Errorf("unknown action %q", a.Kind)
	}
	if err != nil && member.IsUnhealthy(err) {
		// etcd's strict reconfiguration check: the leader has not been
		// connected to every voting member for long enough (5s after a
		// member joined or was promoted), or the change would break the
		// active quorum. Expected right after a change; retried.
		recordChange(c, change, "refused")
		r.Recorder.Eventf(c, memberPod(c, a), corev1.EventTypeNormal, "MembershipChangeDeferred", string(a.Kind),
			"%s: the cluster refused it for now (%v); retrying", a.Message, err)
		return requeueWaiting, nil
	}
	if err != nil && r.changeTookEffect(ctx, mc, c, a) {
		// The answer was lost (e.g. the request went through the member
		// being removed) but the change is in the member list.
		err = nil
	}
	if err != nil {
		recordChange(c, change, "error")
		r.Recorder.Eventf(c, memberPod(c, a), corev1.EventTypeWarning, "MembershipChangeFailed", string(a.Kind), "%s: %v", a.Message, err)
		// Retried after the next observation; not a reconciler error.
		return requeueWaiting, nil
	}
	recordChange(c, change, "success")
	r.Recorder.Eventf(c, memberPod(c, a), corev1.EventTypeNormal, eventReason(a), string(a.Kind), "%s", a.Message)
	return 0, nil
}

// memberPod is the pod of the action's ordinal, as the event's related
// object (nil when the action concerns no ordinal). Besides pointing
// readers at the pod, it keeps the events of different members apart: the
// event recorder folds events with the same regarding object, reason,
// action and related object into one series, so two members removed in a
// row would otherwise show up as one event.
func memberPod(c *v1alpha1.EtcdCluster, a plan.Action) runtime.Object {
	if a.Ordinal < 0 {
		return nil
	}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: desired.PodName(c, a.Ordinal)},
	}
}

// changeTookEffect looks at the member list after a change whose answer
// was an error, to tell a failed change from a lost answer.
func (r *EtcdClusterReconciler) changeTookEffect(ctx context.Context, mc member.Client, c *v1alpha1.EtcdCluster, a plan.Action) bool {
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	_, members, err := mc.MemberList(lctx)
	if err != nil {
		return false
	}
	var found *member.Member
	for i, m := range members {
		switch a.Kind {
		case plan.AddLearner:
			for _, u := range m.PeerURLs {
				if u == r.URLs.PeerURL(c, a.Ordinal) {
					found = &members[i]
				}
			}
		default:
			if m.ID == a.MemberID {
				found = &members[i]
			}
		}
	}
	switch a.Kind {
	case plan.AddLearner:
		return found != nil
	case plan.Promote:
		return found != nil && !found.IsLearner
	case plan.Remove:
		return found == nil
	}
	return false
}

func eventReason(a plan.Action) string {
	switch a.Kind {
	case plan.AddLearner:
		return "MemberAdded"
	case plan.Promote:
		return "MemberPromoted"
	case plan.Remove:
		if a.Reason == plan.ReasonReplacing {
			return "MemberRemovedForReplacement"
		}
		return "MemberRemoved"
	case plan.MoveLeader:
		return "LeaderMoved"
	}
	return a.Reason
}

// endpoints are where the operator reaches the cluster: the client
// endpoints of the URL policy, plus every listed member's client URLs so a
// call still finds a member when the Service has no ready endpoint.
func (r *EtcdClusterReconciler) endpoints(c *v1alpha1.EtcdCluster, obs *observation) []string {
	seen := map[string]bool{}
	var out []string
	add := func(u string) {
		if u != "" && !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, u := range r.URLs.ClientEndpoints(c) {
		add(u)
	}
	if obs != nil {
		for _, m := range obs.members {
			for _, u := range m.ClientURLs {
				add(u)
			}
		}
	}
	return out
}
