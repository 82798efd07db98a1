package apply

import (
	"errors"
	"maps"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

func opPut(p *pb.PutRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: p}}
}

func opRange(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func opGet(key string) *pb.RequestOp { return opRange(&pb.RangeRequest{Key: []byte(key)}) }

func opDel(d *pb.DeleteRangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: d}}
}

func opTxn(t *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: t}}
}

func hdr(rev int64) *pb.ResponseHeader { return &pb.ResponseHeader{Revision: rev} }

func respRange(rev int64, kvs ...*mvccpb.KeyValue) *pb.ResponseOp {
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{Header: hdr(rev), Kvs: kvs, Count: int64(len(kvs))}}}
}

func respPut(rev int64, prev *mvccpb.KeyValue) *pb.ResponseOp {
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: hdr(rev), PrevKv: prev}}}
}

func respDel(rev, deleted int64, prev ...*mvccpb.KeyValue) *pb.ResponseOp {
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{Header: hdr(rev), Deleted: deleted, PrevKvs: prev}}}
}

// respTxn is a nested txn response: etcd leaves its header revision at 0.
func respTxn(ok bool, resps ...*pb.ResponseOp) *pb.ResponseOp {
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: ok, Responses: resps}}}
}

func TestTxn(t *testing.T) {
	// Each case starts at revision 3 with k=v0 on lease 1 (revision 2) and
	// j=j0 (revision 3); leases 1 and 2 exist.
	k0, j0 := kv("k", "v0", 2, 2, 1, 1), kv("j", "j0", 3, 3, 1, 0)
	yes := []*pb.Compare{cmpVersion("k", pb.Compare_EQUAL, 1)}
	no := []*pb.Compare{cmpVersion("k", pb.Compare_EQUAL, 5)}
	tests := []struct {
		name   string
		req    *pb.TxnRequest
		err    error
		want   *pb.TxnResponse // nil when err is set
		kvs    []*mvccpb.KeyValue
		leases map[string]int64
	}{
		{
			name: "empty",
			req:  &pb.TxnRequest{},
			want: &pb.TxnResponse{Header: hdr(3), Succeeded: true},
			kvs:  []*mvccpb.KeyValue{j0, k0}, leases: map[string]int64{"k": 1},
		},
		{
			name: "success reads its own writes",
			req: &pb.TxnRequest{Compare: yes, Success: []*pb.RequestOp{
				opGet("k"),
				opPut(&pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), PrevKv: true}),
				opGet("k"),
				opDel(&pb.DeleteRangeRequest{Key: []byte("j"), PrevKv: true}),
				opGet("j"),
			}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: true, Responses: []*pb.ResponseOp{
				respRange(3, k0),
				respPut(4, k0),
				respRange(4, kv("k", "v1", 2, 4, 2, 0)),
				respDel(4, 1, j0),
				respRange(4),
			}},
			kvs: []*mvccpb.KeyValue{kv("k", "v1", 2, 4, 2, 0)}, leases: map[string]int64{},
		},
		{
			name: "failure branch",
			req:  &pb.TxnRequest{Compare: no, Success: []*pb.RequestOp{opPut(putReq("s", "1"))}, Failure: []*pb.RequestOp{opPut(putReq("f", "1"))}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: false, Responses: []*pb.ResponseOp{respPut(4, nil)}},
			kvs:  []*mvccpb.KeyValue{kv("f", "1", 4, 4, 1, 0), j0, k0}, leases: map[string]int64{"k": 1},
		},
		{
			name: "nothing changed keeps the revision",
			req:  &pb.TxnRequest{Success: []*pb.RequestOp{opDel(&pb.DeleteRangeRequest{Key: []byte("x")}), opGet("k")}},
			want: &pb.TxnResponse{Header: hdr(3), Succeeded: true, Responses: []*pb.ResponseOp{respDel(3, 0), respRange(3, k0)}},
			kvs:  []*mvccpb.KeyValue{j0, k0}, leases: map[string]int64{"k": 1},
		},
		{
			name: "empty delete after a put reports the txn revision",
			req:  &pb.TxnRequest{Success: []*pb.RequestOp{opPut(putReq("a", "1")), opDel(&pb.DeleteRangeRequest{Key: []byte("x")})}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: true, Responses: []*pb.ResponseOp{respPut(4, nil), respDel(4, 0)}},
			kvs:  []*mvccpb.KeyValue{kv("a", "1", 4, 4, 1, 0), j0, k0}, leases: map[string]int64{"k": 1},
		},
		{
			// The nested compare sees n as it was before the txn.
			name: "nested txn",
			req: &pb.TxnRequest{Compare: yes, Success: []*pb.RequestOp{
				opPut(putReq("n", "1")),
				opTxn(&pb.TxnRequest{
					Compare: []*pb.Compare{cmpVersion("n", pb.Compare_EQUAL, 0)},
					Success: []*pb.RequestOp{opGet("n"), opPut(putReq("n", "2"))},
					Failure: []*pb.RequestOp{opPut(putReq("bad", "1"))},
				}),
				opGet("n"),
			}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: true, Responses: []*pb.ResponseOp{
				respPut(4, nil),
				respTxn(true, respRange(4, kv("n", "1", 4, 4, 1, 0)), respPut(4, nil)),
				respRange(4, kv("n", "2", 4, 4, 2, 0)),
			}},
			kvs: []*mvccpb.KeyValue{j0, k0, kv("n", "2", 4, 4, 2, 0)}, leases: map[string]int64{"k": 1},
		},
		{
			name: "nested txns in the failure branch",
			req: &pb.TxnRequest{Compare: no, Failure: []*pb.RequestOp{
				opTxn(&pb.TxnRequest{Compare: []*pb.Compare{cmpValue("k", pb.Compare_EQUAL, "v0")}, Success: []*pb.RequestOp{opPut(putReq("s", "1"))}}),
				opTxn(&pb.TxnRequest{
					Compare: []*pb.Compare{cmpValue("k", pb.Compare_EQUAL, "nope")},
					Success: []*pb.RequestOp{opPut(putReq("bad", "1"))},
					Failure: []*pb.RequestOp{opGet("k"), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opGet("s")}})},
				}),
			}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: false, Responses: []*pb.ResponseOp{
				respTxn(true, respPut(4, nil)),
				respTxn(false, respRange(4, k0), respTxn(true, respRange(4, kv("s", "1", 4, 4, 1, 0)))),
			}},
			kvs: []*mvccpb.KeyValue{j0, k0, kv("s", "1", 4, 4, 1, 0)}, leases: map[string]int64{"k": 1},
		},
		{
			name: "missing lease changes nothing",
			req:  &pb.TxnRequest{Success: []*pb.RequestOp{opPut(putReq("a", "1")), opPut(&pb.PutRequest{Key: []byte("b"), Lease: 9})}},
			err:  rpctypes.ErrGRPCLeaseNotFound,
			kvs:  []*mvccpb.KeyValue{j0, k0}, leases: map[string]int64{"k": 1},
		},
		{
			name: "missing lease in the branch not taken",
			req: &pb.TxnRequest{Compare: no,
				Success: []*pb.RequestOp{opPut(&pb.PutRequest{Key: []byte("b"), Lease: 9})},
				Failure: []*pb.RequestOp{opPut(&pb.PutRequest{Key: []byte("c"), Value: []byte("1"), Lease: 2})}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: false, Responses: []*pb.ResponseOp{respPut(4, nil)}},
			kvs:  []*mvccpb.KeyValue{kv("c", "1", 4, 4, 1, 2), j0, k0}, leases: map[string]int64{"k": 1, "c": 2},
		},
		{
			name: "ignore_value on a missing key in a nested txn changes nothing",
			req: &pb.TxnRequest{Success: []*pb.RequestOp{
				opPut(putReq("a", "1")),
				opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut(&pb.PutRequest{Key: []byte("z"), IgnoreValue: true})}}),
			}},
			err: rpctypes.ErrGRPCKeyNotFound,
			kvs: []*mvccpb.KeyValue{j0, k0}, leases: map[string]int64{"k": 1},
		},
		{
			// etcd checks against the revision before the txn.
			name: "range at the txn's own revision is future",
			req:  &pb.TxnRequest{Success: []*pb.RequestOp{opPut(putReq("a", "1")), opRange(&pb.RangeRequest{Key: []byte("k"), Revision: 4})}},
			err:  rpctypes.ErrGRPCFutureRev,
			kvs:  []*mvccpb.KeyValue{j0, k0}, leases: map[string]int64{"k": 1},
		},
		{
			name: "bad sort option changes nothing",
			req:  &pb.TxnRequest{Success: []*pb.RequestOp{opPut(putReq("a", "1")), opRange(&pb.RangeRequest{Key: []byte("k"), SortOrder: 5})}},
			err:  rpctypes.ErrGRPCInvalidSortOption,
			kvs:  []*mvccpb.KeyValue{j0, k0}, leases: map[string]int64{"k": 1},
		},
		{
			name: "range at an old revision",
			req:  &pb.TxnRequest{Success: []*pb.RequestOp{opPut(putReq("k", "v1")), opRange(&pb.RangeRequest{Key: []byte("k"), Revision: 2})}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: true, Responses: []*pb.ResponseOp{respPut(4, nil), respRange(4, k0)}},
			kvs:  []*mvccpb.KeyValue{j0, kv("k", "v1", 2, 4, 2, 0)}, leases: map[string]int64{},
		},
		{
			name: "leases follow puts and deletes",
			req: &pb.TxnRequest{Success: []*pb.RequestOp{
				opPut(&pb.PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: 2}),
				opPut(&pb.PutRequest{Key: []byte("j"), Value: []byte("j1"), Lease: 1}),
				opDel(&pb.DeleteRangeRequest{Key: []byte("k")}),
			}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: true, Responses: []*pb.ResponseOp{respPut(4, nil), respPut(4, nil), respDel(4, 1)}},
			kvs:  []*mvccpb.KeyValue{kv("a", "1", 4, 4, 1, 2), kv("j", "j1", 3, 4, 2, 1)}, leases: map[string]int64{"a": 2, "j": 1},
		},
		{
			name: "ignore_lease keeps the lease",
			req:  &pb.TxnRequest{Success: []*pb.RequestOp{opPut(&pb.PutRequest{Key: []byte("k"), Value: []byte("v9"), IgnoreLease: true, PrevKv: true})}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: true, Responses: []*pb.ResponseOp{respPut(4, k0)}},
			kvs:  []*mvccpb.KeyValue{j0, kv("k", "v9", 2, 4, 2, 1)}, leases: map[string]int64{"k": 1},
		},
		{
			name: "nil ops do nothing",
			req: &pb.TxnRequest{Success: []*pb.RequestOp{
				{}, {Request: &pb.RequestOp_RequestPut{}}, {Request: &pb.RequestOp_RequestRange{}},
				{Request: &pb.RequestOp_RequestDeleteRange{}}, {Request: &pb.RequestOp_RequestTxn{}}, nil,
			}},
			want: &pb.TxnResponse{Header: hdr(3), Succeeded: true, Responses: []*pb.ResponseOp{{}, {}, {}, {}, {}, {}}},
			kvs:  []*mvccpb.KeyValue{j0, k0}, leases: map[string]int64{"k": 1},
		},
		{
			// etcd's API rejects this txn (a put overlapping a delete); if
			// one gets here anyway it must not fail half way.
			name: "ignore_value after deleting the key",
			req: &pb.TxnRequest{Success: []*pb.RequestOp{
				opDel(&pb.DeleteRangeRequest{Key: []byte("k")}),
				opPut(&pb.PutRequest{Key: []byte("k"), IgnoreValue: true}),
			}},
			want: &pb.TxnResponse{Header: hdr(4), Succeeded: true, Responses: []*pb.ResponseOp{respDel(4, 1), respPut(4, nil)}},
			kvs:  []*mvccpb.KeyValue{j0, kv("k", "", 4, 4, 1, 0)}, leases: map[string]int64{},
		},
	}
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore()
				le := newMemLeases(1, 2)
				mustPut(t, s, le, &pb.PutRequest{Key: []byte("k"), Value: []byte("v0"), Lease: 1})
				mustPut(t, s, le, putReq("j", "j0"))

				var resp *pb.TxnResponse
				var err error
				s.write(func(w WriteView) { resp, err = Txn(w, le, tt.req) })
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				wantRev := int64(3)
				if tt.want != nil {
					wantRev = tt.want.Header.Revision
				}
				if !proto.Equal(resp, tt.want) {
					t.Errorf("response\n%v\nwant\n%v", resp, tt.want)
				}
				if s.rev() != wantRev {
					t.Errorf("store at revision %d, want %d", s.rev(), wantRev)
				}
				if got := all(t, s); !equalKVs(got, tt.kvs) {
					t.Errorf("store holds %v, want %v", got, tt.kvs)
				}
				if !maps.Equal(le.keys, tt.leases) {
					t.Errorf("leases hold %v, want %v", le.keys, tt.leases)
				}
			})
		}
	})
}

