package mvcc

import (
	"github.com/ballastdb/ballast/node/backend"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// WriteTxn changes the store. All its changes share one main revision
// (Rev()+1) and are numbered by sub revision in the order they were made.
//
// Changes go to the backend and the index as they are made, tagged with the
// new revision; readers ignore that revision until End publishes it, so a
// transaction is seen whole or not at all.
type WriteTxn struct {
	s       *Store
	tx      *backend.BatchTx
	begin   int64
	changes []*mvccpb.KeyValue // a tombstone has CreateRevision 0
}

// Write begins a write transaction. The caller holds tx (the backend's single
// writer lock) from before Write until after End; so there is only one
// WriteTxn at a time, and neither Compact nor background compaction batches
// run during it.
func (s *Store) Write(tx *backend.BatchTx) *WriteTxn {
	return &WriteTxn{s: s, tx: tx, begin: s.rev.Load()}
}

// Rev returns the store revision before this transaction.
func (t *WriteTxn) Rev() int64 { return t.begin }

// txnRev is the revision this transaction's reads see: its own changes once
// it has made any (etcd's rule, which also fixes the header revision).
func (t *WriteTxn) txnRev() int64 {
	if len(t.changes) > 0 {
		return t.begin + 1
	}
	return t.begin
}

// Range is ReadTxn.Range, seeing this transaction's earlier changes.
func (t *WriteTxn) Range(key, end []byte, o RangeOptions) (*RangeResult, error) {
	return t.s.rangeAt(key, end, o, t.txnRev())
}

// Put sets key to value with the given lease (0: none). The transaction keeps
// key and value (in the returned events): the caller must not modify them.
func (t *WriteTxn) Put(key, value []byte, lease int64) {
	r := revision{main: t.begin + 1, sub: int64(len(t.changes))}
	create, ver := r.main, int64(1)
	x := t.s.idx
	x.mu.RLock()
	ki := x.getLocked(key)
	var prev revision
	live, known := false, false
	if ki != nil {
		prev, live = ki.newest()
		live = live && !prev.tomb
		if live {
			var prevVer int64
			create, prevVer, known = ki.generationAt(prev, t.s.compactRev.Load())
			ver = prevVer + 1
		}
	}
	x.mu.RUnlock()
	if live && !known {
		// Same generation: creation revision and version continue from the
		// previous value, which the index could not tell (see generationAt).
		// The newest revision of a key is never compacted, so it is there.
		h, found := t.loadHead(prev)
		if !found {
			t.s.lg.Panic("the newest revision of a key is missing from the key bucket; the database is damaged, restore it from a snapshot",
				zap.ByteString("key", key), zap.Int64("revision", prev.main), zap.Int64("sub-revision", prev.sub))
		}
		create, ver = h.create, h.version+1
	}
	kv := &mvccpb.KeyValue{Key: key, Value: value, CreateRevision: create, ModRevision: r.main, Version: ver, Lease: lease}
	data, err := proto.Marshal(kv)
	if err != nil {
		t.s.lg.Panic("marshal mvccpb.KeyValue", zap.Error(err)) // only byte and int fields: cannot fail
	}
	t.tx.Put(backend.Key, revBytes(r), data)
	x.mu.Lock()
	if live {
		// ki is still the key's record: compaction removes only records
		// whose newest revision is a tombstone, and we are the only writer.
		// This spares the second tree lookup of addLocked.
		ki.add(r)
	} else {
		x.addLocked(key, r)
	}
	x.mu.Unlock()
	t.changes = append(t.changes, kv)
}

// loadHead reads the store's fields of the value at r through the writer's
// BatchTx (which reuses its bbolt cursor).
func (t *WriteTxn) loadHead(r revision) (h kvHead, found bool) {
	var rb [markedRevBytesLen]byte
	t.tx.Get(backend.Key, appendRevBytes(rb[:0], r), func(v []byte) {
		var err error
		h, err = parseKVHead(v)
		found = err == nil
	})
	h.key = nil // aliased backend memory
	return h, found
}

// DeleteRange deletes the keys in the range (etcd's forms) that exist as of
// this transaction, including keys it put itself, and returns them in key
// order. Only the index is consulted: no value is read.
func (t *WriteTxn) DeleteRange(key, end []byte) [][]byte {
	keys := t.s.idx.keys(key, end, t.begin+1)
	if len(keys) == 0 {
		return nil
	}
	main := t.begin + 1
	first := int64(len(t.changes))
	for _, k := range keys {
		r := revision{main: main, sub: int64(len(t.changes)), tomb: true}
		// etcd stores a tombstone as a KeyValue holding only the key.
		data := protowire.AppendBytes(protowire.AppendTag(make([]byte, 0, len(k)+6), fieldKey, protowire.BytesType), k)
		t.tx.Put(backend.Key, revBytes(r), data)
		t.changes = append(t.changes, &mvccpb.KeyValue{Key: k, ModRevision: main})
	}
	t.s.idx.mu.Lock()
	for i, k := range keys {
		t.s.idx.addLocked(k, revision{main: main, sub: first + int64(i), tomb: true})
	}
	t.s.idx.mu.Unlock()
	return keys
}

// End publishes the transaction. If it changed anything the store moves to
// Rev()+1 and End returns the changes as events, in sub revision order: PUT
// with the full KeyValue, DELETE with the key and mod revision. Otherwise it
// returns nil.
func (t *WriteTxn) End() []*mvccpb.Event {
	if len(t.changes) == 0 {
		return nil
	}
	t.s.rev.Store(t.begin + 1)
	evs := make([]*mvccpb.Event, len(t.changes))
	for i, kv := range t.changes {
		typ := mvccpb.Event_PUT
		if kv.CreateRevision == 0 {
			typ = mvccpb.Event_DELETE
		}
		evs[i] = &mvccpb.Event{Type: typ, Kv: kv}
	}
	t.changes = nil
	return evs
}
