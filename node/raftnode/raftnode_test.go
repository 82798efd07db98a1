package raftnode

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// memPersister records what the loop persisted, so tests can check that
// nothing was handed to the applier before it was saved.
type memPersister struct {
	mu    sync.Mutex
	ents  []*raftpb.Entry
	hs    *raftpb.HardState
	snaps int
}

func (p *memPersister) Save(st *raftpb.HardState, ents []*raftpb.Entry, _ bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !raft.IsEmptyHardState(st) {
		p.hs = proto.Clone(st).(*raftpb.HardState)
	}
	for _, e := range ents {
		// Later entries with the same or lower index replace the tail.
		for len(p.ents) > 0 && p.ents[len(p.ents)-1].GetIndex() >= e.GetIndex() {
			p.ents = p.ents[:len(p.ents)-1]
		}
		p.ents = append(p.ents, e)
	}
	return nil
}

func (p *memPersister) SaveSnapshot(*raftpb.Snapshot) error {
	p.mu.Lock()
	p.snaps++
	p.mu.Unlock()
	return nil
}

func (p *memPersister) lastIndex() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ents) == 0 {
		return 0
	}
	return p.ents[len(p.ents)-1].GetIndex()
}

// network delivers messages between in-process nodes.
type network struct {
	mu    sync.Mutex
	nodes map[uint64]*Node
	cut   map[uint64]bool // messages to or from these IDs are dropped
}

type netTransport struct {
	net *network
	id  uint64
}

func (t *netTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		t.net.mu.Lock()
		to := t.net.nodes[m.GetTo()]
		dropped := t.net.cut[m.GetTo()] || t.net.cut[t.id]
		t.net.mu.Unlock()
		if to == nil || dropped {
			continue
		}
		// Step may block briefly; never block the sender's loop on it.
		go func(m *raftpb.Message) { _ = to.Step(context.Background(), m) }(m)
	}
}

func startNode(t *testing.T, id uint64, peers []raft.Peer, tr Transport) (*Node, *memPersister) {
	t.Helper()
	st := raft.NewMemoryStorage()
	p := &memPersister{}
	n := Start(Config{
		Raft: &raft.Config{
			ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, CheckQuorum: true, PreVote: true,
		},
		Storage:      st,
		Peers:        peers,
		TickInterval: 5 * time.Millisecond,
		Persister:    p,
		Transport:    tr,
	})
	t.Cleanup(n.Stop)
	return n, p
}

// applyLoop consumes committed batches, applies conf changes, and reports the
// data of normal entries on out.
func applyLoop(n *Node, p *memPersister, out chan<- string, t *testing.T) {
	for c := range n.Committed() {
		if c.WaitPersisted {
			<-c.Persisted
		}
		for _, e := range c.Entries {
			if e.GetIndex() > p.lastIndex() {
				t.Errorf("entry %d handed to the applier before it was persisted", e.GetIndex())
			}
			switch e.GetType() {
			case raftpb.EntryConfChange:
				cc := &raftpb.ConfChange{}
				if err := proto.Unmarshal(e.GetData(), cc); err != nil {
					t.Errorf("bad conf change: %v", err)
				}
				n.ApplyConfChange(cc)
			case raftpb.EntryNormal:
				if len(e.GetData()) > 0 && out != nil {
					out <- string(e.GetData())
				}
			}
		}
		c.Applied()
	}
}

