package apply

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// seedRange leaves the store at revision 10 with
//
//	a=w create 2 mod 5 version 2
//	b=t create 3 mod 8 version 3
//	c=x create 4 mod 4 version 1
//	d=v create 6 mod 6 version 1
//
// and e created at 9, deleted at 10. At revision 4 the store held a=z, b=y
// and c=x, each at version 1.
func seedRange(t testing.TB, s testStore) {
	t.Helper()
	le := newMemLeases()
	for _, p := range [][2]string{{"a", "z"}, {"b", "y"}, {"c", "x"}, {"a", "w"}, {"d", "v"}, {"b", "u"}, {"b", "t"}, {"e", "s"}} {
		mustPut(t, s, le, putReq(p[0], p[1]))
	}
	mustDelete(t, s, le, "e")
	if s.rev() != 10 {
		t.Fatalf("seeded store at revision %d, want 10", s.rev())
	}
}

var (
	kvA = kv("a", "w", 2, 5, 2, 0)
	kvB = kv("b", "t", 3, 8, 3, 0)
	kvC = kv("c", "x", 4, 4, 1, 0)
	kvD = kv("d", "v", 6, 6, 1, 0)
)

func noValue(kv *mvccpb.KeyValue) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
}

func TestRange(t *testing.T) {
	from := func(r *pb.RangeRequest) *pb.RangeRequest {
		r.Key, r.RangeEnd = []byte("a"), []byte{0}
		return r
	}
	tests := []struct {
		name  string
		req   *pb.RangeRequest
		want  []*mvccpb.KeyValue
		count int64
		more  bool
		err   error
	}{
		{"single key", &pb.RangeRequest{Key: []byte("a")}, []*mvccpb.KeyValue{kvA}, 1, false, nil},
		{"missing key", &pb.RangeRequest{Key: []byte("zz")}, nil, 0, false, nil},
		{"deleted key", &pb.RangeRequest{Key: []byte("e")}, nil, 0, false, nil},
		{"empty range_end is a single key", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte{}}, []*mvccpb.KeyValue{kvA}, 1, false, nil},
		{"half open", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c")}, []*mvccpb.KeyValue{kvA, kvB}, 2, false, nil},
		{"from key", &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte{0}}, []*mvccpb.KeyValue{kvB, kvC, kvD}, 3, false, nil},
		{"every key", &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}, []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}, 4, false, nil},
		{"serializable changes nothing", from(&pb.RangeRequest{Serializable: true}), []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}, 4, false, nil},

		{"limit below count", from(&pb.RangeRequest{Limit: 2}), []*mvccpb.KeyValue{kvA, kvB}, 4, true, nil},
		{"limit at count", from(&pb.RangeRequest{Limit: 4}), []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}, 4, false, nil},
		{"limit above count", from(&pb.RangeRequest{Limit: 5}), []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}, 4, false, nil},
		{"max limit", from(&pb.RangeRequest{Limit: math.MaxInt64}), []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}, 4, false, nil},
		{"negative limit is none", from(&pb.RangeRequest{Limit: -1}), []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}, 4, false, nil},

		{"old revision", from(&pb.RangeRequest{Revision: 4}), []*mvccpb.KeyValue{kv("a", "z", 2, 2, 1, 0), kv("b", "y", 3, 3, 1, 0), kvC}, 3, false, nil},
		{"revision with deleted key", &pb.RangeRequest{Key: []byte("e"), Revision: 9}, []*mvccpb.KeyValue{kv("e", "s", 9, 9, 1, 0)}, 1, false, nil},
		{"current revision", from(&pb.RangeRequest{Revision: 10}), []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}, 4, false, nil},
		{"future revision", from(&pb.RangeRequest{Revision: 11}), nil, 0, false, rpctypes.ErrGRPCFutureRev},

		{"key ascend is natural order", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND}), []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}, 4, false, nil},
		{"key descend", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND}), []*mvccpb.KeyValue{kvD, kvC, kvB, kvA}, 4, false, nil},
		{"version ascend", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_VERSION}), []*mvccpb.KeyValue{kvC, kvD, kvA, kvB}, 4, false, nil},
		{"version descend", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VERSION}), []*mvccpb.KeyValue{kvB, kvA, kvC, kvD}, 4, false, nil},
		{"order none with target version ascends", from(&pb.RangeRequest{SortTarget: pb.RangeRequest_VERSION}), []*mvccpb.KeyValue{kvC, kvD, kvA, kvB}, 4, false, nil},
		{"create ascend", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_CREATE}), []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}, 4, false, nil},
		{"create descend", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_CREATE}), []*mvccpb.KeyValue{kvD, kvC, kvB, kvA}, 4, false, nil},
		{"mod ascend", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_MOD}), []*mvccpb.KeyValue{kvC, kvA, kvD, kvB}, 4, false, nil},
		{"mod descend", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD}), []*mvccpb.KeyValue{kvB, kvD, kvA, kvC}, 4, false, nil},
		{"value ascend", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_VALUE}), []*mvccpb.KeyValue{kvB, kvD, kvA, kvC}, 4, false, nil},
		{"value descend", from(&pb.RangeRequest{SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VALUE}), []*mvccpb.KeyValue{kvC, kvA, kvD, kvB}, 4, false, nil},
		{"unknown sort order", from(&pb.RangeRequest{SortOrder: 7}), nil, 0, false, rpctypes.ErrGRPCInvalidSortOption},
		{"unknown sort target", from(&pb.RangeRequest{SortTarget: 9}), nil, 0, false, rpctypes.ErrGRPCInvalidSortOption},

		// Sorting drops the limit from the read: the top two by mod revision.
		{"limit with sort", from(&pb.RangeRequest{Limit: 2, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_MOD}), []*mvccpb.KeyValue{kvB, kvD}, 4, true, nil},
		{"limit with key descend", from(&pb.RangeRequest{Limit: 3, SortOrder: pb.RangeRequest_DESCEND}), []*mvccpb.KeyValue{kvD, kvC, kvB}, 4, true, nil},
		// etcd's quirk: order NONE keeps the limit on the read (a, b, c) and
		// sorts only those by mod revision.
		{"limit with order none and target mod", from(&pb.RangeRequest{Limit: 2, SortTarget: pb.RangeRequest_MOD}), []*mvccpb.KeyValue{kvC, kvA}, 4, true, nil},

		{"min mod", from(&pb.RangeRequest{MinModRevision: 5}), []*mvccpb.KeyValue{kvA, kvB, kvD}, 4, false, nil},
		{"max mod", from(&pb.RangeRequest{MaxModRevision: 5}), []*mvccpb.KeyValue{kvA, kvC}, 4, false, nil},
		{"min create", from(&pb.RangeRequest{MinCreateRevision: 3}), []*mvccpb.KeyValue{kvB, kvC, kvD}, 4, false, nil},
		{"max create", from(&pb.RangeRequest{MaxCreateRevision: 3}), []*mvccpb.KeyValue{kvA, kvB}, 4, false, nil},
		{"mod and create bounds", from(&pb.RangeRequest{MinModRevision: 5, MaxCreateRevision: 4}), []*mvccpb.KeyValue{kvA, kvB}, 4, false, nil},
		{"bounds exclude all", from(&pb.RangeRequest{MinCreateRevision: 7}), nil, 4, false, nil},
		// Filtering drops the limit from the read; count stays unfiltered.
		{"filter with limit, more left", from(&pb.RangeRequest{MinModRevision: 5, Limit: 2}), []*mvccpb.KeyValue{kvA, kvB}, 4, true, nil},
		{"filter with limit, none left", from(&pb.RangeRequest{MinModRevision: 5, Limit: 3}), []*mvccpb.KeyValue{kvA, kvB, kvD}, 4, false, nil},
		{"filter, sort and limit", from(&pb.RangeRequest{MaxModRevision: 6, Limit: 2, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VALUE}), []*mvccpb.KeyValue{kvC, kvA}, 4, true, nil},
		{"filter at old revision", from(&pb.RangeRequest{Revision: 4, MinCreateRevision: 3}), []*mvccpb.KeyValue{kv("b", "y", 3, 3, 1, 0), kvC}, 3, false, nil},

		{"keys only", from(&pb.RangeRequest{KeysOnly: true}), []*mvccpb.KeyValue{noValue(kvA), noValue(kvB), noValue(kvC), noValue(kvD)}, 4, false, nil},
		// Values are stripped after sorting by them.
		{"keys only sorted by value", from(&pb.RangeRequest{KeysOnly: true, SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VALUE, Limit: 2}), []*mvccpb.KeyValue{noValue(kvC), noValue(kvA)}, 4, true, nil},
		{"count only", from(&pb.RangeRequest{CountOnly: true}), nil, 4, false, nil},
		{"count only with limit", from(&pb.RangeRequest{CountOnly: true, Limit: 1}), nil, 4, false, nil},
		{"count only at old revision", from(&pb.RangeRequest{CountOnly: true, Revision: 4}), nil, 3, false, nil},
	}
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		s := newStore()
		seedRange(t, s)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var resp *pb.RangeResponse
				var err error
				s.read(func(r ReadView) { resp, err = Range(r, tt.req) })
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if err != nil {
					return
				}
				if resp.Header == nil || resp.Header.Revision != 10 {
					t.Errorf("header = %v, want revision 10", resp.Header)
				}
				if !equalKVs(resp.Kvs, tt.want) {
					t.Errorf("kvs = %v, want %v", resp.Kvs, tt.want)
				}
				if resp.Count != tt.count || resp.More != tt.more {
					t.Errorf("count, more = %d, %v, want %d, %v", resp.Count, resp.More, tt.count, tt.more)
				}
			})
		}
		// keys_only must not have stripped the store's own messages.
		if got := all(t, s); !equalKVs(got, []*mvccpb.KeyValue{kvA, kvB, kvC, kvD}) {
			t.Errorf("store after the ranges = %v", got)
		}
	})
}

