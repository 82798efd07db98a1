//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/transport/spdy"
)

var etcdClusterGVR = schema.GroupVersionResource{Group: "etcd.ballast.dev", Version: "v1alpha1", Resource: "etcdclusters"}

// kube holds the clients of the e2e cluster.
type kube struct {
	config  *rest.Config
	core    kubernetes.Interface
	dynamic dynamic.Interface
}

func newKube(t *testing.T) *kube {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &kube{config: cfg, core: core, dynamic: dyn}
}

func (k *kube) clusters(ns string) dynamic.ResourceInterface {
	return k.dynamic.Resource(etcdClusterGVR).Namespace(ns)
}

// createCluster creates an EtcdCluster as a user would write it. image
// empty leaves the member image to the operator's --default-image.
func (k *kube) createCluster(ctx context.Context, t *testing.T, ns, name string, size int, image string) {
	t.Helper()
	spec := map[string]any{
		"size":    int64(size),
		"version": env.tag,
		"storage": map[string]any{"size": "1Gi"},
	}
	if image != "" {
		spec["image"] = image
		spec["imagePullPolicy"] = "Never"
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "etcd.ballast.dev/v1alpha1",
		"kind":       "EtcdCluster",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
	if _, err := k.clusters(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating EtcdCluster %s/%s: %v", ns, name, err)
	}
}

// ensureNamespace creates a namespace unless it exists.
func (k *kube) ensureNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	_, err := k.core.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// setSize changes spec.size with a merge patch, as kubectl patch or scale would.
func (k *kube) setSize(ctx context.Context, t *testing.T, ns, name string, size int) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"size":%d}}`, size))
	if _, err := k.clusters(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("setting %s/%s size to %d: %v", ns, name, size, err)
	}
}

// clusterStatus is the part of an EtcdCluster's status the suite reads.
type clusterStatus struct {
	generation, observed int64
	phase                string
	ready                int64
	leader               string
	clusterID            string
	members              []memberStatus
	conditions           map[string]string // type -> status
	messages             map[string]string // type -> reason: message
}

type memberStatus struct {
	name, id         string
	learner, healthy bool
}

func readStatus(u *unstructured.Unstructured) clusterStatus {
	s := clusterStatus{generation: u.GetGeneration(), conditions: map[string]string{}, messages: map[string]string{}}
	s.observed, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	s.phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
	s.ready, _, _ = unstructured.NestedInt64(u.Object, "status", "readyMembers")
	s.leader, _, _ = unstructured.NestedString(u.Object, "status", "leader")
	s.clusterID, _, _ = unstructured.NestedString(u.Object, "status", "clusterID")
	members, _, _ := unstructured.NestedSlice(u.Object, "status", "members")
	for _, m := range members {
		mm, _ := m.(map[string]any)
		name, _ := mm["name"].(string)
		id, _ := mm["id"].(string)
		learner, _ := mm["learner"].(bool)
		healthy, _ := mm["healthy"].(bool)
		s.members = append(s.members, memberStatus{name: name, id: id, learner: learner, healthy: healthy})
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		typ, _ := cm["type"].(string)
		st, _ := cm["status"].(string)
		reason, _ := cm["reason"].(string)
		msg, _ := cm["message"].(string)
		s.conditions[typ] = st
		s.messages[typ] = reason + ": " + msg
	}
	return s
}

func (s clusterStatus) String() string {
	var ms []string
	for _, m := range s.members {
		flags := ""
		if m.learner {
			flags += " learner"
		}
		if !m.healthy {
			flags += " unhealthy"
		}
		ms = append(ms, m.name+"("+m.id+flags+")")
	}
	var cs []string
	for typ, st := range s.conditions {
		cs = append(cs, typ+"="+st+" ["+s.messages[typ]+"]")
	}
	sort.Strings(cs)
	return fmt.Sprintf("generation %d observed %d phase %q ready %d leader %q members [%s] conditions %s",
		s.generation, s.observed, s.phase, s.ready, s.leader, strings.Join(ms, " "), strings.Join(cs, "; "))
}

// available is the state the suite waits for after every change: the
// operator has seen the latest spec, the cluster is Available, and it has
// exactly size healthy voting members, all of them ready.
func (s clusterStatus) available(size int) bool {
	if s.observed != s.generation || s.conditions["Available"] != "True" || int(s.ready) != size || len(s.members) != size {
		return false
	}
	for _, m := range s.members {
		if m.learner || !m.healthy || m.name == "" {
			return false
		}
	}
	return true
}

// waitCluster watches an EtcdCluster until cond holds (no polling: the
// watch delivers every status update) and returns the status that met it.
func (k *kube) waitCluster(ctx context.Context, t *testing.T, ns, name string, timeout time.Duration, what string, cond func(clusterStatus) bool) clusterStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last clusterStatus
	lw := namedListWatch(name, k.clusters(ns).List, k.clusters(ns).Watch)
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok || ev.Type == watch.Deleted {
			return false, nil
		}
		last = readStatus(u)
		return cond(last), nil
	})
	if err != nil {
		t.Fatalf("EtcdCluster %s/%s: %s not reached within %v: %v\nlast status: %v\n%s", ns, name, what, timeout, err, last, k.describe(ns, name))
	}
	return last
}

// waitPod watches a pod until cond holds.
func (k *kube) waitPod(ctx context.Context, t *testing.T, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lw := namedListWatch(name, k.core.CoreV1().Pods(ns).List, k.core.CoreV1().Pods(ns).Watch)
	var got *corev1.Pod
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok || ev.Type == watch.Deleted {
			return false, nil
		}
		got = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s: %s not reached within %v: %v\n%s", ns, name, what, timeout, err, k.describe(ns, ""))
	}
	return got
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// describe gathers what a human needs when a wait fails: the pods, their
// container states, the latest events and the operator's log tail.
func (k *kube) describe(ns, cluster string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var b strings.Builder
	if pods, err := k.core.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "pod %s: phase %s ready %v", p.Name, p.Status.Phase, podReady(&p))
			for _, cs := range p.Status.ContainerStatuses {
				fmt.Fprintf(&b, " [%s restarts %d", cs.Name, cs.RestartCount)
				if cs.State.Waiting != nil {
					fmt.Fprintf(&b, " waiting %s %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
				}
				if cs.LastTerminationState.Terminated != nil {
					fmt.Fprintf(&b, " last exit %d %q", cs.LastTerminationState.Terminated.ExitCode, cs.LastTerminationState.Terminated.Message)
				}
				b.WriteString("]")
			}
			b.WriteString("\n")
		}
	}
	if evs, err := k.core.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		items := evs.Items
		sort.Slice(items, func(i, j int) bool { return items[i].LastTimestamp.Before(&items[j].LastTimestamp) })
		if len(items) > 25 {
			items = items[len(items)-25:]
		}
		for _, e := range items {
			fmt.Fprintf(&b, "event %s %s/%s %s: %s\n", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	b.WriteString(k.operatorLogs(ctx, 40))
	return b.String()
}

func (k *kube) operatorLogs(ctx context.Context, lines int64) string {
	pods, err := k.core.CoreV1().Pods(env.operatorNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=operator"})
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range pods.Items {
		raw, err := k.core.CoreV1().Pods(env.operatorNS).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx)
		if err == nil {
			fmt.Fprintf(&b, "--- operator %s (last %d lines)\n%s", p.Name, lines, raw)
		}
	}
	return b.String()
}

// forward opens a port-forward to a pod's port (client-go's SPDY
// port-forward, what kubectl port-forward does) and returns the local
// address. It ends when ctx does or the pod goes away.
func (k *kube) forward(ctx context.Context, ns, pod string, port int) (string, error) {
	transport, upgrader, err := spdy.RoundTripperFor(k.config)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(k.config.Host)
	if err != nil {
		return "", err
	}
	u.Path = fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", ns, pod)
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, ctx.Done(), ready, io.Discard, io.Discard)
	if err != nil {
		return "", err
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		return "", fmt.Errorf("port-forward to %s/%s: %w", ns, pod, err)
	case <-ctx.Done():
		return "", ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		return "", fmt.Errorf("port-forward to %s/%s: no local port: %v", ns, pod, err)
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[0].Local)), nil
}

// etcdClient connects client/v3 to every running member pod of a cluster
// through port-forwards. The forwards end with ctx.
func (k *kube) etcdClient(ctx context.Context, t *testing.T, ns, cluster string) *clientv3.Client {
	t.Helper()
	pods, err := k.core.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "etcd.ballast.dev/cluster=" + cluster})
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		addr, err := k.forward(ctx, ns, p.Name, 2379)
		if err != nil {
			t.Logf("no port-forward to %s: %v", p.Name, err)
			continue
		}
		endpoints = append(endpoints, addr)
	}
	if len(endpoints) == 0 {
		t.Fatalf("no running member pod of %s/%s to connect to", ns, cluster)
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// memberIDs lists the cluster's members by name through client/v3.
func memberIDs(ctx context.Context, t *testing.T, c *clientv3.Client) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := c.MemberList(ctx)
	if err != nil {
		t.Fatalf("MemberList: %v", err)
	}
	out := map[string]uint64{}
	for _, m := range resp.Members {
		if m.IsLearner {
			t.Errorf("member %s (%x) is still a learner", m.Name, m.ID)
		}
		out[m.Name] = m.ID
	}
	return out
}

// namedListWatch lists and watches the one object called name, through the
// List and Watch of a client for one kind in one namespace (typed or
// dynamic), for watchtools.UntilWithSync.
func namedListWatch[L runtime.Object](name string,
	list func(context.Context, metav1.ListOptions) (L, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) *cache.ListWatch {
	byName := func(o metav1.ListOptions) metav1.ListOptions {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		return o
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return list(ctx, byName(o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return watchFn(ctx, byName(o))
		},
	}
}

// waitDeleted watches a resource until the named object is gone (already
// absent when listed, or a Deleted event), so that the next step starts from
// a settled state.
func (k *kube) waitDeleted(ctx context.Context, t *testing.T, gvr schema.GroupVersionResource, ns, name string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ri := k.dynamic.Resource(gvr).Namespace(ns)
	lw := namedListWatch(name, ri.List, ri.Watch)
	absent := func(store cache.Store) (bool, error) { return len(store.List()) == 0, nil }
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, absent, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Deleted, nil
	})
	if err != nil {
		t.Fatalf("%s %s/%s not deleted within %v: %v", gvr.Resource, ns, name, timeout, err)
	}
}

var (
	podsGVR         = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	pvcsGVR         = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	deploymentsGVR  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	statefulSetsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	servicesGVR     = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	configMapsGVR   = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	pdbsGVR         = schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}
)
