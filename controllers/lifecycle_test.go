package controllers_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ballastdb/ballast/api/v1alpha1"
	"github.com/ballastdb/ballast/controllers/desired"
	"github.com/ballastdb/ballast/controllers/member"
)

// TestLifecycle drives one cluster through its life, in order: create with
// three members, scale to five and back to three, replace a member whose
// data was wiped, lose and regain quorum. Each step waits on the
// EtcdCluster's status (a watch) and checks the members themselves with
// client/v3.
func TestLifecycle(t *testing.T) {
	e := newTestEnv(t)
	metricsAddr := freeAddr(t)
	e.startOperator(nil, metricsAddr)
	ctx := context.Background()
	const name = "life"

	c := e.cluster(name)
	c.Spec = v1alpha1.EtcdClusterSpec{Size: 3, Version: "0.1.0"}
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}

	var ids map[string]string // member name → ID after creation
	t.Run("create", func(t *testing.T) {
		got := e.waitCluster(t, name, "3 healthy voters", 90*time.Second, settled(3))
		if got.Status.ClusterID == "" || got.Status.Leader == "" {
			t.Errorf("cluster ID %q, leader %q: want both set", got.Status.ClusterID, got.Status.Leader)
		}
		for _, ct := range []string{v1alpha1.ConditionAvailable, v1alpha1.ConditionQuorate} {
			if cond := condition(got, ct); cond.Status != metav1.ConditionTrue {
				t.Errorf("%s = %+v, want True", ct, cond)
			}
		}
		if cond := condition(got, v1alpha1.ConditionDegraded); cond.Status != metav1.ConditionFalse {
			t.Errorf("Degraded = %+v, want False", cond)
		}
		if got.Status.CurrentVersion != "0.1.0" || got.Status.Size != 3 || got.Status.Selector == "" {
			t.Errorf("currentVersion %q size %d selector %q", got.Status.CurrentVersion, got.Status.Size, got.Status.Selector)
		}
		if got.Status.QuotaBackendBytes != 2<<30 || got.Status.DBSizeBytes <= 0 {
			t.Errorf("quota %d db size %d", got.Status.QuotaBackendBytes, got.Status.DBSizeBytes)
		}
		ids = memberIDs(got)
		for i := 0; i < 3; i++ {
			if ids[fmt.Sprintf("%s-%d", name, i)] == "" {
				t.Errorf("no member %s-%d in %v", name, i, ids)
			}
		}
		// The cluster itself agrees: three voters, and it serves.
		cli := e.etcdClient(t, name)
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ml, err := cli.MemberList(mctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ml.Members {
			if m.IsLearner {
				t.Errorf("member %s is still a learner", m.Name)
			}
		}
		if len(ml.Members) != 3 {
			t.Errorf("cluster lists %d members", len(ml.Members))
		}
		if _, err := cli.Put(mctx, "/life/k", "v"); err != nil {
			t.Errorf("put: %v", err)
		}
		// One member at a time: two adds, two promotions, in order.
		for _, reason := range []string{"ClusterFormed", "MemberAdded", "MemberPromoted"} {
			if len(e.events(t, name, reason)) == 0 {
				t.Errorf("no %s event", reason)
			}
		}
		if got := relatedNames(e.events(t, name, "MemberAdded")); strings.Join(got, ",") != "life-1,life-2" {
			t.Errorf("MemberAdded events about pods %v, want life-1 and life-2", got)
		}
		e.checkOwnedObjects(t, name, 3)
	})

	t.Run("kubectl-columns", func(t *testing.T) {
		out := kubectl(t, "get", "etcdclusters", "-n", e.ns)
		header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
		want := []string{"NAME", "SIZE", "READY", "VERSION", "LEADER", "QUORATE", "PHASE", "AGE"}
		if strings.Join(header, " ") != strings.Join(want, " ") {
			t.Errorf("kubectl get etcdclusters header %q, want %q", header, want)
		}
		if !regexp.MustCompile(`(?m)^life\s+3\s+3\s+0\.1\.0\s+life-\d\s+True\s+Running\s`).MatchString(out) {
			t.Errorf("kubectl get etcdclusters:\n%s", out)
		}
		wide := kubectl(t, "get", "ec", "-n", e.ns, "-o", "wide")
		if !strings.Contains(wide, "DB USED %") || !strings.Contains(wide, "CLUSTER ID") {
			t.Errorf("kubectl get ec -o wide:\n%s", wide)
		}
	})

	t.Run("scale-3-5", func(t *testing.T) {
		e.setSize(t, name, 5)
		got := e.waitCluster(t, name, "5 healthy voters", 90*time.Second, settled(5))
		now := memberIDs(got)
		for n, id := range ids {
			if now[n] != id {
				t.Errorf("member %s changed ID from %s to %s while scaling up", n, id, now[n])
			}
		}
		e.checkOwnedObjects(t, name, 5)
	})

	t.Run("scale-5-3", func(t *testing.T) {
		// Make the highest ordinal lead, so the operator has to move
		// leadership away before removing it.
		e.moveLeader(t, name, name+"-4")
		e.setSize(t, name, 3)
		got := e.waitCluster(t, name, "3 healthy voters", 90*time.Second, settled(3))
		if names := memberNames(got); strings.Join(names, ",") != "life-0,life-1,life-2" {
			t.Errorf("members after scale-down: %v", names)
		}
		// One event per removed member: each names the member's pod as
		// its related object.
		if got := relatedNames(e.events(t, name, "MemberRemoved")); strings.Join(got, ",") != "life-3,life-4" {
			t.Errorf("MemberRemoved events about pods %v, want life-3 and life-4", got)
		}
		if evs := e.events(t, name, "LeaderMoved"); len(evs) != 1 {
			t.Errorf("%d LeaderMoved events, want 1", len(evs))
		} else {
			t.Logf("LeaderMoved: %s", evs[0].Note)
		}
		// The removed members' pods are gone and their claims deleted
		// (whenScaled: Delete). The claims go after their pods, so their
		// events are the ones that can complete the condition: the wait
		// watches claims. (It once watched pods, and timed out whenever a
		// claim went after the last pod event.)
		defer func() {
			if t.Failed() {
				for _, n := range []string{"data-life-3", "data-life-4"} {
					storageHistory(t, "/registry/persistentvolumeclaims/"+e.ns+"/"+n)
				}
			}
		}()
		e.waitFor(t, "pods of ordinals 3 and 4 gone, their claims deleted", 30*time.Second, &corev1.PersistentVolumeClaimList{}, func() (bool, string) {
			var left []string
			for _, n := range []string{"life-3", "life-4"} {
				if err := k8s.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: n}, &corev1.Pod{}); !apierrors.IsNotFound(err) {
					left = append(left, "pod "+n)
				}
				claim := "data-" + n
				pvc := &corev1.PersistentVolumeClaim{}
				if err := k8s.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: claim}, pvc); !apierrors.IsNotFound(err) && pvc.DeletionTimestamp.IsZero() {
					left = append(left, fmt.Sprintf("claim %s (uid %s, rv %s, err %v)", claim, pvc.UID, pvc.ResourceVersion, err))
				}
			}
			return len(left) == 0, fmt.Sprint(left)
		})
		e.checkOwnedObjects(t, name, 3)
		ids = memberIDs(got)
	})
	t.Run("replace-wiped-member", func(t *testing.T) {
		victim := "life-1"
		oldID := ids[victim]
		dir, err := e.sim.VolumeDir(ctx, "data-"+victim)
		if err != nil {
			t.Fatal(err)
		}
		e.sim.Kill(victim)
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			t.Fatalf("volume %s of %s: %v entries, err %v", dir, victim, len(entries), err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		e.sim.Release(victim)
		got := e.waitCluster(t, name, victim+" replaced by a new member", 90*time.Second, func(c *v1alpha1.EtcdCluster) (bool, string) {
			ok, desc := settled(3)(c)
			id := memberIDs(c)[victim]
			return ok && id != "" && id != oldID, desc
		})
		newID := memberIDs(got)[victim]
		t.Logf("%s: member %s replaced by %s", victim, oldID, newID)
		for _, reason := range []string{"MemberRemovedForReplacement", "MemberAdded", "MemberPromoted"} {
			evs := e.events(t, name, reason)
			if len(evs) == 0 {
				t.Errorf("no %s event", reason)
				continue
			}
			t.Logf("event %s: %s", reason, evs[len(evs)-1].Note)
		}
		for n, id := range ids {
			if n != victim && memberIDs(got)[n] != id {
				t.Errorf("member %s changed ID from %s to %s", n, id, memberIDs(got)[n])
			}
		}
		// The data written before is on the new member too.
		cli := e.etcdClient(t, name)
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := cli.Get(gctx, "/life/k", clientv3.WithSerializable())
		if err != nil || len(resp.Kvs) != 1 {
			t.Errorf("get after replacement: %v %v", resp, err)
		}
		ids = memberIDs(got)
	})

	t.Run("replace-removed-member", func(t *testing.T) {
		// Someone removes life-2 behind the operator's back: its data now
		// belongs to a removed ID and can never rejoin. The operator adds
		// the ordinal back and gives its pod a fresh volume.
		victim := "life-2"
		oldID := ids[victim]
		oldClaim := &corev1.PersistentVolumeClaim{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "data-" + victim}, oldClaim); err != nil {
			t.Fatal(err)
		}
		var id uint64
		if _, err := fmt.Sscanf(oldID, "%x", &id); err != nil {
			t.Fatal(err)
		}
		cli := e.etcdClient(t, name)
		// etcd refuses the removal for 5s after the last member joined
		// (strict reconfiguration), as an admin would find; retry.
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for {
			_, err := cli.MemberRemove(rctx, id)
			if err == nil || removed(rctx, cli, id) {
				// The answer is lost when the request went through the
				// member removed ("server stopped"); the list tells.
				break
			}
			if !member.IsUnhealthy(err) || rctx.Err() != nil {
				t.Fatalf("member remove %s: %v", oldID, err)
			}
			select {
			case <-rctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		got := e.waitCluster(t, name, victim+" back with a new ID on a fresh volume", 90*time.Second, func(c *v1alpha1.EtcdCluster) (bool, string) {
			ok, desc := settled(3)(c)
			id := memberIDs(c)[victim]
			return ok && id != "" && id != oldID, desc
		})
		claim := &corev1.PersistentVolumeClaim{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "data-" + victim}, claim); err != nil {
			t.Fatal(err)
		}
		if claim.UID == oldClaim.UID {
			t.Errorf("claim data-%s was kept (uid %s): the removed member's data must not come back", victim, claim.UID)
		}
		if len(e.events(t, name, "ReplacingMemberVolume")) == 0 {
			t.Errorf("no ReplacingMemberVolume event")
		}
		ids = memberIDs(got)
	})

	t.Run("quorum-loss", func(t *testing.T) {
		e.sim.Kill("life-1")
		e.sim.Kill("life-2")
		got := e.waitCluster(t, name, "Quorate=False", 60*time.Second, func(c *v1alpha1.EtcdCluster) (bool, string) {
			return condition(c, v1alpha1.ConditionQuorate).Status == metav1.ConditionFalse, summary(c)
		})
		if got.Status.Phase != v1alpha1.PhaseUnavailable || condition(got, v1alpha1.ConditionAvailable).Status != metav1.ConditionFalse {
			t.Errorf("without quorum: %s", summary(got))
		}
		ev := e.waitEvent(t, name, "QuorumLost", 30*time.Second)
		if ev.Type != corev1.EventTypeWarning {
			t.Errorf("QuorumLost event type %s", ev.Type)
		}
		t.Logf("QuorumLost event: %s", ev.Note)
		// The members are still shown, unhealthy, and nothing was removed.
		if len(got.Status.Members) != 3 {
			t.Errorf("members without quorum: %s", summary(got))
		}
		if err := e.op.crashed(); err != nil {
			t.Fatalf("operator stopped without quorum: %v", err)
		}
		e.sim.Release("life-1")
		e.sim.Release("life-2")
		got = e.waitCluster(t, name, "quorum back", 60*time.Second, settled(3))
		if now := memberIDs(got); fmt.Sprint(now) != fmt.Sprint(ids) {
			t.Errorf("membership changed across quorum loss: %v → %v", ids, now)
		}
		e.waitEvent(t, name, "QuorumRestored", 30*time.Second)
	})

	t.Run("metrics", func(t *testing.T) {
		body := scrape(t, "http://"+metricsAddr+"/metrics")
		for _, re := range []string{
			`ballast_operator_membership_changes_total\{change="add_learner",cluster="life",namespace="` + e.ns + `",result="success"\} ([5-9]|\d\d)`,
			`ballast_operator_membership_changes_total\{change="remove",cluster="life",namespace="` + e.ns + `",result="success"\} [3-9]`,
			`ballast_operator_cluster_quorate\{cluster="life",namespace="` + e.ns + `"\} 1`,
			`ballast_operator_cluster_voting_members\{cluster="life",namespace="` + e.ns + `"\} 3`,
			`controller_runtime_reconcile_total\{controller="etcdcluster-[^"]+",result="requeue_after"\} \d+`,
			`controller_runtime_reconcile_time_seconds_count\{controller="etcdcluster-[^"]+"\} \d+`,
		} {
			if !regexp.MustCompile(re).MatchString(body) {
				t.Errorf("metrics: no match for %s", re)
			}
		}
	})
}

