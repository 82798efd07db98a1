package apply

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/ballastdb/ballast/node/mvcc"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// memStore is a small multi-version store with the semantics node/mvcc
// promises, for the fuzz test (fast, no disk). Range hands out the stored
// messages themselves, so a caller that mutates them corrupts the store and
// the tests notice.
type memStore struct {
	cur       int64
	compacted int64
	hist      map[string][]memRec // per key, ascending revisions
}

type memRec struct {
	rev int64
	kv  *mvccpb.KeyValue // nil: deleted
}

func newMemStore() *memStore { return &memStore{cur: 1, hist: map[string][]memRec{}} }

func (s *memStore) rev() int64 { return s.cur }

func (s *memStore) write(fn func(w WriteView)) {
	w := &memView{s: s, begin: s.cur, write: true}
	fn(w)
	if w.changed {
		s.cur++
	}
}

func (s *memStore) read(fn func(r ReadView)) { fn(&memView{s: s, begin: s.cur}) }

func (s *memStore) compact(rev int64) { s.compacted = rev }

type memView struct {
	s       *memStore
	begin   int64
	write   bool
	changed bool
}

func (v *memView) Rev() int64 { return v.begin }

func (v *memView) cur() int64 {
	if v.changed {
		return v.begin + 1
	}
	return v.begin
}

func inRange(k, key, end []byte) bool {
	switch {
	case end == nil:
		return bytes.Equal(k, key)
	case len(end) == 1 && end[0] == 0:
		return bytes.Compare(k, key) >= 0
	}
	return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0
}

// at returns the live KeyValue of k at rev, nil if none.
func (s *memStore) at(k string, rev int64) *mvccpb.KeyValue {
	var kv *mvccpb.KeyValue
	for _, r := range s.hist[k] {
		if r.rev > rev {
			break
		}
		kv = r.kv
	}
	return kv
}

func (v *memView) keys(key, end []byte, rev int64) []string {
	var ks []string
	for k := range v.s.hist {
		if inRange([]byte(k), key, end) && v.s.at(k, rev) != nil {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func (v *memView) Range(key, end []byte, o mvcc.RangeOptions) (*mvcc.RangeResult, error) {
	cur := v.cur()
	rev := o.Rev
	if rev > cur {
		return nil, mvcc.ErrFutureRev
	}
	if rev <= 0 {
		rev = cur
	}
	if rev < v.s.compacted {
		return nil, mvcc.ErrCompacted
	}
	ks := v.keys(key, end, rev)
	rr := &mvcc.RangeResult{Rev: cur, Count: int64(len(ks))}
	if o.CountOnly {
		return rr, nil
	}
	if o.Limit > 0 && int64(len(ks)) > o.Limit {
		ks = ks[:o.Limit]
	}
	for _, k := range ks {
		kv := v.s.at(k, rev)
		if o.KeysOnly {
			kv = &mvccpb.KeyValue{Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version}
		}
		rr.KVs = append(rr.KVs, kv)
	}
	return rr, nil
}

func (v *memView) Put(key, value []byte, lease int64) {
	if !v.write {
		panic("put on a read view")
	}
	rev := v.begin + 1
	kv := &mvccpb.KeyValue{Key: key, Value: value, Lease: lease, CreateRevision: rev, ModRevision: rev, Version: 1}
	if old := v.s.at(string(key), rev); old != nil {
		kv.CreateRevision = old.CreateRevision
		kv.Version = old.Version + 1
	}
	v.s.hist[string(key)] = append(v.s.hist[string(key)], memRec{rev: rev, kv: kv})
	v.changed = true
}

func (v *memView) DeleteRange(key, end []byte) [][]byte {
	if !v.write {
		panic("delete on a read view")
	}
	rev := v.begin + 1
	var out [][]byte
	for _, k := range v.keys(key, end, v.cur()) {
		v.s.hist[k] = append(v.s.hist[k], memRec{rev: rev})
		out = append(out, []byte(k))
	}
	if len(out) > 0 {
		v.changed = true
	}
	return out
}

// memLeases is a lessor reduced to what Leases needs.
type memLeases struct {
	exists map[int64]bool
	keys   map[string]int64
}

func newMemLeases(ids ...int64) *memLeases {
	le := &memLeases{exists: map[int64]bool{}, keys: map[string]int64{}}
	for _, id := range ids {
		le.exists[id] = true
	}
	return le
}

func (le *memLeases) Exists(id int64) bool { return le.exists[id] }

func (le *memLeases) GetLease(key []byte) int64 { return le.keys[string(key)] }

func (le *memLeases) Attach(id int64, key []byte) error {
	if !le.exists[id] {
		return fmt.Errorf("lease %d not found", id)
	}
	le.keys[string(key)] = id
	return nil
}

func (le *memLeases) Detach(id int64, key []byte) {
	if le.keys[string(key)] != id {
		panic(fmt.Sprintf("detach %q from lease %d, attached to %d", key, id, le.keys[string(key)]))
	}
	delete(le.keys, string(key))
}
