package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func TestRoundTrip(t *testing.T) {
	big := strings.Repeat("x", 10000) // larger than a 4 KiB segment
	tests := []struct {
		name    string
		meta    []byte
		batches [][]*raftpb.Entry
		states  []*raftpb.HardState // parallel to batches, nil = none
		sync    bool
		want    []*raftpb.Entry
		wantSt  *raftpb.HardState
	}{
		{name: "empty", meta: nil},
		{name: "metadata only", meta: []byte("node=1 cluster=7")},
		{name: "state only", meta: []byte("m"), batches: [][]*raftpb.Entry{nil},
			states: []*raftpb.HardState{hs(2, 1, 0)}, sync: true, wantSt: hs(2, 1, 0)},
		{name: "entries and states", meta: []byte("m"),
			batches: [][]*raftpb.Entry{ents(1, 3, 1), ents(4, 4, 1), nil},
			states:  []*raftpb.HardState{hs(1, 1, 0), nil, hs(1, 1, 4)},
			sync:    true, want: ents(1, 4, 1), wantSt: hs(1, 1, 4)},
		{name: "unsynced", meta: []byte("m"),
			batches: [][]*raftpb.Entry{ents(1, 10, 3)}, states: []*raftpb.HardState{hs(3, 0, 2)},
			want: ents(1, 10, 3), wantSt: hs(3, 0, 2)},
		{name: "entry larger than a segment", meta: []byte("m"),
			batches: [][]*raftpb.Entry{ents(1, 1, 1), {ent(2, 1, big)}, ents(3, 3, 1)},
			states:  []*raftpb.HardState{nil, nil, nil}, sync: true,
			want: append(append(ents(1, 1, 1), ent(2, 1, big)), ents(3, 3, 1)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := walDir(t)
			w := mustCreate(t, dir, tt.meta, testOpts(nil))
			for i, b := range tt.batches {
				if err := w.Save(tt.states[i], b, tt.sync); err != nil {
					t.Fatal(err)
				}
			}
			mustClose(t, w)
			w, r := mustRead(t, dir, Snapshot{}, testOpts(nil))
			defer w.Close()
			if !bytes.Equal(r.meta, tt.meta) {
				t.Fatalf("metadata %q, want %q", r.meta, tt.meta)
			}
			checkState(t, r.st, tt.wantSt)
			checkEnts(t, r.ents, tt.want)
		})
	}
}

func TestOverwriteTail(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]*raftpb.Entry
		want    []*raftpb.Entry
	}{
		{"replace last", [][]*raftpb.Entry{ents(1, 5, 1), ents(5, 6, 2)},
			append(ents(1, 4, 1), ents(5, 6, 2)...)},
		{"replace all", [][]*raftpb.Entry{ents(1, 5, 1), ents(1, 2, 2)}, ents(1, 2, 2)},
		{"shorter tail drops the rest", [][]*raftpb.Entry{ents(1, 9, 1), ents(3, 3, 2)},
			append(ents(1, 2, 1), ents(3, 3, 2)...)},
		{"repeated rewrites", [][]*raftpb.Entry{ents(1, 5, 1), ents(4, 8, 2), ents(6, 7, 3), ents(8, 8, 3)},
			append(append(ents(1, 3, 1), ents(4, 5, 2)...), ents(6, 8, 3)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, seg := range []int64{1 << 20, 512} { // one segment, and cuts between batches
				dir := walDir(t)
				w := mustCreate(t, dir, []byte("m"), Options{SegmentSize: seg})
				for _, b := range tt.batches {
					mustSave(t, w, nil, b)
				}
				mustClose(t, w)
				w, r := mustRead(t, dir, Snapshot{}, Options{SegmentSize: seg})
				checkEnts(t, r.ents, tt.want)
				// The writer continues from the rewritten tail.
				next := uint64(len(tt.want)) + 1
				mustSave(t, w, nil, ents(next, next, 9))
				mustClose(t, w)
				w, r = mustRead(t, dir, Snapshot{}, Options{SegmentSize: seg})
				checkEnts(t, r.ents, append(tt.want, ents(next, next, 9)...))
				mustClose(t, w)
			}
		})
	}
}

