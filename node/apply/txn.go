package apply

import (
	"errors"
	"fmt"

	"github.com/ballastdb/ballast/node/mvcc"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// errWrites is returned by ReadOnlyTxn for a txn that writes: a caller bug.
var errWrites = errors.New("apply: ReadOnlyTxn called with a txn that puts or deletes")

// Txn applies req to w as one revision.
//
// As in etcd, it runs in three passes:
//  1. every compare of the txn and of the nested txns on the chosen branches
//     is evaluated against w as it is before the txn, which fixes the path;
//  2. every op on the path that could fail is checked (leases of puts,
//     keys of ignore_value/ignore_lease puts, revisions and sort options of
//     ranges), so an error leaves w unchanged;
//  3. the ops on the path are applied in order.
//
// The header revision is w.Rev()+1 if anything changed, w.Rev() otherwise.
// Nested ranges, puts and deletes carry the revision etcd gives them;
// nested txn responses carry a header with revision 0, as in etcd.
//
// Errors: rpctypes.ErrGRPCLeaseNotFound, ErrGRPCKeyNotFound (as for Put),
// ErrGRPCFutureRev, ErrGRPCCompacted and ErrGRPCInvalidSortOption (ranges).
// Txn panics only if the view fails a read after the txn has written, which
// means the store is broken.
func Txn(w WriteView, le Leases, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	path := decide(w, req, nil)
	if err := check(w, le, req, &cursor{path: path}, true); err != nil {
		return nil, err
	}
	x := &run{r: w, w: w, le: le, cursor: cursor{path: path}}
	resp, err := x.txn(req)
	if err != nil {
		if x.dirty {
			// The checks passed yet the store failed after writing part of
			// the txn: there is no way to take those writes back, and
			// applying half a txn would fork this member from the others.
			panic(fmt.Sprintf("apply: store failed in the middle of a txn: %v", err))
		}
		return nil, err
	}
	resp.Header.Revision = x.rev()
	return resp, nil
}

// ReadOnlyTxn serves a txn that only reads (IsReadOnlyTxn) from r.
func ReadOnlyTxn(r ReadView, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	if !IsReadOnlyTxn(req) {
		return nil, errWrites
	}
	path := decide(r, req, nil)
	if err := check(r, nil, req, &cursor{path: path}, false); err != nil {
		return nil, err
	}
	x := &run{r: r, cursor: cursor{path: path}}
	resp, err := x.txn(req)
	if err != nil {
		return nil, err
	}
	resp.Header.Revision = r.Rev()
	return resp, nil
}

// IsReadOnlyTxn reports whether req has no put or delete in any branch, at
// any depth. Unlike etcd, a nested txn that only reads keeps req read-only.
func IsReadOnlyTxn(req *pb.TxnRequest) bool {
	return readOnly(req.GetSuccess()) && readOnly(req.GetFailure())
}

func readOnly(ops []*pb.RequestOp) bool {
	for _, op := range ops {
		switch v := op.GetRequest().(type) {
		case *pb.RequestOp_RequestPut, *pb.RequestOp_RequestDeleteRange:
			return false
		case *pb.RequestOp_RequestTxn:
			if !IsReadOnlyTxn(v.RequestTxn) {
				return false
			}
		}
	}
	return true
}

// branch returns the ops req runs when its compares held (ok) or failed.
func branch(req *pb.TxnRequest, ok bool) []*pb.RequestOp {
	if ok {
		return req.GetSuccess()
	}
	return req.GetFailure()
}

// decide appends to path the outcome of req's compares, then, depth first,
// those of the nested txns in the branch that outcome selects. All are
// evaluated against v before any op runs, so a nested compare does not see
// the writes of ops before it (etcd's behaviour).
func decide(v ReadView, req *pb.TxnRequest, path []bool) []bool {
	ok := comparesHold(v, req.GetCompare())
	path = append(path, ok)
	for _, op := range branch(req, ok) {
		if t := op.GetRequestTxn(); t != nil {
			path = decide(v, t, path)
		}
	}
	return path
}

// cursor walks a path from decide in the same depth-first order.
type cursor struct {
	path []bool
	pos  int
}

func (c *cursor) next() bool {
	ok := c.path[c.pos]
	c.pos++
	return ok
}

// check returns the error an op on req's path would fail with, if any. It
// reads v before the txn writes anything. With write set, ranges at an old
// revision are probed for compaction, so none can fail after a write.
func check(v ReadView, le Leases, req *pb.TxnRequest, c *cursor, write bool) error {
	for _, op := range branch(req, c.next()) {
		var err error
		switch o := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			if o.RequestRange != nil {
				err = checkRange(v, o.RequestRange, write)
			}
		case *pb.RequestOp_RequestPut:
			if o.RequestPut != nil {
				err = checkPut(v, le, o.RequestPut)
			}
		case *pb.RequestOp_RequestTxn:
			if o.RequestTxn != nil {
				err = check(v, le, o.RequestTxn, c, write)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkRange rejects unknown sort options and revisions the txn cannot read
// at. A revision above the view's is future even if the txn's own writes
// will create it, as in etcd.
func checkRange(v ReadView, req *pb.RangeRequest, probe bool) error {
	if err := checkSort(req); err != nil {
		return err
	}
	switch {
	case req.Revision <= 0:
		return nil
	case req.Revision > v.Rev():
		return rpctypes.ErrGRPCFutureRev
	case !probe:
		return nil
	}
	// The view cannot say which revision it was compacted to; a count of a
	// single key at that revision finds out at the cost of one index lookup.
	_, err := v.Range(req.Key, nil, mvcc.RangeOptions{Rev: req.Revision, CountOnly: true})
	return grpcError(err)
}

// run executes the ops on a txn's path.
type run struct {
	r  ReadView
	w  WriteView // nil in a read-only txn
	le Leases
	cursor
	// dirty is set once the txn changed the view; from then on its reads
	// report the txn's revision, w.Rev()+1.
	dirty bool
}

func (x *run) rev() int64 {
	if x.dirty {
		return x.r.Rev() + 1
	}
	return x.r.Rev()
}

func (x *run) txn(req *pb.TxnRequest) (*pb.TxnResponse, error) {
	ok := x.next()
	ops := branch(req, ok)
	resp := &pb.TxnResponse{
		Header:    &pb.ResponseHeader{},
		Succeeded: ok,
		Responses: make([]*pb.ResponseOp, len(ops)),
	}
	for i, op := range ops {
		r, err := x.op(op)
		if err != nil {
			return nil, err
		}
		resp.Responses[i] = r
	}
	return resp, nil
}

// op applies one op. A nil request (an empty union, or a wrapper holding
// nil) does nothing and gets an empty response, where etcd would panic or
// answer with a nil entry.
func (x *run) op(op *pb.RequestOp) (*pb.ResponseOp, error) {
	switch o := op.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		if o.RequestRange == nil {
			break
		}
		r, err := executeRange(x.r, o.RequestRange, x.rev())
		if err != nil {
			return nil, err
		}
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: r}}, nil
	case *pb.RequestOp_RequestPut:
		if o.RequestPut == nil {
			break
		}
		if x.w == nil {
			return nil, errWrites
		}
		prev, err := prevKV(x.w, o.RequestPut)
		if err != nil {
			return nil, err
		}
		x.dirty = true
		r := put(x.w, x.le, o.RequestPut, prev)
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: r}}, nil
	case *pb.RequestOp_RequestDeleteRange:
		if o.RequestDeleteRange == nil {
			break
		}
		if x.w == nil {
			return nil, errWrites
		}
		r, dirty, err := deleteRange(x.w, x.le, o.RequestDeleteRange, x.dirty)
		if err != nil {
			return nil, err
		}
		x.dirty = dirty
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: r}}, nil
	case *pb.RequestOp_RequestTxn:
		if o.RequestTxn == nil {
			break
		}
		r, err := x.txn(o.RequestTxn)
		if err != nil {
			return nil, err
		}
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: r}}, nil
	}
	return &pb.ResponseOp{}, nil
}
