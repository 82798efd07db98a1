package apply

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// testStore is what the tests need from a store: views, its revision and
// compaction.
type testStore interface {
	rev() int64
	write(fn func(w WriteView))
	read(fn func(r ReadView))
	compact(rev int64)
}

// storeKinds are the stores every test runs against.
var storeKinds = []struct {
	name string
	new  func(t testing.TB) testStore
}{
	{"mvcc", newRealStore},
	{"mem", func(testing.TB) testStore { return newMemStore() }},
}

// forEachStore runs fn as a subtest per store kind.
func forEachStore(t *testing.T, fn func(t *testing.T, newStore func() testStore)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			fn(t, func() testStore { return k.new(t) })
		})
	}
}

func kv(key, val string, create, mod, ver, lease int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(key), Value: []byte(val), CreateRevision: create, ModRevision: mod, Version: ver, Lease: lease}
}

func putReq(key, val string) *pb.PutRequest {
	return &pb.PutRequest{Key: []byte(key), Value: []byte(val)}
}

func mustPut(t testing.TB, s testStore, le Leases, req *pb.PutRequest) {
	t.Helper()
	var err error
	s.write(func(w WriteView) { _, err = Put(w, le, req) })
	if err != nil {
		t.Fatalf("put %q: %v", req.Key, err)
	}
}

func mustDelete(t testing.TB, s testStore, le Leases, key string) {
	t.Helper()
	var err error
	s.write(func(w WriteView) {
		_, err = DeleteRange(w, le, &pb.DeleteRangeRequest{Key: []byte(key)})
	})
	if err != nil {
		t.Fatalf("delete %q: %v", key, err)
	}
}

// all reads every live key.
func all(t testing.TB, s testStore) []*mvccpb.KeyValue {
	t.Helper()
	var resp *pb.RangeResponse
	var err error
	s.read(func(r ReadView) {
		resp, err = Range(r, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	})
	if err != nil {
		t.Fatalf("range all: %v", err)
	}
	return resp.Kvs
}

// get reads one key, nil if missing.
func get(t testing.TB, s testStore, key string) *mvccpb.KeyValue {
	t.Helper()
	var resp *pb.RangeResponse
	var err error
	s.read(func(r ReadView) { resp, err = Range(r, &pb.RangeRequest{Key: []byte(key)}) })
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

func equalKVs(a, b []*mvccpb.KeyValue) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func keysOf(kvs []*mvccpb.KeyValue) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
}
