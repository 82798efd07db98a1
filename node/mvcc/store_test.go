package mvcc

import (
	"errors"
	"reflect"
	"testing"
)

func TestRevisionsVersionsGenerations(t *testing.T) {
	e := newEnv(t, Options{})
	if got := e.s.Rev(); got != 1 {
		t.Fatalf("fresh store Rev() = %d, want 1", got)
	}
	var evs []string
	step := func(fn func(w *WriteTxn)) { evs = append(evs, evsString(e.txn(fn))...) }
	step(func(w *WriteTxn) { w.Put([]byte("a"), []byte("1"), 0) }) // rev 2
	step(func(w *WriteTxn) { w.Put([]byte("a"), []byte("2"), 7) }) // rev 3
	step(func(w *WriteTxn) { w.DeleteRange([]byte("a"), nil) })    // rev 4
	step(func(w *WriteTxn) { w.DeleteRange([]byte("a"), nil) })    // nothing: no revision
	step(func(w *WriteTxn) { w.Put([]byte("a"), []byte("3"), 0) }) // rev 5, new generation
	step(func(w *WriteTxn) {})                                     // nothing
	step(func(w *WriteTxn) { w.Put([]byte("b"), []byte("x"), 0) }) // rev 6
	want := []string{
		"PUT a=1 c2 m2 v1 l0",
		"PUT a=2 c2 m3 v2 l7",
		"DELETE a= c0 m4 v0 l0",
		"PUT a=3 c5 m5 v1 l0",
		"PUT b=x c6 m6 v1 l0",
	}
	if !reflect.DeepEqual(evs, want) {
		t.Fatalf("events\n got %q\nwant %q", evs, want)
	}
	if got := e.s.Rev(); got != 6 {
		t.Fatalf("Rev() = %d, want 6", got)
	}
	reads := []struct {
		rev  int64
		want []string
	}{
		{2, []string{"a=1 c2 m2 v1 l0"}},
		{3, []string{"a=2 c2 m3 v2 l7"}},
		{4, nil},
		{5, []string{"a=3 c5 m5 v1 l0"}},
		{0, []string{"a=3 c5 m5 v1 l0", "b=x c6 m6 v1 l0"}},
	}
	for _, rd := range reads {
		res, err := e.rng("a", []byte("c"), RangeOptions{Rev: rd.rev})
		if err != nil {
			t.Fatal(err)
		}
		if got := kvsString(res.KVs); !reflect.DeepEqual(got, rd.want) || res.Rev != 6 || res.Count != int64(len(rd.want)) {
			t.Errorf("range at %d = %q (rev %d count %d), want %q (rev 6)", rd.rev, got, res.Rev, res.Count, rd.want)
		}
	}
}

