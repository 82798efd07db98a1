// Package membership holds who is in the cluster: member identities, their
// URLs, and how they are stored in the backend in etcd's layout (bucket
// "members", key = member ID in hex, value = JSON), so a snapshot carries the
// membership exactly as etcd's does.
package membership

import (
	"crypto/sha1"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Member is one member of the cluster. Its JSON form is etcd's.
type Member struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// IDString is how etcd prints and keys a member ID: lower-case hex.
func IDString(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseID reads an ID printed by IDString.
func ParseID(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }

// ComputeMemberID derives a member's ID the way etcd does, so that the same
// flags give the same IDs on etcd and Ballast: the first 8 bytes of the SHA-1
// of the sorted peer URLs, the cluster token and, for a member added to a
// running cluster, the time it was added.
func ComputeMemberID(peerURLs []string, token string, now *time.Time) uint64 {
	urls := slices.Clone(peerURLs)
	slices.Sort(urls)
	b := []byte(strings.Join(urls, ""))
	b = append(b, token...)
	if now != nil {
		b = strconv.AppendInt(b, now.Unix(), 10)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// ComputeClusterID derives the cluster ID from the IDs of the founding
// members, as etcd does: the first 8 bytes of the SHA-1 of the sorted IDs,
// each as 8 big-endian bytes.
func ComputeClusterID(memberIDs []uint64) uint64 {
	ids := slices.Clone(memberIDs)
	slices.Sort(ids)
	b := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}