func TestSingleMemberCommitsProposals(t *testing.T) {
	n, p := startNode(t, 1, []raft.Peer{{ID: 1}}, nil)
	out := make(chan string, 100)
	go applyLoop(n, p, out, t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatalf("no leader: %v", err)
	}
	if n.Leader() != 1 {
		t.Fatalf("leader = %d, want 1", n.Leader())
	}
	for i := 0; i < 20; i++ {
		if err := n.Propose(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		select {
		case got := <-out:
			if got != fmt.Sprint(i) {
				t.Fatalf("entry %d = %q, want %q", i, got, fmt.Sprint(i))
			}
		case <-ctx.Done():
			t.Fatalf("entry %d never committed", i)
		}
	}
	if n.Term() == 0 || n.CommittedIndex() == 0 {
		t.Fatalf("term %d, committed %d: both must be set", n.Term(), n.CommittedIndex())
	}
}

func TestReadIndexAnswered(t *testing.T) {
	n, p := startNode(t, 1, []raft.Peer{{ID: 1}}, nil)
	go applyLoop(n, p, nil, t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	// A fresh leader answers ReadIndex only after committing an entry of its
	// term; raft takes care of that, we only wait for the answer.
	if err := n.ReadIndex(ctx, []byte("req-1")); err != nil {
		t.Fatal(err)
	}
	select {
	case rs := <-n.ReadStates():
		if string(rs.RequestCtx) != "req-1" || rs.Index == 0 {
			t.Fatalf("read state = %+v", rs)
		}
	case <-ctx.Done():
		t.Fatal("ReadIndex never answered")
	}
}

func TestThreeMembersElectAndReplicate(t *testing.T) {
	nw := &network{nodes: map[uint64]*Node{}, cut: map[uint64]bool{}}
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	outs := map[uint64]chan string{}
	nw.mu.Lock()
	for id := uint64(1); id <= 3; id++ {
		n, p := startNode(t, id, peers, &netTransport{net: nw, id: id})
		nw.nodes[id] = n
		outs[id] = make(chan string, 100)
		go applyLoop(n, p, outs[id], t)
	}
	nw.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nw.nodes[1].WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	// Propose through a follower or the leader alike: raft forwards.
	for _, id := range []uint64{1, 2, 3} {
		if err := proposeUntilAccepted(ctx, nw.nodes[id], fmt.Sprintf("from-%d", id)); err != nil {
			t.Fatal(err)
		}
	}
	for id, out := range outs {
		seen := map[string]bool{}
		for len(seen) < 3 {
			select {
			case v := <-out:
				seen[v] = true
			case <-ctx.Done():
				t.Fatalf("member %d applied only %v", id, seen)
			}
		}
	}

	// Cut the leader off: the other two elect a new leader.
	old := nw.nodes[1].Leader()
	changed := nw.nodes[otherThan(old)].LeaderChanged()
	nw.mu.Lock()
	nw.cut[old] = true
	nw.mu.Unlock()
	for {
		l := nw.nodes[otherThan(old)].Leader()
		if l != 0 && l != old {
			break
		}
		select {
		case <-changed:
			changed = nw.nodes[otherThan(old)].LeaderChanged()
		case <-ctx.Done():
			t.Fatalf("no new leader after cutting off %d", old)
		}
	}
}

func otherThan(id uint64) uint64 {
	if id == 1 {
		return 2
	}
	return 1
}

// proposeUntilAccepted retries while a follower has not yet learnt the leader
// (raft drops proposals then).
func proposeUntilAccepted(ctx context.Context, n *Node, data string) error {
	for {
		changed := n.LeaderChanged()
		err := n.Propose(ctx, []byte(data))
		if err == nil {
			return nil
		}
		if err != raft.ErrProposalDropped {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// gatedPersister blocks Save while the gate is closed.
type gatedPersister struct {
	memPersister
	gate chan struct{} // receive to pass; nil = always pass
}

func (p *gatedPersister) Save(st *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	if p.gate != nil && len(ents) > 0 {
		<-p.gate
	}
	return p.memPersister.Save(st, ents, sync)
}

// recordingTransport remembers what was sent and signals each Send.
type recordingTransport struct {
	mu     sync.Mutex
	sent   []*raftpb.Message
	notify chan struct{}
}

func (t *recordingTransport) Send(msgs []*raftpb.Message) {
	t.mu.Lock()
	t.sent = append(t.sent, msgs...)
	t.mu.Unlock()
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

func (t *recordingTransport) count(typ raftpb.MessageType) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.sent {
		if m.GetType() == typ {
			n++
		}
	}
	return n
}

// TestCommittedBeforePersisted: a follower that learns of an entry and of its
// commit in one message gets it as committed while it is still writing it.
// The batch must tell the applier to wait for the write, and the ack must
// not leave before it.
func TestCommittedBeforePersisted(t *testing.T) {
	st := raft.NewMemoryStorage()
	p := &gatedPersister{gate: make(chan struct{}, 1)}
	p.gate <- struct{}{} // let the bootstrap entries through
	tr := &recordingTransport{notify: make(chan struct{}, 1)}
	n := Start(Config{
		Raft: &raft.Config{
			ID: 2, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
		},
		Storage:      st,
		Peers:        []raft.Peer{{ID: 1}, {ID: 2}},
		TickInterval: time.Hour, // no election: member 1 leads
		Persister:    p,
		Transport:    tr,
	})
	t.Cleanup(n.Stop)
	timeout := time.After(10 * time.Second)
	next := func() *Committed {
		t.Helper()
		select {
		case c := <-n.Committed():
			return c
		case <-timeout:
			t.Fatal("no committed batch")
			return nil
		}
	}
	// The bootstrap conf changes are committed as they are first written.
	if c := next(); !c.WaitPersisted {
		t.Fatal("bootstrap batch: WaitPersisted not set")
	} else {
		<-c.Persisted
		if !c.ConfChanges {
			t.Fatal("bootstrap batch: ConfChanges not set")
		}
		c.Applied() // the loop advances raft only then
	}

	err := n.Step(context.Background(), &raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
		Term: proto.Uint64(1), LogTerm: proto.Uint64(1), Index: proto.Uint64(2), Commit: proto.Uint64(3),
		Entries: []*raftpb.Entry{{Term: proto.Uint64(1), Index: proto.Uint64(3), Data: []byte("x")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := next()
	if len(c.Entries) != 1 || c.Entries[0].GetIndex() != 3 || !c.WaitPersisted {
		t.Fatalf("batch = %v entries, WaitPersisted %v; want entry 3, WaitPersisted", c.Entries, c.WaitPersisted)
	}
	select {
	case <-c.Persisted:
		t.Fatal("Persisted closed while the write is held")
	default:
	}
	if got := tr.count(raftpb.MsgAppResp); got != 0 {
		t.Fatalf("%d MsgAppResp sent before the entry was written", got)
	}
	p.gate <- struct{}{}
	select {
	case <-c.Persisted:
	case <-timeout:
		t.Fatal("Persisted never closed")
	}
	if c.PersistErr != nil {
		t.Fatal(c.PersistErr)
	}
	if p.lastIndex() != 3 {
		t.Fatalf("persisted up to %d, want 3", p.lastIndex())
	}
	// The ack follows the write (sent right after Persisted is closed).
	for tr.count(raftpb.MsgAppResp) == 0 {
		select {
		case <-timeout:
			t.Fatal("no MsgAppResp after the write")
		case <-tr.notify:
		}
	}
}

// TestSoleVoterElectsItselfAtOnce: with ElectSoleVoter, a one-member
// cluster leads as soon as it has applied its bootstrap entries, without
// waiting for an election timeout (the clock here would take an hour).
func TestSoleVoterElectsItselfAtOnce(t *testing.T) {
	for _, elect := range []bool{true, false} {
		t.Run(fmt.Sprintf("ElectSoleVoter=%v", elect), func(t *testing.T) {
			st := raft.NewMemoryStorage()
			p := &memPersister{}
			n := Start(Config{
				Raft:         &raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: st, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256},
				Storage:      st,
				Peers:        []raft.Peer{{ID: 1}},
				TickInterval: time.Hour,
				Persister:    p,
			})
			t.Cleanup(n.Stop)
			if elect {
				n.ElectSoleVoter()
			}
			go applyLoop(n, p, nil, t)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := n.WaitLeader(ctx)
			switch {
			case elect && err != nil:
				t.Fatalf("no leader without ticks: %v", err)
			case !elect && err == nil:
				t.Fatal("a leader without ticks although ElectSoleVoter is off")
			}
		})
	}
}

// TestAdvanceWaitsForConfChangeApplied: raft is not advanced past a batch
// holding conf changes until the applier says it applied them, so raft's
// configuration is never behind the entries it counts as applied.
func TestAdvanceWaitsForConfChangeApplied(t *testing.T) {
	st := raft.NewMemoryStorage()
	n := Start(Config{
		Raft:         &raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: st, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256},
		Storage:      st,
		Peers:        []raft.Peer{{ID: 1}},
		TickInterval: time.Hour,
		Persister:    &memPersister{},
	})
	t.Cleanup(n.Stop)
	var c *Committed
	select {
	case c = <-n.Committed():
	case <-time.After(10 * time.Second):
		t.Fatal("no committed batch")
	}
	if !c.ConfChanges {
		t.Fatal("bootstrap batch: ConfChanges not set")
	}
	<-c.Persisted
	// Nothing signals "the loop is waiting"; watch it for a while.
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); {
		if a := n.Status().Applied; a != 0 {
			t.Fatalf("raft counts index %d as applied before the applier applied it", a)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.ApplyConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(1)})
	c.Applied()
	for n.Status().Applied != 1 {
		select {
		case <-time.After(10 * time.Second):
			t.Fatal("raft not advanced after Applied")
		case <-time.After(5 * time.Millisecond): // polling: Advance has no event
		}
	}
}