func TestTxnOneRevisionWithSubs(t *testing.T) {
	e := newEnv(t, Options{})
	e.put("x", "0") // rev 2
	var inTxn []string
	evs := e.txn(func(w *WriteTxn) {
		if w.Rev() != 2 {
			t.Errorf("WriteTxn.Rev() = %d, want 2", w.Rev())
		}
		res, _ := w.Range([]byte("a"), []byte("z"), RangeOptions{})
		if res.Rev != 2 {
			t.Errorf("range before changes: header rev %d, want 2", res.Rev)
		}
		w.Put([]byte("a"), []byte("1"), 0)
		w.Put([]byte("b"), []byte("1"), 0)
		w.Put([]byte("a"), []byte("2"), 0)
		deleted := w.DeleteRange([]byte("x"), nil)
		if len(deleted) != 1 || string(deleted[0]) != "x" {
			t.Errorf("DeleteRange = %q", deleted)
		}
		res, err := w.Range([]byte("a"), []byte("z"), RangeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Rev != 3 {
			t.Errorf("range after changes: header rev %d, want 3", res.Rev)
		}
		inTxn = kvsString(res.KVs)
		// Concurrent readers do not see the transaction before End.
		r := e.s.Read()
		if res, _ := r.Range([]byte("a"), []byte("z"), RangeOptions{}); r.Rev() != 2 || len(res.KVs) != 1 {
			t.Errorf("reader during txn: rev %d kvs %q", r.Rev(), kvsString(res.KVs))
		}
		r.End()
	})
	wantIn := []string{"a=2 c3 m3 v2 l0", "b=1 c3 m3 v1 l0"}
	if !reflect.DeepEqual(inTxn, wantIn) {
		t.Errorf("txn's own range = %q, want %q", inTxn, wantIn)
	}
	wantEv := []string{"PUT a=1 c3 m3 v1 l0", "PUT b=1 c3 m3 v1 l0", "PUT a=2 c3 m3 v2 l0", "DELETE x= c0 m3 v0 l0"}
	if got := evsString(evs); !reflect.DeepEqual(got, wantEv) {
		t.Errorf("events %q, want %q", got, wantEv)
	}
	want := []string{"2_0=x", "3_0=a", "3_1=b", "3_2=a", "3_3t=x"}
	if got := e.bucket(); !reflect.DeepEqual(got, want) {
		t.Errorf("key bucket %q, want %q", got, want)
	}
	if e.s.Rev() != 3 {
		t.Errorf("Rev() = %d, want 3", e.s.Rev())
	}
}

func TestRangeOptions(t *testing.T) {
	e := newEnv(t, Options{})
	for _, k := range []string{"a", "b", "c", "d"} { // revs 2..5
		e.put(k, k)
	}
	e.del("b", nil) // rev 6
	if err := e.compact(3); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		key       string
		end       []byte
		o         RangeOptions
		wantKeys  []string
		wantCount int64
		wantErr   error
	}{
		{"all", "a", []byte("z"), RangeOptions{}, []string{"a", "c", "d"}, 3, nil},
		{"limit", "a", []byte("z"), RangeOptions{Limit: 2}, []string{"a", "c"}, 3, nil},
		{"count only", "a", []byte("z"), RangeOptions{CountOnly: true}, nil, 3, nil},
		{"at rev 5", "a", []byte("z"), RangeOptions{Rev: 5}, []string{"a", "b", "c", "d"}, 4, nil},
		{"at compact rev", "a", []byte("z"), RangeOptions{Rev: 3}, []string{"a", "b"}, 2, nil},
		{"compacted", "a", []byte("z"), RangeOptions{Rev: 2}, nil, 0, ErrCompacted},
		{"future", "a", []byte("z"), RangeOptions{Rev: 7}, nil, 0, ErrFutureRev},
		{"single", "c", nil, RangeOptions{}, []string{"c"}, 1, nil},
		{"single deleted", "b", nil, RangeOptions{}, nil, 0, nil},
		{"from key", "b", []byte{0}, RangeOptions{}, []string{"c", "d"}, 2, nil},
		{"all keys", "\x00", []byte{0}, RangeOptions{}, []string{"a", "c", "d"}, 3, nil},
		{"end before key", "c", []byte("a"), RangeOptions{}, nil, 0, nil},
		{"end equals key", "c", []byte("c"), RangeOptions{}, nil, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.rng(tt.key, tt.end, tt.o)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var keys []string
			for _, kv := range res.KVs {
				keys = append(keys, string(kv.Key))
			}
			if !reflect.DeepEqual(keys, tt.wantKeys) || res.Count != tt.wantCount || res.Rev != 6 {
				t.Errorf("got keys %q count %d rev %d; want %q count %d rev 6", keys, res.Count, res.Rev, tt.wantKeys, tt.wantCount)
			}
		})
	}
}