// TestRangeKeysOnlyLease: like etcd 3.7, a keys-only range answers lease 0
// (it is served without the stored values), except when it sorts by value,
// which reads them and only strips the values afterwards.
func TestRangeKeysOnlyLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		s := newStore()
		le := newMemLeases(7)
		mustPut(t, s, le, &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 7})
		for _, tt := range []struct {
			name string
			req  *pb.RangeRequest
			want *mvccpb.KeyValue
		}{
			{"keys only", &pb.RangeRequest{Key: []byte("k"), KeysOnly: true}, kv("k", "", 2, 2, 1, 0)},
			{"keys only sorted by value", &pb.RangeRequest{Key: []byte("k"), KeysOnly: true, SortTarget: pb.RangeRequest_VALUE}, kv("k", "", 2, 2, 1, 7)},
			{"with values", &pb.RangeRequest{Key: []byte("k")}, kv("k", "v", 2, 2, 1, 7)},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var resp *pb.RangeResponse
				var err error
				s.read(func(r ReadView) { resp, err = Range(r, tt.req) })
				if err != nil {
					t.Fatal(err)
				}
				want := tt.want
				if len(want.Value) == 0 {
					want.Value = nil
				}
				if !equalKVs(resp.Kvs, []*mvccpb.KeyValue{want}) {
					t.Errorf("kvs = %v, want %v", resp.Kvs, want)
				}
			})
		}
	})
}

