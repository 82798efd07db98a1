package transport

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// countingRaft counts delivered messages and frees a window slot for each.
type countingRaft struct {
	n      atomic.Int64
	window chan struct{}
	done   chan struct{}
	want   int64
}

func (c *countingRaft) Process(_ context.Context, _ *raftpb.Message) error {
	<-c.window
	if c.n.Add(1) == c.want {
		close(c.done)
	}
	return nil
}
func (c *countingRaft) IsIDRemoved(uint64) bool                    { return false }
func (c *countingRaft) ReportUnreachable(uint64)                   {}
func (c *countingRaft) ReportSnapshot(uint64, raft.SnapshotStatus) {}

// BenchmarkStream measures one stream on loopback: messages/s and bytes/s
// from Send on one member to Raft.Process on the other, at most 1024
// messages in flight (raft's inflight limit plays that part in a cluster).
func BenchmarkStream(b *testing.B) {
	for _, bm := range []struct {
		name string
		msg  *raftpb.Message
	}{
		{"MsgApp-100x256B", msgApp(1, 2, 1000, 100, 256)},
		{"Heartbeat", heartbeat(1, 2, 1)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			const window = 1024
			recv := &countingRaft{window: make(chan struct{}, window), done: make(chan struct{}), want: int64(b.N)}
			a := newMember(b, 1, testCluster)
			r := newMember(b, 2, testCluster, func(c *Config) { c.Raft = recv })
			connect(b, a, r)
			frame, _ := appendFrame(nil, bm.msg)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			msgs := []*raftpb.Message{bm.msg}
			for i := 0; i < b.N; i++ {
				recv.window <- struct{}{}
				a.tr.Send(msgs)
			}
			select {
			case <-recv.done:
			case <-time.After(time.Minute):
				b.Fatalf("delivered %d of %d", recv.n.Load(), b.N)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			if u := a.raft.unreachableCount(2); u != 0 {
				b.Fatalf("%d messages dropped", u)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N*len(bm.msg.GetEntries()))/elapsed.Seconds(), "entries/s")
		})
	}
}
