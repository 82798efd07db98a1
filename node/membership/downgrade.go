package membership

import (
	"encoding/json"

	"github.com/ballastdb/ballast/node/backend"
)

// downgradeKey is the key of the downgrade state in the "cluster" bucket,
// as etcd names it.
var downgradeKey = []byte("downgrade")

// Downgrade is the cluster's downgrade state, stored as etcd stores it: the
// JSON {"target-version":"3.5.0","enabled":true}. A cancelled (or never
// started) downgrade is {"target-version":"","enabled":false}.
type Downgrade struct {
	TargetVersion string `json:"target-version"`
	Enabled       bool   `json:"enabled"`
}

// Downgrade is the downgrade state as last applied.
func (c *Cluster) Downgrade() Downgrade {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.downgrade
}

// SetDowngrade records the downgrade state, in memory and in tx. Only the
// apply loop calls it.
func (c *Cluster) SetDowngrade(tx *backend.BatchTx, d Downgrade) error {
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.downgrade = d
	c.mu.Unlock()
	tx.Put(backend.Cluster, downgradeKey, v)
	return nil
}

// LoadDowngrade reads the downgrade state from be (at start-up, and when a
// snapshot replaced the backend). A missing or unreadable value is no
// downgrade, as etcd reads it.
func (c *Cluster) LoadDowngrade(be *backend.Backend) {
	var d Downgrade
	if v, ok := be.Get(backend.Cluster, downgradeKey); ok {
		if json.Unmarshal(v, &d) != nil {
			d = Downgrade{}
		}
	}
	c.mu.Lock()
	c.downgrade = d
	c.mu.Unlock()
}
