package kube

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ballastdb/ballast/hack/kube/kubetest"
)

const (
	namespace  = "ballast-kube-test"
	numConfigs = 300
	pageSize   = 50
	numWidgets = 30
	// compactionInterval is kube-apiserver's --etcd-compaction-interval. Its
	// compactor writes compact_rev_key on the first tick and compacts to the
	// revision it saw then on the second, so the first compaction lands about
	// two intervals after start-up.
	compactionInterval = 10 * time.Second
)

var widgetGVR = schema.GroupVersionResource{Group: "ballast.example.com", Version: "v1", Resource: "widgets"}

// env is the running servers plus the clients the steps use.
type env struct {
	*kubetest.Env
	cs  *kubernetes.Clientset
	dyn *dynamic.DynamicClient
	ext *apiextensionsclient.Clientset

	// The Event testStoredInBallast creates, with its lease.
	eventRV    string
	eventLease clientv3.LeaseID
}

// TestKubeAPIServer runs kube-apiserver on a single Ballast member and drives
// it with client-go the way controllers do. The subtests share the servers
// and run in order; each states what it shows about Ballast.
func TestKubeAPIServer(t *testing.T) {
	start := time.Now()
	e := startEnv(t)
	t.Logf("ballast and kube-apiserver ready after %v", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	steps := []struct {
		name string
		fn   func(*testing.T, context.Context, *env)
	}{
		{"create", testCreate},
		{"paginate", testPaginate},
		{"watch", testWatch},
		{"informer", testInformer},
		{"optimistic-concurrency", testOptimisticConcurrency},
		{"stored-in-ballast", testStoredInBallast},
		{"lease-expiry", testLeaseExpiry},
		{"crd", testCRD},
		{"kubectl", testKubectl},
		{"compaction", testCompaction},
		{"metrics", testMetrics},
		{"apiserver-log", testAPIServerLog},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { s.fn(t, ctx, e) })
	}
	if t.Failed() {
		t.Logf("%s log tail:\n%s\nkube-apiserver log tail:\n%s", e.Backend, e.Storage.Tail(30), e.APIServer.Tail(60))
		t.Logf("full logs: %s, %s (set KUBE_TEST_ARTIFACTS=<dir> to keep them)", e.Storage.LogPath, e.APIServer.LogPath)
	}
}

// startEnv starts the servers (kubetest) and the clients.
func startEnv(t *testing.T) *env {
	t.Helper()
	e := &env{Env: kubetest.Start(t, kubetest.Options{
		CompactionInterval: compactionInterval,
		APIServerArgs: []string{
			// ConfigMaps bypass the watch cache so that their lists,
			// watches and pagination go straight to Ballast; everything
			// else (CRDs, custom resources, RBAC, ...) is served by the
			// watch cache, which relies on Ballast's watch progress
			// notifications.
			"--watch-cache-sizes=configmaps#0",
			"--etcd-db-metric-poll-interval=5s",
			"--etcd-count-metric-poll-period=5s",
			// Events get a 5s lease (kube-apiserver adds no reuse
			// margin to TTLs this short), so testLeaseExpiry sees one
			// expire.
			"--event-ttl=5s",
		},
	})}
	var err error
	if e.cs, err = kubernetes.NewForConfig(e.Rest); err != nil {
		t.Fatal(err)
	}
	if e.dyn, err = dynamic.NewForConfig(e.Rest); err != nil {
		t.Fatal(err)
	}
	if e.ext, err = apiextensionsclient.NewForConfig(e.Rest); err != nil {
		t.Fatal(err)
	}
	return e
}

func cmName(i int) string { return fmt.Sprintf("cm-%03d", i) }

