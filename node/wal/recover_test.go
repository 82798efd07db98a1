package wal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// TestTornTail tears the last write (an entry record and a HardState
// record) at every byte offset, in the three ways a crash can leave it, and
// checks that recovery keeps exactly the complete records, says what it cut,
// and that the WAL then works as usual.
func TestTornTail(t *testing.T) {
	base := t.TempDir()
	build := func(name string) (dir, path string, write recInfo, entEnd, entPadded, hsEnd int) {
		dir = base + "/" + name
		w := mustCreate(t, dir, []byte("m"), testOpts(nil))
		mustSave(t, w, hs(1, 1, 0), ents(1, 3, 1))
		mustSave(t, w, hs(1, 1, 3), ents(4, 4, 1))
		mustClose(t, w)
		path = lastSegment(t, dir)
		recs := fileRecords(t, path)
		e, h := recs[len(recs)-2], recs[len(recs)-1]
		if e.typ != typeEntry || h.typ != typeHardState {
			t.Fatalf("unexpected record layout %+v", recs)
		}
		b, _ := os.ReadFile(path)
		n, _ := headerLen(b, e.off)
		m, _ := headerLen(b, h.off)
		return dir, path, recInfo{off: e.off, next: h.next}, e.off + headerSize + n, e.next, h.off + headerSize + m
	}
	_, _, write, entEnd, entPadded, _ := build("probe")
	writeLen := write.next - write.off
	if entEnd == entPadded {
		t.Fatal("test needs an entry record with padding")
	}

	rng := rand.New(rand.NewPCG(1, 2))
	variants := []struct {
		name string
		tear func(t *testing.T, path string, from, to int)
		// keeps reports whether a record ending at end (unpadded) and
		// padded survives a tear at from.
		keeps func(from, end, padded int) bool
	}{
		{"zeros", func(t *testing.T, path string, from, to int) {
			writeAt(t, path, int64(from), make([]byte, to-from))
		}, func(from, end, _ int) bool { return from >= end }},
		{"truncated", func(t *testing.T, path string, from, _ int) {
			if err := os.Truncate(path, int64(from)); err != nil {
				t.Fatal(err)
			}
		}, func(from, _, padded int) bool { return from >= padded }},
		{"garbage", func(t *testing.T, path string, from, to int) {
			g := make([]byte, to-from+64)
			for i := range g {
				g[i] = byte(rng.IntN(255) + 1)
			}
			writeAt(t, path, int64(from), g)
		}, func(from, _, padded int) bool { return from >= padded }},
	}
	for _, v := range variants {
		for cut := 0; cut <= writeLen; cut++ {
			t.Run(fmt.Sprintf("%s/%d", v.name, cut), func(t *testing.T) {
				dir, path, write, entEnd, entPadded, hsEnd := build(fmt.Sprintf("%s-%d", v.name, cut))
				from := write.off + cut
				v.tear(t, path, from, write.next)
				before, _ := os.ReadFile(path)

				wantEnts, wantSt, end := ents(1, 3, 1), hs(1, 1, 0), write.off
				if v.keeps(from, entEnd, entPadded) {
					wantEnts, end = ents(1, 4, 1), entPadded
				}
				if v.keeps(from, hsEnd, write.next) {
					wantSt, end = hs(1, 1, 3), write.next
				}
				wantWarn := end < len(before) && lastNonZero(before[end:]) >= 0

				lg, logs := observed()
				o := testOpts(lg)
				w, r := mustRead(t, dir, Snapshot{}, o)
				checkEnts(t, r.ents, wantEnts)
				checkState(t, r.st, wantSt)
				warns := logs.FilterMessageSnippet("torn write").All()
				if wantWarn != (len(warns) == 1) {
					t.Fatalf("torn-write warnings: %d, want %v", len(warns), wantWarn)
				}
				if wantWarn {
					f := warns[0].ContextMap()
					if f["file"] != path || f["offset"] != int64(end) {
						t.Fatalf("warning names %v at %v, want %s at %d", f["file"], f["offset"], path, end)
					}
				}

				// Repaired: full size again, nothing but zeros after the end.
				after, _ := os.ReadFile(path)
				if int64(len(after)) != o.SegmentSize || lastNonZero(after[end:]) >= 0 {
					t.Fatalf("after repair: size %d, non-zero byte at %d past %d", len(after), lastNonZero(after[end:]), end)
				}
				next := wantEnts[len(wantEnts)-1].GetIndex() + 1
				mustSave(t, w, hs(2, 2, 3), ents(next, next+1, 2))
				mustClose(t, w)
				w, r = mustRead(t, dir, Snapshot{}, o)
				checkEnts(t, r.ents, append(wantEnts, ents(next, next+1, 2)...))
				checkState(t, r.st, hs(2, 2, 3))
				mustClose(t, w)
			})
		}
	}
}

