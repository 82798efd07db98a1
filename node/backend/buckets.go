package backend

import "bytes"

// Bucket names as etcd spells them (server/storage/schema). They are part of
// the on-disk format and must never change.
var (
	Key            = []byte("key")
	Meta           = []byte("meta")
	Lease          = []byte("lease")
	Alarm          = []byte("alarm")
	Cluster        = []byte("cluster")
	Members        = []byte("members")
	MembersRemoved = []byte("members_removed")
	Auth           = []byte("auth")
	AuthUsers      = []byte("authUsers")
	AuthRoles      = []byte("authRoles")
)

// allBuckets lists every bucket Open creates. The key bucket comes first
// because it is by far the most read, and lookups scan this list.
var allBuckets = [...][]byte{Key, Meta, Lease, Alarm, Cluster, Members, MembersRemoved, Auth, AuthUsers, AuthRoles}

// bucketIndex returns the position of name in allBuckets, or -1.
func bucketIndex(name []byte) int {
	for i, b := range allBuckets {
		if bytes.Equal(b, name) {
			return i
		}
	}
	return -1
}

// mustBucketIndex is bucketIndex for callers that pass one of the exported
// names; anything else is a programming error.
func mustBucketIndex(name []byte) int {
	i := bucketIndex(name)
	if i < 0 {
		panic("backend: unknown bucket " + string(name))
	}
	return i
}
