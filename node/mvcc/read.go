package mvcc

import (
	"fmt"

	"github.com/ballastdb/ballast/node/backend"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// ReadTxn is a consistent view of the store at the revision current when it
// began. It holds the store's read gate until End, which holds off the next
// Compact (not writes): keep read transactions short, always End them, and
// never open a second one on the same goroutine before ending the first.
type ReadTxn struct {
	s   *Store
	rev int64
}

// Read begins a read transaction at the current revision.
func (s *Store) Read() *ReadTxn {
	s.gate.RLock()
	return &ReadTxn{s: s, rev: s.rev.Load()}
}

// Rev returns the revision the transaction reads at.
func (t *ReadTxn) Rev() int64 { return t.rev }

// Range returns the keys in the range (etcd's forms, see index.ascendLocked)
// as of o.Rev, or the transaction's revision when o.Rev is 0.
func (t *ReadTxn) Range(key, end []byte, o RangeOptions) (*RangeResult, error) {
	return t.s.rangeAt(key, end, o, t.rev)
}

// End ends the transaction.
func (t *ReadTxn) End() { t.s.gate.RUnlock() }

// rangeAt serves a Range for a transaction at curRev. The caller keeps
// compactRev stable and the revisions it reads alive: a ReadTxn by holding
// the gate, a WriteTxn by holding the BatchTx (Compact and the background
// deletions need it).
func (s *Store) rangeAt(key, end []byte, o RangeOptions, curRev int64) (*RangeResult, error) {
	rev := o.Rev
	if rev > curRev {
		return nil, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	if rev < s.compactRev.Load() {
		return nil, ErrCompacted
	}
	if o.CountOnly {
		return &RangeResult{Rev: curRev, Count: s.idx.count(key, end, rev)}, nil
	}
	if o.KeysOnly {
		return s.rangeKeysOnly(key, end, rev, o.Limit, curRev)
	}
	revs, total := s.idx.revisions(key, end, rev, int(o.Limit))
	res := &RangeResult{Rev: curRev, Count: total}
	if len(revs) == 0 {
		return res, nil
	}
	// Values are read after the index lock is released.
	kvs, err := s.loadKVs(revs, o.KeysOnly)
	if err != nil {
		return nil, err
	}
	res.KVs = kvs
	return res, nil
}

// loadKVs reads the values at revs, in order, with one backend GetMany.
// Every revision the index holds must be in the backend; if one is not, the
// database is damaged.
func (s *Store) loadKVs(revs []revision, keysOnly bool) ([]*mvccpb.KeyValue, error) {
	keys := make([][]byte, len(revs))
	kb := make([]byte, 0, len(revs)*markedRevBytesLen)
	for i, r := range revs {
		start := len(kb)
		kb = appendRevBytes(kb, r)
		keys[i] = kb[start:len(kb):len(kb)]
	}
	kvs := make([]*mvccpb.KeyValue, len(revs))
	d := newKVDecoder(len(revs), keysOnly)
	var err error
	s.be.GetMany(backend.Key, keys, func(i int, v []byte) {
		if err == nil {
			kvs[i], err = d.decode(v)
		}
	})
	if err != nil {
		return nil, err
	}
	for i, kv := range kvs {
		if kv == nil {
			r := revs[i]
			return nil, fmt.Errorf("mvcc: revision %d_%d is in the index but not in the key bucket; the database is damaged", r.main, r.sub)
		}
	}
	return kvs, nil
}

// rangeKeysOnly serves a keys-only read at rev from the index, reading the
// stored values only of the keys whose creation revision and version the
// index cannot tell (see keyIndex.generationAt), as etcd 3.7 serves it from
// its index alone.
func (s *Store) rangeKeysOnly(key, end []byte, rev, limit, curRev int64) (*RangeResult, error) {
	hs, total := s.idx.heads(key, end, rev, int(limit), s.compactRev.Load())
	res := &RangeResult{Rev: curRev, Count: total}
	if len(hs) == 0 {
		return res, nil
	}
	d := newKVDecoder(len(hs), true)
	kvs := make([]*mvccpb.KeyValue, len(hs))
	var unknown []int
	for i, h := range hs {
		kv := d.next()
		kv.Key = d.copyString(h.key)
		kv.ModRevision = h.mod.main
		kv.CreateRevision, kv.Version = h.create, h.version
		kvs[i] = kv
		if !h.known {
			unknown = append(unknown, i)
		}
	}
	if len(unknown) == 0 {
		res.KVs = kvs
		return res, nil
	}
	keys := make([][]byte, len(unknown))
	kb := make([]byte, 0, len(unknown)*markedRevBytesLen)
	for j, i := range unknown {
		start := len(kb)
		kb = appendRevBytes(kb, hs[i].mod)
		keys[j] = kb[start:len(kb):len(kb)]
	}
	found := make([]bool, len(unknown))
	var err error
	s.be.GetMany(backend.Key, keys, func(j int, v []byte) {
		h, perr := parseKVHead(v)
		if perr != nil {
			err = perr
			return
		}
		kv := kvs[unknown[j]]
		kv.CreateRevision, kv.Version = h.create, h.version
		found[j] = true
	})
	if err != nil {
		return nil, err
	}
	for j, ok := range found {
		if !ok {
			r := hs[unknown[j]].mod
			return nil, fmt.Errorf("mvcc: revision %d_%d is in the index but not in the key bucket; the database is damaged", r.main, r.sub)
		}
	}
	res.KVs = kvs
	return res, nil
}