func TestDeleteRangeForms(t *testing.T) {
	tests := []struct {
		name string
		key  string
		end  []byte
		want []string
	}{
		{"single", "b", nil, []string{"b"}},
		{"single missing", "bb", nil, nil},
		{"range", "b", []byte("d"), []string{"b", "c"}},
		{"from key", "c", []byte{0}, []string{"c", "d"}},
		{"all", "\x00", []byte{0}, []string{"a", "b", "c", "d"}},
		{"end before key", "d", []byte("a"), nil},
		{"already deleted", "x", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			for _, k := range []string{"a", "b", "c", "d", "x"} {
				e.put(k, k)
			}
			e.del("x", nil)
			rev := e.s.Rev()
			var got []string
			for _, k := range e.del(tt.key, tt.end) {
				got = append(got, string(k))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("deleted %q, want %q", got, tt.want)
			}
			wantRev := rev
			if len(tt.want) > 0 {
				wantRev++
			}
			if e.s.Rev() != wantRev {
				t.Fatalf("Rev() = %d, want %d", e.s.Rev(), wantRev)
			}
			res, _ := e.rng("\x00", []byte{0}, RangeOptions{CountOnly: true})
			if res.Count != int64(4-len(tt.want)) {
				t.Fatalf("%d keys left, want %d", res.Count, 4-len(tt.want))
			}
		})
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t, Options{})
	e.put("a", "1")           // 2
	e.txn(func(w *WriteTxn) { // 3: three changes
		w.Put([]byte("b"), []byte("1"), 0)
		w.Put([]byte("c"), []byte("1"), 0)
		w.DeleteRange([]byte("a"), nil)
	})
	e.put("a", "2") // 4
	all := []string{
		"PUT a=1 c2 m2 v1 l0",
		"PUT b=1 c3 m3 v1 l0", "PUT c=1 c3 m3 v1 l0", "DELETE a= c0 m3 v0 l0",
		"PUT a=2 c4 m4 v1 l0",
	}
	tests := []struct {
		name     string
		from, to int64
		limit    int
		want     []string
		wantErr  error
	}{
		{"all", 1, 100, 0, all, nil},
		{"window", 3, 4, 0, all[1:4], nil},
		{"limit 1", 2, 100, 1, all[:1], nil},
		{"limit never splits a revision", 2, 100, 2, all[:4], nil},
		{"limit in middle", 3, 100, 3, all[1:4], nil},
		{"empty", 5, 100, 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := e.s.Events(tt.from, tt.to, tt.limit)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v", err)
			}
			if got := evsString(evs); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("events %q, want %q", got, tt.want)
			}
		})
	}
	fromCompactRev, err := e.s.Events(3, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.compact(3); err != nil {
		t.Fatal(err)
	}
	for _, from := range []int64{1, 2} {
		if _, err := e.s.Events(from, 100, 0); !errors.Is(err, ErrCompacted) {
			t.Errorf("Events(%d) after compaction at 3: err %v, want ErrCompacted", from, err)
		}
	}
	// The compaction revision itself is still readable, as in etcd.
	if evs, err := e.s.Events(3, 100, 0); err != nil || !reflect.DeepEqual(evsString(evs), evsString(fromCompactRev)) {
		t.Errorf("Events(3) after compaction at 3 = %q, %v; want %q", evsString(evs), err, evsString(fromCompactRev))
	}
	if evs, err := e.s.Events(4, 100, 0); err != nil || !reflect.DeepEqual(evsString(evs), all[4:]) {
		t.Errorf("Events(4) = %q, %v", evsString(evs), err)
	}
}

func TestKeyAt(t *testing.T) {
	e := newEnv(t, Options{})
	e.put("a", "1") // 2
	e.put("b", "1") // 3
	e.put("a", "2") // 4
	e.del("a", nil) // 5
	tests := []struct {
		rev     int64
		want    string
		wantErr error
	}{
		{1, "", nil},
		{2, "a=1 c2 m2 v1 l0", nil},
		{3, "a=1 c2 m2 v1 l0", nil},
		{4, "a=2 c2 m4 v2 l0", nil},
		{5, "", nil},
		{6, "", ErrFutureRev},
	}
	for _, tt := range tests {
		kv, err := e.s.KeyAt([]byte("a"), tt.rev)
		got := ""
		if kv != nil {
			got = kvString(kv)
		}
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("KeyAt(a, %d) = %q, %v; want %q, %v", tt.rev, got, err, tt.want, tt.wantErr)
		}
	}
	if err := e.compact(4); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.KeyAt([]byte("a"), 3); !errors.Is(err, ErrCompacted) {
		t.Errorf("KeyAt below compaction: %v", err)
	}
	if kv, err := e.s.KeyAt([]byte("a"), 4); err != nil || kv == nil || kvString(kv) != "a=2 c2 m4 v2 l0" {
		t.Errorf("KeyAt at compaction revision: %v, %v", kv, err)
	}
}

