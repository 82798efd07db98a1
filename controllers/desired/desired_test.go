package desired

import (
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ballastdb/ballast/api/v1alpha1"
)

func cluster(mut func(*v1alpha1.EtcdCluster)) *v1alpha1.EtcdCluster {
	c := &v1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", UID: "0123456789abcdef"},
		Spec:       v1alpha1.EtcdClusterSpec{Size: 3, Version: "0.1.0"},
	}
	if mut != nil {
		mut(c)
	}
	return c
}

func TestQuorumAndPDB(t *testing.T) {
	for size, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 7: 4, 9: 5} {
		if got := Quorum(size); got != want {
			t.Errorf("Quorum(%d) = %d, want %d", size, got, want)
		}
		pdb := PodDisruptionBudget(cluster(func(c *v1alpha1.EtcdCluster) { c.Spec.Size = int32(size) }))
		if pdb.Spec.MinAvailable.IntValue() != want || pdb.Spec.MaxUnavailable != nil {
			t.Errorf("size %d: PDB %+v, want minAvailable %d", size, pdb.Spec, want)
		}
	}
}

func TestOrdinal(t *testing.T) {
	c := cluster(nil)
	for _, tc := range []struct {
		name string
		ord  int
		ok   bool
	}{
		{"c-0", 0, true}, {"c-12", 12, true}, {"c-", 0, false}, {"c-01", 0, false},
		{"c-x", 0, false}, {"cc-1", 0, false}, {"c-bootstrap", 0, false}, {"c--1", 0, false},
	} {
		ord, ok := Ordinal(c, tc.name)
		if ord != tc.ord || ok != tc.ok {
			t.Errorf("Ordinal(%q) = %d, %v; want %d, %v", tc.name, ord, ok, tc.ord, tc.ok)
		}
	}
}

func TestBootstrapConfigMap(t *testing.T) {
	cm := BootstrapConfigMap(cluster(nil), StateNew, DNS{})
	want := map[string]string{
		"ETCD_INITIAL_CLUSTER_STATE": "new",
		"ETCD_INITIAL_CLUSTER":       "c-0=http://c-0.c.ns.svc:2380",
		"ETCD_INITIAL_CLUSTER_TOKEN": "c-01234567",
		"ETCD_JOIN_ENDPOINTS":        "http://c-client.ns.svc:2379",
	}
	if !reflect.DeepEqual(cm.Data, want) {
		t.Errorf("ConfigMap data %v, want %v", cm.Data, want)
	}
	if cm.Name != "c-bootstrap" || cm.Labels[LabelCluster] != "c" {
		t.Errorf("ConfigMap meta %+v", cm.ObjectMeta)
	}
}

