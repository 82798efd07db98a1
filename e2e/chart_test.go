package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	chartDir      = "../charts/ballast-operator"
	testNamespace = "ballast-system"
	releaseName   = "ballast"
)

// helmBinary is the pinned helm (make helm-lint passes HELM=bin/helm).
func helmBinary(t *testing.T) string {
	t.Helper()
	h := os.Getenv("HELM")
	if h == "" {
		t.Skip("HELM is not set; run make helm-lint")
	}
	return h
}

// configDir is where controller-gen writes the CRDs and RBAC rules.
func configDir() string {
	if d := os.Getenv("CONFIG_DIR"); d != "" {
		return d
	}
	return "../config"
}

// rendered is one `helm template` output, decoded.
type rendered struct {
	objects []runtime.Object
	notes   string
}

func (r rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	var found *appsv1.Deployment
	for _, o := range r.objects {
		if d, ok := o.(*appsv1.Deployment); ok {
			if found != nil {
				t.Fatal("more than one Deployment")
			}
			found = d
		}
	}
	if found == nil {
		t.Fatal("no Deployment")
	}
	return found
}

func objectsOf[T runtime.Object](r rendered) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// decoder decodes strictly: a field the type does not have (a typo in a
// template) is an error, as it is for kubectl apply --validate=strict.
func decoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// helm runs helm and returns its standard output, or the error with its
// standard error.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// helm keeps caches and a repository config under HOME; keep them out
	// of the user's.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// render runs helm template with the values (YAML) and decodes the output.
func render(t *testing.T, values string) rendered {
	t.Helper()
	out, err := helm(t, renderArgs(t, values)...)
	if err != nil {
		t.Fatal(err)
	}
	dec := decoder(t)
	var r rendered
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := reader.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(doc)) == 0 || isOnlyComments(doc) {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if meta.APIVersion == "monitoring.coreos.com/v1" {
			// Not in client-go's scheme: check its shape by hand below.
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				t.Fatal(err)
			}
			r.objects = append(r.objects, u)
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s %s does not decode strictly: %v\n%s", meta.APIVersion, meta.Kind, err, doc)
		}
		r.objects = append(r.objects, obj)
	}
	// helm template leaves NOTES.txt out; a client-side dry-run install
	// prints it after the manifests.
	var args []string
	for _, a := range renderArgs(t, values) {
		if a != "--include-crds" {
			args = append(args, a)
		}
	}
	args[0] = "install"
	dry, err := helm(t, append(args, "--dry-run=client")...)
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.Index(dry, "\nNOTES:\n"); i >= 0 {
		r.notes = dry[i:]
	}
	return r
}

func renderArgs(t *testing.T, values string) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"template", releaseName, chartDir, "--namespace", testNamespace, "--include-crds", "--values", f}
}