func TestCompactErrors(t *testing.T) {
	e := newEnv(t, Options{})
	e.put("a", "1")
	e.put("a", "2")
	if err := e.compact(4); !errors.Is(err, ErrFutureRev) {
		t.Errorf("compact(4) at rev 3: %v", err)
	}
	if err := e.compact(2); err != nil {
		t.Fatal(err)
	}
	for _, rev := range []int64{1, 2} {
		if err := e.compact(rev); !errors.Is(err, ErrCompacted) {
			t.Errorf("compact(%d) after compact(2): %v", rev, err)
		}
	}
	if e.s.CompactRev() != 2 {
		t.Errorf("CompactRev() = %d", e.s.CompactRev())
	}
	if _, finished := readCompactRevs(e); finished != 2 {
		t.Errorf("finishedCompactRev = %d, want 2", finished)
	}
}

// history builds a store with several generations and multi-change revisions.
func history(e *env) {
	e.put("a", "1")           // 2
	e.put("b", "1")           // 3
	e.put("a", "2")           // 4
	e.txn(func(w *WriteTxn) { // 5
		w.Put([]byte("c"), []byte("1"), 0)
		w.DeleteRange([]byte("b"), nil)
	})
	e.put("b", "2") // 6
	e.put("d", "1") // 7
	e.del("d", nil) // 8
	e.put("a", "3") // 9
	e.del("c", nil) // 10
}

func TestCompactKeepsTheRightRevisions(t *testing.T) {
	all := []string{"2_0=a", "3_0=b", "4_0=a", "5_0=c", "5_1t=b", "6_0=b", "7_0=d", "8_0t=d", "9_0=a", "10_0t=c"}
	tests := []struct {
		at   int64
		want []string
	}{
		{2, all},
		{3, all},
		{4, []string{"3_0=b", "4_0=a", "5_0=c", "5_1t=b", "6_0=b", "7_0=d", "8_0t=d", "9_0=a", "10_0t=c"}},
		{5, []string{"4_0=a", "5_0=c", "5_1t=b", "6_0=b", "7_0=d", "8_0t=d", "9_0=a", "10_0t=c"}},
		{6, []string{"4_0=a", "5_0=c", "6_0=b", "7_0=d", "8_0t=d", "9_0=a", "10_0t=c"}},
		{8, []string{"4_0=a", "5_0=c", "6_0=b", "8_0t=d", "9_0=a", "10_0t=c"}},
		{9, []string{"5_0=c", "6_0=b", "9_0=a", "10_0t=c"}},
		{10, []string{"6_0=b", "9_0=a", "10_0t=c"}},
	}
	for _, tt := range tests {
		for _, batch := range []int{1, 2, 1000} {
			e := newEnv(t, Options{CompactionBatchLimit: batch, CompactionSleepInterval: 1})
			history(e)
			if err := e.compact(tt.at); err != nil {
				t.Fatal(err)
			}
			if got := e.bucket(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("compact(%d) batch %d: key bucket\n got %q\nwant %q", tt.at, batch, got, tt.want)
			}
			// Reads at the compaction revision still work and agree with
			// an uncompacted store.
			ref := newEnv(t, Options{})
			history(ref)
			got, err := e.rng("\x00", []byte{0}, RangeOptions{Rev: tt.at})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.rng("\x00", []byte{0}, RangeOptions{Rev: tt.at})
			if !reflect.DeepEqual(kvsString(got.KVs), kvsString(want.KVs)) {
				t.Errorf("compact(%d): range at it = %q, want %q", tt.at, kvsString(got.KVs), kvsString(want.KVs))
			}
			// Writes after compaction continue generations correctly.
			e.put("a", "4")
			e.put("c", "2")
			res, _ := e.rng("a", []byte("d"), RangeOptions{})
			wantKVs := []string{"a=4 c2 m11 v4 l0", "b=2 c6 m6 v1 l0", "c=2 c12 m12 v1 l0"}
			if !reflect.DeepEqual(kvsString(res.KVs), wantKVs) {
				t.Errorf("compact(%d): after writes %q, want %q", tt.at, kvsString(res.KVs), wantKVs)
			}
		}
	}
}

