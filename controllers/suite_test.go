package controllers_test

// The controller tests run the operator against a real kube-apiserver
// v1.36 (controller-runtime's envtest) whose storage is a `ballast node`
// started as envtest's etcd. There is no kubelet and no
// kube-controller-manager: package kubesim plays the StatefulSet
// controller and the kubelet, and every member is a real `ballast node`
// process on loopback ports.
//
// Binaries: BALLAST_BIN, KUBE_APISERVER and KUBECTL, else bin/ballast,
// bin/kube-apiserver and bin/kubectl (make operator-test builds them), or a
// ready KUBEBUILDER_ASSETS directory.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/go-logr/zapr"

	"github.com/ballastdb/ballast/api/v1alpha1"
	"github.com/ballastdb/ballast/controllers/internal/kubesim"
	"github.com/ballastdb/ballast/controllers/member"
	"github.com/ballastdb/ballast/controllers/operator"
)

var (
	restConfig *rest.Config
	kubeconfig string // file, for kubectl
	etcdURL    string // kube-apiserver's storage: a ballast node
	// operatorConfig is the operator's identity: config/default's
	// ServiceAccount, bound to the generated role.
	operatorConfig *rest.Config
	kubectlBin     string
	ballastBin     string
	k8s            client.WithWatch
)

func TestMain(m *testing.M) {
	flag.Parse()
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "controller test setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	root, err := repoRoot()
	if err != nil {
		return 0, err
	}
	ballastBin = envOr("BALLAST_BIN", filepath.Join(root, "bin", "ballast"))
	kubectlBin = envOr("KUBECTL", filepath.Join(root, "bin", "kubectl"))
	apiserver := envOr("KUBE_APISERVER", filepath.Join(root, "bin", "kube-apiserver"))
	for _, b := range []string{ballastBin, kubectlBin, apiserver} {
		if _, err := os.Stat(b); err != nil {
			return 0, fmt.Errorf("%v: run `make operator-test` (or make build and hack/kube/build.sh)", err)
		}
	}
	tmp, err := os.MkdirTemp("", "ballast-operator-test")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(tmp, "assets")
		if err := envtestAssets(assets, apiserver, kubectlBin, ballastBin); err != nil {
			return 0, err
		}
	}

	// Controller-runtime's own log (envtest, managers) goes to stderr
	// only with -v.
	lg := zap.NewNop()
	if testing.Verbose() || os.Getenv("OPERATOR_TEST_LOG") != "" {
		cfg := zap.NewDevelopmentConfig()
		cfg.Level = zap.NewAtomicLevelAt(zapcore.InfoLevel)
		cfg.DisableStacktrace = true
		lg, _ = cfg.Build()
	}
	ctrl.SetLogger(zapr.NewLogger(lg))
	klog.SetLogger(zapr.NewLogger(lg)) // client-go's leader election logs through klog

	env := &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		AttachControlPlaneOutput: os.Getenv("OPERATOR_TEST_CONTROL_PLANE_LOG") != "",
	}
	if a := os.Getenv("OPERATOR_TEST_ARTIFACTS"); a != "" {
		// kube-apiserver's storage member logs there, to read after a
		// failure.
		if err := os.MkdirAll(a, 0o755); err != nil {
			return 0, err
		}
		f, err := os.Create(filepath.Join(a, "envtest-etcd.log"))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		env.ControlPlane.Etcd = &envtest.Etcd{Out: f, Err: f}
	}
	start := time.Now()
	restConfig, err = env.Start()
	if err != nil {
		return 0, fmt.Errorf("starting kube-apiserver on ballast (envtest): %w", err)
	}
	defer func() { _ = env.Stop() }()
	fmt.Fprintf(os.Stderr, "envtest: kube-apiserver on ballast ready in %v\n", time.Since(start).Round(time.Millisecond))
	restConfig.QPS, restConfig.Burst = 200, 400

	etcdURL = env.ControlPlane.Etcd.URL.String()
	kubeconfig = filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return 0, err
	}
	k8s, err = client.NewWithWatch(restConfig, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		return 0, err
	}

	// Install the operator's manifests as a user would (kubectl apply -k
	// config/default), and run every operator in the tests as its
	// ServiceAccount: the generated RBAC role must allow all it does.
	rendered, err := exec.Command(kubectlBin, "kustomize", filepath.Join(root, "config", "default")).Output()
	if err != nil {
		return 0, fmt.Errorf("kubectl kustomize config/default: %w", err)
	}
	apply := exec.Command(kubectlBin, "--kubeconfig", kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", "-")
	apply.Stdin = strings.NewReader(string(rendered))
	if out, err := apply.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("kubectl apply of config/default: %v\n%s", err, out)
	}
	operatorConfig = rest.CopyConfig(restConfig)
	operatorConfig.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + operatorNamespace + ":ballast-controller-manager",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNamespace, "system:authenticated"},
	}
	return m.Run(), nil
}

