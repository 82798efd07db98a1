package apply

import (
	"fmt"

	"github.com/ballastdb/ballast/node/mvcc"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Put applies req to w and keeps le in step with the key's lease.
//
// Errors, checked before anything is written:
//   - rpctypes.ErrGRPCLeaseNotFound: req.Lease is set and does not exist;
//   - rpctypes.ErrGRPCKeyNotFound: ignore_value or ignore_lease on a key
//     that does not exist.
func Put(w WriteView, le Leases, req *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkLease(le, req); err != nil {
		return nil, err
	}
	prev, err := prevKV(w, req)
	if err != nil {
		return nil, err
	}
	if prev == nil && (req.IgnoreValue || req.IgnoreLease) {
		return nil, rpctypes.ErrGRPCKeyNotFound
	}
	return put(w, le, req, prev), nil
}

// checkPut reports the error Put would fail with, reading from v before
// anything is written. Txn runs it for every put it is going to apply.
func checkPut(v ReadView, le Leases, req *pb.PutRequest) error {
	if err := checkLease(le, req); err != nil {
		return err
	}
	if !req.IgnoreValue && !req.IgnoreLease {
		return nil
	}
	rr, err := v.Range(req.Key, nil, mvcc.RangeOptions{CountOnly: true})
	if err != nil {
		return grpcError(err)
	}
	if rr.Count == 0 {
		return rpctypes.ErrGRPCKeyNotFound
	}
	return nil
}

func checkLease(le Leases, req *pb.PutRequest) error {
	if req.Lease != 0 && !le.Exists(req.Lease) {
		return rpctypes.ErrGRPCLeaseNotFound
	}
	return nil
}

// prevKV reads the key's current KeyValue if req needs it, nil otherwise
// or when the key does not exist.
func prevKV(v ReadView, req *pb.PutRequest) (*mvccpb.KeyValue, error) {
	if !req.PrevKv && !req.IgnoreValue && !req.IgnoreLease {
		return nil, nil
	}
	rr, err := v.Range(req.Key, nil, mvcc.RangeOptions{})
	if err != nil {
		return nil, grpcError(err)
	}
	if len(rr.KVs) == 0 {
		return nil, nil
	}
	return rr.KVs[0], nil
}

// put writes req, taking the value and lease from prev where req asks to
// keep them. If prev is nil although req asks to keep something (only
// possible inside a txn that deleted the key before putting it back, which
// etcd's API rejects), the request's own empty value and lease are used:
// failing here would leave half a txn applied.
func put(w WriteView, le Leases, req *pb.PutRequest, prev *mvccpb.KeyValue) *pb.PutResponse {
	val, lease := req.Value, req.Lease
	if prev != nil {
		if req.IgnoreValue {
			val = prev.Value
		}
		if req.IgnoreLease {
			lease = prev.Lease
		}
	}
	w.Put(req.Key, val, lease)
	moveLease(le, req.Key, lease)

	resp := &pb.PutResponse{Header: &pb.ResponseHeader{Revision: w.Rev() + 1}}
	if req.PrevKv {
		resp.PrevKv = prev
	}
	return resp
}

// moveLease attaches key to lease in le, detaching it from the lease it had.
func moveLease(le Leases, key []byte, lease int64) {
	old := le.GetLease(key)
	if old == lease {
		return
	}
	if old != 0 {
		le.Detach(old, key)
	}
	if lease != 0 {
		// checkLease saw the lease a moment ago and nothing in between can
		// revoke it; a failure here means le is broken and the key is
		// already written, so there is no way back.
		if err := le.Attach(lease, key); err != nil {
			panic(fmt.Sprintf("apply: attach key %q to lease %x that was just checked: %v", key, lease, err))
		}
	}
}