func TestSegmentCut(t *testing.T) {
	dir := walDir(t)
	o := testOpts(nil)
	w := mustCreate(t, dir, []byte("meta"), o)
	mustSave(t, w, hs(1, 1, 0), nil)
	var want []*raftpb.Entry
	for i := uint64(1); i <= 60; i++ {
		e := ent(i, 1, strings.Repeat("d", 200))
		want = append(want, e)
		mustSave(t, w, hs(1, 1, i-1), []*raftpb.Entry{e})
	}
	mustClose(t, w)

	paths := segmentPaths(t, dir)
	if len(paths) < 3 {
		t.Fatalf("expected several segments, got %d", len(paths))
	}
	// Each segment's name bounds the entries before it: the first entry
	// record of segment k+1 has exactly the index in its name here.
	for i, p := range paths {
		seq, first, _ := parseSegmentName(filepath.Base(p))
		if seq != uint64(i+1) {
			t.Fatalf("segment %d has seq %d", i, seq)
		}
		if fi, _ := os.Stat(p); fi.Size() != o.SegmentSize {
			t.Fatalf("%s has size %d, want preallocated %d", p, fi.Size(), o.SegmentSize)
		}
		if i > 0 {
			b, _ := os.ReadFile(p)
			var firstEnt uint64
			scanSegment(b, func(_ int, typ recordType, data []byte) error {
				if typ == typeEntry && firstEnt == 0 {
					firstEnt, _ = entryIndex(data)
				}
				return nil
			})
			if firstEnt != first {
				t.Fatalf("%s: first entry %d, name says %d", p, firstEnt, first)
			}
		}
	}
	w, r := mustRead(t, dir, Snapshot{}, o)
	checkEnts(t, r.ents, want)
	checkState(t, r.st, hs(1, 1, 59))
	if string(r.meta) != "meta" {
		t.Fatalf("metadata %q", r.meta)
	}
	// Overwrite across a segment boundary, then keep going.
	mustSave(t, w, nil, ents(10, 12, 2))
	mustClose(t, w)
	w, r = mustRead(t, dir, Snapshot{}, o)
	checkEnts(t, r.ents, append(want[:9:9], ents(10, 12, 2)...))
	mustClose(t, w)
}

func TestOpenAtSnapshot(t *testing.T) {
	// Log: 1..10 at term 1, snapshot marker at 5 (term 1), 11..12 at term 2,
	// a marker at 12 (term 2).
	build := func(t *testing.T) string {
		dir := walDir(t)
		w := mustCreate(t, dir, []byte("m"), testOpts(nil))
		mustSave(t, w, hs(1, 1, 5), ents(1, 10, 1))
		if err := w.SaveSnapshot(Snapshot{Index: 5, Term: 1}); err != nil {
			t.Fatal(err)
		}
		mustSave(t, w, hs(2, 1, 12), ents(11, 12, 2))
		if err := w.SaveSnapshot(Snapshot{Index: 12, Term: 2}); err != nil {
			t.Fatal(err)
		}
		mustClose(t, w)
		return dir
	}
	tests := []struct {
		name    string
		snap    Snapshot
		want    []*raftpb.Entry
		wantErr error
	}{
		{"no snapshot", Snapshot{}, append(ents(1, 10, 1), ents(11, 12, 2)...), nil},
		{"at 5", Snapshot{Index: 5, Term: 1}, append(ents(6, 10, 1), ents(11, 12, 2)...), nil},
		{"at the end", Snapshot{Index: 12, Term: 2}, nil, nil},
		{"wrong term", Snapshot{Index: 5, Term: 3}, nil, ErrSnapshotMismatch},
		{"unknown snapshot", Snapshot{Index: 7, Term: 1}, nil, ErrSnapshotNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := build(t)
			w, r, err := openRead(t, dir, tt.snap, testOpts(nil))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadAll error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				// The lock must have been kept until Close, and released by it.
				if w2, err := Open(dir, Snapshot{}, testOpts(nil)); err != nil {
					t.Fatalf("reopen after failed ReadAll: %v", err)
				} else {
					w2.Close()
				}
				return
			}
			defer w.Close()
			checkEnts(t, r.ents, tt.want)
			checkState(t, r.st, hs(2, 1, 12))
		})
	}
}