// TestOperatorRestartMidScaleUp stops the operator right after it added a
// learner — before the StatefulSet grew and before the promotion — and
// checks that a new operator finishes the job from what it observes.
func TestOperatorRestartMidScaleUp(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	const name = "restart"

	added := make(chan uint64, 1)
	first := e.startOperator(crashAfterAdd(added), "")
	c := e.cluster(name)
	c.Spec = v1alpha1.EtcdClusterSpec{Size: 1, Version: "0.1.0", Storage: v1alpha1.StorageSpec{Ephemeral: true}}
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	e.waitCluster(t, name, "1 healthy voter", 60*time.Second, settled(1))
	e.setSize(t, name, 2)

	var learner uint64
	select {
	case learner = <-added:
	case <-time.After(60 * time.Second):
		t.Fatal("the operator did not add a learner within 60s")
	}
	first.stop(t)
	t.Logf("operator stopped after adding learner %x", learner)

	// What the first operator left: an unstarted learner, one pod.
	cli := e.etcdClient(t, name)
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ml, err := cli.MemberList(mctx)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range ml.Members {
		if m.ID == learner {
			found = true
			if !m.IsLearner || m.Name != "" {
				t.Errorf("member %x: learner %v name %q, want an unstarted learner", m.ID, m.IsLearner, m.Name)
			}
		}
	}
	if !found || len(ml.Members) != 2 {
		t.Fatalf("member list after the crash: %+v", ml.Members)
	}
	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: name}, sts); err != nil {
		t.Fatal(err)
	}
	if *sts.Spec.Replicas != 1 {
		t.Errorf("replicas after the crash: %d, want 1 (the first operator grew the StatefulSet)", *sts.Spec.Replicas)
	}

	e.startOperator(nil, "")
	got := e.waitCluster(t, name, "2 healthy voters after restart", 60*time.Second, settled(2))
	if memberIDs(got)[name+"-1"] != fmt.Sprintf("%x", learner) {
		t.Errorf("member %s-1 is %s, want the learner %x the first operator added", name, memberIDs(got)[name+"-1"], learner)
	}
	if len(e.events(t, name, "MemberPromoted")) != 1 {
		t.Errorf("want one MemberPromoted event, from the second operator")
	}
}

