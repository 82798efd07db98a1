package watch

import (
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// checkSequence verifies a watcher's responses carry exactly revisions
// from..to of key k (one event each), in order, with no duplicates, and
// that no header revision goes backwards.
func checkSequence(t *testing.T, rs []*etcdserverpb.WatchResponse, from, to int64) {
	t.Helper()
	next, lastHdr := from, int64(0)
	for _, r := range rs {
		if r.Header.Revision < lastHdr {
			t.Fatalf("header revision went back from %d to %d", lastHdr, r.Header.Revision)
		}
		lastHdr = r.Header.Revision
		for _, ev := range r.Events {
			if ev.Kv.ModRevision != next {
				t.Fatalf("got event at %d, want %d (gap or duplicate)", ev.Kv.ModRevision, next)
			}
			if ev.Kv.ModRevision > r.Header.Revision {
				t.Fatalf("event %d above header revision %d", ev.Kv.ModRevision, r.Header.Revision)
			}
			next++
		}
	}
	if next != to+1 {
		t.Fatalf("events end before %d, want through %d", next, to)
	}
}

func TestHistoryThenLiveNoGapNoDuplicate(t *testing.T) {
	tests := []struct {
		name      string
		history   int // revisions written before the watch
		start     int64
		syncBatch int
		during    int // revisions written while each unlocked read is in flight
	}{
		{"short history, read under lock", 10, 3, 0, 0},
		{"long history in batches", 300, 1, 50, 0},
		{"writes race the unlocked reads", 300, 2, 100, 3},
		{"start at current revision", 5, 5, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{SyncBatch: tt.syncBatch})
			for i := 0; i < tt.history; i++ {
				f.write(put("k", fmt.Sprint(i)))
			}
			raced := 0
			if tt.during > 0 {
				f.src.onEvents = func(from, to int64) {
					if to-from <= tailRevs {
						return // read under the hub lock
					}
					raced++
					// The hub lock is released for this read: Notify must
					// get through, and its events must not be lost.
					for i := 0; i < tt.during; i++ {
						f.write(put("k", "during"))
					}
				}
			}
			s := f.h.NewStream()
			id := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("k"), StartRevision: tt.start})
			f.created(s, id)
			if syn, unsyn := f.h.Stats(); syn != 0 || unsyn != 1 {
				t.Fatalf("Stats = %d, %d; want the history watcher unsynced", syn, unsyn)
			}
			// Live writes before the first catch-up step must wait their turn.
			f.write(put("k", "live0"))
			f.sync()
			f.src.onEvents = nil
			if tt.during > 0 && raced == 0 {
				t.Fatal("no catch-up read ran without the hub lock")
			}
			if syn, unsyn := f.h.Stats(); syn != 1 || unsyn != 0 {
				t.Fatalf("Stats = %d, %d; want the watcher synced after catch-up", syn, unsyn)
			}
			last := f.write(put("k", "live1"))
			checkSequence(t, drain(s), tt.start, last)
		})
	}
}

func TestCompactedStartRevision(t *testing.T) {
	tests := []struct {
		name    string
		start   int64
		strict  bool // Source fails reads at the compact revision itself
		want    string
		compact int64
	}{
		{"below compact revision", 3, false, "compacted", 5},
		{"at compact revision is readable", 5, false, "events", 5},
		{"at compact revision, strict source", 5, true, "compacted", 5},
		{"above compact revision", 6, false, "events", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.src.strict = tt.strict
			for i := 0; i < 8; i++ {
				f.write(put("k", fmt.Sprint(i)))
			}
			f.src.setCompact(tt.compact)
			s := f.h.NewStream()
			id := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("k"), StartRevision: tt.start})
			f.created(s, id) // etcd acknowledges first, then reports the compaction
			f.sync()
			got := drain(s)
			switch tt.want {
			case "compacted":
				wantResps(t, got, &etcdserverpb.WatchResponse{Header: hdr(8), WatchId: id, Canceled: true, CompactRevision: tt.compact})
				// Nothing more for it, and it no longer counts as a watcher.
				f.write(put("k", "x"))
				if got := drain(s); len(got) != 0 {
					t.Fatalf("compacted watcher got %v", got)
				}
				if syn, unsyn := f.h.Stats(); syn+unsyn != 0 {
					t.Fatalf("Stats = %d, %d after compaction", syn, unsyn)
				}
				// The client's cancel still succeeds, as in etcd.
				if err := s.Cancel(id); err != nil {
					t.Fatalf("Cancel after compaction: %v", err)
				}
			default:
				checkSequence(t, got, tt.start, 8)
			}
		})
	}
}