// testCreate creates the namespace and numConfigs ConfigMaps (8 at a time).
func testCreate(t *testing.T, ctx context.Context, e *env) {
	start := time.Now()
	_, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	const workers = 8
	next := make(chan int)
	errs := make(chan error, numConfigs)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cm := &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: cmName(i), Labels: map[string]string{"set": "bulk"}},
					Data:       map[string]string{"i": strconv.Itoa(i)},
				}
				if _, err := e.cs.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("create %s: %w", cm.Name, err)
				}
			}
		}()
	}
	for i := 0; i < numConfigs; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("created %d ConfigMaps in %v", numConfigs, time.Since(start).Round(time.Millisecond))
}

// testPaginate lists the ConfigMaps pageSize at a time. Every page after the
// first is a Range at the first page's revision (from the continue token), so
// writes made between pages must not show up, and remainingItemCount comes
// from the Range's count.
func testPaginate(t *testing.T, ctx context.Context, e *env) {
	cms := e.cs.CoreV1().ConfigMaps(namespace)
	// No selector: kube-apiserver reports remainingItemCount (from the
	// Range's count) only for unfiltered lists. The namespace holds exactly
	// the bulk ConfigMaps at this point.
	opts := metav1.ListOptions{Limit: pageSize}
	var names []string
	var listRV string
	const maxPages = numConfigs/pageSize + 2
	for page := 0; ; page++ {
		if page >= maxPages {
			t.Fatalf("more than %d pages", maxPages)
		}
		l, err := cms.List(ctx, opts)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if page == 0 {
			listRV = l.ResourceVersion
			// Writes after the first page: a new item that sorts into a
			// later page and a change to an item on the last page.
			extra := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-250a", Labels: map[string]string{"set": "bulk"}}}
			if _, err := cms.Create(ctx, extra, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			last, err := cms.Get(ctx, cmName(numConfigs-1), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			last.Data["changed"] = "after-first-page"
			if _, err := cms.Update(ctx, last, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		} else if l.ResourceVersion != listRV {
			t.Errorf("page %d has resourceVersion %s, first page %s", page, l.ResourceVersion, listRV)
		}
		if len(l.Items) > pageSize {
			t.Errorf("page %d has %d items, limit %d", page, len(l.Items), pageSize)
		}
		for i := range l.Items {
			names = append(names, l.Items[i].Name)
			if l.Items[i].Name == cmName(numConfigs-1) && l.Items[i].Data["changed"] != "" {
				t.Errorf("page %d shows %s as updated after the list's revision", page, l.Items[i].Name)
			}
		}
		wantRemaining := int64(numConfigs - len(names))
		if l.Continue != "" {
			if l.RemainingItemCount == nil || *l.RemainingItemCount != wantRemaining {
				t.Errorf("page %d: remainingItemCount %v, want %d", page, ptrStr(l.RemainingItemCount), wantRemaining)
			}
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if len(names) != numConfigs {
		t.Errorf("paginated list returned %d items, want %d", len(names), numConfigs)
	}
	for i, n := range names {
		if i < numConfigs && n != cmName(i) {
			t.Errorf("item %d is %s, want %s (keys out of order or missing)", i, n, cmName(i))
			break
		}
	}

	// The same revision again, as an exact-revision list, then the
	// current state, which includes the writes.
	l, err := cms.List(ctx, metav1.ListOptions{ResourceVersion: listRV, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if err != nil {
		t.Fatalf("list at resourceVersion %s: %v", listRV, err)
	}
	if len(l.Items) != numConfigs {
		t.Errorf("exact list at %s: %d items, want %d", listRV, len(l.Items), numConfigs)
	}
	l, err = cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != numConfigs+1 {
		t.Errorf("current list: %d items, want %d", len(l.Items), numConfigs+1)
	}
	if err := cms.Delete(ctx, "cm-250a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func ptrStr(p *int64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatInt(*p, 10)
}

type seenEvent struct {
	typ  watch.EventType
	rv   int64
	data string
}

// testWatch watches one ConfigMap from a resourceVersion while it is created,
// updated twice and deleted, then watches again from the same
// resourceVersion: the second watch starts in Ballast's history and must
// replay the same events with the same revisions.
func testWatch(t *testing.T, ctx context.Context, e *env) {
	cms := e.cs.CoreV1().ConfigMaps(namespace)
	l, err := cms.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	rv0 := l.ResourceVersion
	opts := metav1.ListOptions{ResourceVersion: rv0, FieldSelector: "metadata.name=watched"}
	live, err := cms.Watch(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Stop()

	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched"}, Data: map[string]string{"step": "0"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 2; step++ {
		cm.Data["step"] = strconv.Itoa(step)
		if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cms.Delete(ctx, "watched", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []watch.EventType{watch.Added, watch.Modified, watch.Modified, watch.Deleted}
	got := collect(t, live, len(want))
	checkSequence(t, "live watch", got, want)

	replay, err := cms.Watch(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Stop()
	again := collect(t, replay, len(want))
	checkSequence(t, "replayed watch", again, want)
	if fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("replayed watch differs from the live one:\n live   %v\n replay %v", got, again)
	}
}

// testInformer runs a ConfigMap informer, as a controller would. client-go
// v0.36 opens it with a streaming watch-list (sendInitialEvents=true); as
// ConfigMaps are not cached, kube-apiserver serves that from Ballast: a
// Range for the current revision, a paginated Range for the initial
// events, then a Watch from that revision.
func testInformer(t *testing.T, ctx context.Context, e *env) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	factory := informers.NewSharedInformerFactoryWithOptions(e.cs, 0, informers.WithNamespace(namespace))
	inf := factory.Core().V1().ConfigMaps().Informer()
	added := make(chan string, numConfigs+10)
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				added <- cm.Name
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() {
		cancel() // Shutdown waits for the informers, which run until this
		factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("ConfigMap informer did not sync within a minute")
	}
	if n := len(inf.GetStore().List()); n != numConfigs {
		t.Errorf("informer holds %d ConfigMaps, want %d", n, numConfigs)
	}
	cms := e.cs.CoreV1().ConfigMaps(namespace)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "informer-probe"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cms.Delete(context.Background(), "informer-probe", metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
	}()
	for {
		select {
		case name := <-added:
			if name == "informer-probe" {
				return
			}
		case <-ctx.Done():
			t.Fatal("informer did not see informer-probe being added")
		}
	}
}

// collect reads n events or fails after 30s.
func collect(t *testing.T, w watch.Interface, n int) []seenEvent {
	t.Helper()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	var out []seenEvent
	for len(out) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %d of %d events: %v", len(out), n, out)
			}
			if ev.Type == watch.Error {
				t.Fatalf("watch error event: %v", apierrors.FromObject(ev.Object))
			}
			if ev.Type == watch.Bookmark {
				continue
			}
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok {
				t.Fatalf("unexpected object %T", ev.Object)
			}
			rv, err := strconv.ParseInt(cm.ResourceVersion, 10, 64)
			if err != nil {
				t.Fatalf("resourceVersion %q: %v", cm.ResourceVersion, err)
			}
			out = append(out, seenEvent{typ: ev.Type, rv: rv, data: cm.Data["step"]})
		case <-timer.C:
			t.Fatalf("got %d of %d watch events within 30s: %v", len(out), n, out)
		}
	}
	return out
}

func checkSequence(t *testing.T, what string, got []seenEvent, want []watch.EventType) {
	t.Helper()
	wantData := []string{"0", "1", "2", "2"}
	for i := range got {
		if got[i].typ != want[i] || got[i].data != wantData[i] {
			t.Errorf("%s event %d: %s step=%s, want %s step=%s", what, i, got[i].typ, got[i].data, want[i], wantData[i])
		}
		if i > 0 && got[i].rv <= got[i-1].rv {
			t.Errorf("%s: resourceVersions not increasing: %v", what, got)
		}
	}
}

// testOptimisticConcurrency: updates and deletes carry the resourceVersion
// they read, which kube-apiserver turns into a Txn comparing the key's
// mod_revision; a stale one must fail with 409 Conflict. Creating an
// existing name (create_revision = 0 compare) must fail with AlreadyExists.
func testOptimisticConcurrency(t *testing.T, ctx context.Context, e *env) {
	cms := e.cs.CoreV1().ConfigMaps(namespace)
	stale, err := cms.Get(ctx, cmName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fresh := stale.DeepCopy()
	fresh.Data["writer"] = "first"
	fresh, err = cms.Update(ctx, fresh, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.ResourceVersion == stale.ResourceVersion {
		t.Fatalf("update kept resourceVersion %s", fresh.ResourceVersion)
	}
	lost := stale.DeepCopy()
	lost.Data["writer"] = "second"
	if _, err := cms.Update(ctx, lost, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("update with stale resourceVersion %s: got %v, want Conflict", stale.ResourceVersion, err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cmName(0)}}, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("create of existing %s: got %v, want AlreadyExists", cmName(0), err)
	}
	staleRV := stale.ResourceVersion
	err = cms.Delete(ctx, cmName(0), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &staleRV}})
	if !apierrors.IsConflict(err) {
		t.Errorf("delete with stale resourceVersion: got %v, want Conflict", err)
	}
	got, err := cms.Get(ctx, cmName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["writer"] != "first" || got.ResourceVersion != fresh.ResourceVersion {
		t.Errorf("after the conflicts: writer=%q rv=%s, want first, %s", got.Data["writer"], got.ResourceVersion, fresh.ResourceVersion)
	}
}

// testStoredInBallast reads the objects straight from Ballast: kube-apiserver
// keeps ConfigMaps under /registry/configmaps/<namespace>/<name>, and their
// mod_revision is the resourceVersion it reports.
func testStoredInBallast(t *testing.T, ctx context.Context, e *env) {
	prefix := "/registry/configmaps/" + namespace + "/"
	resp, err := e.Etcd.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != numConfigs {
		t.Errorf("%d keys under %s in Ballast, want %d", resp.Count, prefix, numConfigs)
	}
	kv, err := e.Etcd.Get(ctx, prefix+cmName(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(kv.Kvs) != 1 {
		t.Fatalf("%s not in Ballast", prefix+cmName(0))
	}
	cm, err := e.cs.CoreV1().ConfigMaps(namespace).Get(ctx, cmName(0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strconv.FormatInt(kv.Kvs[0].ModRevision, 10); got != cm.ResourceVersion {
		t.Errorf("mod_revision %s in Ballast, resourceVersion %s from kube-apiserver", got, cm.ResourceVersion)
	}

	// Objects with a TTL are attached to Ballast leases: Events (--event-ttl)
	// and the endpoint reconciler's master lease (15s TTL, refreshed every
	// 10s).
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "ttl-probe"},
		InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", Namespace: namespace, Name: cmName(0), APIVersion: "v1"},
		Reason:         "Probe",
		Message:        "an event stored with a lease",
		Type:           corev1.EventTypeNormal,
	}
	created, err := e.cs.CoreV1().Events(namespace).Create(ctx, ev, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.eventRV = created.ResourceVersion
	for _, c := range []struct {
		key    string
		maxTTL int64
	}{
		{"/registry/events/" + namespace + "/ttl-probe", 5},
		{"/registry/masterleases/192.0.2.1", 15},
	} {
		resp, err := e.Etcd.Get(ctx, c.key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
			t.Errorf("%s: %d kvs, want one attached to a lease", c.key, len(resp.Kvs))
			continue
		}
		ttl, err := e.Etcd.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease), clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatalf("TimeToLive of %s's lease: %v", c.key, err)
		}
		attached := false
		for _, k := range ttl.Keys {
			attached = attached || string(k) == c.key
		}
		if strings.HasPrefix(c.key, "/registry/events/") {
			e.eventLease = clientv3.LeaseID(resp.Kvs[0].Lease)
		}
		if ttl.TTL <= 0 || ttl.TTL > c.maxTTL || !attached {
			t.Errorf("%s: lease %x has TTL %ds (granted %ds), key attached %v; want 0 < TTL <= %d and attached",
				c.key, resp.Kvs[0].Lease, ttl.TTL, ttl.GrantedTTL, attached, c.maxTTL)
		}
	}
}

// testLeaseExpiry waits for the Event's 5s lease to expire in Ballast: the
// revoke deletes the key, which kube-apiserver's watch (through its watch
// cache) delivers as DELETED.
func testLeaseExpiry(t *testing.T, ctx context.Context, e *env) {
	if e.eventRV == "" || e.eventLease == 0 {
		t.Skip("stored-in-ballast did not record the Event")
	}
	w, err := e.cs.CoreV1().Events(namespace).Watch(ctx, metav1.ListOptions{
		ResourceVersion: e.eventRV,
		FieldSelector:   "metadata.name=ttl-probe",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for deleted := false; !deleted; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("event watch closed before the DELETED event")
			}
			if ev.Type == watch.Error {
				t.Fatalf("event watch: %v", apierrors.FromObject(ev.Object))
			}
			deleted = ev.Type == watch.Deleted
		case <-timer.C:
			t.Fatal("the Event was not deleted within 30s of its 5s lease")
		}
	}
	resp, err := e.Etcd.Get(ctx, "/registry/events/"+namespace+"/ttl-probe")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Errorf("the Event's key is still in Ballast")
	}
	ttl, err := e.Etcd.TimeToLive(ctx, e.eventLease)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL != -1 {
		t.Errorf("lease %x after expiry: TTL %d, want -1 (not found)", e.eventLease, ttl.TTL)
	}
}

// testCRD registers a CustomResourceDefinition, waits for it to be
// Established, stores numWidgets custom resources and reads them back through
// the watch cache: paginated lists, a dynamic informer (list+watch) and the
// raw keys in Ballast.
func testCRD(t *testing.T, ctx context.Context, e *env) {
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: widgetGVR.Resource + "." + widgetGVR.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: widgetGVR.Group,
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"size": {Type: "integer"},
						}},
						"status": {Type: "object", XPreserveUnknownFields: ptrTo(true)},
					},
				}},
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}
	crds := e.ext.ApiextensionsV1().CustomResourceDefinitions()
	created, err := crds.Create(ctx, crd, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create CRD: %v", err)
	}
	start := time.Now()
	waitEstablished(t, ctx, e, created)
	t.Logf("CRD established after %v", time.Since(start).Round(time.Millisecond))

	widgets := e.dyn.Resource(widgetGVR).Namespace(namespace)
	newWidget := func(i int) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": widgetGVR.GroupVersion().String(),
			"kind":       "Widget",
			"metadata":   map[string]any{"name": fmt.Sprintf("w-%03d", i)},
			"spec":       map[string]any{"size": int64(i)},
		}}
	}
	// Established is set once the CRD's names are accepted; the handler
	// for the new resource can lag it by a moment, which shows as 404.
	if err := retryNotFound(ctx, func() error {
		_, err := widgets.Create(ctx, newWidget(0), metav1.CreateOptions{})
		return err
	}); err != nil {
		t.Fatalf("create first widget: %v", err)
	}
	for i := 1; i < numWidgets; i++ {
		if _, err := widgets.Create(ctx, newWidget(i), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create widget %d: %v", i, err)
		}
	}

	t.Logf("%d widgets created after %v", numWidgets, time.Since(start).Round(time.Millisecond))

	// Consistent (resourceVersion="") paginated list from the watch cache:
	// kube-apiserver asks Ballast for a watch progress notification to
	// learn that its cache is current.
	var names []string
	opts := metav1.ListOptions{Limit: 10}
	for page := 0; ; page++ {
		if page > numWidgets/10+1 {
			t.Fatalf("too many pages")
		}
		l, err := widgets.List(ctx, opts)
		if err != nil {
			t.Fatalf("list widgets page %d: %v", page, err)
		}
		for _, it := range l.Items {
			names = append(names, it.GetName())
		}
		if l.GetContinue() == "" {
			break
		}
		opts.Continue = l.GetContinue()
	}
	if len(names) != numWidgets || !sort.StringsAreSorted(names) {
		t.Errorf("widgets listed: %d (sorted %v), want %d", len(names), sort.StringsAreSorted(names), numWidgets)
	}

	// Status subresource update, then the stored object in Ballast.
	w, err := widgets.Get(ctx, "w-000", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(w.Object, "ready", "status", "phase"); err != nil {
		t.Fatal(err)
	}
	if _, err := widgets.UpdateStatus(ctx, w, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status: %v", err)
	}
	key := "/registry/" + widgetGVR.Group + "/" + widgetGVR.Resource + "/" + namespace + "/w-000"
	resp, err := e.Etcd.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"phase":"ready"`) {
		t.Errorf("%s in Ballast: %d kvs, want one holding status.phase=ready", key, len(resp.Kvs))
	}

	t.Logf("widgets listed and status updated after %v", time.Since(start).Round(time.Millisecond))

	// A dynamic informer, as a controller would run it.
	informerCtx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(e.dyn, 0, namespace, nil)
	inf := factory.ForResource(widgetGVR).Informer()
	added := make(chan string, numWidgets+10)
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if u, ok := obj.(*unstructured.Unstructured); ok {
				added <- u.GetName()
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(informerCtx.Done())
	defer func() {
		stop() // Shutdown waits for the informers, which run until this
		factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(informerCtx.Done(), inf.HasSynced) {
		t.Fatalf("widget informer did not sync within a minute")
	}
	t.Logf("informer synced after %v", time.Since(start).Round(time.Millisecond))
	if n := len(inf.GetStore().List()); n != numWidgets {
		t.Errorf("informer holds %d widgets, want %d", n, numWidgets)
	}
	if _, err := widgets.Create(ctx, newWidget(numWidgets), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("w-%03d", numWidgets)
	for {
		select {
		case name := <-added:
			if name == want {
				t.Logf("informer saw %s after %v", want, time.Since(start).Round(time.Millisecond))
				return
			}
		case <-informerCtx.Done():
			t.Fatalf("informer did not see %s being added", want)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// waitEstablished watches the CRD until its Established condition is True
// (at most a minute).
func waitEstablished(t *testing.T, ctx context.Context, e *env, crd *apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	established := func(c *apiextensionsv1.CustomResourceDefinition) bool {
		for _, cond := range c.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true
			}
		}
		return false
	}
	if established(crd) {
		return
	}
	w, err := e.ext.ApiextensionsV1().CustomResourceDefinitions().Watch(ctx, metav1.ListOptions{
		FieldSelector:   "metadata.name=" + crd.Name,
		ResourceVersion: crd.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("CRD watch closed before %s was established", crd.Name)
			}
			if c, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition); ok && established(c) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("CRD %s not established within a minute", crd.Name)
		}
	}
}

// retryNotFound retries fn while it returns NotFound, for at most 30s.
func retryNotFound(ctx context.Context, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := fn()
		if !apierrors.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// testKubectl runs the real kubectl (when built) against the server.
func testKubectl(t *testing.T, ctx context.Context, e *env) {
	if e.Kubectl == "" {
		t.Skip("kubectl not built (hack/kube/build.sh kubectl)")
	}
	run := func(args ...string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, e.Kubectl, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("get", "configmaps", "-n", namespace, "-l", "set=bulk", "-o", "name", "--chunk-size=40")
	if n := strings.Count(out, "configmap/"); n != numConfigs {
		t.Errorf("kubectl listed %d ConfigMaps, want %d", n, numConfigs)
	}
	out = run("get", "widgets", "-n", namespace, "-o", "name")
	if n := strings.Count(out, "widget."); n != numWidgets+1 {
		t.Errorf("kubectl listed %d widgets, want %d", n, numWidgets+1)
	}
	run("get", "--raw", "/readyz/etcd")
}

// testCompaction waits for kube-apiserver's own compactor: on the first tick
// it writes compact_rev_key (value 0, version 1) with a Txn; on the second it
// writes the revision seen on the first and then calls Compact at it. After
// that, reads below the compacted revision must fail in Ballast (ErrCompacted)
// and kube-apiserver must turn that into 410 Gone.
func testCompaction(t *testing.T, ctx context.Context, e *env) {
	ctx, cancel := context.WithTimeout(ctx, 6*compactionInterval)
	defer cancel()
	compacted := func(kvs ...*mvccpb.KeyValue) int64 {
		for _, kv := range kvs {
			if rev, err := strconv.ParseInt(string(kv.Value), 10, 64); err == nil && kv.Version >= 2 && rev > 0 {
				return rev
			}
		}
		return 0
	}
	resp, err := e.Etcd.Get(ctx, "compact_rev_key")
	if err != nil {
		t.Fatal(err)
	}
	rev := compacted(resp.Kvs...)
	if rev == 0 {
		wch := e.Etcd.Watch(ctx, "compact_rev_key", clientv3.WithRev(resp.Header.Revision+1))
		for rev == 0 {
			wr, ok := <-wch
			if !ok || wr.Err() != nil {
				t.Fatalf("no compaction by kube-apiserver within %v (watch: ok=%v err=%v)", 6*compactionInterval, ok, wr.Err())
			}
			for _, ev := range wr.Events {
				rev = max(rev, compacted(ev.Kv))
			}
		}
	}
	t.Logf("kube-apiserver compacted Ballast at revision %d", rev)

	// Compact is issued right after the Txn the watch saw: poll (no event
	// to wait for) until a read below rev reports ErrCompacted.
	old := rev - 1
	var lastErr error
	for {
		_, lastErr = e.Etcd.Get(ctx, "compact_rev_key", clientv3.WithRev(old))
		if errors.Is(lastErr, rpctypes.ErrCompacted) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Get at revision %d below compaction %d: %v, want %v", old, rev, lastErr, rpctypes.ErrCompacted)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := e.Etcd.Get(ctx, "compact_rev_key", clientv3.WithRev(rev)); err != nil {
		t.Errorf("Get at the compacted revision %d itself: %v", rev, err)
	}
	if err := e.Storage.WaitLog(e.CompactionLog, 30*time.Second); err != nil {
		t.Errorf("ballast log: %v", err)
	}

	// Through kube-apiserver: ConfigMaps are not cached, so both go to
	// Ballast at the old revision.
	cms := e.cs.CoreV1().ConfigMaps(namespace)
	oldRV := strconv.FormatInt(old, 10)
	_, err = cms.List(ctx, metav1.ListOptions{ResourceVersion: oldRV, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Errorf("list at compacted resourceVersion %s: got %v, want 410 Gone/Expired", oldRV, err)
	}
	// A watch from resourceVersion N starts at revision N+1, and reading at
	// the compaction revision itself is allowed: go one further back.
	oldRV = strconv.FormatInt(rev-2, 10)
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: oldRV})
	if err != nil {
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Errorf("watch from compacted resourceVersion %s: %v, want 410", oldRV, err)
		}
		return
	}
	defer w.Stop()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Errorf("watch from compacted resourceVersion %s closed without an error event", oldRV)
			break
		}
		status, isStatus := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !isStatus || status.Code != 410 {
			t.Errorf("watch from compacted resourceVersion %s: first event %s %#v, want ERROR with code 410", oldRV, ev.Type, ev.Object)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("watch from compacted resourceVersion %s: no event within 30s", oldRV)
	}
}

// testMetrics reads kube-apiserver's /metrics: consistent reads served from
// the watch cache must not have fallen back to Ballast (that happens when
// watch progress requests go unanswered), and etcd request errors are listed.
func testMetrics(t *testing.T, ctx context.Context, e *env) {
	code, body, err := e.Get(ctx, "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	var consistent, fallback, watchLists float64
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, labels, value, ok := parseSample(line)
		if !ok {
			continue
		}
		switch name {
		case "apiserver_watch_cache_consistent_read_total":
			consistent += value
			if strings.Contains(labels, `fallback="true"`) && value > 0 {
				fallback += value
				t.Errorf("consistent read fell back to Ballast (no timely progress notification): %s", line)
			}
			if strings.Contains(labels, `success="false"`) && value > 0 {
				t.Errorf("failed consistent read: %s", line)
			}
		case "etcd_request_errors_total":
			if value > 0 {
				t.Logf("etcd request errors: %s", line)
			}
		case "apiserver_resource_objects":
			// Counted with a keys-only Range over the prefix for
			// uncached resources, every --etcd-count-metric-poll-period.
			if labels == `{group="",resource="configmaps"}` && value < numConfigs {
				t.Errorf("%s: want at least %d", line, numConfigs)
			}
			if strings.Contains(labels, "configmaps") || strings.Contains(labels, "widgets") {
				t.Logf("%s", line)
			}
		case "apiserver_storage_size_bytes", "etcd_bookmark_counts":
			t.Logf("%s", line)
		case "apiserver_watch_list_duration_seconds_count":
			// Streaming watch-lists served (informers of client-go
			// v0.36, including kube-apiserver's own): the test's two
			// informers are namespace-scoped.
			if strings.Contains(labels, `scope="namespace"`) &&
				(strings.Contains(labels, `resource="configmaps"`) || strings.Contains(labels, `resource="widgets"`)) {
				watchLists += value
				t.Logf("%s", line)
			}
		}
	}
	if watchLists < 2 {
		t.Errorf("%v streaming watch-lists served, want at least 2 (the ConfigMap and Widget informers)", watchLists)
	}
	if consistent == 0 {
		t.Errorf("no consistent reads from the watch cache were recorded")
	}
	t.Logf("consistent reads from the watch cache: %v (fell back: %v)", consistent, fallback)
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN|\+Inf|-Inf)$`)

