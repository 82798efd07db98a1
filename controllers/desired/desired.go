// Package desired builds the Kubernetes objects an EtcdCluster should own —
// headless and client Services, the bootstrap ConfigMap, the StatefulSet and
// the PodDisruptionBudget — as pure functions of the cluster, so what the
// operator applies can be read and tested without an API server.
package desired

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ballastdb/ballast/api/v1alpha1"
)

// Ports, paths and names shared by the objects and the members.
const (
	ClientPort = 2379
	PeerPort   = 2380

	ContainerName = "ballast"
	VolumeName    = "data"
	MountPath     = "/var/lib/ballast"
	DataDir       = MountPath + "/data"

	// DefaultImageRepository is where release images are published; the
	// image is <repository>:<spec.version> unless spec.image is set.
	DefaultImageRepository = "ghcr.io/ballastdb/ballast"

	// Keys of the bootstrap ConfigMap: the members' ETCD_* variables that
	// change over the cluster's life. Pods read them with envFrom, which
	// Kubernetes resolves at every container start, so flipping the state
	// needs no template change and no rolling restart.
	KeyInitialClusterState = "ETCD_INITIAL_CLUSTER_STATE"
	KeyInitialCluster      = "ETCD_INITIAL_CLUSTER"
	KeyInitialClusterToken = "ETCD_INITIAL_CLUSTER_TOKEN"
	KeyJoinEndpoints       = "ETCD_JOIN_ENDPOINTS"

	StateNew      = "new"
	StateExisting = "existing"
)

// Labels every object of a cluster carries.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelCluster   = "etcd.ballast.dev/cluster"
	// LabelVersion on pods is the spec.version they were created for;
	// status.currentVersion is read from it.
	LabelVersion = "etcd.ballast.dev/version"

	ManagedBy = "ballast-operator"
)

// Labels of every object of cluster c.
func Labels(c *v1alpha1.EtcdCluster) map[string]string {
	return map[string]string{
		LabelName:      "ballast",
		LabelInstance:  c.Name,
		LabelManagedBy: ManagedBy,
		LabelCluster:   c.Name,
	}
}

// SelectorLabels select c's member pods. They are a subset of Labels that
// never changes, because a StatefulSet's selector is immutable.
func SelectorLabels(c *v1alpha1.EtcdCluster) map[string]string {
	return map[string]string{
		LabelName:    "ballast",
		LabelCluster: c.Name,
	}
}

// Selector is SelectorLabels as a label selector string.
func Selector(c *v1alpha1.EtcdCluster) string {
	return LabelName + "=ballast," + LabelCluster + "=" + c.Name
}

// Object names.
func HeadlessServiceName(c *v1alpha1.EtcdCluster) string { return c.Name }
func ClientServiceName(c *v1alpha1.EtcdCluster) string   { return c.Name + "-client" }
func ConfigMapName(c *v1alpha1.EtcdCluster) string       { return c.Name + "-bootstrap" }
func StatefulSetName(c *v1alpha1.EtcdCluster) string     { return c.Name }
func PDBName(c *v1alpha1.EtcdCluster) string             { return c.Name }

// PodName is the pod, and member, of ordinal i.
func PodName(c *v1alpha1.EtcdCluster, i int) string { return fmt.Sprintf("%s-%d", c.Name, i) }

// PVCName is the volume claim the StatefulSet creates for ordinal i.
func PVCName(c *v1alpha1.EtcdCluster, i int) string {
	return fmt.Sprintf("%s-%s-%d", VolumeName, c.Name, i)
}