// TestTxnCompacted: a range at a compacted revision fails the whole txn,
// even after a put.
func TestTxnCompacted(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		s := newStore()
		seedRange(t, s)
		s.compact(6)
		le := newMemLeases()
		req := &pb.TxnRequest{Success: []*pb.RequestOp{opPut(putReq("a", "1")), opRange(&pb.RangeRequest{Key: []byte("b"), Revision: 4})}}
		var err error
		s.write(func(w WriteView) { _, err = Txn(w, le, req) })
		if !errors.Is(err, rpctypes.ErrGRPCCompacted) {
			t.Fatalf("err = %v, want %v", err, rpctypes.ErrGRPCCompacted)
		}
		if s.rev() != 10 || !proto.Equal(get(t, s, "a"), kvA) {
			t.Errorf("failed txn changed the store: revision %d, a = %v", s.rev(), get(t, s, "a"))
		}
		s.read(func(r ReadView) {
			_, err = ReadOnlyTxn(r, &pb.TxnRequest{Success: []*pb.RequestOp{opRange(&pb.RangeRequest{Key: []byte("b"), Revision: 4})}})
		})
		if !errors.Is(err, rpctypes.ErrGRPCCompacted) {
			t.Fatalf("read-only: err = %v, want %v", err, rpctypes.ErrGRPCCompacted)
		}
	})
}

