package server

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestHeaderID(t *testing.T) {
	marshal := func(r *pb.InternalRaftRequest) []byte {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put := &pb.PutRequest{Key: []byte("k"), Value: make([]byte, 300), Lease: 7}
	// A header field twice: decoding merges them, the later ID wins.
	twice := marshal(&pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: 1}, Put: put})
	twice = protowire.AppendTag(twice, internalRequestHeaderField, protowire.BytesType)
	hdr, err := proto.Marshal(&pb.RequestHeader{ID: 2})
	if err != nil {
		t.Fatal(err)
	}
	twice = protowire.AppendBytes(twice, hdr)
	for _, tc := range []struct {
		name string
		data []byte
		want uint64
	}{
		{"put", marshal(&pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: 0x1234_5678_9abc, Username: "u", AuthRevision: 3}, Put: put}), 0x1234_5678_9abc},
		{"txn", marshal(&pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: 42}, Txn: &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: put}}}}}), 42},
		{"only the old top-level ID", marshal(&pb.InternalRaftRequest{ID: 9, Put: put}), 0},
		{"header without ID", marshal(&pb.InternalRaftRequest{Header: &pb.RequestHeader{Username: "u"}, Put: put}), 0},
		{"merged headers", twice, 2},
		{"empty", nil, 0},
		{"truncated", marshal(&pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: 42}, Put: put})[:20], 0},
		{"garbage", []byte{0xff, 0xff, 0xff}, 0},
	} {
		if got := headerID(tc.data); got != tc.want {
			t.Errorf("%s: headerID = %#x, want %#x", tc.name, got, tc.want)
		}
	}
	// Decoding finds the same ID in the merged headers.
	r := &pb.InternalRaftRequest{}
	if err := proto.Unmarshal(twice, r); err != nil || r.GetHeader().GetID() != 2 {
		t.Fatalf("decoding the merged headers: ID %d, %v", r.GetHeader().GetID(), err)
	}
}

// TestProposedOnlyForTheSameBytes: the apply loop may use a registered
// request only for an entry carrying exactly its encoding, and only while
// the proposer waits.
func TestProposedOnlyForTheSameBytes(t *testing.T) {
	w := newWaitRegistry()
	req := &pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: 5}, Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("1")}}
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := proto.Marshal(&pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: 5}, Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("2")}})
	ch := w.registerProposal(5, req, data)
	w.register(6) // a wait without a request (a conf change)

	for _, tc := range []struct {
		name string
		id   uint64
		data []byte
		want *pb.InternalRaftRequest
	}{
		{"its own entry", 5, data, req},
		{"same ID, other bytes (another member's proposal)", 5, other, nil},
		{"a wait without a request", 6, data, nil},
		{"nobody waits", 7, data, nil},
		{"no ID", 0, data, nil},
	} {
		if got := w.proposed(tc.id, tc.data); got != tc.want {
			t.Errorf("%s: proposed = %p, want %p", tc.name, got, tc.want)
		}
	}
	w.trigger(5, &result{})
	if res := <-ch; res == nil {
		t.Fatal("no result delivered")
	}
	if got := w.proposed(5, data); got != nil {
		t.Errorf("after the result was delivered: proposed = %p, want nil", got)
	}
}
