package desired

import (
	"fmt"

	"github.com/ballastdb/ballast/api/v1alpha1"
)

// URLs is how members and the operator reach each other. In a cluster these
// are DNS names of the headless and client Services (DNS); tests put
// members on loopback ports instead. The reconciler uses it for the peer
// URL of a member it adds, for its own client connections and for the
// bootstrap ConfigMap, so the three always agree.
type URLs interface {
	// PeerURL is the peer URL member ordinal advertises.
	PeerURL(c *v1alpha1.EtcdCluster, ordinal int) string
	// ClientURL is the client URL member ordinal advertises.
	ClientURL(c *v1alpha1.EtcdCluster, ordinal int) string
	// ClientEndpoints reach the cluster as a whole.
	ClientEndpoints(c *v1alpha1.EtcdCluster) []string
}

// DNS is the URL policy of a real Kubernetes cluster:
// http://<pod>.<cluster>.<namespace>.svc:2380 for peers and the client
// Service for the cluster.
type DNS struct{}

var _ URLs = DNS{}

func (DNS) PeerURL(c *v1alpha1.EtcdCluster, ordinal int) string {
	return fmt.Sprintf("http://%s.%s.%s.svc:%d", PodName(c, ordinal), HeadlessServiceName(c), c.Namespace, PeerPort)
}

func (DNS) ClientURL(c *v1alpha1.EtcdCluster, ordinal int) string {
	return fmt.Sprintf("http://%s.%s.%s.svc:%d", PodName(c, ordinal), HeadlessServiceName(c), c.Namespace, ClientPort)
}

func (DNS) ClientEndpoints(c *v1alpha1.EtcdCluster) []string {
	return []string{fmt.Sprintf("http://%s.%s.svc:%d", ClientServiceName(c), c.Namespace, ClientPort)}
}

// OrdinalOfPeerURL finds the ordinal whose peer URL is u, among the
// ordinals a cluster can have (spec.size is at most 9, and a scale-down may
// leave members above it).
func OrdinalOfPeerURL(urls URLs, c *v1alpha1.EtcdCluster, u string) (int, bool) {
	for i := 0; i < MaxOrdinals; i++ {
		if urls.PeerURL(c, i) == u {
			return i, true
		}
	}
	return 0, false
}

// MaxOrdinals bounds the ordinals the operator ever creates: spec.size is
// at most 9 and one member is added at a time.
const MaxOrdinals = 16
