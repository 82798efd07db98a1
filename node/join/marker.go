// Package join lets a member with an empty data directory join a running
// cluster by asking it, instead of being told its --initial-cluster: the
// step inside a Kubernetes pod that turns "I am pod N of cluster C" into the
// flags a new, added or restarted member needs.
package join

// ReplaceMarker starts the termination message a member writes when it
// cannot go on as the member the cluster knows it as (its data is gone, or
// the cluster removed it). The operator reads it from the pod's container
// status and replaces the member: remove it, add it back as a new learner
// with a fresh volume.
const ReplaceMarker = "ballast-replace-member:"
