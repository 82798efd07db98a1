// Package kubesim plays, for the operator's tests, the parts of Kubernetes
// that a bare kube-apiserver lacks: the StatefulSet controller (pods and
// volume claims per ordinal, scale-down with the claim retention policy)
// and the kubelet (each pod's container is a real `ballast node` process on
// loopback ports; its status — running, ready from /readyz, terminated
// with the message the process wrote to its termination log — is written
// back to the pod). Volumes are directories named after the claim's UID,
// so a re-created claim is a fresh volume.
//
// It is a test double of Kubernetes, not of Ballast: the members, their
// membership and their data are real. What it does not do: scheduling,
// rolling template updates, init containers, more than one container.
package kubesim

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ballastdb/ballast/api/v1alpha1"
	"github.com/ballastdb/ballast/controllers/desired"
	"github.com/ballastdb/ballast/controllers/operator"
)

// NodeName is the node every simulated pod is bound to. A bound pod is
// deleted gracefully (the API server waits for the kubelet), as in a real
// cluster.
const NodeName = "kubesim"

// Options of a simulator.
type Options struct {
	Namespace string
	// Ballast is the `ballast` binary the containers run.
	Ballast string
	// URLs gives each pod its loopback client and peer URLs; the same
	// policy the reconciler under test uses.
	URLs desired.URLs
	// Dir holds volumes, termination logs and container logs.
	Dir string
	// ExtraEnv is added to every container (e.g. ETCD_UNSAFE_NO_FSYNC).
	ExtraEnv []string
	// RestartDelay is the kubelet's back-off before restarting an exited
	// container (default 1s).
	RestartDelay time.Duration
	// ProbePeriod is the readiness probe period (default 300ms).
	ProbePeriod time.Duration
	// Logf receives the simulator's notes (t.Logf).
	Logf func(format string, args ...any)
}

// Sim is a running simulator for one namespace.
type Sim struct {
	o      Options
	c      client.Client // uncached: the simulator reads what it just wrote
	events chan event.GenericEvent
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	containers map[string]*container // by pod name
	held       map[string]bool       // pod name → restarts held by the test
}

// Start runs the simulator until Stop. It uses its own manager so that it
// outlives operator managers the test stops and starts.
func Start(cfg *rest.Config, o Options) (*Sim, error) {
	if o.RestartDelay == 0 {
		o.RestartDelay = time.Second
	}
	if o.ProbePeriod == 0 {
		o.ProbePeriod = 300 * time.Millisecond
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	s := &Sim{
		o:          o,
		events:     make(chan event.GenericEvent, 64),
		done:       make(chan struct{}),
		containers: map[string]*container{},
		held:       map[string]bool{},
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  operator.Scheme(),
		Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{o.Namespace: {}}},
		Metrics: metricsserver.Options{BindAddress: "0"},
		Logger:  logr.Discard(),
	})
	if err != nil {
		return nil, err
	}
	s.c, err = client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return nil, err
	}
	suffix := strings.ReplaceAll(o.Namespace, "-", "")
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("kubesim-statefulset-" + suffix).
		For(&appsv1.StatefulSet{}).
		Owns(&corev1.Pod{}).
		Complete(reconcilerFunc(s.reconcileStatefulSet)); err != nil {
		return nil, err
	}
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("kubesim-kubelet-" + suffix).
		For(&corev1.Pod{}).
		WatchesRawSource(source.Channel(s.events, &handler.EnqueueRequestForObject{})).
		Complete(reconcilerFunc(s.reconcilePod)); err != nil {
		return nil, err
	}
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("kubesim-pvc-protection-"+suffix).
		For(&corev1.PersistentVolumeClaim{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(claimsOfPod)).
		Complete(reconcilerFunc(s.reconcileClaim)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		if err := mgr.Start(ctx); err != nil {
			o.Logf("kubesim: manager stopped: %v", err)
		}
	}()
	return s, nil
}

// Stop stops the controllers and kills every container.
func (s *Sim) Stop() {
	s.cancel()
	<-s.done
	s.mu.Lock()
	cs := make([]*container, 0, len(s.containers))
	for _, c := range s.containers {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.stop(0)
	}
}

type reconcilerFunc func(context.Context, ctrl.Request) (ctrl.Result, error)

func (f reconcilerFunc) Reconcile(ctx context.Context, r ctrl.Request) (ctrl.Result, error) {
	return f(ctx, r)
}

// --- StatefulSet controller -------------------------------------------------

