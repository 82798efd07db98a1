//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/yaml"
)

const clusterName = "e2e"

// TestOperator is the user's path from `helm install` to `helm uninstall`,
// one step after another on the same EtcdCluster; a step that fails stops
// the rest, since each starts from the state the previous one left.
func TestOperator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	k := newKube(t)
	chart := "../charts/ballast-operator"
	installValues := []string{
		"--set", "image.repository=" + env.imageRepo,
		"--set", "image.tag=" + env.tag,
		// The image was loaded with kind; nothing may be pulled.
		"--set", "image.pullPolicy=Never",
	}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"helm install", func(t *testing.T) {
			helmCmd(t, 6*time.Minute, append([]string{"install", env.releaseName, chart,
				"--namespace", env.operatorNS, "--create-namespace", "--wait", "--timeout", "5m"}, installValues...)...)
			k.ensureNamespace(ctx, t, env.clusterNS)
		}},
		{"3 members become Available", func(t *testing.T) {
			k.createCluster(ctx, t, env.clusterNS, clusterName, 3, "")
			st := k.waitCluster(ctx, t, env.clusterNS, clusterName, 10*time.Minute, "Available with 3 members", func(s clusterStatus) bool { return s.available(3) })
			t.Logf("available: %v", st)
		}},
		{"write and read through client/v3", func(t *testing.T) {
			fctx, stop := context.WithCancel(ctx)
			defer stop()
			c := k.etcdClient(fctx, t, env.clusterNS, clusterName)
			putAll(fctx, t, c, "before-scale/", 100)
			checkAll(fctx, t, c, "before-scale/", 100)
			if ids := memberIDs(fctx, t, c); len(ids) != 3 {
				t.Fatalf("MemberList has %d members, want 3: %v", len(ids), ids)
			}
		}},
		{"scale to 5 and back to 3", func(t *testing.T) {
			k.setSize(ctx, t, env.clusterNS, clusterName, 5)
			k.waitCluster(ctx, t, env.clusterNS, clusterName, 10*time.Minute, "Available with 5 members", func(s clusterStatus) bool { return s.available(5) })
			fctx, stop := context.WithCancel(ctx)
			c := k.etcdClient(fctx, t, env.clusterNS, clusterName)
			if ids := memberIDs(fctx, t, c); len(ids) != 5 {
				t.Fatalf("MemberList has %d members after scaling to 5, want 5: %v", len(ids), ids)
			}
			checkAll(fctx, t, c, "before-scale/", 100)
			stop()

			k.setSize(ctx, t, env.clusterNS, clusterName, 3)
			k.waitCluster(ctx, t, env.clusterNS, clusterName, 10*time.Minute, "Available with 3 members", func(s clusterStatus) bool { return s.available(3) })
			for _, ord := range []int{3, 4} {
				pod := fmt.Sprintf("%s-%d", clusterName, ord)
				k.waitDeleted(ctx, t, podsGVR, env.clusterNS, pod, 3*time.Minute)
				// The StatefulSet deletes a scaled-away member's claim
				// (whenScaled: Delete): its data could never rejoin.
				k.waitDeleted(ctx, t, pvcsGVR, env.clusterNS, "data-"+pod, 3*time.Minute)
			}
			fctx, stop = context.WithCancel(ctx)
			defer stop()
			c = k.etcdClient(fctx, t, env.clusterNS, clusterName)
			ids := memberIDs(fctx, t, c)
			for _, name := range []string{clusterName + "-0", clusterName + "-1", clusterName + "-2"} {
				if _, ok := ids[name]; !ok {
					t.Errorf("member %s is missing after scaling back to 3: %v", name, ids)
				}
			}
			if len(ids) != 3 {
				t.Errorf("MemberList has %d members, want 3: %v", len(ids), ids)
			}
			checkAll(fctx, t, c, "before-scale/", 100)
		}},
		{"a member that lost its pod and claim is replaced", func(t *testing.T) {
			victim := clusterName + "-1"
			fctx, stop := context.WithCancel(ctx)
			c := k.etcdClient(fctx, t, env.clusterNS, clusterName)
			oldIDs := memberIDs(fctx, t, c)
			stop()
			oldPod, err := k.core.CoreV1().Pods(env.clusterNS).Get(ctx, victim, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			oldPVC, err := k.core.CoreV1().PersistentVolumeClaims(env.clusterNS).Get(ctx, "data-"+victim, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The claim first (it stays until its pod is gone), then the
			// pod: the StatefulSet recreates both, the claim empty.
			if err := k.core.CoreV1().PersistentVolumeClaims(env.clusterNS).Delete(ctx, oldPVC.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := k.core.CoreV1().Pods(env.clusterNS).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			k.waitPod(ctx, t, env.clusterNS, victim, 10*time.Minute, "recreated and ready", func(p *corev1.Pod) bool {
				return p.UID != oldPod.UID && podReady(p)
			})
			newPVC, err := k.core.CoreV1().PersistentVolumeClaims(env.clusterNS).Get(ctx, "data-"+victim, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if newPVC.UID == oldPVC.UID {
				t.Fatalf("claim data-%s was not recreated", victim)
			}
			k.waitCluster(ctx, t, env.clusterNS, clusterName, 10*time.Minute, "Available with 3 members", func(s clusterStatus) bool { return s.available(3) })
			fctx, stop = context.WithCancel(ctx)
			defer stop()
			c = k.etcdClient(fctx, t, env.clusterNS, clusterName)
			newIDs := memberIDs(fctx, t, c)
			if len(newIDs) != 3 {
				t.Fatalf("MemberList has %d members, want 3: %v", len(newIDs), newIDs)
			}
			if newIDs[victim] == 0 || newIDs[victim] == oldIDs[victim] {
				t.Errorf("member %s has ID %x, was %x: a member without its data must rejoin as a new member", victim, newIDs[victim], oldIDs[victim])
			}
			// The replacement has the data again, from the others.
			checkAll(fctx, t, c, "before-scale/", 100)
		}},
		{"killing the leader under write load loses no acknowledged write", func(t *testing.T) {
			fctx, stop := context.WithCancel(ctx)
			defer stop()
			c := k.etcdClient(fctx, t, env.clusterNS, clusterName)
			leader := leaderName(fctx, t, c)
			oldPod, err := k.core.CoreV1().Pods(env.clusterNS).Get(ctx, leader, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}

			load := startLoad(fctx, c, 4)
			load.waitAcked(t, 200, time.Minute) // writes flow before the kill
			zero := int64(0)
			if err := k.core.CoreV1().Pods(env.clusterNS).Delete(ctx, leader, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				t.Fatal(err)
			}
			t.Logf("killed leader %s", leader)
			load.waitAckedAfter(t, time.Now(), 200, 3*time.Minute) // a new leader takes writes
			acked := load.stop()

			k.waitPod(ctx, t, env.clusterNS, leader, 10*time.Minute, "recreated and ready", func(p *corev1.Pod) bool {
				return p.UID != oldPod.UID && podReady(p)
			})
			k.waitCluster(ctx, t, env.clusterNS, clusterName, 10*time.Minute, "Available with 3 members", func(s clusterStatus) bool { return s.available(3) })
			rctx, rstop := context.WithCancel(ctx)
			defer rstop()
			rc := k.etcdClient(rctx, t, env.clusterNS, clusterName)
			if newLeader := leaderName(rctx, t, rc); newLeader == "" {
				t.Fatal("no leader after the kill")
			}
			lost := 0
			for key, val := range acked {
				resp, err := get(rctx, rc, key)
				if err != nil {
					t.Fatalf("reading %s: %v", key, err)
				}
				if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != val {
					lost++
					if lost <= 5 {
						t.Errorf("acknowledged write %s=%s reads back as %v", key, val, resp.Kvs)
					}
				}
			}
			if lost > 0 {
				t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
			}
			t.Logf("all %d acknowledged writes survived the leader's death", len(acked))
		}},
		{"helm upgrade keeps the cluster", func(t *testing.T) {
			dep := k.operatorDeployment(ctx, t)
			args := append([]string{"upgrade", env.releaseName, chart, "--namespace", env.operatorNS, "--wait", "--timeout", "5m",
				"--set", "replicaCount=2", "--set", "podAnnotations.e2e/upgraded=yes"}, installValues...)
			helmCmd(t, 6*time.Minute, args...)
			after := k.operatorDeployment(ctx, t)
			if after.Generation == dep.Generation || after.Status.ReadyReplicas != 2 {
				t.Fatalf("operator Deployment generation %d -> %d, ready %d: the upgrade did not roll out 2 replicas", dep.Generation, after.Generation, after.Status.ReadyReplicas)
			}
			// The upgraded operator still reconciles: a spec change is
			// observed and the cluster stays Available.
			patch := []byte(`{"spec":{"podTemplate":{"annotations":{"e2e/after-upgrade":"yes"}}}}`)
			if _, err := k.clusters(env.clusterNS).Patch(ctx, clusterName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			k.waitCluster(ctx, t, env.clusterNS, clusterName, 10*time.Minute, "Available after the upgrade", func(s clusterStatus) bool { return s.available(3) })
			fctx, stop := context.WithCancel(ctx)
			defer stop()
			c := k.etcdClient(fctx, t, env.clusterNS, clusterName)
			checkAll(fctx, t, c, "before-scale/", 100)
		}},
		{"uninstall cleanly", func(t *testing.T) {
			if err := k.clusters(env.clusterNS).Delete(ctx, clusterName, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			k.waitDeleted(ctx, t, etcdClusterGVR, env.clusterNS, clusterName, 5*time.Minute)
			// Everything the operator made is owned by the cluster and goes
			// with it.
			for i := 0; i < 3; i++ {
				k.waitDeleted(ctx, t, podsGVR, env.clusterNS, fmt.Sprintf("%s-%d", clusterName, i), 5*time.Minute)
			}
			for _, o := range []struct {
				gvr  schema.GroupVersionResource
				name string
			}{
				{statefulSetsGVR, clusterName},
				{servicesGVR, clusterName},
				{servicesGVR, clusterName + "-client"},
				{configMapsGVR, clusterName + "-bootstrap"},
				{pdbsGVR, clusterName},
			} {
				k.waitDeleted(ctx, t, o.gvr, env.clusterNS, o.name, 3*time.Minute)
			}
			helmCmd(t, 5*time.Minute, "uninstall", env.releaseName, "--namespace", env.operatorNS, "--wait", "--timeout", "4m")
			k.waitDeleted(ctx, t, deploymentsGVR, env.operatorNS, env.releaseName+"-ballast-operator", 3*time.Minute)
			pods, err := k.core.CoreV1().Pods(env.operatorNS).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil {
					t.Errorf("pod %s/%s left after helm uninstall", p.Namespace, p.Name)
				}
			}
			crbs, err := k.core.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + env.releaseName})
			if err != nil {
				t.Fatal(err)
			}
			if len(crbs.Items) != 0 {
				t.Errorf("%d ClusterRoleBindings left after helm uninstall", len(crbs.Items))
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Logf("stopping: %q failed\n%s", s.name, k.describe(env.clusterNS, clusterName))
			return
		}
	}
}

func (k *kube) operatorDeployment(ctx context.Context, t *testing.T) *appsv1.Deployment {
	t.Helper()
	d, err := k.core.AppsV1().Deployments(env.operatorNS).Get(ctx, env.releaseName+"-ballast-operator", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func put(ctx context.Context, c *clientv3.Client, key, val string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := c.Put(ctx, key, val)
	return err
}

func get(ctx context.Context, c *clientv3.Client, key string) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Get(ctx, key) // linearizable
}

func putAll(ctx context.Context, t *testing.T, c *clientv3.Client, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := put(ctx, c, fmt.Sprintf("%s%04d", prefix, i), fmt.Sprintf("value-%d", i)); err != nil {
			t.Fatalf("put %s%04d: %v", prefix, i, err)
		}
	}
}

// checkAll reads back what putAll wrote, with one linearizable range.
func checkAll(ctx context.Context, t *testing.T, c *clientv3.Client, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("reading %s*: %v", prefix, err)
	}
	if len(resp.Kvs) != n {
		t.Fatalf("%d keys under %s, want %d", len(resp.Kvs), prefix, n)
	}
	for i, kv := range resp.Kvs {
		if want := fmt.Sprintf("value-%d", i); string(kv.Value) != want || string(kv.Key) != fmt.Sprintf("%s%04d", prefix, i) {
			t.Fatalf("%s = %s, want %s%04d = %s", kv.Key, kv.Value, prefix, i, want)
		}
	}
}

// leaderName asks the members who leads and returns that member's name.
func leaderName(ctx context.Context, t *testing.T, c *clientv3.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	members, err := c.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range c.Endpoints() {
		st, err := c.Status(ctx, ep)
		if err != nil || st.Leader == 0 {
			continue
		}
		for _, m := range members.Members {
			if m.ID == st.Leader {
				return m.Name
			}
		}
	}
	t.Fatal("no member reports a leader")
	return ""
}

// load writes unique keys from several goroutines until stopped and keeps
// every write the cluster acknowledged.
type load struct {
	cancel   context.CancelFunc
	progress chan struct{} // signalled after each acknowledgement
	wg       sync.WaitGroup
	mu       sync.Mutex
	acked    map[string]string
	times    []time.Time // when each acknowledgement came
	failed   int
}

func startLoad(ctx context.Context, c *clientv3.Client, writers int) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel, acked: map[string]string{}, progress: make(chan struct{}, 1)}
	for w := 0; w < writers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			// Bounded: at most 20000 writes per writer.
			for i := 0; i < 20000 && ctx.Err() == nil; i++ {
				key, val := fmt.Sprintf("load/%d/%05d", w, i), fmt.Sprintf("v%d-%d", w, i)
				err := put(ctx, c, key, val)
				l.mu.Lock()
				if err == nil {
					l.acked[key] = val
					l.times = append(l.times, time.Now())
				} else if ctx.Err() == nil {
					l.failed++
				}
				l.mu.Unlock()
				if err == nil {
					select {
					case l.progress <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	return l
}

// waitAckedAfter waits until n writes were acknowledged after since,
// woken by each acknowledgement.
func (l *load) waitAckedAfter(t *testing.T, since time.Time, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		count := 0
		for _, at := range l.times {
			if !at.Before(since) {
				count++
			}
		}
		failed := l.failed
		l.mu.Unlock()
		if count >= n {
			return
		}
		select {
		case <-l.progress:
		case <-deadline:
			t.Fatalf("only %d writes acknowledged in %v since %s (%d failed)", count, timeout, since.Format(time.TimeOnly), failed)
		}
	}
}

func (l *load) waitAcked(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	l.waitAckedAfter(t, time.Time{}, n, timeout)
}

func (l *load) stop() map[string]string {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.acked))
	for k, v := range l.acked {
		out[k] = v
	}
	return out
}

