package transport

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/raftnode"
)

// raftAdapter is the Raft a server gives its transport: the raftnode.Node.
type raftAdapter struct{ n atomic.Pointer[raftnode.Node] }

func (r *raftAdapter) Process(ctx context.Context, m *raftpb.Message) error {
	n := r.n.Load()
	if n == nil {
		return errors.New("raft not started")
	}
	return n.Step(ctx, m)
}

func (r *raftAdapter) IsIDRemoved(uint64) bool { return false }

func (r *raftAdapter) ReportUnreachable(id uint64) {
	if n := r.n.Load(); n != nil {
		n.ReportUnreachable(id)
	}
}

func (r *raftAdapter) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	if n := r.n.Load(); n != nil {
		n.ReportSnapshot(id, status)
	}
}

// nopPersister: the in-memory raft log is all these members have.
type nopPersister struct{}

func (nopPersister) Save(*raftpb.HardState, []*raftpb.Entry, bool) error { return nil }
func (nopPersister) SaveSnapshot(*raftpb.Snapshot) error                 { return nil }

// applyAll applies conf changes and reports normal entries on out.
func applyAll(n *raftnode.Node, out chan<- string) {
	for c := range n.Committed() {
		for _, e := range c.Entries {
			switch e.GetType() {
			case raftpb.EntryConfChange:
				cc := &raftpb.ConfChange{}
				if proto.Unmarshal(e.GetData(), cc) == nil {
					n.ApplyConfChange(cc)
				}
			case raftpb.EntryNormal:
				if len(e.GetData()) > 0 {
					out <- string(e.GetData())
				}
			}
		}
		c.Applied()
	}
}

func TestRaftCluster(t *testing.T) {
	ids := []uint64{1, 2, 3}
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	members := map[uint64]*member{}
	adapters := map[uint64]*raftAdapter{}
	for _, id := range ids {
		ad := &raftAdapter{}
		adapters[id] = ad
		members[id] = newMember(t, id, testCluster, func(c *Config) { c.Raft = ad })
	}
	for _, a := range ids {
		for _, b := range ids {
			if a != b {
				members[a].tr.AddPeer(b, []string{members[b].url})
			}
		}
	}
	nodes := map[uint64]*raftnode.Node{}
	outs := map[uint64]chan string{}
	for _, id := range ids {
		st := raft.NewMemoryStorage()
		n := raftnode.Start(raftnode.Config{
			Raft: &raft.Config{ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
				MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, CheckQuorum: true, PreVote: true},
			Storage:      st,
			Peers:        peers,
			TickInterval: 10 * time.Millisecond,
			Persister:    nopPersister{},
			Transport:    members[id].tr,
		})
		t.Cleanup(n.Stop) // runs before the transports stop
		adapters[id].n.Store(n)
		nodes[id] = n
		outs[id] = make(chan string, 1000)
		go applyAll(n, outs[id])
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		if err := nodes[id].WaitLeader(ctx); err != nil {
			t.Fatalf("member %d: no leader: %v", id, err)
		}
	}
	// Proposals through every member, followers forwarding to the leader:
	// all members apply all of them, in one and the same order.
	proposed := map[string]bool{}
	for i := 0; i < 30; i++ {
		v := fmt.Sprintf("v%d", i)
		if err := proposeUntilAccepted(ctx, nodes[ids[i%3]], v); err != nil {
			t.Fatalf("propose %q: %v", v, err)
		}
		proposed[v] = true
	}
	var order []string
	for _, id := range ids {
		var got []string
		for len(got) < len(proposed) {
			select {
			case v := <-outs[id]:
				if !proposed[v] {
					t.Fatalf("member %d applied %q, never proposed", id, v)
				}
				got = append(got, v)
			case <-ctx.Done():
				t.Fatalf("member %d applied only %v", id, got)
			}
		}
		if order == nil {
			order = got
		} else if fmt.Sprint(got) != fmt.Sprint(order) {
			t.Fatalf("member %d applied %v, member %d %v", id, got, ids[0], order)
		}
	}

	// A follower goes down and comes back: it reconnects and catches up.
	leader := nodes[1].Leader()
	follower := ids[0]
	if follower == leader {
		follower = ids[1]
	}
	members[follower].stopServer()
	waitActive(t, members[leader], follower, false)
	var more []string
	for i := 0; i < 10; i++ {
		v := fmt.Sprintf("w%d", i)
		if err := proposeUntilAccepted(ctx, nodes[leader], v); err != nil {
			t.Fatal(err)
		}
		more = append(more, v)
	}
	others := []uint64{}
	for _, id := range ids {
		if id != follower {
			others = append(others, id)
		}
	}
	expectApplied(ctx, t, outs, others, more)
	members[follower].restartServer(t)
	expectApplied(ctx, t, outs, []uint64{follower}, more)
}

// expectApplied waits until each member applied want, in order.
func expectApplied(ctx context.Context, t *testing.T, outs map[uint64]chan string, ids []uint64, want []string) {
	t.Helper()
	for _, id := range ids {
		for i, w := range want {
			select {
			case got := <-outs[id]:
				if got != w {
					t.Fatalf("member %d applied %q as entry %d, want %q", id, got, i, w)
				}
			case <-ctx.Done():
				t.Fatalf("member %d applied only %d of %d entries", id, i, len(want))
			}
		}
	}
}

// proposeUntilAccepted retries while a follower does not know the leader
// yet (raft drops proposals then).
func proposeUntilAccepted(ctx context.Context, n *raftnode.Node, data string) error {
	for {
		changed := n.LeaderChanged()
		err := n.Propose(ctx, []byte(data))
		if !errors.Is(err, raft.ErrProposalDropped) {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
