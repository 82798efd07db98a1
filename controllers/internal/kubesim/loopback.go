package kubesim

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"

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

// freePorts returns n distinct loopback ports, each handed out once per
// process and free when it was handed out. They come from below the
// kernel's ephemeral range (32768 and up): a port taken with "listen on :0"
// and closed again can become the source port of some client connection
// before the member meant to have it binds it. The start is random per
// process, so test binaries running at once rarely meet.
func freePorts(n int) []int {
	var ports []int
	for len(ports) < n {
		p := int(nextPort.Add(1))
		if p >= portRangeEnd {
			panic(fmt.Sprintf("kubesim: ran out of test ports below %d", portRangeEnd))
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // held by another process
		}
		l.Close()
		ports = append(ports, p)
	}
	return ports
}

const portRangeStart, portRangeEnd = 12000, 32000

var nextPort = func() *atomic.Int64 {
	var p atomic.Int64
	p.Store(int64(portRangeStart + rand.IntN(portRangeEnd-portRangeStart-4000)))
	return &p
}()
