//go:build tools

// Package tools pins the etcd server module, whose main package is built as
// the baseline binary when hack/tools has not provided bin/etcd.
package tools

import _ "go.etcd.io/etcd/server/v3"
