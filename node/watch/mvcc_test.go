package watch

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ballastdb/ballast/node/backend"
	"github.com/ballastdb/ballast/node/mvcc"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// The hub over the real store: history replay, prev_kv from KeyAt, live
// events, and node/mvcc's strict compaction boundary.
func TestWithMVCCStore(t *testing.T) {
	be, err := backend.Open(backend.Options{Path: filepath.Join(t.TempDir(), "db"), NoFsync: true, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	st, err := mvcc.New(be, mvcc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := NewHub(st, Options{manual: true})
	defer h.Close()
	write := func(fn func(w *mvcc.WriteTxn)) int64 {
		tx := be.BatchTx()
		w := st.Write(tx)
		fn(w)
		evs := w.End()
		tx.Unlock()
		h.Notify(st.Rev(), evs)
		return st.Rev()
	}
	put := func(k, v string) int64 {
		return write(func(w *mvcc.WriteTxn) { w.Put([]byte(k), []byte(v), 0) })
	}
	// A fresh store is at revision 1, like etcd's.
	r1 := put("a", "1")
	r2 := put("a", "2")
	r3 := write(func(w *mvcc.WriteTxn) { w.DeleteRange([]byte("a"), nil) })
	r4 := put("b", "1")

	s := h.NewStream()
	id, err := s.Watch(&etcdserverpb.WatchCreateRequest{Key: []byte("a"), RangeEnd: []byte("c"), StartRevision: r2, PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	for h.syncRound() {
	}
	r5 := put("a", "3")
	v1, v2 := putEv("a", "1", r1, r1, 1).Kv, putEv("a", "2", r1, r2, 2).Kv
	want := []*etcdserverpb.WatchResponse{
		{Header: hdr(r4), WatchId: id, Created: true},
		evResp(id, r4,
			&mvccpb.Event{Type: mvccpb.Event_PUT, Kv: v2, PrevKv: v1},
			&mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: delEv("a", r3).Kv, PrevKv: v2},
			putEv("b", "1", r4, r4, 1)),
		evResp(id, r5, putEv("a", "3", r5, r5, 1)),
	}
	wantResps(t, drain(s), want...)

	// A watch starting below the compaction revision is reported compacted;
	// one starting exactly at it replays from there, as in etcd.
	tx := be.BatchTx()
	done, err := st.Compact(tx, r4)
	tx.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	<-done
	id3, err := s.Watch(&etcdserverpb.WatchCreateRequest{Key: []byte("a"), StartRevision: r3})
	if err != nil {
		t.Fatal(err)
	}
	for h.syncRound() {
	}
	wantResps(t, drain(s),
		&etcdserverpb.WatchResponse{Header: hdr(r5), WatchId: id3, Created: true},
		&etcdserverpb.WatchResponse{Header: hdr(r5), WatchId: id3, Canceled: true, CompactRevision: r4})

	id4, err := s.Watch(&etcdserverpb.WatchCreateRequest{Key: []byte("a"), StartRevision: r4})
	if err != nil {
		t.Fatal(err)
	}
	for h.syncRound() {
	}
	resps := drain(s)
	if len(resps) < 2 || !resps[0].Created {
		t.Fatalf("watch from the compaction revision: %v", resps)
	}
	for _, r := range resps {
		if r.CompactRevision != 0 || r.Canceled {
			t.Fatalf("watch from the compaction revision was cancelled: %v", r)
		}
	}
	last := resps[len(resps)-1]
	if ev := last.Events[len(last.Events)-1]; last.WatchId != id4 || string(ev.Kv.Value) != "3" || ev.Kv.ModRevision != r5 {
		t.Fatalf("watch from the compaction revision ends with %v, want a=3 at %d", last, r5)
	}
}