func TestCompactTwiceAndRestoreKeepsRevision(t *testing.T) {
	e := newEnv(t, Options{})
	history(e)
	if err := e.compact(5); err != nil {
		t.Fatal(err)
	}
	if err := e.compact(10); err != nil {
		t.Fatal(err)
	}
	want := []string{"6_0=b", "9_0=a", "10_0t=c"}
	if got := e.bucket(); !reflect.DeepEqual(got, want) {
		t.Fatalf("bucket %q, want %q", got, want)
	}
	// Deleting the last keys at the compaction revision, then compacting
	// past it: the bucket no longer holds the current revision, the meta
	// compaction revisions do.
	e.del("\x00", []byte{0}) // 11
	if err := e.compact(11); err != nil {
		t.Fatal(err)
	}
	e.put("z", "1") // 12
	e.del("z", nil) // 13
	if err := e.compact(13); err != nil {
		t.Fatal(err)
	}
	if got := e.bucket(); !reflect.DeepEqual(got, []string{"13_0t=z"}) {
		t.Fatalf("bucket %q", got)
	}
	e.reopen()
	if e.s.Rev() != 13 || e.s.CompactRev() != 13 {
		t.Fatalf("after reopen Rev %d CompactRev %d, want 13 13", e.s.Rev(), e.s.CompactRev())
	}
	e.put("z", "2")
	if res, _ := e.rng("z", nil, RangeOptions{}); len(res.KVs) != 1 || kvString(res.KVs[0]) != "z=2 c14 m14 v1 l0" {
		t.Fatalf("after reopen: %q", kvsString(res.KVs))
	}
}

func TestRestore(t *testing.T) {
	var restored []string
	e := newEnv(t, Options{OnRestoreKey: func(key []byte, lease int64) {
		restored = append(restored, string(key)+"="+string(rune('0'+lease)))
	}})
	history(e)
	e.txn(func(w *WriteTxn) {
		w.Put([]byte("l1"), []byte("v"), 1)
		w.Put([]byte("l2"), []byte("v"), 2)
		w.Put([]byte("l3"), []byte("v"), 3)
	})
	e.txn(func(w *WriteTxn) {
		w.Put([]byte("l2"), []byte("v"), 0) // lease removed
		w.DeleteRange([]byte("l3"), nil)    // key deleted
		w.Put([]byte("l1"), []byte("v"), 4) // lease changed
	})
	if err := e.compact(6); err != nil {
		t.Fatal(err)
	}
	wantIdx := dumpIndex(e.s)
	wantRev, wantCompact := e.s.Rev(), e.s.CompactRev()
	wantAll, _ := e.rng("\x00", []byte{0}, RangeOptions{Rev: 8})
	restored = nil
	e.reopen()
	if got := dumpIndex(e.s); !reflect.DeepEqual(got, wantIdx) {
		t.Errorf("index after reopen\n got %v\nwant %v", got, wantIdx)
	}
	if e.s.Rev() != wantRev || e.s.CompactRev() != wantCompact {
		t.Errorf("Rev %d CompactRev %d, want %d %d", e.s.Rev(), e.s.CompactRev(), wantRev, wantCompact)
	}
	if want := []string{"l1=4"}; !reflect.DeepEqual(restored, want) {
		t.Errorf("OnRestoreKey calls %q, want %q", restored, want)
	}
	gotAll, _ := e.rng("\x00", []byte{0}, RangeOptions{Rev: 8})
	if !reflect.DeepEqual(kvsString(gotAll.KVs), kvsString(wantAll.KVs)) {
		t.Errorf("range after reopen %q, want %q", kvsString(gotAll.KVs), kvsString(wantAll.KVs))
	}
}