// Ordinal parses a pod or member name of cluster c; ok is false for other
// names.
func Ordinal(c *v1alpha1.EtcdCluster, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, c.Name+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// Quorum is the majority of n voting members.
func Quorum(n int) int { return n/2 + 1 }

// Token is the initial cluster token: the cluster's name and the start of
// its UID, so a re-created cluster of the same name never accepts peers of
// the old one.
func Token(c *v1alpha1.EtcdCluster) string {
	uid := string(c.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return c.Name + "-" + uid
}

// Image is the member image of c.
func Image(c *v1alpha1.EtcdCluster, defaultRepository string) string {
	if c.Spec.Image != "" {
		return c.Spec.Image
	}
	if defaultRepository == "" {
		defaultRepository = DefaultImageRepository
	}
	return defaultRepository + ":" + c.Spec.Version
}

func meta(c *v1alpha1.EtcdCluster, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: Labels(c)}
}

// HeadlessService gives each member the stable DNS name
// <pod>.<cluster>.<namespace>.svc, published before the pod is ready so
// that peers can reach a member that is still joining.
func HeadlessService(c *v1alpha1.EtcdCluster) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(c, HeadlessServiceName(c)),
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 SelectorLabels(c),
			Ports: []corev1.ServicePort{
				{Name: "client", Port: ClientPort, TargetPort: intstr.FromString("client"), Protocol: corev1.ProtocolTCP},
				{Name: "peer", Port: PeerPort, TargetPort: intstr.FromString("peer"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// ClientService is what applications connect to: ready members only.
func ClientService(c *v1alpha1.EtcdCluster) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(c, ClientServiceName(c)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: SelectorLabels(c),
			Ports: []corev1.ServicePort{
				{Name: "client", Port: ClientPort, TargetPort: intstr.FromString("client"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// BootstrapConfigMap holds the variables that tell a starting member how to
// find its cluster. state is StateNew until the cluster has formed, then
// StateExisting for ever: every later member joins through the
// join endpoints as a learner the operator added.
func BootstrapConfigMap(c *v1alpha1.EtcdCluster, state string, urls URLs) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(c, ConfigMapName(c)),
		Data: map[string]string{
			KeyInitialClusterState: state,
			// Only read while state is new, by ordinal 0 alone.
			KeyInitialCluster:      PodName(c, 0) + "=" + urls.PeerURL(c, 0),
			KeyInitialClusterToken: Token(c),
			KeyJoinEndpoints:       strings.Join(urls.ClientEndpoints(c), ","),
		},
	}
}

// PodDisruptionBudget keeps a quorum of members available through
// voluntary disruptions (drains, node upgrades).
func PodDisruptionBudget(c *v1alpha1.EtcdCluster) *policyv1.PodDisruptionBudget {
	minAvailable := intstr.FromInt32(int32(Quorum(int(c.Spec.Size))))
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(c, PDBName(c)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &minAvailable,
			Selector:     &metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
		},
	}
}

// StatefulSetOptions are the operator-wide settings that shape the pods.
type StatefulSetOptions struct {
	// DefaultImageRepository, when spec.image is empty.
	DefaultImageRepository string
}

// StatefulSet runs the members. The operator orders membership changes
// itself, so pods start in parallel; replicas is whatever the reconciler
// decided (the StatefulSet never grows on its own).
func StatefulSet(c *v1alpha1.EtcdCluster, replicas int32, o StatefulSetOptions) *appsv1.StatefulSet {
	whenDeleted := appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if c.Spec.Storage.RetentionPolicy == v1alpha1.DeleteStorage {
		whenDeleted = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	}
	podLabels := map[string]string{}
	for k, v := range c.Spec.PodTemplate.Labels {
		podLabels[k] = v
	}
	for k, v := range Labels(c) {
		podLabels[k] = v
	}
	podLabels[LabelVersion] = c.Spec.Version

	sts := &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: meta(c, StatefulSetName(c)),
		Spec: appsv1.StatefulSetSpec{
			Replicas:            &replicas,
			ServiceName:         HeadlessServiceName(c),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			// A member removed by scaling down cannot rejoin with its old
			// data, so its volume goes with it.
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenScaled:  appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
				WhenDeleted: whenDeleted,
			},
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: c.Spec.PodTemplate.Annotations},
				Spec:       podSpec(c, o),
			},
		},
	}
	if c.Spec.Storage.Ephemeral {
		vol := corev1.Volume{Name: VolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: c.Spec.Storage.Size}}}
		sts.Spec.Template.Spec.Volumes = append(sts.Spec.Template.Spec.Volumes, vol)
	} else {
		size := resource.MustParse("8Gi")
		if c.Spec.Storage.Size != nil {
			size = *c.Spec.Storage.Size
		}
		sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: VolumeName, Labels: Labels(c)},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: c.Spec.Storage.StorageClassName,
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			},
		}}
	}
	return sts
}

