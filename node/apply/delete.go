package apply

import (
	"github.com/ballastdb/ballast/node/mvcc"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// DeleteRange deletes the keys in req's range from w and detaches them from
// their leases. With prev_kv the response holds the deleted KeyValues as
// they were before the delete.
func DeleteRange(w WriteView, le Leases, req *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp, _, err := deleteRange(w, le, req, false)
	return resp, err
}

// deleteRange applies req inside a view that may already have been changed
// (dirty). It reports whether the view is changed afterwards and sets the
// header revision the way etcd does inside a txn: the txn's revision once
// anything was written, the view's revision before that.
func deleteRange(w WriteView, le Leases, req *pb.DeleteRangeRequest, dirty bool) (*pb.DeleteRangeResponse, bool, error) {
	end := rangeEnd(req.RangeEnd)
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	if req.PrevKv {
		rr, err := w.Range(req.Key, end, mvcc.RangeOptions{})
		if err != nil {
			return nil, dirty, grpcError(err)
		}
		resp.PrevKvs = rr.KVs
	}
	deleted := w.DeleteRange(req.Key, end)
	for _, k := range deleted {
		if id := le.GetLease(k); id != 0 {
			le.Detach(id, k)
		}
	}
	resp.Deleted = int64(len(deleted))
	dirty = dirty || len(deleted) > 0
	resp.Header.Revision = w.Rev()
	if dirty {
		resp.Header.Revision++
	}
	return resp, dirty, nil
}
