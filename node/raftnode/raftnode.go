// Package raftnode drives a go.etcd.io/raft node: it ticks the clock,
// persists what each Ready asks to persist, sends messages through a
// Transport, and hands committed entries to the applier. It applies nothing
// itself, so the consensus loop, storage and the state machine stay apart and
// each can be tested alone.
//
// The loop drives a raft.RawNode directly rather than through raft.Node.
// raft.Node runs the state machine on a goroutine of its own and talks to it
// over unbuffered channels: every proposal, every received message and every
// Ready/Advance is a goroutine handoff (two for a proposal, which waits for
// the result). Here callers step the RawNode themselves under a mutex, which
// they hold for microseconds, and nudge the loop; the loop takes the lock
// only to fetch a Ready and to Advance. Proposals that arrive while a Ready is
// being persisted simply accumulate in raft's unstable log and go out, and to
// disk, together with the next one: one write and one fdatasync per batch.
//
// The loop, once per Ready:
//
//	hand committed entries to the applier (it runs while we write)
//	send the messages that need nothing durable (MsgApp, heartbeats,
//	      forwarded proposals, …)       (raft thesis §10.2.1: a leader may
//	                                     send before its own write is durable)
//	persist snapshot, hard state and entries
//	send the acks and votes (MsgAppResp, MsgVoteResp, MsgPreVoteResp), which
//	      must never get ahead of the disk
//	Advance, and look at once for the next Ready.
package raftnode

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Persister makes raft state durable. Save must not return before the state
// is on stable storage when sync is true.
type Persister interface {
	Save(st *raftpb.HardState, ents []*raftpb.Entry, sync bool) error
	// SaveSnapshot records a snapshot received from the leader before the
	// in-memory log is replaced by it.
	SaveSnapshot(snap *raftpb.Snapshot) error
}

// Transport carries raft messages to other members.
type Transport interface {
	Send(msgs []*raftpb.Message)
}

// Committed is one batch of work for the applier, in log order.
type Committed struct {
	// Snapshot, when non-nil, must be applied before Entries.
	Snapshot *raftpb.Snapshot
	Entries  []*raftpb.Entry
	// Persisted is closed once the Ready that carried this batch has been
	// persisted and appended to the in-memory raft log, or has failed to be
	// (see PersistErr).
	Persisted <-chan struct{}
	// WaitPersisted is set when the applier must wait for Persisted before
	// applying: always with a Snapshot, and when some of Entries are among
	// those this very Ready persists. Raft may hand out entries as committed
	// before they are durable here, when a quorum has them without us (a
	// follower learns of entries and of their commit in one message; a
	// leader hears from its followers before its own fdatasync returns).
	// Applying those early would let the backend, and a raft snapshot cut
	// from the in-memory log, get ahead of this member's own log. Entries
	// persisted by earlier Readies are applied at once, while this Ready is
	// being written.
	WaitPersisted bool
	// PersistErr, read after Persisted is closed, tells that persisting
	// failed: the loop stops, and nothing from this batch may be applied.
	PersistErr error
	// ConfChanges is set when Entries hold a membership change. The loop
	// then waits for Applied before it advances raft: raft counts entries
	// as applied at Advance, but its configuration changes only when the
	// applier calls ApplyConfChange, and an election or a commit decided in
	// between would use the old configuration (etcd waits the same way).
	ConfChanges bool
	applied     chan struct{} // set before the batch is handed out, closed once by Applied
	appliedOnce sync.Once
}

// Applied tells the loop that this batch has been applied. The applier
// calls it once per batch with ConfChanges set (calling it for others is
// harmless).
func (c *Committed) Applied() {
	if c.applied != nil {
		c.appliedOnce.Do(func() { close(c.applied) })
	}
}

// Config configures a Node.
type Config struct {
	Raft         *raft.Config // ID, ticks, Storage (a *raft.MemoryStorage) …
	Storage      *raft.MemoryStorage
	Peers        []raft.Peer // non-empty only when a new cluster is bootstrapped
	TickInterval time.Duration
	Persister    Persister
	Transport    Transport
	Logger       *zap.Logger
	// OnLeaderChange is called from the loop whenever the known leader changes.
	OnLeaderChange func(lead uint64)
}

// ErrStopped is returned by calls made after Stop.
var ErrStopped = errors.New("raftnode: stopped")