// TestPausedChangesNothing: a paused cluster's spec changes are not acted
// on, and resuming acts on them.
func TestPausedChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	e.startOperator(nil, "")
	ctx := context.Background()
	const name = "paused"
	c := e.cluster(name)
	c.Spec = v1alpha1.EtcdClusterSpec{Size: 1, Version: "0.1.0", Storage: v1alpha1.StorageSpec{Ephemeral: true}}
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	e.waitCluster(t, name, "1 healthy voter", 60*time.Second, settled(1))

	c = e.get(name)
	c.Spec.Paused = true
	c.Spec.Size = 2
	if err := k8s.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	got := e.waitCluster(t, name, "phase Paused", 30*time.Second, func(c *v1alpha1.EtcdCluster) (bool, string) {
		return c.Status.ObservedGeneration == c.Generation && c.Status.Phase == v1alpha1.PhasePaused, summary(c)
	})
	if len(got.Status.Members) != 1 || len(e.events(t, name, "MemberAdded")) != 0 {
		t.Errorf("paused cluster changed: %s", summary(got))
	}
	c = e.get(name)
	c.Spec.Paused = false
	if err := k8s.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	e.waitCluster(t, name, "2 healthy voters after resuming", 60*time.Second, settled(2))
}

// checkOwnedObjects checks the Services, ConfigMap, PodDisruptionBudget
// and StatefulSet of a cluster of size members.
func (e *testEnv) checkOwnedObjects(t *testing.T, name string, size int) {
	t.Helper()
	ctx := context.Background()
	key := func(n string) types.NamespacedName { return types.NamespacedName{Namespace: e.ns, Name: n} }
	owned := func(o metav1.Object) {
		refs := o.GetOwnerReferences()
		if len(refs) != 1 || refs[0].Kind != "EtcdCluster" || refs[0].Name != name || refs[0].Controller == nil || !*refs[0].Controller {
			t.Errorf("%s: owner references %+v", o.GetName(), refs)
		}
		if o.GetLabels()[desired.LabelCluster] != name {
			t.Errorf("%s: labels %v", o.GetName(), o.GetLabels())
		}
	}

	pdb := &policyv1.PodDisruptionBudget{}
	if err := k8s.Get(ctx, key(name), pdb); err != nil {
		t.Fatal(err)
	}
	owned(pdb)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != size/2+1 {
		t.Errorf("PDB minAvailable %v, want %d (quorum of %d)", pdb.Spec.MinAvailable, size/2+1, size)
	}

	headless := &corev1.Service{}
	if err := k8s.Get(ctx, key(name), headless); err != nil {
		t.Fatal(err)
	}
	owned(headless)
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("headless Service: clusterIP %q publishNotReadyAddresses %v", headless.Spec.ClusterIP, headless.Spec.PublishNotReadyAddresses)
	}
	svc := &corev1.Service{}
	if err := k8s.Get(ctx, key(name+"-client"), svc); err != nil {
		t.Fatal(err)
	}
	owned(svc)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 2379 || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Errorf("client Service: %+v", svc.Spec)
	}

	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, key(name+"-bootstrap"), cm); err != nil {
		t.Fatal(err)
	}
	owned(cm)
	if cm.Data[desired.KeyInitialClusterState] != "existing" {
		t.Errorf("bootstrap ConfigMap: %v", cm.Data)
	}

	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, key(name), sts); err != nil {
		t.Fatal(err)
	}
	owned(sts)
	if *sts.Spec.Replicas != int32(size) || sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement || sts.Spec.ServiceName != name {
		t.Errorf("StatefulSet: replicas %d policy %s service %s", *sts.Spec.Replicas, sts.Spec.PodManagementPolicy, sts.Spec.ServiceName)
	}
	if p := sts.Spec.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("StatefulSet claim retention: %+v", p)
	}
	// Nothing else was rewritten by the reconciles that followed: the
	// operator applies only what it owns.
	if sts.Generation > 12 {
		t.Errorf("StatefulSet generation %d: the operator rewrites it more than its replica changes explain", sts.Generation)
	}
}

