package config

// Feature gate names, as etcd 3.6/3.7 spells them for --feature-gates.
const (
	FeatureCompactHashCheck             = "CompactHashCheck"
	FeatureFastLeaseKeepAlive           = "FastLeaseKeepAlive"
	FeatureInitialCorruptCheck          = "InitialCorruptCheck"
	FeatureLeaseCheckpoint              = "LeaseCheckpoint"
	FeatureLeaseCheckpointPersist       = "LeaseCheckpointPersist"
	FeaturePriorityRequest              = "PriorityRequest"
	FeatureSetMemberLocalAddr           = "SetMemberLocalAddr"
	FeatureStopGRPCServiceOnDefrag      = "StopGRPCServiceOnDefrag"
	FeatureTxnModeWriteWithSharedBuffer = "TxnModeWriteWithSharedBuffer"
)

type featureSpec struct {
	def   bool
	alpha bool // false means beta
}

// knownFeatures are etcd's server gates with their defaults and stages.
// Ballast accepts all of them so manifests keep working; which ones change
// behaviour is up to the packages that ask FeatureEnabled.
var knownFeatures = map[string]featureSpec{
	FeatureCompactHashCheck:             {def: false, alpha: true},
	FeatureFastLeaseKeepAlive:           {def: true, alpha: false},
	FeatureInitialCorruptCheck:          {def: false, alpha: true},
	FeatureLeaseCheckpoint:              {def: false, alpha: true},
	FeatureLeaseCheckpointPersist:       {def: false, alpha: true},
	FeaturePriorityRequest:              {def: false, alpha: true},
	FeatureSetMemberLocalAddr:           {def: false, alpha: true},
	FeatureStopGRPCServiceOnDefrag:      {def: false, alpha: true},
	FeatureTxnModeWriteWithSharedBuffer: {def: true, alpha: false},
}

// gateFlags maps etcd 3.5's boolean --experimental-* flags to the feature
// gates etcd 3.6 replaced them with. kubeadm still writes some of them.
var gateFlags = map[string]string{
	"experimental-compact-hash-check-enabled":        FeatureCompactHashCheck,
	"experimental-enable-lease-checkpoint":           FeatureLeaseCheckpoint,
	"experimental-enable-lease-checkpoint-persist":   FeatureLeaseCheckpointPersist,
	"experimental-initial-corrupt-check":             FeatureInitialCorruptCheck,
	"experimental-stop-grpc-service-on-defrag":       FeatureStopGRPCServiceOnDefrag,
	"experimental-txn-mode-write-with-shared-buffer": FeatureTxnModeWriteWithSharedBuffer,
}

// FeatureEnabled reports whether the named gate is on: an explicit setting
// wins, then AllAlpha/AllBeta for the gate's stage, then etcd's default.
// Unknown names are off.
func (c *Config) FeatureEnabled(name string) bool {
	if v, ok := c.FeatureGates[name]; ok {
		return v
	}
	spec, ok := knownFeatures[name]
	if !ok {
		return false
	}
	all := "AllBeta"
	if spec.alpha {
		all = "AllAlpha"
	}
	if v, ok := c.FeatureGates[all]; ok {
		return v
	}
	return spec.def
}