func TestReleaseTo(t *testing.T) {
	// Ten batches of 10 entries of ~300 B: 4 KiB segments hold one batch
	// each, so segment k is named with firstIndex 10(k-1)+1.
	build := func(t *testing.T) (string, *WAL) {
		dir := walDir(t)
		w := mustCreate(t, dir, []byte("m"), testOpts(nil))
		for b := uint64(0); b < 10; b++ {
			var es []*raftpb.Entry
			for i := b*10 + 1; i <= b*10+10; i++ {
				es = append(es, ent(i, 1, strings.Repeat("v", 300)))
			}
			mustSave(t, w, hs(1, 1, b*10+10), es)
		}
		return dir, w
	}
	tests := []struct {
		release   uint64
		wantFirst []uint64 // firstIndex of the segments left
	}{
		{0, []uint64{1, 11, 21, 31, 41, 51, 61, 71, 81, 91}},
		{9, []uint64{1, 11, 21, 31, 41, 51, 61, 71, 81, 91}},
		{10, []uint64{11, 21, 31, 41, 51, 61, 71, 81, 91}},
		{35, []uint64{31, 41, 51, 61, 71, 81, 91}},
		{40, []uint64{41, 51, 61, 71, 81, 91}},
		{100, []uint64{91}},
		{1000, []uint64{91}},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatUint(tt.release, 10), func(t *testing.T) {
			dir, w := build(t)
			if err := w.SaveSnapshot(Snapshot{Index: tt.release, Term: 1}); err != nil {
				t.Fatal(err)
			}
			if err := w.ReleaseTo(tt.release); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
			var got []uint64
			for _, p := range segmentPaths(t, dir) {
				_, first, _ := parseSegmentName(filepath.Base(p))
				got = append(got, first)
			}
			if !equalU64(got, tt.wantFirst) {
				t.Fatalf("segments left %v, want %v", got, tt.wantFirst)
			}
			// Opening at the released-to snapshot still yields the whole log
			// after it, with metadata and HardState from the segment headers.
			snap := Snapshot{Index: min(tt.release, 100), Term: 1}
			if tt.release > 100 {
				snap = Snapshot{Index: tt.release, Term: 1}
			}
			w, r := mustRead(t, dir, snap, testOpts(nil))
			defer w.Close()
			var want []*raftpb.Entry
			for i := snap.Index + 1; i <= 100; i++ {
				want = append(want, ent(i, 1, strings.Repeat("v", 300)))
			}
			checkEnts(t, r.ents, want)
			checkState(t, r.st, hs(1, 1, 100))
			if string(r.meta) != "m" {
				t.Fatalf("metadata %q", r.meta)
			}
		})
	}
}

func TestReleasedLogNeedsNewerSnapshot(t *testing.T) {
	dir := walDir(t)
	w := mustCreate(t, dir, []byte("m"), testOpts(nil))
	for b := uint64(0); b < 4; b++ {
		mustSave(t, w, nil, []*raftpb.Entry{ent(b+1, 1, strings.Repeat("v", 3000))})
	}
	if err := w.SaveSnapshot(Snapshot{Index: 3, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.ReleaseTo(3); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	_, _, err := openRead(t, dir, Snapshot{}, testOpts(nil))
	var ce *ErrCorrupt
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "entries are missing") {
		t.Fatalf("opening without the snapshot: %v, want ErrCorrupt about missing entries", err)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLocked(t *testing.T) {
	dir := walDir(t)
	w := mustCreate(t, dir, nil, testOpts(nil))
	if _, err := Open(dir, Snapshot{}, testOpts(nil)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	mustClose(t, w)
	w, _ = mustRead(t, dir, Snapshot{}, testOpts(nil))
	if _, err := Open(dir, Snapshot{}, testOpts(nil)); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while opened: %v, want ErrLocked", err)
	}
	mustClose(t, w)
}

func TestMisuse(t *testing.T) {
	dir := walDir(t)
	w := mustCreate(t, dir, nil, testOpts(nil))
	mustSave(t, w, nil, ents(1, 1, 1))
	if err := w.Save(nil, []*raftpb.Entry{{}}, true); err == nil {
		t.Fatal("Save of an entry without index succeeded")
	}
	mustClose(t, w)
	if _, err := Create(dir, nil, testOpts(nil)); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over a WAL: %v", err)
	}
	if _, err := Open(t.TempDir(), Snapshot{}, testOpts(nil)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of an empty dir: %v", err)
	}
	w, err := Open(dir, Snapshot{}, testOpts(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(hs(1, 1, 1), nil, true); err == nil {
		t.Fatal("Save before ReadAll succeeded")
	}
	if _, _, _, err := w.ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.ReadAll(); err == nil {
		t.Fatal("second ReadAll succeeded")
	}
	mustClose(t, w)
	if err := w.Save(hs(1, 1, 1), nil, true); err == nil {
		t.Fatal("Save after Close succeeded")
	}
}

func TestOnFsync(t *testing.T) {
	dir := walDir(t)
	var calls int
	o := testOpts(nil)
	o.OnFsync = func(time.Duration) { calls++ }
	w := mustCreate(t, dir, nil, o)
	mustSave(t, w, hs(1, 1, 0), ents(1, 100, 1)) // one Save, many entries: one fsync
	if err := w.Save(hs(1, 1, 1), nil, false); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(nil, nil, true); err != nil { // nothing to write
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("%d fsyncs for one synced Save, want 1", calls)
	}
	mustClose(t, w)
}

func TestTempSegmentsRemoved(t *testing.T) {
	dir := walDir(t)
	w := mustCreate(t, dir, nil, testOpts(nil))
	mustClose(t, w)
	stale := tempSegmentPath(dir, 42)
	if err := os.WriteFile(stale, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, _ = mustRead(t, dir, Snapshot{}, testOpts(nil))
	mustClose(t, w)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp segment survived Open: %v", err)
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasSuffix(de.Name(), tempExt) {
			t.Fatalf("Close left %s behind", de.Name())
		}
	}
}