func TestFutureStartRevision(t *testing.T) {
	f := newFixture(t, Options{})
	f.write(put("k", "0")) // rev 1
	s := f.h.NewStream()
	id := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("k"), StartRevision: 4})
	wantResps(t, drain(s), &etcdserverpb.WatchResponse{Header: hdr(1), WatchId: id, Created: true})
	f.write(put("k", "1")) // 2
	s.RequestProgress()    // withheld: a bookmark at 2 would be below the start
	f.write(put("k", "2")) // 3
	if got := drain(s); len(got) != 0 {
		t.Fatalf("before the start revision got %v", got)
	}
	f.write(put("k", "3")) // 4: start reached, then the pending progress at 4
	f.write(put("k", "4")) // 5
	wantResps(t, drain(s),
		evResp(id, 4, putEv("k", "3", 1, 4, 4)),
		&etcdserverpb.WatchResponse{Header: hdr(4), WatchId: -1},
		evResp(id, 5, putEv("k", "4", 1, 5, 5)),
	)
}

// Watchers chosen together for a catch-up step share one read window, set
// by the slowest of them; the others must not be moved back to its end.
func TestCatchUpMixedStarts(t *testing.T) {
	f := newFixture(t, Options{SyncBatch: 10})
	for i := 0; i < 100; i++ {
		f.write(put("k", fmt.Sprint(i)))
	}
	s := f.h.NewStream()
	starts := []int64{1, 50, 95, 100}
	ids := map[int64]int64{}
	for _, st := range starts {
		ids[f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("k"), StartRevision: st})] = st
	}
	f.sync()
	last := f.write(put("k", "live"))
	byID := map[int64][]*etcdserverpb.WatchResponse{}
	for _, r := range drain(s) {
		if !r.Created {
			byID[r.WatchId] = append(byID[r.WatchId], r)
		}
	}
	for id, st := range ids {
		t.Run(fmt.Sprint("start=", st), func(t *testing.T) { checkSequence(t, byID[id], st, last) })
	}
}

// A revision gap (snapshot restore, or a write path that did not notify)
// sends every synced watcher back to the Source for the skipped revisions.
func TestRevisionGapResyncs(t *testing.T) {
	tests := []struct {
		name    string
		compact int64
		want    string
	}{
		{"history kept", 0, "events"},
		{"history compacted", 4, "compacted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.write(put("k", "0")) // 1
			s := f.h.NewStream()
			id := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("k")})
			f.created(s, id)
			f.src.apply(put("k", "1")) // 2, 3, 4 are never notified
			f.src.apply(put("k", "2"))
			f.src.apply(put("k", "3"))
			f.src.setCompact(tt.compact)
			f.h.Notify(f.src.Rev(), nil)
			if syn, unsyn := f.h.Stats(); syn != 0 || unsyn != 1 {
				t.Fatalf("Stats = %d, %d; want the watcher unsynced", syn, unsyn)
			}
			f.sync()
			if tt.want == "compacted" {
				wantResps(t, drain(s), &etcdserverpb.WatchResponse{Header: hdr(4), WatchId: id, Canceled: true, CompactRevision: 4})
				return
			}
			last := f.write(put("k", "4"))
			checkSequence(t, drain(s), 2, last)
		})
	}
}

func TestOldRevisionIgnored(t *testing.T) {
	f := newFixture(t, Options{})
	s := f.h.NewStream()
	id := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("k")})
	f.created(s, id)
	rev, evs := f.src.apply(put("k", "1"))
	f.h.Notify(rev, evs)
	f.h.Notify(rev, evs) // a duplicate must not be delivered twice
	wantResps(t, drain(s), evResp(id, 1, putEv("k", "1", 1, 1, 1)))
}

func TestReadErrorIsRetried(t *testing.T) {
	f := newFixture(t, Options{})
	for i := 0; i < 5; i++ {
		f.write(put("k", fmt.Sprint(i)))
	}
	s := f.h.NewStream()
	id := f.watch(s, &etcdserverpb.WatchCreateRequest{Key: []byte("k"), StartRevision: 2})
	f.created(s, id)
	f.src.failNext = errors.New("disk on fire")
	if f.h.syncRound() {
		t.Fatal("a failed read moved a watcher")
	}
	if got := drain(s); len(got) != 0 {
		t.Fatalf("got %v after a failed read", got)
	}
	f.sync()
	checkSequence(t, drain(s), 2, 5)
}