// Node is a running raft member.
type Node struct {
	cfg    Config
	lg     *zap.Logger
	commit chan *Committed
	reads  chan raft.ReadState

	mu sync.Mutex
	rn *raft.RawNode // guarded by mu
	// wakec tells the loop that raft may have a Ready: whoever steps the
	// RawNode sends on it without blocking. One pending token is enough,
	// since the loop drains every Ready before it waits again.
	wakec chan struct{}

	lead   atomic.Uint64
	leadMu sync.Mutex
	leadc  chan struct{} // closed and replaced whenever the leader changes
	term   atomic.Uint64
	index  atomic.Uint64 // last committed index known to this member

	// electPending: ElectSoleVoter was called and not decided yet.
	electPending atomic.Bool

	stopOnce sync.Once
	stopc    chan struct{}
	donec    chan struct{}
	err      error // first persistence error; the loop stops on it
}

// Start launches the raft loop. With cfg.Peers set it bootstraps a new
// cluster, otherwise it restarts from cfg.Storage.
func Start(cfg Config) *Node {
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	n := &Node{
		cfg:    cfg,
		lg:     lg,
		commit: make(chan *Committed, 128),
		reads:  make(chan raft.ReadState, 128),
		wakec:  make(chan struct{}, 1),
		stopc:  make(chan struct{}),
		donec:  make(chan struct{}),
		leadc:  make(chan struct{}),
	}
	rn, err := raft.NewRawNode(cfg.Raft)
	if err != nil {
		panic(err) // only an invalid Config: a programming error (raft.StartNode panics too)
	}
	if len(cfg.Peers) > 0 {
		if err := rn.Bootstrap(cfg.Peers); err != nil {
			lg.Warn("could not bootstrap the raft log", zap.Error(err))
		}
	}
	n.rn = rn
	go n.run()
	return n
}

// Committed delivers committed work in log order. The channel is closed when
// the loop stops.
func (n *Node) Committed() <-chan *Committed { return n.commit }

// ReadStates delivers the answers to ReadIndex calls.
func (n *Node) ReadStates() <-chan raft.ReadState { return n.reads }

// Leader is the current leader's ID, 0 when there is none.
func (n *Node) Leader() uint64 { return n.lead.Load() }

// Term is the current raft term.
func (n *Node) Term() uint64 { return n.term.Load() }

// CommittedIndex is the highest log index known to be committed.
func (n *Node) CommittedIndex() uint64 { return n.index.Load() }

// Done is closed when the loop has stopped; Err then tells why.
func (n *Node) Done() <-chan struct{} { return n.donec }

// Err is the error that stopped the loop, nil after a clean Stop.
func (n *Node) Err() error {
	<-n.donec
	return n.err
}

// Stop ends the loop. It is safe to call more than once.
func (n *Node) Stop() {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.donec
}

func (n *Node) stopped() bool {
	select {
	case <-n.donec:
		return true
	default:
		return false
	}
}

// step runs f on the RawNode and wakes the loop to look for a Ready.
func (n *Node) step(f func(rn *raft.RawNode) error) error {
	if n.stopped() {
		return ErrStopped
	}
	n.mu.Lock()
	err := f(n.rn)
	n.mu.Unlock()
	n.wake()
	return err
}

// wake tells the loop to look for a Ready, without blocking: one pending
// token is enough (see wakec).
func (n *Node) wake() {
	select {
	case n.wakec <- struct{}{}:
	default:
	}
}

// Propose appends data to the log. It returns once raft has taken it, with
// raft.ErrProposalDropped if raft refused it (no leader known, a leadership
// transfer in progress, …). ctx is not needed: the call never waits.
func (n *Node) Propose(_ context.Context, data []byte) error {
	return n.step(func(rn *raft.RawNode) error { return rn.Propose(data) })
}

// ProposeConfChange proposes a membership change. As with raft.Node, a
// change raft refuses is not reported: the caller waits for it to be applied
// and times out.
func (n *Node) ProposeConfChange(_ context.Context, cc raftpb.ConfChangeI) error {
	return n.step(func(rn *raft.RawNode) error {
		if err := rn.ProposeConfChange(cc); err != nil && !errors.Is(err, raft.ErrProposalDropped) {
			return err
		}
		return nil
	})
}

// Step hands raft a message from another member. Messages raft keeps local,
// and responses from members it does not know (removed ones), are ignored,
// as raft.Node does.
func (n *Node) Step(_ context.Context, m *raftpb.Message) error {
	if m == nil {
		return errors.New("raftnode: cannot step a nil message")
	}
	if raft.IsLocalMsg(m.GetType()) && !raft.IsLocalMsgTarget(m.GetFrom()) {
		return nil
	}
	return n.step(func(rn *raft.RawNode) error {
		_ = rn.Step(m) // raft.Node ignores what raft refuses to step as well
		return nil
	})
}

