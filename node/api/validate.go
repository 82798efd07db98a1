package api

import (
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"
)

// The Validate functions apply the checks etcd's v3rpc layer makes before a
// request reaches the server, returning the same rpctypes errors. They are
// nil-safe: a nil request is an empty one.

// ValidateRange rejects an empty key and out-of-range sort options.
func ValidateRange(r *etcdserverpb.RangeRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if _, ok := etcdserverpb.RangeRequest_SortOrder_name[int32(r.GetSortOrder())]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	if _, ok := etcdserverpb.RangeRequest_SortTarget_name[int32(r.GetSortTarget())]; !ok {
		return rpctypes.ErrGRPCInvalidSortOption
	}
	return nil
}

// ValidatePut rejects an empty key, a value together with ignore_value and a
// lease together with ignore_lease.
func ValidatePut(r *etcdserverpb.PutRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	if r.GetIgnoreValue() && len(r.GetValue()) != 0 {
		return rpctypes.ErrGRPCValueProvided
	}
	if r.GetIgnoreLease() && r.GetLease() != 0 {
		return rpctypes.ErrGRPCLeaseProvided
	}
	return nil
}

// ValidateDeleteRange rejects an empty key.
func ValidateDeleteRange(r *etcdserverpb.DeleteRangeRequest) error {
	if len(r.GetKey()) == 0 {
		return rpctypes.ErrGRPCEmptyKey
	}
	return nil
}

// ValidateCompact rejects a negative revision. etcd's store answers any
// revision at or below its compacted revision, which starts at -1, with
// ErrCompacted, so a negative revision can never succeed; everything else
// depends on store state and is the server's to judge.
func ValidateCompact(r *etcdserverpb.CompactionRequest) error {
	if r.GetRevision() < 0 {
		return rpctypes.ErrGRPCCompacted
	}
	return nil
}

// ValidateTxn checks a transaction like etcd: no branch (nor the compare
// list) longer than maxTxnOps, with nested transactions sharing what is left
// of the budget; every compare and operation well formed; and no key written
// twice (see checkIntervals).
func ValidateTxn(r *etcdserverpb.TxnRequest, maxTxnOps int) error {
	if err := checkTxn(r, maxTxnOps); err != nil {
		return err
	}
	// The overlap check runs only after the shape check has bounded the
	// request, so that it never walks an unbounded tree.
	for _, ops := range [2][]*etcdserverpb.RequestOp{r.GetSuccess(), r.GetFailure()} {
		if trivialWrites(ops) {
			continue
		}
		if _, _, err := checkIntervals(ops); err != nil {
			return err
		}
	}
	return nil
}

func checkTxn(r *etcdserverpb.TxnRequest, maxTxnOps int) error {
	opc := max(len(r.GetCompare()), len(r.GetSuccess()), len(r.GetFailure()))
	if opc > maxTxnOps {
		return rpctypes.ErrGRPCTooManyOps
	}
	for _, c := range r.GetCompare() {
		if len(c.GetKey()) == 0 {
			return rpctypes.ErrGRPCEmptyKey
		}
	}
	for _, u := range r.GetSuccess() {
		if err := checkRequestOp(u, maxTxnOps-opc); err != nil {
			return err
		}
	}
	for _, u := range r.GetFailure() {
		if err := checkRequestOp(u, maxTxnOps-opc); err != nil {
			return err
		}
	}
	return nil
}

func checkRequestOp(u *etcdserverpb.RequestOp, maxTxnOps int) error {
	switch uv := u.GetRequest().(type) {
	case *etcdserverpb.RequestOp_RequestRange:
		return ValidateRange(uv.RequestRange)
	case *etcdserverpb.RequestOp_RequestPut:
		return ValidatePut(uv.RequestPut)
	case *etcdserverpb.RequestOp_RequestDeleteRange:
		return ValidateDeleteRange(uv.RequestDeleteRange)
	case *etcdserverpb.RequestOp_RequestTxn:
		return checkTxn(uv.RequestTxn, maxTxnOps)
	default:
		// An operation with nothing in it: etcd answers "key not found".
		return rpctypes.ErrGRPCKeyNotFound
	}
}

// checkSize rejects a request whose encoding exceeds maxBytes, the limit etcd
// applies to a raft proposal. Checking here means the server never proposes
// an oversized request; the server still owns the exact check on the final
// proposal, which adds a few bytes of framing.
func checkSize(m proto.Message, maxBytes int) error {
	if proto.Size(m) > maxBytes {
		return rpctypes.ErrGRPCRequestTooLarge
	}
	return nil
}