// isOnlyComments reports a document with nothing but comments and
// separators, such as the one helm prints before a CRD file that itself
// starts with "---".
func isOnlyComments(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		l := strings.TrimSpace(line)
		if l != "" && l != "---" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// generatedRules are the rules controller-gen wrote into config/rbac/role.yaml.
func generatedRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(configDir(), "rbac", "role.yaml"))
	if err != nil {
		t.Fatalf("%v: run make manifests", err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatal(err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("config/rbac/role.yaml has no rules")
	}
	return role.Rules
}

// TestChartCopiesMatchConfig fails when the chart's CRDs or RBAC rules are
// not the ones in config/: run make manifests (hack/chart/sync.sh).
func TestChartCopiesMatchConfig(t *testing.T) {
	pairs := map[string]string{
		filepath.Join(configDir(), "rbac", "role.yaml"):                 filepath.Join(chartDir, "files", "role.yaml"),
		filepath.Join(configDir(), "rbac", "leader_election_role.yaml"): filepath.Join(chartDir, "files", "leader_election_role.yaml"),
	}
	bases, err := filepath.Glob(filepath.Join(configDir(), "crd", "bases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(bases) == 0 {
		t.Fatalf("no CRDs in %s/crd/bases: run make manifests", configDir())
	}
	for _, b := range bases {
		pairs[b] = filepath.Join(chartDir, "crds", filepath.Base(b))
	}
	chartCRDs, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if len(chartCRDs) != len(bases) {
		t.Errorf("chart has %d CRD files, config has %d: run make manifests", len(chartCRDs), len(bases))
	}
	for src, dst := range pairs {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Errorf("%v: run make manifests", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: run make manifests", dst, src)
		}
	}
}

func TestChartLint(t *testing.T) {
	for name, values := range chartValueSets {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := helm(t, "lint", "--strict", chartDir, "--namespace", testNamespace, "--values", f); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// chartValueSets are the value combinations lint and the rendering tests
// cover.
var chartValueSets = map[string]string{
	"defaults": ``,
	"ha-namespaced": `
replicaCount: 3
watchNamespaces: [team-a, team-b]
memberImage: {repository: registry.example.com/mirror/ballast}
image: {repository: registry.example.com/ballast, tag: "1.2.3", pullPolicy: Always}
imagePullSecrets: [{name: regcred}]
`,
	"monitoring": `
metrics:
  port: 9090
  serviceMonitor: {enabled: true, labels: {release: prometheus}, interval: 15s}
`,
	"bring-your-own-rbac": `
rbac: {create: false}
serviceAccount: {create: false, name: ops}
metrics: {enabled: false}
leaderElection: {enabled: false}
logLevel: debug
extraArgs: [--leader-election-namespace=elsewhere]
`,
}

func TestChartDefaults(t *testing.T) {
	r := render(t, chartValueSets["defaults"])
	crds := objectsOf[*apiextensionsv1.CustomResourceDefinition](r)
	if len(crds) == 0 || !slices.ContainsFunc(crds, func(c *apiextensionsv1.CustomResourceDefinition) bool {
		return c.Name == "etcdclusters.etcd.ballast.dev"
	}) {
		t.Errorf("the EtcdCluster CRD is not rendered (with --include-crds)")
	}

	d := r.deployment(t)
	if d.Namespace != testNamespace {
		t.Errorf("Deployment namespace %q", d.Namespace)
	}
	if got := *d.Spec.Replicas; got != 1 {
		t.Errorf("replicas = %d, want 1", got)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/ballastdb/ballast:0.1.0-dev" {
		t.Errorf("image = %q, want the chart's appVersion", c.Image)
	}
	wantArgs := []string{
		"operator",
		"--metrics-bind-address=:8080",
		"--health-probe-bind-address=:8081",
		"--leader-elect=true",
		"--leader-election-id=ballast-operator.etcd.ballast.dev",
		"--default-image=ghcr.io/ballastdb/ballast",
		"--log-level=info",
		"--log-format=json",
	}
	if !reflect.DeepEqual(c.Args, wantArgs) {
		t.Errorf("args = %q\nwant %q", c.Args, wantArgs)
	}
	checkRestricted(t, d)
	checkSelector(t, d)

	// All namespaces: one ClusterRole with exactly the generated rules.
	crs := objectsOf[*rbacv1.ClusterRole](r)
	if len(crs) != 1 {
		t.Fatalf("%d ClusterRoles, want 1", len(crs))
	}
	if !reflect.DeepEqual(crs[0].Rules, generatedRules(t)) {
		t.Errorf("ClusterRole rules differ from config/rbac/role.yaml:\n%v", crs[0].Rules)
	}
	crbs := objectsOf[*rbacv1.ClusterRoleBinding](r)
	if len(crbs) != 1 || crbs[0].RoleRef.Name != crs[0].Name || crbs[0].Subjects[0].Name != d.Spec.Template.Spec.ServiceAccountName || crbs[0].Subjects[0].Namespace != testNamespace {
		t.Errorf("ClusterRoleBinding does not bind the ClusterRole to the operator's service account: %+v", crbs)
	}
	checkLeaderElectionRole(t, r, d)

	svcs := objectsOf[*corev1.Service](r)
	if len(svcs) != 1 || svcs[0].Spec.Ports[0].Port != 8080 || svcs[0].Spec.Ports[0].TargetPort.StrVal != "metrics" {
		t.Errorf("metrics Service: %+v", svcs)
	}
	for k, v := range svcs[0].Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("metrics Service selects %s=%s, which the pods do not carry", k, v)
		}
	}
	if len(objectsOf[*policyv1.PodDisruptionBudget](r)) != 0 {
		t.Error("a PodDisruptionBudget for one replica would block every drain")
	}
	if !strings.Contains(r.notes, "kind: EtcdCluster") {
		t.Errorf("NOTES.txt does not show how to create a cluster:\n%s", r.notes)
	}
}

func TestChartHighAvailabilityNamespaced(t *testing.T) {
	r := render(t, chartValueSets["ha-namespaced"])
	d := r.deployment(t)
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %d", *d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example.com/ballast:1.2.3" || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("image %q policy %q", c.Image, c.ImagePullPolicy)
	}
	for _, want := range []string{"--watch-namespaces=team-a,team-b", "--default-image=registry.example.com/mirror/ballast", "--leader-elect=true"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %q lack %q", c.Args, want)
		}
	}
	if len(d.Spec.Template.Spec.ImagePullSecrets) != 1 {
		t.Errorf("imagePullSecrets = %v", d.Spec.Template.Spec.ImagePullSecrets)
	}
	// Namespaced: no ClusterRole; a Role with the generated rules in each
	// watched namespace.
	if n := len(objectsOf[*rbacv1.ClusterRole](r)); n != 0 {
		t.Errorf("%d ClusterRoles with watchNamespaces set, want 0", n)
	}
	rules := generatedRules(t)
	byNS := map[string]*rbacv1.Role{}
	for _, role := range objectsOf[*rbacv1.Role](r) {
		if strings.HasSuffix(role.Name, "-leader-election") {
			continue
		}
		byNS[role.Namespace] = role
		if !reflect.DeepEqual(role.Rules, rules) {
			t.Errorf("Role in %s: rules differ from config/rbac/role.yaml", role.Namespace)
		}
	}
	if len(byNS) != 2 || byNS["team-a"] == nil || byNS["team-b"] == nil {
		t.Errorf("Roles in %v, want team-a and team-b", byNS)
	}
	bound := map[string]bool{}
	for _, rb := range objectsOf[*rbacv1.RoleBinding](r) {
		if rb.Subjects[0].Name == d.Spec.Template.Spec.ServiceAccountName && rb.Subjects[0].Namespace == testNamespace {
			bound[rb.Namespace] = true
		}
	}
	if !bound["team-a"] || !bound["team-b"] || !bound[testNamespace] {
		t.Errorf("RoleBindings for the operator's service account in %v, want team-a, team-b and %s (leader election)", bound, testNamespace)
	}
	pdbs := objectsOf[*policyv1.PodDisruptionBudget](r)
	if len(pdbs) != 1 || pdbs[0].Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget: %+v", pdbs)
	}
	checkLeaderElectionRole(t, r, d)
	checkRestricted(t, d)
}

