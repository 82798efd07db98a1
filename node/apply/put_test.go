package apply

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

func TestPut(t *testing.T) {
	// Each case starts from k=v0 on lease 1, written at revision 2; leases 1
	// and 2 exist.
	k0 := kv("k", "v0", 2, 2, 1, 1)
	tests := []struct {
		name  string
		req   *pb.PutRequest
		err   error
		want  *mvccpb.KeyValue // the key afterwards
		lease int64            // the key's lease in Leases afterwards
		prev  *mvccpb.KeyValue // PutResponse.PrevKv
	}{
		{"new key", &pb.PutRequest{Key: []byte("n"), Value: []byte("x")}, nil, kv("n", "x", 3, 3, 1, 0), 0, nil},
		{"new key on lease", &pb.PutRequest{Key: []byte("n"), Value: []byte("x"), Lease: 2}, nil, kv("n", "x", 3, 3, 1, 2), 2, nil},
		{"new key prev_kv", &pb.PutRequest{Key: []byte("n"), Value: []byte("x"), PrevKv: true}, nil, kv("n", "x", 3, 3, 1, 0), 0, nil},
		{"overwrite drops lease", &pb.PutRequest{Key: []byte("k"), Value: []byte("v1")}, nil, kv("k", "v1", 2, 3, 2, 0), 0, nil},
		{"overwrite same lease", &pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), Lease: 1}, nil, kv("k", "v1", 2, 3, 2, 1), 1, nil},
		{"overwrite other lease", &pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), Lease: 2}, nil, kv("k", "v1", 2, 3, 2, 2), 2, nil},
		{"overwrite prev_kv", &pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), PrevKv: true}, nil, kv("k", "v1", 2, 3, 2, 0), 0, k0},
		{"missing lease", &pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), Lease: 9}, rpctypes.ErrGRPCLeaseNotFound, k0, 1, nil},
		{"ignore value", &pb.PutRequest{Key: []byte("k"), IgnoreValue: true}, nil, kv("k", "v0", 2, 3, 2, 0), 0, nil},
		{"ignore value, new lease", &pb.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 2, PrevKv: true}, nil, kv("k", "v0", 2, 3, 2, 2), 2, k0},
		{"ignore value on missing key", &pb.PutRequest{Key: []byte("n"), IgnoreValue: true}, rpctypes.ErrGRPCKeyNotFound, nil, 0, nil},
		{"ignore lease", &pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), IgnoreLease: true}, nil, kv("k", "v1", 2, 3, 2, 1), 1, nil},
		{"ignore lease on missing key", &pb.PutRequest{Key: []byte("n"), Value: []byte("x"), IgnoreLease: true}, rpctypes.ErrGRPCKeyNotFound, nil, 0, nil},
		{"ignore both", &pb.PutRequest{Key: []byte("k"), IgnoreValue: true, IgnoreLease: true}, nil, kv("k", "v0", 2, 3, 2, 1), 1, nil},
		{"lease is checked first", &pb.PutRequest{Key: []byte("n"), IgnoreValue: true, Lease: 9}, rpctypes.ErrGRPCLeaseNotFound, nil, 0, nil},
	}
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore()
				le := newMemLeases(1, 2)
				mustPut(t, s, le, &pb.PutRequest{Key: []byte("k"), Value: []byte("v0"), Lease: 1})

				var resp *pb.PutResponse
				var err error
				s.write(func(w WriteView) { resp, err = Put(w, le, tt.req) })
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				wantRev := int64(3)
				if err != nil {
					wantRev = 2
				} else {
					if resp.Header.GetRevision() != 3 {
						t.Errorf("header = %v, want revision 3", resp.Header)
					}
					if !proto.Equal(resp.PrevKv, tt.prev) {
						t.Errorf("prev_kv = %v, want %v", resp.PrevKv, tt.prev)
					}
				}
				if s.rev() != wantRev {
					t.Errorf("store revision %d, want %d", s.rev(), wantRev)
				}
				if got := get(t, s, string(tt.req.Key)); !proto.Equal(got, tt.want) {
					t.Errorf("%s = %v, want %v", tt.req.Key, got, tt.want)
				}
				if got := le.GetLease(tt.req.Key); got != tt.lease {
					t.Errorf("lease of %s = %d, want %d", tt.req.Key, got, tt.lease)
				}
				if string(tt.req.Key) != "k" && le.GetLease([]byte("k")) != 1 {
					t.Errorf("k lost its lease: leases hold %v", le.keys)
				}
			})
		}
	})
}