// ReadIndex asks for a read index; the answer arrives on ReadStates.
func (n *Node) ReadIndex(_ context.Context, rctx []byte) error {
	return n.step(func(rn *raft.RawNode) error { rn.ReadIndex(rctx); return nil })
}

// ApplyConfChange applies a committed membership change to raft and returns
// the new configuration.
func (n *Node) ApplyConfChange(cc raftpb.ConfChangeI) *raftpb.ConfState {
	var cs *raftpb.ConfState
	_ = n.step(func(rn *raft.RawNode) error { cs = rn.ApplyConfChange(cc); return nil })
	return cs
}

// TransferLeadership asks the leader lead to hand over to transferee. Only
// the leader acts on it.
func (n *Node) TransferLeadership(_ context.Context, _, transferee uint64) {
	_ = n.step(func(rn *raft.RawNode) error { rn.TransferLeader(transferee); return nil })
}

// Campaign makes this member start an election.
func (n *Node) Campaign(context.Context) error {
	return n.step(func(rn *raft.RawNode) error { return rn.Campaign() })
}

// Status is raft's view of this member (and of the followers, on a leader).
func (n *Node) Status() raft.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rn.Status()
}

// ReportUnreachable tells raft that a message to id could not be sent.
func (n *Node) ReportUnreachable(id uint64) {
	_ = n.step(func(rn *raft.RawNode) error { rn.ReportUnreachable(id); return nil })
}

// ReportSnapshot tells raft how sending a snapshot to id ended.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	_ = n.step(func(rn *raft.RawNode) error { rn.ReportSnapshot(id, status); return nil })
}

func (n *Node) run() {
	defer close(n.donec)
	defer close(n.commit)

	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		if n.electPending.Load() {
			n.electSoleVoter()
		}
		n.mu.Lock()
		ready := n.rn.HasReady()
		var rd raft.Ready
		if ready {
			rd = n.rn.Ready()
		}
		n.mu.Unlock()
		if !ready {
			select {
			case <-ticker.C:
				n.tick()
			case <-n.wakec:
			case <-n.stopc:
				return
			}
			continue
		}
		if !n.handle(&rd) {
			return
		}
		n.mu.Lock()
		n.rn.Advance(rd)
		n.mu.Unlock()
		// Under a steady load there is a Ready after every Advance: the
		// clock and Stop must not wait for a quiet moment.
		select {
		case <-ticker.C:
			n.tick()
		case <-n.stopc:
			return
		default:
		}
	}
}

// ElectSoleVoter makes a member that finds itself the only voter of its
// configuration, once it has applied the log it started with, elect itself
// at once rather than after an election timeout: no other member can lead
// or be disrupted, so a one-member cluster is ready in milliseconds instead
// of one to two seconds. Call it after Start has returned: the election
// calls OnLeaderChange, which may use the Node.
func (n *Node) ElectSoleVoter() {
	n.electPending.Store(true)
	n.wake()
}

// electSoleVoter campaigns if this member is the only voter. Raft refuses
// to campaign while committed conf changes are unapplied (a restarted
// member's configuration is only current once it has replayed them), so
// the decision waits for that; it is taken once.
func (n *Node) electSoleVoter() {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.rn.Status()
	if st.Applied < st.HardState.GetCommit() {
		return
	}
	n.electPending.Store(false)
	voters := st.Config.Voters.IDs()
	if _, self := voters[st.ID]; st.Lead != 0 || len(voters) != 1 || !self {
		return
	}
	if err := n.rn.Campaign(); err != nil {
		n.lg.Warn("could not start an election at once; the election timeout will", zap.Error(err))
	}
	n.wake()
}

func (n *Node) tick() {
	n.mu.Lock()
	n.rn.Tick()
	n.mu.Unlock()
}