func TestChartMonitoring(t *testing.T) {
	r := render(t, chartValueSets["monitoring"])
	d := r.deployment(t)
	if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--metrics-bind-address=:9090") {
		t.Errorf("args %q", d.Spec.Template.Spec.Containers[0].Args)
	}
	var sm *unstructured.Unstructured
	for _, o := range r.objects {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GetKind() == "ServiceMonitor" {
			sm = u
		}
	}
	if sm == nil {
		t.Fatal("no ServiceMonitor")
	}
	if sm.GetLabels()["release"] != "prometheus" || sm.GetNamespace() != testNamespace {
		t.Errorf("ServiceMonitor labels %v namespace %q", sm.GetLabels(), sm.GetNamespace())
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 || eps[0].(map[string]any)["port"] != "metrics" || eps[0].(map[string]any)["interval"] != "15s" {
		t.Errorf("ServiceMonitor endpoints %v", eps)
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := objectsOf[*corev1.Service](r)[0]
	for k, v := range sel {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, which the metrics Service does not carry", k, v)
		}
	}
}

func TestChartBringYourOwnRBAC(t *testing.T) {
	r := render(t, chartValueSets["bring-your-own-rbac"])
	d := r.deployment(t)
	if d.Spec.Template.Spec.ServiceAccountName != "ops" {
		t.Errorf("serviceAccountName %q", d.Spec.Template.Spec.ServiceAccountName)
	}
	for _, o := range r.objects {
		switch o.(type) {
		case *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, *rbacv1.Role, *rbacv1.RoleBinding, *corev1.ServiceAccount, *corev1.Service:
			t.Errorf("%T rendered although rbac.create, serviceAccount.create and metrics.enabled are false", o)
		}
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--metrics-bind-address=0", "--leader-elect=false", "--log-level=debug", "--leader-election-namespace=elsewhere"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "metrics" {
			t.Error("metrics port declared with metrics disabled")
		}
	}
}