func TestReadOnlyTxn(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		s := newStore()
		seedRange(t, s)
		req := &pb.TxnRequest{
			Compare: []*pb.Compare{cmpValue("a", pb.Compare_EQUAL, "w")},
			Success: []*pb.RequestOp{
				opRange(&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), Revision: 4}),
				opTxn(&pb.TxnRequest{Compare: []*pb.Compare{cmpVersion("b", pb.Compare_EQUAL, 1)}, Failure: []*pb.RequestOp{opGet("d")}}),
			},
			Failure: []*pb.RequestOp{opGet("zz")},
		}
		want := &pb.TxnResponse{Header: hdr(10), Succeeded: true, Responses: []*pb.ResponseOp{
			respRange(10, kv("a", "z", 2, 2, 1, 0), kv("b", "y", 3, 3, 1, 0)),
			respTxn(false, respRange(10, kvD)),
		}}
		var resp *pb.TxnResponse
		var err error
		s.read(func(r ReadView) { resp, err = ReadOnlyTxn(r, req) })
		if err != nil || !proto.Equal(resp, want) {
			t.Errorf("ReadOnlyTxn = %v, %v, want %v", resp, err, want)
		}
		// A write view gives the same answer and stays unchanged.
		s.write(func(w WriteView) { resp, err = Txn(w, newMemLeases(), req) })
		if err != nil || !proto.Equal(resp, want) || s.rev() != 10 {
			t.Errorf("Txn = %v, %v (store at %d), want %v", resp, err, s.rev(), want)
		}

		s.read(func(r ReadView) {
			_, err = ReadOnlyTxn(r, &pb.TxnRequest{Failure: []*pb.RequestOp{opPut(putReq("a", "1"))}})
		})
		if err == nil {
			t.Error("ReadOnlyTxn accepted a txn that writes")
		}
	})
}