func parseSample(line string) (name, labels string, value float64, ok bool) {
	m := sampleRE.FindStringSubmatch(line)
	if m == nil {
		return "", "", 0, false
	}
	v, err := strconv.ParseFloat(m[3], 64)
	if err != nil {
		return "", "", 0, false
	}
	return m[1], m[2], v, true
}

// storageProblem matches kube-apiserver log lines that point at the storage
// layer. kube-apiserver logs the expected "required revision has been
// compacted" watch error (testCompaction provokes it) as a warning.
var storageProblem = regexp.MustCompile(`(?i)etcd|storage|watch chan|compact|progress|cacher|resourceVersion|revision`)

// testAPIServerLog fails on error lines about storage in kube-apiserver's log
// (klog's, and the etcd client's JSON lines) and lists every other warning and
// error for the record.
func testAPIServerLog(t *testing.T, ctx context.Context, e *env) {
	var storageErrors, others []string
	for _, line := range strings.Split(e.APIServer.Log(), "\n") {
		switch {
		case strings.HasPrefix(line, `{"level":"error"`):
			storageErrors = append(storageErrors, line)
		case strings.HasPrefix(line, `{"level":"warn"`):
			others = append(others, line)
		case len(line) < 2 || (line[0] != 'E' && line[0] != 'W') || line[1] < '0' || line[1] > '9':
		case line[0] == 'E' && storageProblem.MatchString(line):
			storageErrors = append(storageErrors, line)
		default:
			others = append(others, line)
		}
	}
	for _, l := range others {
		t.Logf("kube-apiserver: %s", l)
	}
	for _, l := range storageErrors {
		t.Errorf("kube-apiserver storage error: %s", l)
	}
	if strings.Contains(e.APIServer.Log(), "RequestWatchProgress feature is not supported") {
		t.Errorf("kube-apiserver decided Ballast does not support RequestWatchProgress")
	}
}