// moveLeader makes member target lead, through the current leader.
func (e *testEnv) moveLeader(t *testing.T, name, target string) {
	t.Helper()
	c := e.get(name)
	var leaderOrd, targetID = -1, uint64(0)
	for _, m := range c.Status.Members {
		if m.Leader {
			leaderOrd, _ = desired.Ordinal(c, m.Name)
		}
		if m.Name == target {
			if _, err := fmt.Sscanf(m.ID, "%x", &targetID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if leaderOrd < 0 || targetID == 0 {
		t.Fatalf("no leader or no %s in %s", target, summary(c))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.urls.ClientURL(c, leaderOrd)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.MoveLeader(ctx, targetID); err != nil {
		t.Fatalf("move leader to %s: %v", target, err)
	}
	// MoveLeader returns once the transfer is done; check with the
	// target itself (the operator's status follows at its next look).
	targetOrd, _ := desired.Ordinal(c, target)
	st, err := cli.Status(ctx, e.urls.ClientURL(c, targetOrd))
	if err != nil || st.Leader != targetID {
		t.Fatalf("after MoveLeader, %s reports leader %x (err %v), want itself %x", target, st.Leader, err, targetID)
	}
}

func (e *testEnv) setSize(t *testing.T, name string, size int32) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"size":%d}}`, size))
	if err := k8s.Patch(context.Background(), e.cluster(name), client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// etcdClient is a client/v3 client on every ordinal of cluster name.
func (e *testEnv) etcdClient(t *testing.T, name string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   e.urls.ClientEndpoints(e.cluster(name)),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func memberIDs(c *v1alpha1.EtcdCluster) map[string]string {
	out := map[string]string{}
	for _, m := range c.Status.Members {
		out[m.Name] = m.ID
	}
	return out
}

func memberNames(c *v1alpha1.EtcdCluster) []string {
	var out []string
	for _, m := range c.Status.Members {
		out = append(out, m.Name)
	}
	sort.Strings(out)
	return out
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kubectlBin, append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// storageHistory logs every revision of key in kube-apiserver's storage,
// for a failure that may lie below the API server.
func storageHistory(t *testing.T, key string) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Logf("storage history of %s: %v", key, err)
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Logf("storage history of %s: %v", key, err)
		return
	}
	t.Logf("storage %s at revision %d: %d keys", key, resp.Header.Revision, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		t.Logf("  now: create %d mod %d version %d", kv.CreateRevision, kv.ModRevision, kv.Version)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	for wr := range cli.Watch(wctx, key, clientv3.WithRev(1)) {
		for _, ev := range wr.Events {
			t.Logf("  %s at %d (create %d, version %d, %d bytes)", ev.Type, ev.Kv.ModRevision, ev.Kv.CreateRevision, ev.Kv.Version, len(ev.Kv.Value))
		}
		if wr.Header.Revision >= resp.Header.Revision {
			break
		}
	}
}

// removed reports whether a linearizable member list succeeds without id.
// The list is retried for a few seconds: the client may first try the
// endpoint of the member just removed, which has stopped.
func removed(ctx context.Context, cli *clientv3.Client, id uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	for err != nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
		resp, err = cli.MemberList(ctx)
	}
	if err != nil {
		return false
	}
	for _, m := range resp.Members {
		if m.ID == id {
			return false
		}
	}
	return true
}