// TestKustomizeInstall is the other install path: kubectl apply -k
// config/default. The manifests are rendered by kubectl's kustomize, the
// operator image is pointed at the one loaded into kind, and the result is
// applied, used for a one-member cluster and deleted again.
func TestKustomizeInstall(t *testing.T) {
	kubectl := os.Getenv("KUBECTL")
	if kubectl == "" {
		t.Fatal("KUBECTL is not set; run make e2e")
	}
	if _, err := os.Stat("../config/default/kustomization.yaml"); err != nil {
		t.Fatalf("config/default is not a kustomization (%v): `kubectl apply -k config/default` cannot work", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	k := newKube(t)
	kenv := []string{"KUBECONFIG=" + env.kubeconfig}

	var rendered bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", "../config/default")
	cmd.Stdout, cmd.Stderr = &rendered, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize config/default: %v", err)
	}
	manifest, deployments := pointAtLoadedImage(t, rendered.Bytes())
	if len(deployments) != 1 {
		t.Fatalf("config/default has %d Deployments, want the operator's one: %v", len(deployments), deployments)
	}
	file := filepath.Join(t.TempDir(), "install.yaml")
	if err := os.WriteFile(file, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := command(5*time.Minute, kenv, kubectl, "apply", "--server-side", "--force-conflicts", "-f", file); err != nil {
		t.Fatal(err)
	}
	ns, name := deployments[0][0], deployments[0][1]
	k.waitDeploymentAvailable(ctx, t, ns, name, 5*time.Minute)

	const small = "kustomize"
	k.ensureNamespace(ctx, t, env.clusterNS)
	// This install's operator defaults members to ghcr.io/ballastdb/ballast,
	// which cannot be pulled here: name the loaded image.
	k.createCluster(ctx, t, env.clusterNS, small, 1, env.image)
	k.waitCluster(ctx, t, env.clusterNS, small, 10*time.Minute, "Available with 1 member", func(s clusterStatus) bool { return s.available(1) })
	fctx, stop := context.WithCancel(ctx)
	c := k.etcdClient(fctx, t, env.clusterNS, small)
	putAll(fctx, t, c, "kustomize/", 10)
	checkAll(fctx, t, c, "kustomize/", 10)
	stop()

	if err := k.clusters(env.clusterNS).Delete(ctx, small, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	k.waitDeleted(ctx, t, etcdClusterGVR, env.clusterNS, small, 5*time.Minute)
	k.waitDeleted(ctx, t, podsGVR, env.clusterNS, small+"-0", 5*time.Minute)
	if err := command(5*time.Minute, kenv, kubectl, "delete", "--wait", "-f", file); err != nil {
		t.Fatal(err)
	}
	k.waitDeleted(ctx, t, deploymentsGVR, ns, name, 3*time.Minute)
}

// pointAtLoadedImage sets every Deployment container's image to the one
// loaded into kind (never pulled) and returns the manifest and the
// Deployments' namespace and name.
func pointAtLoadedImage(t *testing.T, manifest []byte) ([]byte, [][2]string) {
	t.Helper()
	var out bytes.Buffer
	var deployments [][2]string
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetKind() == "Deployment" {
			deployments = append(deployments, [2]string{u.GetNamespace(), u.GetName()})
			containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
			for i := range containers {
				c := containers[i].(map[string]any)
				c["image"] = env.image
				c["imagePullPolicy"] = "Never"
			}
			if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
				t.Fatal(err)
			}
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.Bytes(), deployments
}

// waitDeploymentAvailable watches a Deployment until all its replicas are
// updated and available.
func (k *kube) waitDeploymentAvailable(ctx context.Context, t *testing.T, ns, name string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lw := namedListWatch(name, k.core.AppsV1().Deployments(ns).List, k.core.AppsV1().Deployments(ns).Watch)
	_, err := watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, nil, func(ev watch.Event) (bool, error) {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok || ev.Type == watch.Deleted || d.Spec.Replicas == nil {
			return false, nil
		}
		return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == *d.Spec.Replicas &&
			d.Status.AvailableReplicas == *d.Spec.Replicas, nil
	})
	if err != nil {
		t.Fatalf("Deployment %s/%s not available within %v: %v\n%s", ns, name, timeout, err, k.describe(ns, ""))
	}
}
