package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// peerProxy stands in front of one member's peer listener. Every raft
// transport request names its sender (X-Ballast-From), so the proxy can
// drop the connections of senders on the other side of a partition, in
// both directions, while the member keeps serving clients.
type peerProxy struct {
	ln      net.Listener
	target  string // the member's real peer address
	mu      sync.Mutex
	blocked map[string]bool // sender member IDs (hex) to drop
	conns   map[net.Conn]string
}

func newPeerProxy(t *testing.T, target string) *peerProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peerProxy{ln: ln, target: target, blocked: map[string]bool{}, conns: map[net.Conn]string{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.block(nil, true) })
	return p
}

func (p *peerProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *peerProxy) serve() {
	// Accept nothing until the member listens: senders wait in the listen
	// backlog, as with a member that is starting, instead of having an
	// accepted connection dropped (which costs them a connect timeout).
	for {
		c, err := net.Dial("tcp", p.target)
		if err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond) // polls a port that offers no event
	}
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *peerProxy) handle(c net.Conn) {
	defer c.Close()
	// Read the request head byte for byte as sent: the body (a raft
	// stream) follows and is spliced through untouched.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var head bytes.Buffer
	from := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil || head.Len() > 64<<10 {
			return
		}
		head.WriteString(line)
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "X-Ballast-From") {
			from = strings.ToLower(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	p.mu.Lock()
	if p.blocked[from] {
		p.mu.Unlock()
		return
	}
	p.conns[c] = from
	p.mu.Unlock()
	defer func() { p.mu.Lock(); delete(p.conns, c); p.mu.Unlock() }()

	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	if _, err := up.Write(head.Bytes()); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, br); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// block drops (and from now on refuses) the connections of the given
// senders; all=true drops every connection.
func (p *peerProxy) block(ids []string, all bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		p.blocked[id] = true
	}
	for c, from := range p.conns {
		if all || p.blocked[from] {
			c.Close()
		}
	}
}

func (p *peerProxy) heal() {
	p.mu.Lock()
	p.blocked = map[string]bool{}
	p.mu.Unlock()
}

// startProxiedCluster starts n members that reach each other only through
// peer proxies (advertised as their peer URLs), and returns the proxies and
// the members' IDs in hex, by member.
func startProxiedCluster(t *testing.T, n int, args ...string) (*cluster, []*peerProxy, []string) {
	t.Helper()
	c := newCluster(t, n, args...)
	proxies := make([]*peerProxy, n)
	var ic []string
	for i, m := range c.members {
		proxies[i] = newPeerProxy(t, strings.TrimPrefix(m.peer, "http://"))
		m.args = append(m.args, "--initial-advertise-peer-urls", proxies[i].url())
		ic = append(ic, m.name+"="+proxies[i].url())
	}
	for _, m := range c.members {
		m.initialCluster = strings.Join(ic, ",")
	}
	c.start()
	ids := make([]string, n)
	for i, m := range c.members {
		ids[i] = fmt.Sprintf("%x", mustID(t, m))
	}
	return c, proxies, ids
}

// TestPartitionMinorityStopsMajorityContinues cuts one member of three off
// from the others: it stops answering linearizable requests, the other two
// keep serving writes, and once healed it converges to the same state.
func TestPartitionMinorityStopsMajorityContinues(t *testing.T) {
	c, proxies, ids := startProxiedCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	if _, err := c.client().Put(ctx, "before", "partition"); err != nil {
		t.Fatal(err)
	}

	// Isolate member 3 (it may be the leader: then the others elect anew).
	minority := c.members[2]
	proxies[2].block(ids[:2], false)
	proxies[0].block(ids[2:], false)
	proxies[1].block(ids[2:], false)

	mc := minority.clientv3()
	waitFor(t, 30*time.Second, "the minority to refuse linearizable reads", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := mc.Get(rctx, "before")
		return err != nil
	})
	// Serializable reads still answer from the minority's own (stale) state.
	if resp, err := mc.Get(ctx, "before", clientv3.WithSerializable()); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("serializable read on the minority: %v %v", resp, err)
	}
	// A write to the minority fails instead of hanging forever.
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_, err := mc.Put(wctx, "minority", "write")
	cancel()
	if err == nil {
		t.Fatal("the minority accepted a write")
	}
	t.Logf("write to the minority: %v", err)

	// The majority goes on.
	majority, err := clientv3.New(clientv3.Config{Endpoints: []string{c.members[0].client, c.members[1].client}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer majority.Close()
	waitFor(t, 30*time.Second, "the majority to take writes", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := majority.Put(pctx, "during", "partition")
		return err == nil
	})
	for i := 0; i < 100; i++ {
		if _, err := majority.Put(ctx, fmt.Sprintf("majority/%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}

	// Heal: the minority catches up; all members hash the same.
	for _, p := range proxies {
		p.heal()
	}
	last, err := majority.Put(ctx, "after", "heal")
	if err != nil {
		t.Fatal(err)
	}
	rev := last.Header.Revision
	waitFor(t, 30*time.Second, "the healed member to catch up", func() bool {
		resp, err := mc.Get(ctx, "after")
		return err == nil && len(resp.Kvs) == 1
	})
	var hashes []uint32
	for _, m := range c.members {
		h, err := m.clientv3().HashKV(ctx, m.client, rev)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Fatalf("HashKV at revision %d differs after healing: %v", rev, hashes)
	}
	if _, err := mc.Get(ctx, "minority"); err != nil {
		t.Fatal(err)
	}
}
