package apply

import (
	"bytes"
	"cmp"

	"github.com/ballastdb/ballast/node/mvcc"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// absent stands in for a key that does not exist: every field zero. It is
// only ever read.
var absent = &mvccpb.KeyValue{}

// comparesHold reports whether every compare holds in v.
func comparesHold(v ReadView, cs []*pb.Compare) bool {
	for _, c := range cs {
		if !compareHolds(v, c) {
			return false
		}
	}
	return true
}

// compareHolds evaluates one compare the way etcd does: with a range_end,
// every key in the range must satisfy it. A range with no keys compares as a
// key whose fields are all zero (so "version == 0" holds for a missing key),
// except for VALUE, which never holds on missing keys because gRPC cannot
// tell an empty value from none. A read error makes the compare fail.
func compareHolds(v ReadView, c *pb.Compare) bool {
	rr, err := v.Range(c.Key, rangeEnd(c.RangeEnd), mvcc.RangeOptions{})
	if err != nil {
		return false
	}
	if len(rr.KVs) == 0 {
		return c.Target != pb.Compare_VALUE && compareKV(c, absent)
	}
	for _, kv := range rr.KVs {
		if !compareKV(c, kv) {
			return false
		}
	}
	return true
}

// compareKV compares kv's target field with the compare's operand. The
// getters return the zero operand when the union holds another target, as
// etcd does; an unknown target compares equal and an unknown result holds.
func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var r int
	switch c.Target {
	case pb.Compare_VERSION:
		r = cmp.Compare(kv.Version, c.GetVersion())
	case pb.Compare_CREATE:
		r = cmp.Compare(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		r = cmp.Compare(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VALUE:
		r = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_LEASE:
		r = cmp.Compare(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return r == 0
	case pb.Compare_GREATER:
		return r > 0
	case pb.Compare_LESS:
		return r < 0
	case pb.Compare_NOT_EQUAL:
		return r != 0
	}
	return true
}