func TestEnv(t *testing.T) {
	quota := resource.MustParse("4Gi")
	snap, hb, el := int64(5000), int32(50), int32(500)
	c := cluster(func(c *v1alpha1.EtcdCluster) {
		c.Spec.Options = v1alpha1.NodeOptions{
			QuotaBackendBytes: &quota, AutoCompactionMode: "Revision", AutoCompactionRetention: "1000",
			SnapshotCount: &snap, HeartbeatIntervalMillis: &hb, ElectionTimeoutMillis: &el,
		}
	})
	got := map[string]string{}
	for _, e := range Env(c) {
		if e.ValueFrom != nil {
			got[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
			continue
		}
		got[e.Name] = e.Value
	}
	want := map[string]string{
		"POD_NAME":                         "field:metadata.name",
		"POD_NAMESPACE":                    "field:metadata.namespace",
		"ETCD_NAME":                        "$(POD_NAME)",
		"ETCD_DATA_DIR":                    "/var/lib/ballast/data",
		"ETCD_LISTEN_CLIENT_URLS":          "http://0.0.0.0:2379",
		"ETCD_LISTEN_PEER_URLS":            "http://0.0.0.0:2380",
		"ETCD_ADVERTISE_CLIENT_URLS":       "http://$(POD_NAME).c.$(POD_NAMESPACE).svc:2379",
		"ETCD_INITIAL_ADVERTISE_PEER_URLS": "http://$(POD_NAME).c.$(POD_NAMESPACE).svc:2380",
		"ETCD_QUOTA_BACKEND_BYTES":         "4294967296",
		"ETCD_AUTO_COMPACTION_MODE":        "revision",
		"ETCD_AUTO_COMPACTION_RETENTION":   "1000",
		"ETCD_SNAPSHOT_COUNT":              "5000",
		"ETCD_HEARTBEAT_INTERVAL":          "50",
		"ETCD_ELECTION_TIMEOUT":            "500",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Env:\n got  %v\n want %v", got, want)
	}
	// $(VAR) references only work to variables defined earlier.
	seen := map[string]bool{}
	for _, e := range Env(c) {
		for _, ref := range []string{"POD_NAME", "POD_NAMESPACE"} {
			if e.Value != "" && strings.Contains(e.Value, "$("+ref+")") && !seen[ref] {
				t.Errorf("%s refers to %s before it is defined", e.Name, ref)
			}
		}
		seen[e.Name] = true
	}
}

func TestStatefulSet(t *testing.T) {
	class := "fast"
	size := resource.MustParse("20Gi")
	c := cluster(func(c *v1alpha1.EtcdCluster) {
		c.Spec.Storage = v1alpha1.StorageSpec{StorageClassName: &class, Size: &size, RetentionPolicy: v1alpha1.DeleteStorage}
		c.Spec.PodTemplate = v1alpha1.PodTemplateOverrides{
			Labels:            map[string]string{"team": "db", LabelCluster: "not-mine"},
			NodeSelector:      map[string]string{"disk": "ssd"},
			PriorityClassName: "critical",
			Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
		}
	})
	sts := StatefulSet(c, 2, StatefulSetOptions{DefaultImageRepository: "registry.local/ballast"})
	if *sts.Spec.Replicas != 2 || sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement || sts.Spec.ServiceName != "c" {
		t.Errorf("spec %+v", sts.Spec)
	}
	if p := sts.Spec.PersistentVolumeClaimRetentionPolicy; p.WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType || p.WhenDeleted != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		t.Errorf("retention %+v", p)
	}
	tmpl := sts.Spec.Template
	if tmpl.Labels["team"] != "db" || tmpl.Labels[LabelCluster] != "c" || tmpl.Labels[LabelVersion] != "0.1.0" {
		t.Errorf("pod labels %v: user labels kept, operator labels win", tmpl.Labels)
	}
	for k, v := range sts.Spec.Selector.MatchLabels {
		if tmpl.Labels[k] != v {
			t.Errorf("selector %s=%s does not select the template", k, v)
		}
	}
	ps := tmpl.Spec
	if ps.NodeSelector["disk"] != "ssd" || ps.PriorityClassName != "critical" || len(ps.Tolerations) != 1 {
		t.Errorf("pod spec overrides lost: %+v", ps)
	}
	ctr := ps.Containers[0]
	if ctr.Image != "registry.local/ballast:0.1.0" || !reflect.DeepEqual(ctr.Args, []string{"node"}) {
		t.Errorf("container image %s args %v", ctr.Image, ctr.Args)
	}
	if ctr.EnvFrom[0].ConfigMapRef.Name != "c-bootstrap" || ctr.TerminationMessagePolicy != corev1.TerminationMessageReadFile {
		t.Errorf("container %+v", ctr)
	}
	if ctr.ReadinessProbe.HTTPGet.Path != "/readyz" || ctr.LivenessProbe.HTTPGet.Path != "/livez" || ctr.StartupProbe.FailureThreshold < 30 {
		t.Errorf("probes %+v %+v %+v", ctr.ReadinessProbe, ctr.LivenessProbe, ctr.StartupProbe)
	}
	vct := sts.Spec.VolumeClaimTemplates
	if len(vct) != 1 || vct[0].Name != "data" || *vct[0].Spec.StorageClassName != "fast" || vct[0].Spec.Resources.Requests.Storage().String() != "20Gi" {
		t.Errorf("claim templates %+v", vct)
	}
	if len(ps.Volumes) != 0 {
		t.Errorf("volumes %+v with claims", ps.Volumes)
	}

	eph := StatefulSet(cluster(func(c *v1alpha1.EtcdCluster) {
		c.Spec.Storage.Ephemeral = true
		c.Spec.Image = "mirror/ballast@sha256:abc"
	}), 1, StatefulSetOptions{})
	if len(eph.Spec.VolumeClaimTemplates) != 0 || len(eph.Spec.Template.Spec.Volumes) != 1 || eph.Spec.Template.Spec.Volumes[0].EmptyDir == nil {
		t.Errorf("ephemeral: %+v", eph.Spec)
	}
	if img := eph.Spec.Template.Spec.Containers[0].Image; img != "mirror/ballast@sha256:abc" {
		t.Errorf("spec.image not used: %s", img)
	}
	if p := eph.Spec.PersistentVolumeClaimRetentionPolicy; p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("default whenDeleted %s, want Retain", p.WhenDeleted)
	}
	if img := Image(cluster(nil), ""); img != "ghcr.io/ballastdb/ballast:0.1.0" {
		t.Errorf("default image %s", img)
	}
}

func TestDNS(t *testing.T) {
	c := cluster(nil)
	u := DNS{}
	if got := u.PeerURL(c, 2); got != "http://c-2.c.ns.svc:2380" {
		t.Errorf("PeerURL %s", got)
	}
	if got := u.ClientURL(c, 2); got != "http://c-2.c.ns.svc:2379" {
		t.Errorf("ClientURL %s", got)
	}
	if ord, ok := OrdinalOfPeerURL(u, c, "http://c-4.c.ns.svc:2380"); !ok || ord != 4 {
		t.Errorf("OrdinalOfPeerURL = %d, %v", ord, ok)
	}
	if _, ok := OrdinalOfPeerURL(u, c, "http://other-4.c.ns.svc:2380"); ok {
		t.Errorf("a foreign peer URL mapped to an ordinal")
	}
}