func (s *Sim) reconcileStatefulSet(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sts := &appsv1.StatefulSet{}
	if err := s.c.Get(ctx, req.NamespacedName, sts); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	replicas := 1
	if sts.Spec.Replicas != nil {
		replicas = int(*sts.Spec.Replicas)
	}
	pods := &corev1.PodList{}
	if err := s.c.List(ctx, pods, client.InNamespace(sts.Namespace), client.MatchingLabels(sts.Spec.Selector.MatchLabels)); err != nil {
		return ctrl.Result{}, err
	}
	have := map[int]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if ord, ok := ordinal(sts.Name, p.Name); ok {
			have[ord] = p
		}
	}
	// Parallel pod management: create every missing ordinal at once.
	requeue := false
	for i := 0; i < replicas; i++ {
		if _, ok := have[i]; ok {
			continue
		}
		created, err := s.createPod(ctx, sts, i)
		if err != nil {
			return ctrl.Result{}, err
		}
		requeue = requeue || !created
	}
	// Scale down: delete the pods above replicas; once a pod is gone,
	// its claims go too when the retention policy says so.
	whenScaledDelete := sts.Spec.PersistentVolumeClaimRetentionPolicy != nil &&
		sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	for ord, p := range have {
		if ord < replicas || !p.DeletionTimestamp.IsZero() {
			continue
		}
		s.o.Logf("kubesim: scale-down deletes pod %s", p.Name)
		if err := s.c.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
	}
	if whenScaledDelete {
		pvcs := &corev1.PersistentVolumeClaimList{}
		if err := s.c.List(ctx, pvcs, client.InNamespace(sts.Namespace)); err != nil {
			return ctrl.Result{}, err
		}
		for i := range pvcs.Items {
			pvc := &pvcs.Items[i]
			for _, t := range sts.Spec.VolumeClaimTemplates {
				ord, ok := ordinal(t.Name+"-"+sts.Name, pvc.Name)
				if !ok || ord < replicas || !pvc.DeletionTimestamp.IsZero() {
					continue
				}
				if _, podLeft := have[ord]; podLeft {
					requeue = true // wait for the pod to go first
					continue
				}
				s.o.Logf("kubesim: scale-down deletes claim %s (%s)", pvc.Name, pvc.UID)
				if err := s.c.Delete(ctx, pvc); client.IgnoreNotFound(err) != nil {
					return ctrl.Result{}, err
				}
			}
		}
	}
	if requeue {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	return ctrl.Result{}, nil
}

// createPod creates the claims and the pod of ordinal ord. Like the
// StatefulSet controller it does not create a pod whose claim is still
// being deleted (it would bind the old volume); ok is false then.
func (s *Sim) createPod(ctx context.Context, sts *appsv1.StatefulSet, ord int) (ok bool, err error) {
	name := fmt.Sprintf("%s-%d", sts.Name, ord)
	tmpl := sts.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   sts.Namespace,
			Labels:      tmpl.Labels,
			Annotations: tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sts,
				appsv1.SchemeGroupVersion.WithKind("StatefulSet"))},
		},
		Spec: tmpl.Spec,
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels["statefulset.kubernetes.io/pod-name"] = name
	pod.Labels["apps.kubernetes.io/pod-index"] = strconv.Itoa(ord)
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = sts.Spec.ServiceName
	pod.Spec.NodeName = NodeName
	for _, t := range sts.Spec.VolumeClaimTemplates {
		claim := fmt.Sprintf("%s-%s-%d", t.Name, sts.Name, ord)
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: sts.Namespace, Labels: t.Labels},
			Spec:       t.Spec,
		}
		err := s.c.Create(ctx, pvc)
		if err == nil {
			s.o.Logf("kubesim: created claim %s (%s)", claim, pvc.UID)
		}
		if apierrors.IsAlreadyExists(err) {
			old := &corev1.PersistentVolumeClaim{}
			if err := s.c.Get(ctx, types.NamespacedName{Namespace: sts.Namespace, Name: claim}, old); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			if !old.DeletionTimestamp.IsZero() {
				return false, nil
			}
		} else if err != nil {
			return false, fmt.Errorf("creating claim %s: %w", claim, err)
		}
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
		}})
	}
	s.o.Logf("kubesim: creating pod %s", name)
	if err := s.c.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("creating pod %s: %w", name, err)
	}
	return true, nil
}

