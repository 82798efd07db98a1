package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EtcdCluster is an etcd v3 compatible cluster of `ballast node` members.
// The operator runs it as a StatefulSet, changes membership one learner at a
// time, replaces members that lost their data and keeps a
// PodDisruptionBudget at quorum.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.size,statuspath=.status.size,selectorpath=.status.selector
// +kubebuilder:resource:shortName=ec,categories=ballast
// +kubebuilder:printcolumn:name="Size",type=integer,JSONPath=`.spec.size`,description="Desired number of voting members"
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyMembers`,description="Members whose pod is ready"
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Leader",type=string,JSONPath=`.status.leader`
// +kubebuilder:printcolumn:name="Quorate",type=string,JSONPath=`.status.conditions[?(@.type=="Quorate")].status`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="DB Used %",type=integer,JSONPath=`.status.dbQuotaUsedPercent`,priority=1,description="Largest member database as a percentage of the backend quota"
// +kubebuilder:printcolumn:name="Cluster ID",type=string,JSONPath=`.status.clusterID`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EtcdCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EtcdClusterSpec   `json:"spec"`
	Status EtcdClusterStatus `json:"status,omitempty"`
}

// EtcdClusterList is a list of EtcdClusters.
//
// +kubebuilder:object:root=true
type EtcdClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EtcdCluster `json:"items"`
}

// EtcdClusterSpec is the cluster the user asks for.
//
// +kubebuilder:validation:XValidation:rule="!has(self.tls)",message="spec.tls is not supported by this operator version yet: members are served over plain http; remove spec.tls"
type EtcdClusterSpec struct {
	// Size is the number of voting members. Odd sizes tolerate the most
	// failures for their cost: 3 survives one lost member, 5 survives two.
	// The operator adds or removes one member at a time.
	//
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	Size int32 `json:"size"`

	// Version is the Ballast release the members run, e.g. "0.1.0". It is
	// the tag of the default image (see the operator's --default-image).
	//
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^v?[0-9]+\\\\.[0-9]+\\\\.[0-9]+(-[0-9A-Za-z.-]+)?$')",message="version must be a Ballast release such as 0.1.0 or v0.1.0-rc.1 (a semantic version, not a tag such as latest)"
	Version string `json:"version"`

	// Image overrides the member image (default: the operator's
	// --default-image repository, tagged with version). Use it for
	// mirrors; the image must contain the Ballast release named by version.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// ImagePullPolicy of the member container.
	//
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// ImagePullSecrets for the member pods.
	//
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// Storage is where members keep their data.
	//
	// +kubebuilder:default={}
	// +optional
	Storage StorageSpec `json:"storage,omitempty"`

	// Resources of the member container.
	//
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// PodTemplate adds to the member pods' template.
	//
	// +optional
	PodTemplate PodTemplateOverrides `json:"podTemplate,omitempty"`

	// Options are the member settings the operator lets you change; they
	// become the members' ETCD_* variables.
	//
	// +optional
	Options NodeOptions `json:"options,omitempty"`

	// TLS names the Secrets holding the client and peer certificates.
	// Reserved: this operator version refuses it (see the validation
	// message) rather than running members without the TLS asked for.
	//
	// +optional
	TLS *TLSSpec `json:"tls,omitempty"`

	// Paused stops every change the operator makes to the cluster's
	// objects and membership; status is still updated.
	//
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// StorageRetentionPolicy says what happens to the members' volumes when the
// EtcdCluster is deleted.
//
// +kubebuilder:validation:Enum=Retain;Delete
type StorageRetentionPolicy string

const (
	// RetainStorage keeps the volumes (the default): deleting the cluster
	// object by mistake does not lose the data.
	RetainStorage StorageRetentionPolicy = "Retain"
	// DeleteStorage deletes the volumes with the cluster.
	DeleteStorage StorageRetentionPolicy = "Delete"
)

// StorageSpec is either a PersistentVolumeClaim per member or, with
// ephemeral, an emptyDir (data is lost when a pod is deleted: for tests and
// caches only).
//
// +kubebuilder:validation:XValidation:rule="!(has(self.ephemeral) && self.ephemeral && has(self.storageClassName))",message="storageClassName cannot be set together with ephemeral: true"
// +kubebuilder:validation:XValidation:rule="(has(self.ephemeral) && self.ephemeral) == (has(oldSelf.ephemeral) && oldSelf.ephemeral)",message="storage.ephemeral cannot be changed after creation"
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storage.storageClassName cannot be changed after creation"
type StorageSpec struct {
	// Ephemeral keeps member data in an emptyDir instead of a volume.
	//
	// +optional
	Ephemeral bool `json:"ephemeral,omitempty"`

	// StorageClassName of the members' PersistentVolumeClaims (default:
	// the cluster's default storage class).
	//
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName *string `json:"storageClassName,omitempty"`

	// Size of each member's volume (or the emptyDir's size limit).
	//
	// +kubebuilder:default="8Gi"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="storage.size cannot be changed after creation (the StatefulSet's volume claim templates are immutable)"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// RetentionPolicy for the volumes when the EtcdCluster is deleted.
	// Volumes of members removed by scaling down are always deleted: a
	// removed member's data cannot rejoin the cluster.
	//
	// +kubebuilder:default=Retain
	// +optional
	RetentionPolicy StorageRetentionPolicy `json:"retentionPolicy,omitempty"`
}

// PodTemplateOverrides are merged into the member pods' template.
type PodTemplateOverrides struct {
	// Labels added to the pods. The operator's own labels win.
	//
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations added to the pods.
	//
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// Affinity of the pods.
	//
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// Tolerations of the pods.
	//
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// TopologySpreadConstraints of the pods.
	//
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`

	// NodeSelector of the pods.
	//
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// PriorityClassName of the pods.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// NodeOptions are typed `ballast node` settings. Unset fields keep etcd's
// defaults. A change rolls the pods one at a time.
//
// +kubebuilder:validation:XValidation:rule="(has(self.electionTimeoutMillis) ? self.electionTimeoutMillis : 1000) >= 5 * (has(self.heartbeatIntervalMillis) ? self.heartbeatIntervalMillis : 100)",message="electionTimeoutMillis (default 1000) must be at least 5 times heartbeatIntervalMillis (default 100)"
// +kubebuilder:validation:XValidation:rule="!has(self.autoCompactionRetention) || (has(self.autoCompactionMode) && self.autoCompactionMode == 'Revision') || self.autoCompactionRetention.matches('^([0-9]+|([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+)$')",message="autoCompactionRetention must be a duration such as 1h or 30m, or a whole number of hours, in Periodic mode"
// +kubebuilder:validation:XValidation:rule="!has(self.autoCompactionRetention) || !has(self.autoCompactionMode) || self.autoCompactionMode != 'Revision' || self.autoCompactionRetention.matches('^[0-9]+$')",message="autoCompactionRetention must be a whole number of revisions in Revision mode"
type NodeOptions struct {
	// QuotaBackendBytes is the database size at which the members raise
	// the NOSPACE alarm and refuse writes (--quota-backend-bytes; default
	// 2Gi).
	//
	// +optional
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self > 0 && self <= 107374182400) : (quantity(string(self)).isGreaterThan(quantity('0')) && quantity(string(self)).compareTo(quantity('100Gi')) <= 0)",message="quotaBackendBytes must be greater than 0 and at most 100Gi"
	QuotaBackendBytes *resource.Quantity `json:"quotaBackendBytes,omitempty"`

	// AutoCompactionMode is Periodic (retention is a time window) or
	// Revision (retention is a number of revisions).
	//
	// +optional
	// +kubebuilder:validation:Enum=Periodic;Revision
	AutoCompactionMode string `json:"autoCompactionMode,omitempty"`

	// AutoCompactionRetention, e.g. "1h" (Periodic) or "10000"
	// (Revision). "0" turns auto-compaction off.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=32
	AutoCompactionRetention string `json:"autoCompactionRetention,omitempty"`

	// SnapshotCount is the number of applied entries between raft
	// snapshots (--snapshot-count).
	//
	// +optional
	// +kubebuilder:validation:Minimum=1
	SnapshotCount *int64 `json:"snapshotCount,omitempty"`

	// HeartbeatIntervalMillis is the raft heartbeat interval in
	// milliseconds (--heartbeat-interval; default 100).
	//
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=10000
	HeartbeatIntervalMillis *int32 `json:"heartbeatIntervalMillis,omitempty"`

	// ElectionTimeoutMillis is the raft election timeout in milliseconds
	// (--election-timeout; default 1000).
	//
	// +optional
	// +kubebuilder:validation:Minimum=50
	// +kubebuilder:validation:Maximum=50000
	ElectionTimeoutMillis *int32 `json:"electionTimeoutMillis,omitempty"`
}

