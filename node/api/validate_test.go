package api

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

func TestValidateRange(t *testing.T) {
	tests := []struct {
		name string
		r    *pb.RangeRequest
		want error
	}{
		{"ok", &pb.RangeRequest{Key: []byte("a")}, nil},
		{"nil", nil, rpctypes.ErrGRPCEmptyKey},
		{"empty key", &pb.RangeRequest{RangeEnd: []byte("b")}, rpctypes.ErrGRPCEmptyKey},
		{"sort order out of range", &pb.RangeRequest{Key: []byte("a"), SortOrder: 3}, rpctypes.ErrGRPCInvalidSortOption},
		{"sort order negative", &pb.RangeRequest{Key: []byte("a"), SortOrder: -1}, rpctypes.ErrGRPCInvalidSortOption},
		{"sort target out of range", &pb.RangeRequest{Key: []byte("a"), SortTarget: 5}, rpctypes.ErrGRPCInvalidSortOption},
		{"sort by value descending", &pb.RangeRequest{Key: []byte("a"), SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VALUE}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidateRange(tt.r); !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidatePut(t *testing.T) {
	tests := []struct {
		name string
		r    *pb.PutRequest
		want error
	}{
		{"ok", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), Lease: 5}, nil},
		{"empty key", &pb.PutRequest{Value: []byte("v")}, rpctypes.ErrGRPCEmptyKey},
		{"ignore value without value", &pb.PutRequest{Key: []byte("a"), IgnoreValue: true}, nil},
		{"ignore value with value", &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}, rpctypes.ErrGRPCValueProvided},
		{"ignore lease without lease", &pb.PutRequest{Key: []byte("a"), IgnoreLease: true}, nil},
		{"ignore lease with lease", &pb.PutRequest{Key: []byte("a"), Lease: 1, IgnoreLease: true}, rpctypes.ErrGRPCLeaseProvided},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidatePut(tt.r); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidateDeleteRangeAndCompact(t *testing.T) {
	if err := ValidateDeleteRange(&pb.DeleteRangeRequest{RangeEnd: []byte("z")}); err != rpctypes.ErrGRPCEmptyKey {
		t.Fatalf("empty delete key: got %v", err)
	}
	if err := ValidateDeleteRange(&pb.DeleteRangeRequest{Key: []byte("a")}); err != nil {
		t.Fatalf("delete: got %v", err)
	}
	for rev, want := range map[int64]error{-1: rpctypes.ErrGRPCCompacted, 0: nil, 7: nil} {
		if err := ValidateCompact(&pb.CompactionRequest{Revision: rev}); err != want {
			t.Fatalf("compact %d: got %v, want %v", rev, err, want)
		}
	}
}

func put(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k)}}}
}

func del(k, end string) *pb.RequestOp {
	r := &pb.DeleteRangeRequest{Key: []byte(k)}
	if end != "" {
		r.RangeEnd = []byte(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: r}}
}

func get(k string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k)}}}
}

func txn(then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: then, Failure: els}}}
}

func ops(o ...*pb.RequestOp) []*pb.RequestOp { return o }