func TestInterruptedCompactionFinishesOnReopen(t *testing.T) {
	e := newEnv(t, Options{})
	history(e)
	// A crash right after the compaction was scheduled: only the meta
	// record made it to disk.
	tx := e.be.BatchTx()
	setScheduledCompact(tx, 9)
	tx.Unlock()
	e.reopen()
	if e.s.CompactRev() != 9 {
		t.Fatalf("CompactRev() = %d after reopen, want 9", e.s.CompactRev())
	}
	e.s.waitCompactions()
	want := []string{"5_0=c", "6_0=b", "9_0=a", "10_0t=c"}
	if got := e.bucket(); !reflect.DeepEqual(got, want) {
		t.Fatalf("bucket %q, want %q", got, want)
	}
	if scheduled, finished := readCompactRevs(e); scheduled != 9 || finished != 9 {
		t.Fatalf("meta scheduled %d finished %d, want 9 9", scheduled, finished)
	}
	if _, err := e.rng("a", nil, RangeOptions{Rev: 8}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("read below resumed compaction: %v", err)
	}
}

func TestCompactionStoppedByClose(t *testing.T) {
	e := newEnv(t, Options{CompactionBatchLimit: 1})
	history(e)
	parked := park(e.s)
	tx := e.be.BatchTx()
	done, err := e.s.Compact(tx, 9)
	tx.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	<-parked
	e.s.Close() // the job is parked in its first pause; Close ends it
	<-done
	if _, finished := readCompactRevs(e); finished != 0 {
		t.Fatalf("finished = %d for a stopped compaction", finished)
	}
	e.reopen()
	e.s.waitCompactions()
	if got, want := e.bucket(), []string{"5_0=c", "6_0=b", "9_0=a", "10_0t=c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("bucket after resumed compaction %q, want %q", got, want)
	}
}

func TestHashKV(t *testing.T) {
	a := newEnv(t, Options{})
	b := newEnv(t, Options{CompactionBatchLimit: 1})
	history(a)
	history(b)
	ha, rev, crev, err := a.s.HashKV(0)
	if err != nil || rev != 10 || crev != 0 {
		t.Fatalf("HashKV(0) = %x %d %d %v", ha, rev, crev, err)
	}
	if hb, _, _, _ := b.s.HashKV(0); hb != ha {
		t.Fatalf("same history, different hashes %x %x", ha, hb)
	}
	h9, _, _, _ := a.s.HashKV(9)
	if h9 == ha {
		t.Fatalf("hash at 9 equals hash at 10")
	}

	// a finishes a compaction at 8; b's compaction at 8 is stuck after its
	// first batch. Both must hash alike, at 8 and above.
	if err := a.compact(8); err != nil {
		t.Fatal(err)
	}
	parked := park(b.s)
	tx := b.be.BatchTx()
	if _, err := b.s.Compact(tx, 8); err != nil {
		t.Fatal(err)
	}
	tx.Unlock()
	<-parked
	if len(b.bucket()) == len(a.bucket()) {
		t.Fatalf("b's compaction finished; the test needs it in progress")
	}
	for _, rev := range []int64{8, 9, 0} {
		ha, _, ca, err := a.s.HashKV(rev)
		if err != nil {
			t.Fatal(err)
		}
		hb, _, cb, err := b.s.HashKV(rev)
		if err != nil {
			t.Fatal(err)
		}
		if ha != hb || ca != 8 || cb != 8 {
			t.Errorf("HashKV(%d): %x (compact %d) vs %x (compact %d)", rev, ha, ca, hb, cb)
		}
	}
	if _, _, _, err := a.s.HashKV(7); !errors.Is(err, ErrCompacted) {
		t.Errorf("HashKV below compaction: %v", err)
	}
	if _, _, _, err := a.s.HashKV(11); !errors.Is(err, ErrFutureRev) {
		t.Errorf("HashKV in the future: %v", err)
	}
	// A different value changes the hash.
	a.put("a", "x")
	b.put("a", "y")
	ha, _, _, _ = a.s.HashKV(0)
	hb, _, _, _ := b.s.HashKV(0)
	if ha == hb {
		t.Errorf("different histories hash alike")
	}
}
