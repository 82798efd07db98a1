// Package version holds the versions a Ballast binary reports.
//
// Two versions exist on purpose: clients such as kube-apiserver read the
// etcd API version from Maintenance/Status and gate features on it as a
// semver, so APIVersion must name the etcd release whose API Ballast
// implements; Version is Ballast's own release and says nothing about the
// wire API.
package version

import "runtime"

// APIVersion is the etcd API version Ballast implements. It is reported as
// Status.version and printed as "etcd Version". kube-apiserver disables
// watch-progress requests for versions older than 3.4.31 or within
// 3.5.0–3.5.13, so this must stay at 3.6.0 or later.
const APIVersion = "3.6.0"

// Version is Ballast's own version. Release builds override it with
// -ldflags "-X github.com/ballastdb/ballast/node/version.Version=...".
var Version = "0.1.0-dev"

// GitSHA is the commit the binary was built from, set with
// -ldflags "-X github.com/ballastdb/ballast/node/version.GitSHA=...".
var GitSHA = "Not provided (use make build)"

// GoVersion is the Go toolchain that built the binary.
func GoVersion() string { return runtime.Version() }

// Platform is the binary's GOOS/GOARCH, e.g. "linux/amd64".
func Platform() string { return runtime.GOOS + "/" + runtime.GOARCH }