// handle does what one Ready asks, short of Advance. It reports false when
// the loop must stop.
func (n *Node) handle(rd *raft.Ready) bool {
	if rd.SoftState != nil {
		if old := n.lead.Swap(rd.Lead); old != rd.Lead {
			n.leaderChanged(rd.Lead)
		}
	}
	if rd.HardState != nil {
		n.term.Store(rd.GetTerm())
		n.index.Store(rd.GetCommit())
	}
	for _, rs := range rd.ReadStates {
		select {
		case n.reads <- rs:
		case <-n.stopc:
			return false
		}
	}
	var (
		c         *Committed
		persisted chan struct{}
	)
	if len(rd.CommittedEntries) > 0 || !raft.IsEmptySnap(rd.Snapshot) {
		persisted = make(chan struct{})
		c = &Committed{Entries: rd.CommittedEntries, Persisted: persisted}
		if !raft.IsEmptySnap(rd.Snapshot) {
			c.Snapshot = rd.Snapshot
			c.WaitPersisted = true
		}
		for _, e := range rd.CommittedEntries {
			if t := e.GetType(); t == raftpb.EntryConfChange || t == raftpb.EntryConfChangeV2 {
				c.ConfChanges = true
				c.applied = make(chan struct{})
				break
			}
		}
		if k := len(rd.CommittedEntries); k > 0 && len(rd.Entries) > 0 &&
			rd.CommittedEntries[k-1].GetIndex() >= rd.Entries[0].GetIndex() {
			c.WaitPersisted = true
		}
		select {
		case n.commit <- c:
		case <-n.stopc:
			return false
		}
	}
	early, late := splitMessages(rd.Messages)
	n.send(early)
	if c != nil && !rd.MustSync && len(rd.Messages) == 0 {
		// The applier was just made runnable on this P, behind us. A write
		// that need not be synced (a commit index, typically: the only
		// state a single member's second Ready carries) is not urgent,
		// but the syscall would hold this P with the applier parked on it
		// until another thread woke and stole it: 40-130 µs on a VM, on
		// the path of every single-client write. Let the applier (and the
		// handlers it wakes) run here first. Not when peers wait on us:
		// the yield puts the loop behind everything runnable, and a
		// leader's next appends would wait for the handlers.
		runtime.Gosched()
	}
	err := n.persist(rd)
	if c != nil {
		c.PersistErr = err // published to the applier by closing persisted
		close(persisted)
	}
	if err != nil {
		n.err = err
		n.lg.Error("stopping raft: could not persist the raft log; the member cannot make progress safely",
			zap.Error(err))
		return false
	}
	n.send(late)
	if c != nil && c.ConfChanges {
		select {
		case <-c.applied:
		case <-n.stopc:
			return false
		}
	}
	return true
}

// splitMessages separates the messages that may leave before this Ready is
// persisted from those that must wait for it: log acks and votes. It is
// raft's own rule, the one raft applies itself with AsyncStorageWrites (see
// raft.send). Each group keeps its order.
func splitMessages(msgs []*raftpb.Message) (early, late []*raftpb.Message) {
	n := 0
	for _, m := range msgs {
		if needsDurability(m.GetType()) {
			n++
		}
	}
	switch n {
	case 0: // a leader's MsgApps and heartbeats
		return msgs, nil
	case len(msgs): // a follower's acks
		return nil, msgs
	}
	early = make([]*raftpb.Message, 0, len(msgs)-n)
	late = make([]*raftpb.Message, 0, n)
	for _, m := range msgs {
		if needsDurability(m.GetType()) {
			late = append(late, m)
		} else {
			early = append(early, m)
		}
	}
	return early, late
}

// needsDurability reports whether a message vouches for state this member
// must have on disk first: an appended log (MsgAppResp) or a vote.
func needsDurability(t raftpb.MessageType) bool {
	return t == raftpb.MsgAppResp || t == raftpb.MsgVoteResp || t == raftpb.MsgPreVoteResp
}

// persist writes a Ready's snapshot, hard state and entries, in that order,
// then mirrors them into the in-memory log that raft reads from.
func (n *Node) persist(rd *raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.cfg.Persister.SaveSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 {
		if err := n.cfg.Persister.Save(rd.HardState, rd.Entries, rd.MustSync); err != nil {
			return err
		}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.cfg.Storage.ApplySnapshot(rd.Snapshot); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return err
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.cfg.Storage.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	return n.cfg.Storage.Append(rd.Entries)
}

func (n *Node) send(msgs []*raftpb.Message) {
	if len(msgs) == 0 || n.cfg.Transport == nil {
		return
	}
	n.cfg.Transport.Send(msgs)
}

func (n *Node) leaderChanged(lead uint64) {
	n.leadMu.Lock()
	close(n.leadc)
	n.leadc = make(chan struct{})
	n.leadMu.Unlock()
	if n.cfg.OnLeaderChange != nil {
		n.cfg.OnLeaderChange(lead)
	}
}

// LeaderChanged returns a channel that is closed at the next leader change.
func (n *Node) LeaderChanged() <-chan struct{} {
	n.leadMu.Lock()
	defer n.leadMu.Unlock()
	return n.leadc
}

// WaitLeader blocks until a leader is known or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	for {
		changed := n.LeaderChanged()
		if n.Leader() != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.donec:
			return ErrStopped
		case <-changed:
		}
	}
}