func TestIsReadOnlyTxn(t *testing.T) {
	put, del := opPut(putReq("a", "1")), opDel(&pb.DeleteRangeRequest{Key: []byte("a")})
	for _, tt := range []struct {
		name string
		req  *pb.TxnRequest
		want bool
	}{
		{"empty", &pb.TxnRequest{}, true},
		{"nil", nil, true},
		{"ranges", &pb.TxnRequest{Success: []*pb.RequestOp{opGet("a")}, Failure: []*pb.RequestOp{opGet("b")}}, true},
		{"empty ops", &pb.TxnRequest{Success: []*pb.RequestOp{{}, nil}}, true},
		{"put in success", &pb.TxnRequest{Success: []*pb.RequestOp{opGet("a"), put}}, false},
		{"delete in failure", &pb.TxnRequest{Failure: []*pb.RequestOp{del}}, false},
		{"nested reads", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(&pb.TxnRequest{Failure: []*pb.RequestOp{opGet("a")}})}}, true},
		{"nested put", &pb.TxnRequest{Failure: []*pb.RequestOp{opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opTxn(&pb.TxnRequest{Failure: []*pb.RequestOp{put}})}})}}, false},
		{"nested delete", &pb.TxnRequest{Success: []*pb.RequestOp{opGet("a"), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{del}})}}, false},
	} {
		if got := IsReadOnlyTxn(tt.req); got != tt.want {
			t.Errorf("%s: IsReadOnlyTxn = %v, want %v", tt.name, got, tt.want)
		}
	}
}
