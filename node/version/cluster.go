package version

import (
	"errors"
	"fmt"

	"github.com/coreos/go-semver/semver"
)

// Cluster versions and downgrades follow etcd's rules
// (server/etcdserver/version): the cluster version is the lowest server
// version among the members, kept to major.minor.0 and recorded through
// raft by the leader; it only ever rises, except during a downgrade, which
// lowers it by exactly one minor version to the target the operator asked
// for, once every member can run at that version.

// MinClusterVersion is the cluster version etcd records when it does not
// yet know every member's version.
const MinClusterVersion = "3.0.0"

// ErrInvalidDowngradeTarget: a downgrade (enabled) whose target is not
// one minor below both the cluster version and the lowest member version.
var ErrInvalidDowngradeTarget = errors.New("invalid downgrade target")

// Server is APIVersion as a semantic version.
func Server() *semver.Version { return semver.Must(semver.NewVersion(APIVersion)) }

// MajorMinor drops the patch level and any pre-release or build suffix.
func MajorMinor(v *semver.Version) *semver.Version {
	return &semver.Version{Major: v.Major, Minor: v.Minor}
}

// ParseTarget reads a downgrade target as etcd does: a semantic version or
// major.minor ("3.5.2", "3.5"), of which only major.minor counts. ok is
// false for anything else ("v3.5", "3", "abc").
func ParseTarget(s string) (v *semver.Version, ok bool) {
	v, err := semver.NewVersion(s)
	if err != nil {
		if v, err = semver.NewVersion(s + ".0"); err != nil {
			return nil, false
		}
	}
	return MajorMinor(v), true
}

// AllowedDowngrade is the one version a cluster at v may downgrade to: one
// minor lower.
func AllowedDowngrade(v *semver.Version) *semver.Version {
	return &semver.Version{Major: v.Major, Minor: v.Minor - 1}
}

// isValidDowngrade: may a cluster (or a member) at from run at to?
func isValidDowngrade(from, to *semver.Version) bool {
	return to.Equal(*AllowedDowngrade(from))
}

// Cluster renders a version as major.minor, as etcd reports a cluster
// version in DowngradeResponse.
func Cluster(v *semver.Version) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// MinServer is the lowest of the members' server versions, nil when one
// of them is unknown (nil) or unreadable: then nothing may be decided.
func MinServer(versions []string) *semver.Version {
	var lowest *semver.Version
	for _, s := range versions {
		v, err := semver.NewVersion(s)
		if s == "" || err != nil {
			return nil
		}
		if lowest == nil || v.LessThan(*lowest) {
			lowest = v
		}
	}
	return lowest
}

// DecideCluster is the leader's decision, with cluster the recorded
// cluster version (nil if none yet), minServer the lowest member version
// (nil if unknown) and target the downgrade target while a downgrade is
// enabled (else nil). It returns the version to record, or nil to leave
// the cluster version as it is.
//
// Without a downgrade the version only rises, within its major version,
// to the lowest member's major.minor. With one, the cluster moves to the
// target once the target is one minor below both the cluster version and
// every member's version.
func DecideCluster(cluster, minServer, target *semver.Version) (*semver.Version, error) {
	if cluster == nil {
		if minServer != nil {
			return MajorMinor(minServer), nil
		}
		return semver.Must(semver.NewVersion(MinClusterVersion)), nil
	}
	if minServer == nil {
		return nil, nil
	}
	if target != nil {
		switch {
		case target.Equal(*cluster):
			return nil, nil
		case !isValidDowngrade(cluster, target), !isValidDowngrade(MajorMinor(minServer), target):
			return nil, ErrInvalidDowngradeTarget
		}
		return target, nil
	}
	next := MajorMinor(minServer)
	if cluster.LessThan(*next) && cluster.Major == next.Major {
		return next, nil
	}
	return nil, nil
}

// DowngradeDone reports whether every member already runs at the
// downgrade target's major.minor, so that the downgrade is over and may be
// cancelled (etcd's monitorDowngrade). An unknown version (nil or
// unreadable) means not yet.
func DowngradeDone(target *semver.Version, versions []string) bool {
	for _, s := range versions {
		v, err := semver.NewVersion(s)
		if s == "" || err != nil || !MajorMinor(v).Equal(*MajorMinor(target)) {
			return false
		}
	}
	return true
}
