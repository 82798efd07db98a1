package membership

import (
	"testing"
	"time"
)

func TestComputeIDsAreDeterministic(t *testing.T) {
	a := ComputeMemberID([]string{"http://b:2380", "http://a:2380"}, "tok", nil)
	b := ComputeMemberID([]string{"http://a:2380", "http://b:2380"}, "tok", nil)
	if a != b {
		t.Fatalf("URL order changed the ID: %x != %x", a, b)
	}
	if c := ComputeMemberID([]string{"http://a:2380", "http://b:2380"}, "other", nil); c == a {
		t.Fatalf("token did not change the ID")
	}
	now := time.Unix(1700000000, 0)
	if d := ComputeMemberID([]string{"http://a:2380"}, "tok", &now); d == ComputeMemberID([]string{"http://a:2380"}, "tok", nil) {
		t.Fatalf("time did not change the ID")
	}
	if ComputeClusterID([]uint64{3, 1, 2}) != ComputeClusterID([]uint64{1, 2, 3}) {
		t.Fatalf("cluster ID depends on member order")
	}
}

func TestIDStringRoundTrip(t *testing.T) {
	for _, id := range []uint64{1, 0x8e9e05c52164694d, ^uint64(0)} {
		got, err := ParseID(IDString(id))
		if err != nil || got != id {
			t.Fatalf("ParseID(IDString(%x)) = %x, %v", id, got, err)
		}
	}
}

// A default etcd member (name "default", peer http://localhost:2380, token
// etcd-cluster) is known by these IDs; ours must match them.
func TestDefaultMemberMatchesEtcd(t *testing.T) {
	id := ComputeMemberID([]string{"http://localhost:2380"}, "etcd-cluster", nil)
	if id != 0x8e9e05c52164694d {
		t.Fatalf("member ID = %x, want 8e9e05c52164694d", id)
	}
	if cid := ComputeClusterID([]uint64{id}); cid != 0xcdf818194e3a8c32 {
		t.Fatalf("cluster ID = %x, want cdf818194e3a8c32", cid)
	}
}