// envtestAssets lays out what envtest runs: kube-apiserver, kubectl, and
// etcd — the ballast binary, which acts as `ballast node` when invoked as
// etcd. A binary without that dispatch gets a two-line wrapper instead.
func envtestAssets(dir, apiserver, kubectl, ballast string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, target := range map[string]string{"kube-apiserver": apiserver, "kubectl": kubectl, "etcd": ballast} {
		abs, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	etcd := filepath.Join(dir, "etcd")
	out, _ := exec.Command(etcd, "--version").CombinedOutput()
	if strings.Contains(string(out), "Ballast Version") {
		return nil
	}
	abs, _ := filepath.Abs(ballast)
	fmt.Fprintf(os.Stderr, "envtest: %s does not act as etcd under that name yet; using a wrapper script\n", ballast)
	if err := os.Remove(etcd); err != nil {
		return err
	}
	return os.WriteFile(etcd, []byte("#!/bin/sh\nexec '"+abs+"' node \"$@\"\n"), 0o755)
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// operatorNamespace is where config/default installs the operator.
const operatorNamespace = "ballast-system"

// testEnv is one test's namespace with its simulator and operator.
type testEnv struct {
	t    *testing.T
	ns   string
	urls *kubesim.Loopback
	sim  *kubesim.Sim
	op   *runningOperator
}

// newTestEnv creates a namespace and starts the simulator in it.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	ns := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(ns) > 40 {
		ns = ns[:40]
	}
	ns = strings.Trim(ns, "-") + "-" + fmt.Sprint(time.Now().UnixNano()%100000)
	ctx := context.Background()
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, ns: ns, urls: kubesim.NewLoopback()}
	// Member data and logs; kept under $OPERATOR_TEST_ARTIFACTS/<namespace>
	// when that is set, to read after a failure.
	dir := t.TempDir()
	if a := os.Getenv("OPERATOR_TEST_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, ns)
		t.Logf("member data and logs: %s", dir)
	}
	var err error
	e.sim, err = kubesim.Start(restConfig, kubesim.Options{
		Namespace: ns,
		Ballast:   ballastBin,
		URLs:      e.urls,
		Dir:       dir,
		// The tests are about membership, not durability: skipping
		// fsync keeps the shared disk out of the timings.
		ExtraEnv: []string{"ETCD_UNSAFE_NO_FSYNC=true", "ETCD_LOG_LEVEL=info"},
		Logf: func(format string, args ...any) {
			t.Logf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.sim.Stop)
	t.Cleanup(func() {
		// On failure (or with OPERATOR_TEST_EVENTS set), the cluster's
		// story: every event, in order.
		if !t.Failed() && os.Getenv("OPERATOR_TEST_EVENTS") == "" {
			return
		}
		list := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return
		}
		sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].EventTime.Before(&list.Items[j].EventTime) })
		for _, ev := range list.Items {
			related, series := "", ""
			if ev.Related != nil {
				related = " (" + ev.Related.Name + ")"
			}
			if ev.Series != nil {
				series = fmt.Sprintf(" [%d times, last %s]", ev.Series.Count, ev.Series.LastObservedTime.Format("15:04:05.000"))
			}
			t.Logf("event %s %s %s/%s%s: %s%s", ev.EventTime.Format("15:04:05.000"), ev.Type, ev.Regarding.Name, ev.Reason, related, ev.Note, series)
		}
	})
	return e
}

// runningOperator is one manager running the reconciler.
type runningOperator struct {
	cancel  context.CancelFunc
	done    chan error
	stopped sync.Once
}

