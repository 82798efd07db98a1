package membership

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/ballastdb/ballast/node/backend"
)

// clusterVersionKey is the key of the cluster version in the "cluster" bucket.
var clusterVersionKey = []byte("clusterVersion")

// Cluster is the membership as this member knows it. Changes are made only by
// the apply loop (so every member makes them in the same order); reads may
// come from anywhere.
type Cluster struct {
	mu      sync.RWMutex
	id      uint64
	members map[uint64]*Member
	removed map[uint64]bool
	version string
	// downgrade: see downgrade.go.
	downgrade Downgrade
}

// New returns a cluster with the given ID and founding members.
func New(id uint64, members []*Member) *Cluster {
	c := &Cluster{id: id, members: map[uint64]*Member{}, removed: map[uint64]bool{}}
	for _, m := range members {
		c.members[m.ID] = m
	}
	return c
}

// Load reads the membership stored in the backend. The cluster ID is not
// stored there by etcd; the caller supplies it (from the WAL metadata).
func Load(be *backend.Backend, id uint64) (*Cluster, error) {
	c := New(id, nil)
	var err error
	be.Range(backend.Members, []byte{0}, []byte{0xff}, 0, func(k, v []byte) bool {
		mid, perr := ParseID(string(k))
		if perr != nil {
			err = fmt.Errorf("membership: bad member key %q in the backend: %w", k, perr)
			return false
		}
		m := &Member{}
		if jerr := json.Unmarshal(v, m); jerr != nil {
			err = fmt.Errorf("membership: bad member %s in the backend: %w", k, jerr)
			return false
		}
		m.ID = mid
		c.members[mid] = m
		return true
	})
	if err != nil {
		return nil, err
	}
	be.Range(backend.MembersRemoved, []byte{0}, []byte{0xff}, 0, func(k, _ []byte) bool {
		if mid, perr := ParseID(string(k)); perr == nil {
			c.removed[mid] = true
		}
		return true
	})
	if v, ok := be.Get(backend.Cluster, clusterVersionKey); ok {
		c.version = string(v)
	}
	c.LoadDowngrade(be)
	return c, nil
}

// ID is the cluster ID.
func (c *Cluster) ID() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.id
}

// SetID sets the cluster ID (once, when it is learnt).
func (c *Cluster) SetID(id uint64) {
	c.mu.Lock()
	c.id = id
	c.mu.Unlock()
}

// Members returns the members sorted by ID. The result must not be modified.
func (c *Cluster) Members() []*Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ms := make([]*Member, 0, len(c.members))
	for _, m := range c.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return ms
}

// Len is the number of members.
func (c *Cluster) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.members)
}

// Member returns the member with id, or nil.
func (c *Cluster) Member(id uint64) *Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.members[id]
}

// IsRemoved tells whether id was a member and has been removed.
func (c *Cluster) IsRemoved(id uint64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.removed[id]
}

// Version is the cluster version stored in the backend ("" if none yet).
func (c *Cluster) Version() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.version
}

// Add records a member (new or updated) in memory and in tx.
func (c *Cluster) Add(tx *backend.BatchTx, m *Member) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.members[m.ID] = m
	c.mu.Unlock()
	tx.Put(backend.Members, []byte(IDString(m.ID)), v)
	return nil
}

// Remove drops a member; its ID can never come back.
func (c *Cluster) Remove(tx *backend.BatchTx, id uint64) {
	c.mu.Lock()
	delete(c.members, id)
	c.removed[id] = true
	c.mu.Unlock()
	key := []byte(IDString(id))
	tx.Delete(backend.Members, key)
	tx.Put(backend.MembersRemoved, key, []byte("removed"))
}

// SetVersion records the cluster version.
func (c *Cluster) SetVersion(tx *backend.BatchTx, v string) {
	c.mu.Lock()
	c.version = v
	c.mu.Unlock()
	tx.Put(backend.Cluster, clusterVersionKey, []byte(v))
}
