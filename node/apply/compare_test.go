package apply

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// seedCompare leaves the store at revision 6 with
//
//	k    = v1, create 2, mod 3, version 2, lease 1
//	r/a  = 1,  create 4, mod 4, version 1
//	r/b  = 2,  create 5, mod 6, version 2
func seedCompare(t testing.TB, s testStore, le Leases) {
	t.Helper()
	mustPut(t, s, le, putReq("k", "v0"))
	mustPut(t, s, le, &pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), Lease: 1})
	mustPut(t, s, le, putReq("r/a", "1"))
	mustPut(t, s, le, putReq("r/b", "1"))
	mustPut(t, s, le, putReq("r/b", "2"))
}

func cmpVersion(key string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_VERSION, Result: r, TargetUnion: &pb.Compare_Version{Version: v}}
}

func cmpValue(key string, r pb.Compare_CompareResult, v string) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_VALUE, Result: r, TargetUnion: &pb.Compare_Value{Value: []byte(v)}}
}

func cmpMod(key string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_MOD, Result: r, TargetUnion: &pb.Compare_ModRevision{ModRevision: v}}
}

func withEnd(c *pb.Compare, end string) *pb.Compare {
	c.RangeEnd = []byte(end)
	return c
}

type compareCase struct {
	name string
	cmp  *pb.Compare
	want bool
}

// compareGrid covers every target against every result, with the operand
// below, equal to and above the key's field.
func compareGrid() []compareCase {
	targets := []struct {
		name string
		mk   func(delta int64) *pb.Compare
	}{
		{"version", func(d int64) *pb.Compare {
			return &pb.Compare{Target: pb.Compare_VERSION, TargetUnion: &pb.Compare_Version{Version: 2 + d}}
		}},
		{"create", func(d int64) *pb.Compare {
			return &pb.Compare{Target: pb.Compare_CREATE, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 2 + d}}
		}},
		{"mod", func(d int64) *pb.Compare {
			return &pb.Compare{Target: pb.Compare_MOD, TargetUnion: &pb.Compare_ModRevision{ModRevision: 3 + d}}
		}},
		{"lease", func(d int64) *pb.Compare {
			return &pb.Compare{Target: pb.Compare_LEASE, TargetUnion: &pb.Compare_Lease{Lease: 1 + d}}
		}},
		{"value", func(d int64) *pb.Compare {
			return &pb.Compare{Target: pb.Compare_VALUE, TargetUnion: &pb.Compare_Value{Value: []byte{'v', byte('1' + d)}}}
		}},
	}
	var out []compareCase
	for _, tg := range targets {
		for _, d := range []int64{-1, 0, 1} {
			// d < 0: the key's field is greater than the operand.
			holds := map[pb.Compare_CompareResult]bool{
				pb.Compare_EQUAL:     d == 0,
				pb.Compare_NOT_EQUAL: d != 0,
				pb.Compare_GREATER:   d < 0,
				pb.Compare_LESS:      d > 0,
			}
			for r, want := range holds {
				c := tg.mk(d)
				c.Key, c.Result = []byte("k"), r
				out = append(out, compareCase{fmt.Sprintf("%s %v operand%+d", tg.name, r, d), c, want})
			}
		}
	}
	return out
}

func TestCompare(t *testing.T) {
	tests := append(compareGrid(), []compareCase{
		// A missing key compares as all zero fields, but never by value.
		{"missing version = 0", cmpVersion("x", pb.Compare_EQUAL, 0), true},
		{"missing version > 0", cmpVersion("x", pb.Compare_GREATER, 0), false},
		{"missing create = 0", &pb.Compare{Key: []byte("x"), Target: pb.Compare_CREATE, TargetUnion: &pb.Compare_CreateRevision{}}, true},
		{"missing mod < 1", cmpMod("x", pb.Compare_LESS, 1), true},
		{"missing lease = 0", &pb.Compare{Key: []byte("x"), Target: pb.Compare_LEASE}, true},
		{"missing value = empty", cmpValue("x", pb.Compare_EQUAL, ""), false},
		{"missing value != v", cmpValue("x", pb.Compare_NOT_EQUAL, "v"), false},
		// An operand of another target reads as 0.
		{"mismatched operand", &pb.Compare{Key: []byte("k"), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_ModRevision{ModRevision: 99}}, true},
		// With a range_end every key in the range must hold.
		{"range all hold", withEnd(cmpVersion("r/", pb.Compare_GREATER, 0), "r0"), true},
		{"range one fails", withEnd(cmpVersion("r/", pb.Compare_EQUAL, 1), "r0"), false},
		{"range all below", withEnd(cmpVersion("r/", pb.Compare_LESS, 3), "r0"), true},
		{"range from key", withEnd(cmpMod("r/", pb.Compare_GREATER, 3), "\x00"), true},
		{"range value", withEnd(cmpValue("r/", pb.Compare_GREATER, "0"), "r0"), true},
		{"range value one fails", withEnd(cmpValue("r/", pb.Compare_EQUAL, "1"), "r0"), false},
		// An empty range behaves like a missing key.
		{"empty range version = 0", withEnd(cmpVersion("s/", pb.Compare_EQUAL, 0), "s0"), true},
		{"empty range mod > 0", withEnd(cmpMod("s/", pb.Compare_GREATER, 0), "s0"), false},
		{"empty range value", withEnd(cmpValue("s/", pb.Compare_NOT_EQUAL, "x"), "s0"), false},
	}...)
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		s := newStore()
		le := newMemLeases(1)
		seedCompare(t, s, le)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req := &pb.TxnRequest{Compare: []*pb.Compare{tt.cmp}}
				var ro, rw *pb.TxnResponse
				var err1, err2 error
				s.read(func(r ReadView) { ro, err1 = ReadOnlyTxn(r, req) })
				s.write(func(w WriteView) { rw, err2 = Txn(w, le, req) })
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if ro.Succeeded != tt.want || rw.Succeeded != tt.want {
					t.Errorf("succeeded = %v (read-only), %v (write), want %v", ro.Succeeded, rw.Succeeded, tt.want)
				}
			})
		}
		if s.rev() != 6 {
			t.Errorf("compares moved the store to revision %d", s.rev())
		}
	})
}

// TestCompareAll checks that a txn succeeds only if all its compares hold.
func TestCompareAll(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		s := newStore()
		seedCompare(t, s, newMemLeases(1))
		for _, tt := range []struct {
			cmps []*pb.Compare
			want bool
		}{
			{nil, true},
			{[]*pb.Compare{cmpVersion("k", pb.Compare_EQUAL, 2), cmpValue("k", pb.Compare_EQUAL, "v1")}, true},
			{[]*pb.Compare{cmpVersion("k", pb.Compare_EQUAL, 2), cmpValue("k", pb.Compare_EQUAL, "v0")}, false},
			{[]*pb.Compare{cmpVersion("k", pb.Compare_EQUAL, 1), cmpValue("k", pb.Compare_EQUAL, "v1")}, false},
		} {
			var resp *pb.TxnResponse
			var err error
			s.read(func(r ReadView) { resp, err = ReadOnlyTxn(r, &pb.TxnRequest{Compare: tt.cmps}) })
			if err != nil || resp.Succeeded != tt.want {
				t.Errorf("%v: succeeded = %v, %v, want %v", tt.cmps, resp.GetSucceeded(), err, tt.want)
			}
		}
	})
}
