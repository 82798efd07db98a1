package kubesim

import (
	"fmt"
	"net"
	"sync"

	"github.com/ballastdb/ballast/api/v1alpha1"
	"github.com/ballastdb/ballast/controllers/desired"
)

// Ordinals is how many ordinals per cluster get loopback ports: size is at
// most 9, and a scale-down can leave one member above it.
const Ordinals = 10

// Loopback is the URL policy of the tests: every ordinal of every cluster
// gets a client and a peer port on 127.0.0.1, chosen on first use. The
// reconciler under test and the simulator share one Loopback, so the peer
// URL the operator adds is the one the member advertises.
type Loopback struct {
	mu    sync.Mutex
	ports map[string][]int // namespace/name → client, peer, client, peer, ...
}

var _ desired.URLs = (*Loopback)(nil)

// NewLoopback returns an empty policy.
func NewLoopback() *Loopback { return &Loopback{ports: map[string][]int{}} }

func (l *Loopback) port(c *v1alpha1.EtcdCluster, i int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := c.Namespace + "/" + c.Name
	ps, ok := l.ports[key]
	if !ok {
		ps = freePorts(2 * desired.MaxOrdinals)
		l.ports[key] = ps
	}
	if i >= len(ps) {
		panic(fmt.Sprintf("kubesim: ordinal port %d out of range", i))
	}
	return ps[i]
}

func (l *Loopback) ClientURL(c *v1alpha1.EtcdCluster, ordinal int) string {
	return fmt.Sprintf("http://127.0.0.1:%d", l.port(c, 2*ordinal))
}

func (l *Loopback) PeerURL(c *v1alpha1.EtcdCluster, ordinal int) string {
	return fmt.Sprintf("http://127.0.0.1:%d", l.port(c, 2*ordinal+1))
}

// ClientEndpoints are every ordinal's client URL: what a client Service
// would route to.
func (l *Loopback) ClientEndpoints(c *v1alpha1.EtcdCluster) []string {
	out := make([]string, 0, Ordinals)
	for i := 0; i < Ordinals; i++ {
		out = append(out, l.ClientURL(c, i))
	}
	return out
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) []int {
	var ls []net.Listener
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(fmt.Sprintf("kubesim: no free port: %v", err))
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