// TestChartRefuses checks the values the chart must reject, with the reason.
func TestChartRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ values, want string }{
		"replicas without leader election": {"replicaCount: 2\nleaderElection: {enabled: false}\n", "needs leaderElection.enabled"},
		"unknown pull policy":              {"image: {repository: x, pullPolicy: Sometimes}\n", "pullPolicy"},
		"misspelt key":                     {"replicas: 3\n", "replicas"},
		"bad namespace name":               {"watchNamespaces: [Team_A]\n", "watchNamespaces"},
		"unknown log level":                {"logLevel: verbose\n", "logLevel"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := helm(t, renderArgs(t, tc.values)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("helm template error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func checkLeaderElectionRole(t *testing.T, r rendered, d *appsv1.Deployment) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(configDir(), "rbac", "leader_election_role.yaml"))
	if err != nil {
		t.Fatalf("%v: run make manifests", err)
	}
	var want rbacv1.Role
	if err := yaml.UnmarshalStrict(data, &want); err != nil {
		t.Fatal(err)
	}
	for _, role := range objectsOf[*rbacv1.Role](r) {
		if role.Namespace != testNamespace || !strings.HasSuffix(role.Name, "-leader-election") {
			continue
		}
		if !reflect.DeepEqual(role.Rules, want.Rules) {
			t.Errorf("leader election Role rules differ from config/rbac/leader_election_role.yaml: %v", role.Rules)
		}
		for _, rb := range objectsOf[*rbacv1.RoleBinding](r) {
			if rb.Namespace == testNamespace && rb.RoleRef.Name == role.Name &&
				rb.Subjects[0].Name == d.Spec.Template.Spec.ServiceAccountName && rb.Subjects[0].Namespace == testNamespace {
				return
			}
		}
		t.Fatalf("the leader election Role %s is not bound to %s", role.Name, d.Spec.Template.Spec.ServiceAccountName)
	}
	t.Errorf("no leader election Role in %s", testNamespace)
}

// checkRestricted checks the pod against the restricted Pod Security
// Standard's rules that the chart controls.
func checkRestricted(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ps := d.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and the RuntimeDefault seccomp profile", ps)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container %s securityContext %+v: want allowPrivilegeEscalation false and all capabilities dropped", c.Name, sc)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s has no memory request or limit", c.Name)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("container %s lacks probes", c.Name)
		}
	}
}

func checkSelector(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s is not on the pod template", k, v)
		}
	}
	if _, ok := d.Spec.Selector.MatchLabels["app.kubernetes.io/version"]; ok {
		t.Error("the selector carries the version label: an upgrade could not change it (selectors are immutable)")
	}
}
