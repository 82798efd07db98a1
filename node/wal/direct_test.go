package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// TestDirectWriter checks the block arithmetic of directWriter against a
// plain byte model of the file: after every write the file holds exactly
// what was written, zeros after it, and the writer keeps only the last
// partial block.
func TestDirectWriter(t *testing.T) {
	tests := []struct {
		name   string
		start  int64 // end of the valid data when the writer opens
		writes []int // sizes of successive writes
	}{
		{"small writes in the first block", 0, []int{10, 20, 8}},
		{"from inside a block", 100, []int{50, 4000, 1}},
		{"exact block boundaries", 4096, []int{4096, 4096, 1, 4095}},
		{"writes spanning blocks", 17, []int{30, 5000, 3, 9000}},
		{"large write spans many blocks", 4096 + 17, []int{40000, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seg")
			f, err := allocSegment(path, 64<<10, false)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			model := make([]byte, 64<<10)
			for i := range tt.start {
				model[i] = byte(i%251 + 1)
			}
			if _, err := f.WriteAt(model[:tt.start], 0); err != nil {
				t.Fatal(err)
			}
			d, err := openDirect(path, tt.start)
			if err != nil {
				t.Skipf("the temporary directory refuses O_DIRECT: %v", err)
			}
			defer d.close()
			end := tt.start
			for i, size := range tt.writes {
				b := bytes.Repeat([]byte{byte(i + 1)}, size)
				if err := d.write(b); err != nil {
					t.Fatal(err)
				}
				if int(end)+size > len(model) {
					model = append(model, make([]byte, int(end)+size-len(model))...)
				}
				copy(model[end:], b)
				end += int64(size)
				if d.base%dioAlign != 0 || d.n >= dioAlign || d.base+int64(d.n) != end {
					t.Fatalf("write %d: base %d n %d, end of log %d", i, d.base, d.n, end)
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[:end], model[:end]) {
					t.Fatalf("write %d: file differs from what was written", i)
				}
				if !allZero(got[end:]) {
					t.Fatalf("write %d: non-zero bytes after the end of the log", i)
				}
			}
		})
	}
}

// TestWriteModes runs the same history through direct writes and through
// the page cache: unsynced Saves mixed with synced ones, segment cuts, a
// reopen in the middle, and an unsynced HardState right before Close.
func TestWriteModes(t *testing.T) {
	for _, mode := range []string{"direct", "pagecache"} {
		t.Run(mode, func(t *testing.T) {
			o := Options{SegmentSize: 8192, NoDirectIO: mode == "pagecache"}
			dir := walDir(t)
			w := mustCreate(t, dir, []byte("m"), o)
			if mode == "direct" && w.direct == nil {
				t.Skip("the temporary directory refuses O_DIRECT")
			}
			if mode == "pagecache" && w.direct != nil {
				t.Fatal("NoDirectIO is set, yet the WAL writes directly")
			}
			var want []*raftpb.Entry
			save := func(i uint64, sync bool) {
				t.Helper()
				e := ent(i, 1, strings.Repeat("v", int(i*37%700)))
				want = append(want, e)
				if err := w.Save(hs(1, 1, i-1), []*raftpb.Entry{e}, sync); err != nil {
					t.Fatal(err)
				}
			}
			for i := uint64(1); i <= 40; i++ {
				save(i, i%3 != 0)
			}
			mustClose(t, w)
			w, r := mustRead(t, dir, Snapshot{}, o)
			checkEnts(t, r.ents, want)
			checkState(t, r.st, hs(1, 1, 39))
			for i := uint64(41); i <= 80; i++ {
				save(i, true)
			}
			if err := w.Save(hs(1, 1, 80), nil, false); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
			if n := len(segmentPaths(t, dir)); n < 3 {
				t.Fatalf("%d segments, want a few cuts", n)
			}
			w, r = mustRead(t, dir, Snapshot{}, o)
			checkEnts(t, r.ents, want)
			checkState(t, r.st, hs(1, 1, 80))
			mustClose(t, w)
		})
	}
}

// TestDirectWriteRefused: a filesystem that opens and reads with O_DIRECT
// but refuses a write (EINVAL) makes the WAL fall back to the page cache
// for that write and the ones after it, losing nothing.
func TestDirectWriteRefused(t *testing.T) {
	lg, logs := observed()
	o := Options{SegmentSize: 8192, Logger: lg}
	dir := walDir(t)
	w := mustCreate(t, dir, []byte("m"), o)
	if w.direct == nil {
		t.Skip("the temporary directory refuses O_DIRECT")
	}
	mustSave(t, w, hs(1, 1, 0), ents(1, 3, 1))
	w.direct.base++ // an unaligned offset: the kernel answers EINVAL
	mustSave(t, w, hs(1, 1, 3), ents(4, 6, 1))
	if w.direct != nil {
		t.Fatal("still writing directly after EINVAL")
	}
	if logs.FilterMessageSnippet("refused a direct write").Len() != 1 {
		t.Fatalf("no warning about the fallback: %v", logs.All())
	}
	for i := uint64(7); i <= 60; i++ { // through segment cuts
		mustSave(t, w, hs(1, 1, i-1), ents(i, i, 1))
	}
	if w.direct != nil {
		t.Fatal("a new segment went back to direct writes")
	}
	mustClose(t, w)
	w, r := mustRead(t, dir, Snapshot{}, o)
	defer w.Close()
	checkEnts(t, r.ents, ents(1, 60, 1))
	checkState(t, r.st, hs(1, 1, 59))
}
