// Package kube runs a real kube-apiserver, built from the Kubernetes release
// pinned in this module's go.mod (hack/kube/build.sh), on a single `ballast
// node` and drives it with client-go. The test is in apiserver_test.go; this
// package has no non-test code. See README.md.
package kube