// TLSSpec names kubernetes.io/tls Secrets (with ca.crt) for the members.
type TLSSpec struct {
	// ClientSecretName serves the client port.
	//
	// +optional
	ClientSecretName string `json:"clientSecretName,omitempty"`

	// PeerSecretName secures member-to-member traffic.
	//
	// +optional
	PeerSecretName string `json:"peerSecretName,omitempty"`
}

// ClusterPhase is a one-word summary of the cluster; the conditions say why.
type ClusterPhase string

const (
	// PhaseCreating: the first member has not formed the cluster yet.
	PhaseCreating ClusterPhase = "Creating"
	// PhaseRunning: size members, all healthy.
	PhaseRunning ClusterPhase = "Running"
	// PhaseScaling: members are being added, promoted or removed.
	PhaseScaling ClusterPhase = "Scaling"
	// PhaseRepairing: a member that lost its data is being replaced.
	PhaseRepairing ClusterPhase = "Repairing"
	// PhaseDegraded: the cluster has quorum but a member is unhealthy or
	// an alarm is raised.
	PhaseDegraded ClusterPhase = "Degraded"
	// PhaseUnavailable: the cluster has no quorum.
	PhaseUnavailable ClusterPhase = "Unavailable"
	// PhasePaused: spec.paused is set.
	PhasePaused ClusterPhase = "Paused"
)

