package api

import (
	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// checkIntervals rejects a list of transaction operations that writes a key
// twice, with etcd's rules (v3rpc checkIntervals):
//   - two puts of one key conflict, at any nesting depth, except one in the
//     success and one in the failure branch of the same nested txn, since
//     only one of them runs;
//   - a put conflicts with a delete of this level, and with a delete of an
//     earlier sibling nested txn (not a later one: etcd only looks back);
//   - deletes never conflict with each other.
//
// A delete whose range_end is "\x00" ("every key >= key") or sorts before
// its key covers nothing here, exactly as in etcd, whose interval tree sees
// it as an empty interval. The apply path therefore has to cope with a put
// and such a delete of the same key in one txn, as etcd's does.
//
// It returns the keys put and the ranges deleted, for the enclosing level.
// The top-level success and failure lists are checked independently.
func checkIntervals(reqs []*etcdserverpb.RequestOp) (map[string]struct{}, *delSet, error) {
	dels := &delSet{}
	for _, req := range reqs {
		if d := req.GetRequestDeleteRange(); d != nil {
			dels.add(d)
		}
	}

	var puts map[string]struct{}
	for _, req := range reqs {
		t := req.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.GetSuccess())
		if err != nil {
			return nil, nil, err
		}
		putsElse, delsElse, err := checkIntervals(t.GetFailure())
		if err != nil {
			return nil, nil, err
		}
		if puts == nil && len(putsThen)+len(putsElse) > 0 {
			puts = make(map[string]struct{}, len(putsThen)+len(putsElse))
		}
		for k := range putsThen {
			if _, ok := puts[k]; ok || dels.covers(k) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, ok := puts[k]; ok {
				if _, then := putsThen[k]; !then {
					return nil, nil, rpctypes.ErrGRPCDuplicateKey
				}
			}
			if dels.covers(k) {
				return nil, nil, rpctypes.ErrGRPCDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels.union(delsThen)
		dels.union(delsElse)
	}

	for _, req := range reqs {
		p := req.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.GetKey())
		if _, ok := puts[k]; ok || dels.covers(k) {
			return nil, nil, rpctypes.ErrGRPCDuplicateKey
		}
		if puts == nil {
			puts = make(map[string]struct{})
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}

// trivialWrites reports whether reqs cannot write a key twice: no nested
// txn and at most one put or delete. Most real transactions (compare, then
// one write, else a read) are like this and skip checkIntervals' maps.
func trivialWrites(reqs []*etcdserverpb.RequestOp) bool {
	writes := 0
	for _, req := range reqs {
		switch req.GetRequest().(type) {
		case *etcdserverpb.RequestOp_RequestTxn:
			return false
		case *etcdserverpb.RequestOp_RequestPut, *etcdserverpb.RequestOp_RequestDeleteRange:
			writes++
		}
	}
	return writes <= 1
}

// span is the half-open key range [begin, end); end > begin always.
type span struct{ begin, end string }

func spanLess(a, b span) bool { return a.begin < b.begin }

// smallDelSet is how many spans delSet scans linearly before it switches to
// a tree of merged spans, so that an adversarial nest of txns (bounded only
// by the request size) costs O(n log n) rather than O(n²).
const smallDelSet = 16

// delSet is the set of keys covered by delete requests.
type delSet struct {
	// Invariant: exactly one of small and tree is in use. The spans in tree
	// are disjoint and not adjacent (merged on insert), so the one span
	// starting at or before a key is the only one that can cover it.
	small []span
	tree  *btree.BTreeG[span]
}

func (s *delSet) add(d *etcdserverpb.DeleteRangeRequest) {
	key := string(d.GetKey())
	if len(d.GetRangeEnd()) == 0 {
		s.insert(span{key, key + "\x00"})
		return
	}
	end := string(d.GetRangeEnd())
	if end <= key {
		return // covers nothing, see checkIntervals
	}
	s.insert(span{key, end})
}

func (s *delSet) insert(sp span) {
	if s.tree == nil {
		if len(s.small) < smallDelSet {
			s.small = append(s.small, sp)
			return
		}
		s.tree = btree.NewG(16, spanLess)
		for _, o := range s.small {
			s.insertMerged(o)
		}
		s.small = nil
	}
	s.insertMerged(sp)
}

func (s *delSet) insertMerged(sp span) {
	var merged []span
	s.tree.DescendLessOrEqual(sp, func(p span) bool {
		if p.end >= sp.begin {
			merged = append(merged, p)
			sp.begin = p.begin
			sp.end = max(sp.end, p.end)
		}
		return false
	})
	s.tree.AscendGreaterOrEqual(span{begin: sp.begin}, func(p span) bool {
		if p.begin > sp.end {
			return false
		}
		merged = append(merged, p)
		sp.end = max(sp.end, p.end)
		return true
	})
	for _, p := range merged {
		s.tree.Delete(p)
	}
	s.tree.ReplaceOrInsert(sp)
}

func (s *delSet) covers(k string) bool {
	if s == nil {
		return false
	}
	if s.tree == nil {
		for _, sp := range s.small {
			if sp.begin <= k && k < sp.end {
				return true
			}
		}
		return false
	}
	found := false
	s.tree.DescendLessOrEqual(span{begin: k}, func(p span) bool {
		found = k < p.end
		return false
	})
	return found
}

func (s *delSet) union(o *delSet) {
	if o == nil {
		return
	}
	for _, sp := range o.small {
		s.insert(sp)
	}
	if o.tree != nil {
		o.tree.Ascend(func(sp span) bool {
			s.insert(sp)
			return true
		})
	}
}