func TestValidateTxn(t *testing.T) {
	many := func(n int) []*pb.RequestOp {
		o := make([]*pb.RequestOp, n)
		for i := range o {
			o[i] = get("k")
		}
		return o
	}
	tests := []struct {
		name string
		r    *pb.TxnRequest
		max  int
		want error
	}{
		{"empty", &pb.TxnRequest{}, 128, nil},
		{"at the op limit", &pb.TxnRequest{Success: many(4), Failure: many(4)}, 4, nil},
		{"too many success ops", &pb.TxnRequest{Success: many(5)}, 4, rpctypes.ErrGRPCTooManyOps},
		{"too many compares", &pb.TxnRequest{Compare: make([]*pb.Compare, 5)}, 4, rpctypes.ErrGRPCTooManyOps},
		// The nested txn gets what its parent left: 4 - 2 = 2 ops.
		{"nested over remaining budget", &pb.TxnRequest{Success: ops(get("a"), txn(many(3), nil))}, 4, rpctypes.ErrGRPCTooManyOps},
		{"nested within remaining budget", &pb.TxnRequest{Success: ops(get("a"), txn(many(2), nil))}, 4, nil},
		{"compare without key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, 128, rpctypes.ErrGRPCEmptyKey},
		{"nil compare", &pb.TxnRequest{Compare: []*pb.Compare{nil}}, 128, rpctypes.ErrGRPCEmptyKey},
		{"empty op", &pb.TxnRequest{Success: ops(&pb.RequestOp{})}, 128, rpctypes.ErrGRPCKeyNotFound},
		{"nil op", &pb.TxnRequest{Failure: ops(nil)}, 128, rpctypes.ErrGRPCKeyNotFound},
		{"bad put in failure", &pb.TxnRequest{Failure: ops(put(""))}, 128, rpctypes.ErrGRPCEmptyKey},
		{"bad range in nested", &pb.TxnRequest{Success: ops(txn(nil, ops(get(""))))}, 128, rpctypes.ErrGRPCEmptyKey},
		{"bad delete", &pb.TxnRequest{Success: ops(del("", ""))}, 128, rpctypes.ErrGRPCEmptyKey},

		{"two puts of a key", &pb.TxnRequest{Success: ops(put("a"), put("a"))}, 128, rpctypes.ErrGRPCDuplicateKey},
		{"puts of different keys", &pb.TxnRequest{Success: ops(put("a"), put("b"))}, 128, nil},
		{"same key in success and failure", &pb.TxnRequest{Success: ops(put("a")), Failure: ops(put("a"))}, 128, nil},
		{"put and point delete", &pb.TxnRequest{Success: ops(del("a", ""), put("a"))}, 128, rpctypes.ErrGRPCDuplicateKey},
		{"put inside deleted range", &pb.TxnRequest{Success: ops(put("b"), del("a", "c"))}, 128, rpctypes.ErrGRPCDuplicateKey},
		{"put at range end", &pb.TxnRequest{Success: ops(put("c"), del("a", "c"))}, 128, nil},
		{"put before range", &pb.TxnRequest{Success: ops(put("a"), del("b", "c"))}, 128, nil},
		{"overlapping deletes", &pb.TxnRequest{Success: ops(del("a", "c"), del("b", "d"), del("b", ""))}, 128, nil},
		// etcd's interval tree treats "\x00" as an end below the start.
		{"from-key delete covers nothing", &pb.TxnRequest{Success: ops(put("b"), del("a", "\x00"))}, 128, nil},
		{"inverted delete covers nothing", &pb.TxnRequest{Success: ops(put("b"), del("c", "a"))}, 128, nil},
		{"put here, put in nested", &pb.TxnRequest{Success: ops(put("a"), txn(ops(put("a")), nil))}, 128, rpctypes.ErrGRPCDuplicateKey},
		{"nested then and else put one key", &pb.TxnRequest{Success: ops(txn(ops(put("a")), ops(put("a"))))}, 128, nil},
		{"two nested txns put one key", &pb.TxnRequest{Success: ops(txn(ops(put("a")), nil), txn(nil, ops(put("a"))))}, 128, rpctypes.ErrGRPCDuplicateKey},
		{"delete here, put in nested", &pb.TxnRequest{Success: ops(del("a", "z"), txn(nil, ops(put("m"))))}, 128, rpctypes.ErrGRPCDuplicateKey},
		{"delete in nested, put here", &pb.TxnRequest{Success: ops(txn(ops(del("a", "z")), nil), put("m"))}, 128, rpctypes.ErrGRPCDuplicateKey},
		{"delete in earlier nested, put in later", &pb.TxnRequest{Success: ops(txn(ops(del("m", "")), nil), txn(ops(put("m")), nil))}, 128, rpctypes.ErrGRPCDuplicateKey},
		// etcd only looks back: a later sibling's delete does not meet an
		// earlier sibling's put.
		{"put in earlier nested, delete in later", &pb.TxnRequest{Success: ops(txn(ops(put("m")), nil), txn(ops(del("m", "")), nil))}, 128, nil},
		{"nested put and delete of one key", &pb.TxnRequest{Success: ops(txn(ops(put("m"), del("m", "")), nil))}, 128, rpctypes.ErrGRPCDuplicateKey},
		{"deep nesting", &pb.TxnRequest{Success: ops(del("k", ""), txn(ops(txn(ops(txn(nil, ops(put("k")))), nil)), nil))}, 128, rpctypes.ErrGRPCDuplicateKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidateTxn(tt.r, tt.max); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDelSetTree drives delSet past its linear stage so that merged spans
// in the tree answer like the plain list of ranges.
func TestDelSetTree(t *testing.T) {
	ranges := [][2]string{{"b", "d"}, {"f", ""}, {"c", "e"}, {"h", "j"}, {"j", "k"}, {"x", "\x00"}, {"p", "m"}}
	for i := 0; i < 3*smallDelSet; i++ {
		k := string(rune('A' + i))
		ranges = append(ranges, [2]string{k + "1", k + "3"})
	}
	var s delSet
	for _, r := range ranges {
		dr := &pb.DeleteRangeRequest{Key: []byte(r[0])}
		if r[1] != "" {
			dr.RangeEnd = []byte(r[1])
		}
		s.add(dr)
	}
	if s.tree == nil {
		t.Fatal("expected the tree stage")
	}
	naive := func(k string) bool {
		for _, r := range ranges {
			if r[1] == "" && k == r[0] || r[1] != "" && r[0] <= k && k < r[1] {
				return true
			}
		}
		return false
	}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "f\x00", "g", "h", "i", "j", "k", "m", "n", "p", "x", "y", "A1", "A2", "A3", "B0", "Z", "[1", "\x00"} {
		if got, want := s.covers(k), naive(k); got != want {
			t.Errorf("covers(%q) = %v, want %v", k, got, want)
		}
	}
}

func FuzzValidateTxn(f *testing.F) {
	seeds := []*pb.TxnRequest{
		{Success: ops(put("a"), del("a", "c")), Failure: ops(get("x"))},
		{Success: ops(txn(ops(put("a")), ops(put("a"))), del("b", "\x00")), Compare: []*pb.Compare{{Key: []byte("a")}}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, 8)
	}
	f.Fuzz(func(t *testing.T, b []byte, maxOps int) {
		var r pb.TxnRequest
		if proto.Unmarshal(b, &r) != nil {
			return
		}
		_ = ValidateTxn(&r, maxOps)
	})
}
