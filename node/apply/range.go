package apply

import (
	"bytes"
	"cmp"
	"math"
	"slices"

	"github.com/ballastdb/ballast/node/mvcc"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Range serves req from r. The header carries r's revision, which is the
// store's current revision even when req asks for an older one.
func Range(r ReadView, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkSort(req); err != nil {
		return nil, err
	}
	return executeRange(r, req, r.Rev())
}

// executeRange reads, filters, sorts and trims like etcd; rev goes into the
// header. It never mutates the KeyValues the view returns.
func executeRange(v ReadView, req *pb.RangeRequest, rev int64) (*pb.RangeResponse, error) {
	// A keys-only range the store can answer without values (anything but
	// a sort by value) leaves them out from the start, and the leases with
	// them: etcd 3.7 answers such a range from its index alone, lease 0.
	fastKeysOnly := req.KeysOnly && req.SortTarget != pb.RangeRequest_VALUE
	rr, err := v.Range(req.Key, rangeEnd(req.RangeEnd), mvcc.RangeOptions{
		Limit:     storeLimit(req),
		Rev:       req.Revision,
		CountOnly: req.CountOnly,
		KeysOnly:  fastKeysOnly,
	})
	if err != nil {
		return nil, grpcError(err)
	}
	kvs := filterKVs(rr.KVs, req)
	sortKVs(kvs, req)

	// Count is what the store counted, before the revision filters, exactly
	// as etcd reports it; More says whether filtering and sorting left more
	// than Limit keys.
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: rev}, Count: rr.Count}
	if req.Limit > 0 && int64(len(kvs)) > req.Limit {
		kvs = kvs[:req.Limit]
		resp.More = true
	}
	if req.KeysOnly && !fastKeysOnly {
		kvs = withoutValues(kvs)
	}
	resp.Kvs = kvs
	return resp, nil
}

// storeLimit is the limit passed to the store. When the keys must be
// filtered or re-sorted the store must return all of them, because the
// first Limit keys in key order may not be the ones that survive. Otherwise
// it asks for one key more than Limit so More can be told without counting.
func storeLimit(req *pb.RangeRequest) int64 {
	if req.Limit <= 0 || req.Limit == math.MaxInt64 || hasRevisionFilters(req) ||
		!isKeyOrder(req.SortTarget, req.SortOrder) {
		return 0
	}
	return req.Limit + 1
}

// isKeyOrder reports whether the store's natural order (ascending by key)
// already is the requested order. Like etcd it looks at the order as sent:
// NONE with a target other than KEY still reads with the limit and then
// sorts only what was read.
func isKeyOrder(target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) bool {
	return order == pb.RangeRequest_NONE ||
		(target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND)
}

func hasRevisionFilters(req *pb.RangeRequest) bool {
	return req.MinModRevision != 0 || req.MaxModRevision != 0 ||
		req.MinCreateRevision != 0 || req.MaxCreateRevision != 0
}

// filterKVs drops, in place, the keys outside the request's revision
// bounds; a bound of 0 means none.
func filterKVs(kvs []*mvccpb.KeyValue, req *pb.RangeRequest) []*mvccpb.KeyValue {
	if !hasRevisionFilters(req) {
		return kvs
	}
	out := kvs[:0]
	for _, kv := range kvs {
		switch {
		case req.MaxModRevision != 0 && kv.ModRevision > req.MaxModRevision:
		case req.MinModRevision != 0 && kv.ModRevision < req.MinModRevision:
		case req.MaxCreateRevision != 0 && kv.CreateRevision > req.MaxCreateRevision:
		case req.MinCreateRevision != 0 && kv.CreateRevision < req.MinCreateRevision:
		default:
			out = append(out, kv)
		}
	}
	return out
}

// sortKVs orders kvs as requested. Following etcd, a target other than KEY
// with order NONE sorts ascending. slices.SortFunc runs the same pdqsort as
// etcd's sort.Sort, so keys that compare equal end up in the same order.
func sortKVs(kvs []*mvccpb.KeyValue, req *pb.RangeRequest) {
	order := req.SortOrder
	if order == pb.RangeRequest_NONE && req.SortTarget != pb.RangeRequest_KEY {
		order = pb.RangeRequest_ASCEND
	}
	if isKeyOrder(req.SortTarget, order) || len(kvs) < 2 {
		return
	}
	var c func(a, b *mvccpb.KeyValue) int
	switch req.SortTarget {
	case pb.RangeRequest_KEY:
		c = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
	case pb.RangeRequest_VERSION:
		c = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		c = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		c = func(a, b *mvccpb.KeyValue) int { return cmp.Compare(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		c = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	default:
		return // rejected by checkSort
	}
	switch order {
	case pb.RangeRequest_ASCEND:
		slices.SortFunc(kvs, c)
	case pb.RangeRequest_DESCEND:
		slices.SortFunc(kvs, func(a, b *mvccpb.KeyValue) int { return c(b, a) })
	}
}

// checkSort rejects sort options etcd does not know, as etcd's API does.
func checkSort(req *pb.RangeRequest) error {
	if _, ok := pb.RangeRequest_SortOrder_name[int32(req.SortOrder)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(req.SortTarget)]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

// withoutValues returns copies of kvs with the values left out. The store's
// messages may be shared, so they are copied rather than cleared, all in
// one allocation.
func withoutValues(kvs []*mvccpb.KeyValue) []*mvccpb.KeyValue {
	buf := make([]mvccpb.KeyValue, len(kvs))
	out := make([]*mvccpb.KeyValue, len(kvs))
	for i, kv := range kvs {
		c := &buf[i]
		c.Key = kv.Key
		c.CreateRevision = kv.CreateRevision
		c.ModRevision = kv.ModRevision
		c.Version = kv.Version
		c.Lease = kv.Lease
		out[i] = c
	}
	return out
}
