package apply

import (
	"maps"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// FuzzTxn applies random small txns to a seeded store and checks that apply
// never panics, that a failed txn leaves the store and the leases exactly
// as they were, that a successful one moves the revision by at most one and
// reports it, that Leases always agree with the keys' lease fields, and
// that a read-only txn answers the same through ReadOnlyTxn.
func FuzzTxn(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 1, 2, 1, 1, 0, 3, 1, 1, 2, 0, 1, 0, 0})
	f.Add([]byte{0, 2, 1, 3, 3, 3, 0, 1, 1, 2, 2, 2, 4, 1, 1, 3, 0, 5, 5, 5})
	f.Add([]byte("\x02\x01\x00\x04\x02\x01\x03\x03\x01\x02\x00\x01\x03\x02\x01\x01\x00\x02\x01\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newMemStore()
		le := newMemLeases(1, 2)
		// History: a and b each written twice, c deleted, compacted at 3.
		mustPut(t, s, le, &pb.PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: 1})
		mustPut(t, s, le, putReq("b", "1"))
		mustPut(t, s, le, putReq("c", "1"))
		mustPut(t, s, le, &pb.PutRequest{Key: []byte("b"), Value: []byte("2"), Lease: 2})
		mustDelete(t, s, le, "c")
		s.compact(3)

		g := &gen{data: data}
		req := g.txn(0)
		rev0, kvs0, leases0 := s.rev(), all(t, s), maps.Clone(le.keys)

		var resp *pb.TxnResponse
		var err error
		s.write(func(w WriteView) { resp, err = Txn(w, le, req) })
		kvs := all(t, s)
		switch {
		case err != nil:
			if s.rev() != rev0 || !equalKVs(kvs, kvs0) || !maps.Equal(le.keys, leases0) {
				t.Fatalf("txn failed with %v but changed the store: revision %d -> %d\n%v\n->\n%v\nleases %v -> %v",
					err, rev0, s.rev(), kvs0, kvs, leases0, le.keys)
			}
		case resp.Header.GetRevision() != s.rev() || s.rev() < rev0 || s.rev() > rev0+1:
			t.Fatalf("revision %d -> %d, header %v", rev0, s.rev(), resp.Header)
		}
		for _, kv := range kvs {
			if le.keys[string(kv.Key)] != kv.Lease {
				t.Fatalf("key %s has lease %d, Leases say %d", kv.Key, kv.Lease, le.keys[string(kv.Key)])
			}
		}
		if len(le.keys) > len(kvs) {
			t.Fatalf("Leases hold %v for keys %v", le.keys, keysOf(kvs))
		}

		if IsReadOnlyTxn(req) {
			if s.rev() != rev0 {
				t.Fatalf("read-only txn moved the revision %d -> %d", rev0, s.rev())
			}
			var ro *pb.TxnResponse
			var roErr error
			s.read(func(r ReadView) { ro, roErr = ReadOnlyTxn(r, req) })
			if (roErr == nil) != (err == nil) || !proto.Equal(ro, resp) {
				t.Fatalf("ReadOnlyTxn = %v, %v; Txn = %v, %v", ro, roErr, resp, err)
			}
		}
	})
}

// gen builds requests from fuzz bytes; it reads zeros once they run out.
type gen struct{ data []byte }

func (g *gen) next(n int) int {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return int(b) % n
}

func (g *gen) key() []byte { return [][]byte{[]byte("a"), []byte("b"), []byte("c"), {0}}[g.next(4)] }

func (g *gen) end() []byte { return [][]byte{nil, []byte("c"), {0}, []byte("a")}[g.next(4)] }

func (g *gen) txn(depth int) *pb.TxnRequest {
	req := &pb.TxnRequest{}
	for range g.next(3) {
		c := &pb.Compare{Key: g.key(), RangeEnd: g.end(), Target: pb.Compare_CompareTarget(g.next(6)), Result: pb.Compare_CompareResult(g.next(5))}
		v := int64(g.next(8))
		switch g.next(5) {
		case 0:
			c.TargetUnion = &pb.Compare_Version{Version: v}
		case 1:
			c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: v}
		case 2:
			c.TargetUnion = &pb.Compare_ModRevision{ModRevision: v}
		case 3:
			c.TargetUnion = &pb.Compare_Value{Value: []byte{'0' + byte(v)}}
		case 4:
			c.TargetUnion = &pb.Compare_Lease{Lease: v % 3}
		}
		req.Compare = append(req.Compare, c)
	}
	req.Success = g.ops(depth)
	req.Failure = g.ops(depth)
	return req
}

func (g *gen) ops(depth int) []*pb.RequestOp {
	var ops []*pb.RequestOp
	for range g.next(4) {
		switch g.next(5) {
		case 0:
			ops = append(ops, opRange(&pb.RangeRequest{
				Key: g.key(), RangeEnd: g.end(),
				Limit:             int64(g.next(4)),
				Revision:          int64(g.next(9)),
				SortOrder:         pb.RangeRequest_SortOrder(g.next(4)),
				SortTarget:        pb.RangeRequest_SortTarget(g.next(6)),
				KeysOnly:          g.next(2) == 1,
				CountOnly:         g.next(4) == 1,
				MinModRevision:    int64(g.next(8)),
				MaxCreateRevision: int64(g.next(8)),
			}))
		case 1:
			ops = append(ops, opPut(&pb.PutRequest{
				Key: g.key(), Value: []byte{'0' + byte(g.next(4))},
				Lease:       []int64{0, 1, 2, 9}[g.next(4)],
				PrevKv:      g.next(2) == 1,
				IgnoreValue: g.next(4) == 1,
				IgnoreLease: g.next(4) == 1,
			}))
		case 2:
			ops = append(ops, opDel(&pb.DeleteRangeRequest{Key: g.key(), RangeEnd: g.end(), PrevKv: g.next(2) == 1}))
		case 3:
			if depth < 2 {
				ops = append(ops, opTxn(g.txn(depth+1)))
			}
		case 4:
			ops = append(ops, &pb.RequestOp{})
		}
	}
	return ops
}