// reconcileClaim plays kube-controller-manager's pvc-protection
// controller: kube-apiserver's admission puts the kubernetes.io/pvc-protection
// finalizer on every claim, and a deleted claim goes only once no pod uses
// it.
func (s *Sim) reconcileClaim(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	if err := s.c.Get(ctx, req.NamespacedName, pvc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pvc.DeletionTimestamp.IsZero() || !slices.Contains(pvc.Finalizers, pvcProtection) {
		return ctrl.Result{}, nil
	}
	pods := &corev1.PodList{}
	if err := s.c.List(ctx, pods, client.InNamespace(pvc.Namespace)); err != nil {
		return ctrl.Result{}, err
	}
	for _, p := range pods.Items {
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name {
				return ctrl.Result{}, nil // the pod's deletion brings us back
			}
		}
	}
	pvc.Finalizers = slices.DeleteFunc(pvc.Finalizers, func(f string) bool { return f == pvcProtection })
	if err := s.c.Update(ctx, pvc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s.o.Logf("kubesim: claim %s (%s) released at resourceVersion %s (finalizers now %v)", pvc.Name, pvc.UID, pvc.ResourceVersion, pvc.Finalizers)
	return ctrl.Result{}, nil
}

const pvcProtection = "kubernetes.io/pvc-protection"

func claimsOfPod(_ context.Context, o client.Object) []reconcile.Request {
	p, ok := o.(*corev1.Pod)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: v.PersistentVolumeClaim.ClaimName}})
		}
	}
	return out
}

func ordinal(prefix, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || strconv.Itoa(i) != rest {
		return 0, false
	}
	return i, true
}

// --- kubelet ------------------------------------------------------------------

func (s *Sim) reconcilePod(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	err := s.c.Get(ctx, req.NamespacedName, pod)
	if apierrors.IsNotFound(err) {
		if c := s.container(req.Name); c != nil {
			c.stop(0)
			s.forget(req.Name, c)
		}
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if pod.Spec.NodeName != NodeName {
		return ctrl.Result{}, nil
	}
	c := s.container(pod.Name)
	if c != nil && c.podUID != pod.UID {
		// A new pod of the same name: the old one's container must be gone
		// before the new one binds its ports.
		c.stop(0)
		s.forget(pod.Name, c)
		c = nil
	}

	if !pod.DeletionTimestamp.IsZero() {
		grace := int64(30)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		}
		if c != nil {
			c.stop(time.Duration(grace) * time.Second)
			s.forget(pod.Name, c)
		}
		zero := int64(0)
		err := s.c.Delete(ctx, pod, &client.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, nil
	}

	if c == nil {
		c = &container{sim: s, podName: pod.Name, podUID: pod.UID, namespace: pod.Namespace}
		s.mu.Lock()
		s.containers[pod.Name] = c
		s.mu.Unlock()
	}
	return c.sync(ctx, pod)
}

func (s *Sim) container(name string) *container {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.containers[name]
}

func (s *Sim) forget(name string, c *container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.containers[name] == c {
		delete(s.containers, name)
	}
}

func (s *Sim) isHeld(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[name]
}

// poke makes the kubelet look at a pod now.
func (s *Sim) poke(namespace, name string) {
	select {
	case s.events <- event.GenericEvent{Object: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}:
	default:
		// The queue is full of pokes already; any of them will do.
	}
}

// Kill SIGKILLs pod name's container and holds it down: the simulator does
// not restart it until Release. It returns once the process is gone.
func (s *Sim) Kill(name string) {
	s.mu.Lock()
	s.held[name] = true
	c := s.containers[name]
	s.mu.Unlock()
	if c != nil {
		c.kill()
	}
}

// Release lets the simulator restart pod name's container.
func (s *Sim) Release(name string) {
	s.mu.Lock()
	delete(s.held, name)
	s.mu.Unlock()
	s.poke(s.o.Namespace, name)
}

// Running reports whether pod name's container process runs.
func (s *Sim) Running(name string) bool {
	c := s.container(name)
	return c != nil && c.running()
}

// VolumeDir is the directory backing volume claim claim (named as the
// StatefulSet names them), for tests that destroy a member's data.
func (s *Sim) VolumeDir(ctx context.Context, claim string) (string, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: s.o.Namespace, Name: claim}, pvc); err != nil {
		return "", err
	}
	return filepath.Join(s.o.Dir, "volumes", "pvc-"+string(pvc.UID)), nil
}

// Log is the combined log of every run of pod name's container.
func (s *Sim) Log(name string) string {
	files, _ := filepath.Glob(filepath.Join(s.o.Dir, "logs", name+".*.log"))
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "==> %s <==\n%s", filepath.Base(f), data)
	}
	return b.String()
}

// clusterOf is the EtcdCluster a pod belongs to, as the URL policy needs it.
func clusterOf(pod *corev1.Pod) (*v1alpha1.EtcdCluster, int, error) {
	name := pod.Labels[desired.LabelCluster]
	if name == "" {
		return nil, 0, fmt.Errorf("pod %s has no %s label", pod.Name, desired.LabelCluster)
	}
	c := &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pod.Namespace}}
	ord, ok := desired.Ordinal(c, pod.Name)
	if !ok {
		return nil, 0, fmt.Errorf("pod %s is no ordinal of cluster %s", pod.Name, name)
	}
	return c, ord, nil
}

// probe is the readiness probe: GET /readyz on the member's client URL.
func probe(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