func podSpec(c *v1alpha1.EtcdCluster, o StatefulSetOptions) corev1.PodSpec {
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("client")}},
			PeriodSeconds:    period,
			TimeoutSeconds:   5,
			FailureThreshold: failures,
		}
	}
	uid, nonRoot, noEscalation, readOnly := int64(65532), true, false, true
	ctr := corev1.Container{
		Name:            ContainerName,
		Image:           Image(c, o.DefaultImageRepository),
		ImagePullPolicy: c.Spec.ImagePullPolicy,
		// The image's entrypoint is the ballast binary; the role is the
		// argument, so the image's binary path is not repeated here.
		Args: []string{"node"},
		Ports: []corev1.ContainerPort{
			{Name: "client", ContainerPort: ClientPort, Protocol: corev1.ProtocolTCP},
			{Name: "peer", ContainerPort: PeerPort, Protocol: corev1.ProtocolTCP},
		},
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(c)},
		}}},
		Env:            Env(c),
		Resources:      c.Spec.Resources,
		ReadinessProbe: probe("/readyz", 5, 3),
		LivenessProbe:  probe("/livez", 10, 6),
		// A member that is waiting to be added may take a while: the
		// startup probe gives it ten minutes before liveness applies.
		StartupProbe:             probe("/livez", 10, 60),
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		VolumeMounts:             []corev1.VolumeMount{{Name: VolumeName, MountPath: MountPath}},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             &nonRoot,
			RunAsUser:                &uid,
			RunAsGroup:               &uid,
			AllowPrivilegeEscalation: &noEscalation,
			ReadOnlyRootFilesystem:   &readOnly,
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	t := c.Spec.PodTemplate
	return corev1.PodSpec{
		Containers:                []corev1.Container{ctr},
		ImagePullSecrets:          c.Spec.ImagePullSecrets,
		Affinity:                  t.Affinity,
		Tolerations:               t.Tolerations,
		TopologySpreadConstraints: t.TopologySpreadConstraints,
		NodeSelector:              t.NodeSelector,
		PriorityClassName:         t.PriorityClassName,
		// The volume's files belong to the image's user.
		SecurityContext: &corev1.PodSecurityContext{FSGroup: &uid},
	}
}

// Env is the member container's environment, apart from the bootstrap
// ConfigMap: identity and URLs from the pod's own name, then spec.options.
func Env(c *v1alpha1.EtcdCluster) []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	host := fmt.Sprintf("$(POD_NAME).%s.$(POD_NAMESPACE).svc", HeadlessServiceName(c))
	env := []corev1.EnvVar{
		field("POD_NAME", "metadata.name"),
		field("POD_NAMESPACE", "metadata.namespace"),
		{Name: "ETCD_NAME", Value: "$(POD_NAME)"},
		{Name: "ETCD_DATA_DIR", Value: DataDir},
		{Name: "ETCD_LISTEN_CLIENT_URLS", Value: fmt.Sprintf("http://0.0.0.0:%d", ClientPort)},
		{Name: "ETCD_LISTEN_PEER_URLS", Value: fmt.Sprintf("http://0.0.0.0:%d", PeerPort)},
		{Name: "ETCD_ADVERTISE_CLIENT_URLS", Value: fmt.Sprintf("http://%s:%d", host, ClientPort)},
		{Name: "ETCD_INITIAL_ADVERTISE_PEER_URLS", Value: fmt.Sprintf("http://%s:%d", host, PeerPort)},
	}
	opt := c.Spec.Options
	if opt.QuotaBackendBytes != nil {
		env = append(env, corev1.EnvVar{Name: "ETCD_QUOTA_BACKEND_BYTES", Value: strconv.FormatInt(opt.QuotaBackendBytes.Value(), 10)})
	}
	if opt.AutoCompactionMode != "" {
		env = append(env, corev1.EnvVar{Name: "ETCD_AUTO_COMPACTION_MODE", Value: strings.ToLower(opt.AutoCompactionMode)})
	}
	if opt.AutoCompactionRetention != "" {
		env = append(env, corev1.EnvVar{Name: "ETCD_AUTO_COMPACTION_RETENTION", Value: opt.AutoCompactionRetention})
	}
	if opt.SnapshotCount != nil {
		env = append(env, corev1.EnvVar{Name: "ETCD_SNAPSHOT_COUNT", Value: strconv.FormatInt(*opt.SnapshotCount, 10)})
	}
	if opt.HeartbeatIntervalMillis != nil {
		env = append(env, corev1.EnvVar{Name: "ETCD_HEARTBEAT_INTERVAL", Value: strconv.Itoa(int(*opt.HeartbeatIntervalMillis))})
	}
	if opt.ElectionTimeoutMillis != nil {
		env = append(env, corev1.EnvVar{Name: "ETCD_ELECTION_TIMEOUT", Value: strconv.Itoa(int(*opt.ElectionTimeoutMillis))})
	}
	return env
}