// TestCorruptMiddle damages a record that valid records follow, or any
// record of a segment that is not the newest: recovery must refuse and
// say where.
func TestCorruptMiddle(t *testing.T) {
	build := func(t *testing.T) string {
		dir := walDir(t)
		w := mustCreate(t, dir, []byte("m"), testOpts(nil))
		for i := uint64(1); i <= 30; i++ { // several 4 KiB segments
			mustSave(t, w, hs(1, 1, i), []*raftpb.Entry{ent(i, 1, strings.Repeat("p", 300))})
		}
		mustClose(t, w)
		return dir
	}
	// pick chooses the damaged record: a segment path and a record in it.
	type pick func(t *testing.T, dir string) (string, recInfo)
	middleOfLast := func(t *testing.T, dir string) (string, recInfo) {
		p := lastSegment(t, dir)
		recs := fileRecords(t, p)
		return p, recs[len(recs)/2]
	}
	lastOfFirst := func(t *testing.T, dir string) (string, recInfo) {
		p := segmentPaths(t, dir)[0]
		recs := fileRecords(t, p)
		return p, recs[len(recs)-1]
	}
	headerOfLast := func(t *testing.T, dir string) (string, recInfo) {
		p := lastSegment(t, dir)
		return p, fileRecords(t, p)[0]
	}
	tests := []struct {
		name  string
		pick  pick
		delta int // byte of the record to flip
	}{
		{"length", middleOfLast, 0},
		{"data crc", middleOfLast, 4},
		{"type", middleOfLast, 8},
		{"header crc", middleOfLast, 13},
		{"payload", middleOfLast, headerSize + 5},
		{"zeroed header", middleOfLast, -1},
		{"last record of an older segment", lastOfFirst, headerSize + 1},
		{"segment header", headerOfLast, headerSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := build(t)
			path, rec := tt.pick(t, dir)
			if tt.delta < 0 {
				writeAt(t, path, int64(rec.off), make([]byte, headerSize))
			} else {
				b, _ := os.ReadFile(path)
				writeAt(t, path, int64(rec.off+tt.delta), []byte{^b[rec.off+tt.delta]})
			}
			lg, logs := observed()
			_, _, err := openRead(t, dir, Snapshot{}, testOpts(lg))
			var ce *ErrCorrupt
			if !errors.As(err, &ce) {
				t.Fatalf("ReadAll: %v, want ErrCorrupt", err)
			}
			if ce.File != path || ce.Offset != int64(rec.off) {
				t.Fatalf("ErrCorrupt names %s at %d, want %s at %d", ce.File, ce.Offset, path, rec.off)
			}
			msg := err.Error()
			for _, s := range []string{path, strconv.Itoa(rec.off), "snapshot", "remove"} {
				if !strings.Contains(msg, s) {
					t.Fatalf("error %q does not mention %q", msg, s)
				}
			}
			if n := logs.FilterMessageSnippet("torn").Len(); n != 0 {
				t.Fatalf("corruption was treated as a torn write")
			}
		})
	}
}

func TestZerosAfterValidRecords(t *testing.T) {
	dir := walDir(t)
	w := mustCreate(t, dir, []byte("m"), testOpts(nil))
	for i := uint64(1); i <= 20; i++ {
		mustSave(t, w, nil, []*raftpb.Entry{ent(i, 1, strings.Repeat("z", 500))})
	}
	mustClose(t, w)
	paths := segmentPaths(t, dir)
	if len(paths) < 2 {
		t.Fatal("need two segments")
	}
	// Grow the oldest and the newest segment with zeros, one by an amount
	// that is not a multiple of the record alignment.
	for _, g := range []struct {
		path string
		n    int
	}{{paths[0], 1 << 20}, {paths[len(paths)-1], 13}} {
		fi, _ := os.Stat(g.path)
		writeAt(t, g.path, fi.Size(), make([]byte, g.n))
	}
	lg, logs := observed()
	w, r := mustRead(t, dir, Snapshot{}, testOpts(lg))
	defer w.Close()
	checkEnts(t, r.ents, func() []*raftpb.Entry {
		var es []*raftpb.Entry
		for i := uint64(1); i <= 20; i++ {
			es = append(es, ent(i, 1, strings.Repeat("z", 500)))
		}
		return es
	}())
	if logs.Len() != 0 {
		t.Fatalf("unexpected log lines: %v", logs.All())
	}
}

func TestMissingMiddleSegment(t *testing.T) {
	dir := walDir(t)
	w := mustCreate(t, dir, []byte("m"), testOpts(nil))
	for i := uint64(1); i <= 20; i++ {
		mustSave(t, w, nil, []*raftpb.Entry{ent(i, 1, strings.Repeat("z", 500))})
	}
	mustClose(t, w)
	paths := segmentPaths(t, dir)
	if err := os.Remove(paths[1]); err != nil {
		t.Fatal(err)
	}
	var ce *ErrCorrupt
	if _, err := Open(dir, Snapshot{}, testOpts(nil)); !errors.As(err, &ce) || ce.File != paths[2] {
		t.Fatalf("Open with a missing segment: %v, want ErrCorrupt naming %s", err, paths[2])
	}
}