// Condition types of an EtcdCluster.
const (
	// ConditionAvailable: a quorum of voting members is healthy, so the
	// cluster serves linearizable requests.
	ConditionAvailable = "Available"
	// ConditionProgressing: the operator is changing the cluster towards
	// its spec (reason says what it does or waits for).
	ConditionProgressing = "Progressing"
	// ConditionDegraded: something needs attention although the cluster
	// may serve (an unhealthy member, an alarm, a member to replace).
	ConditionDegraded = "Degraded"
	// ConditionQuorate: the cluster has a leader and answers a
	// linearizable member list.
	ConditionQuorate = "Quorate"
)

// EtcdClusterStatus is what the operator last observed.
type EtcdClusterStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	//
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase summarises the conditions.
	//
	// +optional
	Phase ClusterPhase `json:"phase,omitempty"`

	// Size is the number of members in the member list, learners
	// included (the scale subresource's status replicas).
	//
	// +optional
	Size int32 `json:"size,omitempty"`

	// Selector selects the member pods (for the scale subresource).
	//
	// +optional
	Selector string `json:"selector,omitempty"`

	// Members as the cluster lists them, with their health.
	//
	// +optional
	// +listType=map
	// +listMapKey=id
	Members []MemberStatus `json:"members,omitempty"`

	// ReadyMembers counts members whose pod is ready.
	//
	// +optional
	ReadyMembers int32 `json:"readyMembers,omitempty"`

	// Leader is the name of the leading member.
	//
	// +optional
	Leader string `json:"leader,omitempty"`

	// ClusterID, in hex, once the cluster has formed.
	//
	// +optional
	ClusterID string `json:"clusterID,omitempty"`

	// CurrentVersion is the spec.version every member pod runs; empty
	// while pods run different versions.
	//
	// +optional
	CurrentVersion string `json:"currentVersion,omitempty"`

	// DBSizeBytes is the largest member database file.
	//
	// +optional
	DBSizeBytes int64 `json:"dbSizeBytes,omitempty"`

	// DBSizeInUseBytes is the largest logical database size (what
	// defragmentation would shrink the file to).
	//
	// +optional
	DBSizeInUseBytes int64 `json:"dbSizeInUseBytes,omitempty"`

	// QuotaBackendBytes is the quota the members enforce.
	//
	// +optional
	QuotaBackendBytes int64 `json:"quotaBackendBytes,omitempty"`

	// DBQuotaUsedPercent is DBSizeBytes as a percentage of the quota.
	//
	// +optional
	DBQuotaUsedPercent int32 `json:"dbQuotaUsedPercent,omitempty"`

	// Alarms raised in the cluster (NOSPACE, CORRUPT).
	//
	// +optional
	Alarms []AlarmStatus `json:"alarms,omitempty"`

	// Conditions: Available, Progressing, Degraded, Quorate.
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MemberStatus is one member of the cluster.
type MemberStatus struct {
	// Name of the member (its pod); empty until an added member starts.
	//
	// +optional
	Name string `json:"name,omitempty"`

	// ID of the member, in hex.
	ID string `json:"id"`

	// PeerURLs of the member.
	//
	// +optional
	PeerURLs []string `json:"peerURLs,omitempty"`

	// ClientURLs of the member; empty until it starts.
	//
	// +optional
	ClientURLs []string `json:"clientURLs,omitempty"`

	// Learner is true for a member that does not vote yet.
	//
	// +optional
	Learner bool `json:"learner,omitempty"`

	// Leader is true for the member that leads.
	//
	// +optional
	Leader bool `json:"leader,omitempty"`

	// Healthy is true when the member answered a status request and
	// knows a leader.
	//
	// +optional
	Healthy bool `json:"healthy,omitempty"`

	// Version is the etcd API version the member reports.
	//
	// +optional
	Version string `json:"version,omitempty"`

	// DBSizeBytes is the member's database file size.
	//
	// +optional
	DBSizeBytes int64 `json:"dbSizeBytes,omitempty"`
}

// AlarmStatus is one raised alarm.
type AlarmStatus struct {
	// MemberID, in hex, of the member that raised it.
	MemberID string `json:"memberID"`

	// Type is NOSPACE or CORRUPT.
	Type string `json:"type"`
}