// startOperator runs a manager for the test's namespace; members are
// reached through factory (default: real clients).
func (e *testEnv) startOperator(factory member.Factory, metricsAddr string) *runningOperator {
	e.t.Helper()
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	mgr, err := operator.NewManager(operatorConfig, operator.Options{
		MetricsBindAddress:     metricsAddr,
		HealthProbeBindAddress: "0",
		// As deployed: with leader election, in the operator's namespace
		// (released on stop, so a restarted operator takes over at once).
		LeaderElect:             true,
		LeaderElectionID:        "ballast-operator-" + e.ns,
		LeaderElectionNamespace: operatorNamespace,
		WatchNamespaces:         []string{e.ns},
		URLs:                    e.urls,
		Members:                 factory,
		ControllerName:          fmt.Sprintf("etcdcluster-%s-%d", e.ns, time.Now().UnixNano()%1000000),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	op := &runningOperator{cancel: cancel, done: make(chan error, 1)}
	go func() { op.done <- mgr.Start(ctx) }()
	e.t.Cleanup(func() { op.stop(e.t) })
	e.op = op
	return op
}

// stop stops the manager and waits (bounded) for it to return.
func (o *runningOperator) stop(t *testing.T) {
	o.stopped.Do(func() {
		o.cancel()
		select {
		case err := <-o.done:
			if err != nil {
				t.Errorf("operator manager returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("operator manager did not stop within 30s")
		}
	})
}

// crashed reports whether the manager returned on its own.
func (o *runningOperator) crashed() error {
	select {
	case err := <-o.done:
		if err == nil {
			err = fmt.Errorf("manager returned without error")
		}
		return err
	default:
		return nil
	}
}

func (e *testEnv) cluster(name string) *v1alpha1.EtcdCluster {
	return &v1alpha1.EtcdCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}}
}

func (e *testEnv) get(name string) *v1alpha1.EtcdCluster {
	e.t.Helper()
	c := &v1alpha1.EtcdCluster{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// waitFor re-evaluates check whenever an object of list's kind changes in
// the namespace (a watch, not a sleep), until check says done or timeout
// passes. check returns done and a description of what it saw.
func (e *testEnv) waitFor(t *testing.T, what string, timeout time.Duration, list client.ObjectList, check func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	last := ""
	for {
		w, err := k8s.Watch(ctx, list, client.InNamespace(e.ns))
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: timed out after %v; last seen: %s", what, timeout, last)
			}
			t.Fatalf("watch: %v", err)
		}
		if done, desc := check(); done {
			w.Stop()
			t.Logf("%s after %v", what, time.Since(start).Round(10*time.Millisecond))
			return
		} else {
			last = desc
		}
		expired := false
		for !expired {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					expired = true // watch closed by the server: re-open
					break
				}
				if ev.Type == watch.Error {
					expired = true
					break
				}
				if done, desc := check(); done {
					w.Stop()
					t.Logf("%s after %v", what, time.Since(start).Round(10*time.Millisecond))
					return
				} else {
					last = desc
				}
			case <-ctx.Done():
				w.Stop()
				t.Fatalf("waiting for %s: timed out after %v; last seen: %s", what, timeout, last)
			}
		}
		w.Stop()
	}
}

// waitCluster waits for a condition on the cluster object.
func (e *testEnv) waitCluster(t *testing.T, name, what string, timeout time.Duration, check func(c *v1alpha1.EtcdCluster) (bool, string)) *v1alpha1.EtcdCluster {
	t.Helper()
	var got *v1alpha1.EtcdCluster
	e.waitFor(t, what, timeout, &v1alpha1.EtcdClusterList{}, func() (bool, string) {
		c := &v1alpha1.EtcdCluster{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, c); err != nil {
			return false, err.Error()
		}
		got = c
		return check(c)
	})
	return got
}

// events returns the events about cluster name with reason.
func (e *testEnv) events(t *testing.T, name, reason string) []eventsv1.Event {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, ev := range list.Items {
		if ev.Regarding.Name == name && ev.Regarding.Kind == "EtcdCluster" && ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

// relatedNames are the sorted names of the events' related objects (the
// member pods of membership events).
func relatedNames(evs []eventsv1.Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Related != nil {
			out = append(out, ev.Related.Name)
		} else {
			out = append(out, "(none)")
		}
	}
	sort.Strings(out)
	return out
}

// waitEvent waits for an event about cluster name with reason.
func (e *testEnv) waitEvent(t *testing.T, name, reason string, timeout time.Duration) eventsv1.Event {
	t.Helper()
	var got eventsv1.Event
	e.waitFor(t, "event "+reason, timeout, &eventsv1.EventList{}, func() (bool, string) {
		evs := e.events(t, name, reason)
		if len(evs) == 0 {
			return false, "no " + reason + " event"
		}
		got = evs[len(evs)-1]
		return true, ""
	})
	return got
}

// summary describes a cluster's status for failure messages.
func summary(c *v1alpha1.EtcdCluster) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s ready=%d leader=%s members=[", c.Status.Phase, c.Status.ReadyMembers, c.Status.Leader)
	for _, m := range c.Status.Members {
		fmt.Fprintf(&b, " %s/%s learner=%v healthy=%v", m.Name, m.ID, m.Learner, m.Healthy)
	}
	b.WriteString(" ] conditions=[")
	for _, cond := range c.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s(%s: %s)", cond.Type, cond.Status, cond.Reason, cond.Message)
	}
	b.WriteString(" ]")
	return b.String()
}

func condition(c *v1alpha1.EtcdCluster, t string) metav1.Condition {
	for _, cond := range c.Status.Conditions {
		if cond.Type == t {
			return cond
		}
	}
	return metav1.Condition{}
}

// settled: n healthy voters, no learner, all pods ready, and the
// operator says it has nothing left to do for the current generation.
func settled(n int) func(c *v1alpha1.EtcdCluster) (bool, string) {
	return func(c *v1alpha1.EtcdCluster) (bool, string) {
		ok := c.Status.ObservedGeneration == c.Generation &&
			len(c.Status.Members) == n &&
			int(c.Status.ReadyMembers) == n &&
			c.Status.Phase == v1alpha1.PhaseRunning &&
			condition(c, v1alpha1.ConditionProgressing).Status == metav1.ConditionFalse
		for _, m := range c.Status.Members {
			ok = ok && !m.Learner && m.Healthy && m.Name != ""
		}
		return ok, summary(c)
	}
}