func TestDeleteRange(t *testing.T) {
	// Each case starts from a (lease 1), b (lease 2) and c, written at
	// revisions 2, 3 and 4.
	a, b, c := kv("a", "1", 2, 2, 1, 1), kv("b", "2", 3, 3, 1, 2), kv("c", "3", 4, 4, 1, 0)
	tests := []struct {
		name    string
		req     *pb.DeleteRangeRequest
		deleted int64
		prev    []*mvccpb.KeyValue
		left    []*mvccpb.KeyValue
	}{
		{"single key", &pb.DeleteRangeRequest{Key: []byte("a")}, 1, nil, []*mvccpb.KeyValue{b, c}},
		{"single key prev_kv", &pb.DeleteRangeRequest{Key: []byte("b"), PrevKv: true}, 1, []*mvccpb.KeyValue{b}, []*mvccpb.KeyValue{a, c}},
		{"half open", &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), PrevKv: true}, 2, []*mvccpb.KeyValue{a, b}, []*mvccpb.KeyValue{c}},
		{"from key", &pb.DeleteRangeRequest{Key: []byte("b"), RangeEnd: []byte{0}}, 2, nil, []*mvccpb.KeyValue{a}},
		{"every key", &pb.DeleteRangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, PrevKv: true}, 3, []*mvccpb.KeyValue{a, b, c}, nil},
		{"missing key", &pb.DeleteRangeRequest{Key: []byte("x"), PrevKv: true}, 0, nil, []*mvccpb.KeyValue{a, b, c}},
		{"empty range", &pb.DeleteRangeRequest{Key: []byte("d"), RangeEnd: []byte("z")}, 0, nil, []*mvccpb.KeyValue{a, b, c}},
	}
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := newStore()
				le := newMemLeases(1, 2)
				mustPut(t, s, le, &pb.PutRequest{Key: []byte("a"), Value: []byte("1"), Lease: 1})
				mustPut(t, s, le, &pb.PutRequest{Key: []byte("b"), Value: []byte("2"), Lease: 2})
				mustPut(t, s, le, &pb.PutRequest{Key: []byte("c"), Value: []byte("3")})

				var resp *pb.DeleteRangeResponse
				var err error
				s.write(func(w WriteView) { resp, err = DeleteRange(w, le, tt.req) })
				if err != nil {
					t.Fatal(err)
				}
				wantRev := int64(4)
				if tt.deleted > 0 {
					wantRev = 5
				}
				if resp.Header.GetRevision() != wantRev || s.rev() != wantRev {
					t.Errorf("header %v, store at %d, want revision %d", resp.Header, s.rev(), wantRev)
				}
				if resp.Deleted != tt.deleted {
					t.Errorf("deleted = %d, want %d", resp.Deleted, tt.deleted)
				}
				if !equalKVs(resp.PrevKvs, tt.prev) {
					t.Errorf("prev_kvs = %v, want %v", resp.PrevKvs, tt.prev)
				}
				left := all(t, s)
				if !equalKVs(left, tt.left) {
					t.Errorf("left = %v, want %v", left, tt.left)
				}
				// Exactly the keys left keep their leases.
				want := map[string]int64{}
				for _, kv := range left {
					if kv.Lease != 0 {
						want[string(kv.Key)] = kv.Lease
					}
				}
				if len(le.keys) != len(want) {
					t.Errorf("leases hold %v, want %v", le.keys, want)
				}
				for k, id := range want {
					if le.keys[k] != id {
						t.Errorf("leases hold %v, want %v", le.keys, want)
					}
				}
			})
		}
	})
}
