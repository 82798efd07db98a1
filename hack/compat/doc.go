// Package compat is a compatibility suite: every scenario (a table of
// etcdctl, etcdutl and client/v3 steps) runs against a real etcd server and
// against `ballast node`, each a fresh single-member cluster started with the
// same flags, and the answers must be the same once the values that
// legitimately differ between two clusters are normalised (member, cluster
// and lease IDs, raft terms, URLs, timings, file sizes).
//
// The binaries come from the environment (make compat sets them):
//
//	ETCD_BIN     real etcd (hack/tools.sh etcd)
//	ETCDCTL      etcdctl   (hack/tools.sh etcdctl)
//	ETCDUTL      etcdutl   (hack/tools.sh etcdutl)
//	BALLAST_BIN  ballast   (make build)
//
// and default to the repository's bin/ directory.
package compat