func TestRangeCompacted(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func() testStore) {
		s := newStore()
		seedRange(t, s)
		s.compact(6)
		for _, tt := range []struct {
			rev int64
			err error
		}{{4, rpctypes.ErrGRPCCompacted}, {6, nil}, {10, nil}, {11, rpctypes.ErrGRPCFutureRev}} {
			var err error
			s.read(func(r ReadView) {
				_, err = Range(r, &pb.RangeRequest{Key: []byte("a"), Revision: tt.rev})
			})
			if !errors.Is(err, tt.err) {
				t.Errorf("range at %d: err = %v, want %v", tt.rev, err, tt.err)
			}
		}
	})
}

// TestSortMatchesEtcd checks the claim in sortKVs: slices.SortFunc leaves
// equal keys in the same order as etcd's sort.Sort, ascending and
// descending.
func TestSortMatchesEtcd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		kvs := make([]*mvccpb.KeyValue, n)
		for i := range kvs {
			kvs[i] = &mvccpb.KeyValue{Key: []byte{byte(i >> 8), byte(i)}, Version: rng.Int64N(4)}
		}
		for _, order := range []pb.RangeRequest_SortOrder{pb.RangeRequest_ASCEND, pb.RangeRequest_DESCEND} {
			got := slices.Clone(kvs)
			sortKVs(got, &pb.RangeRequest{SortOrder: order, SortTarget: pb.RangeRequest_VERSION})
			want := slices.Clone(kvs)
			var s sort.Interface = byVersion(want)
			if order == pb.RangeRequest_DESCEND {
				s = sort.Reverse(s)
			}
			sort.Sort(s)
			if !slices.Equal(got, want) {
				t.Fatalf("n=%d order %v: order differs from sort.Sort", n, order)
			}
		}
	}
}

type byVersion []*mvccpb.KeyValue

func (s byVersion) Len() int           { return len(s) }
func (s byVersion) Less(i, j int) bool { return s[i].Version-s[j].Version < 0 }
func (s byVersion) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
