package wal

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkSave measures a synced Save of n entries with 256-byte payloads:
// the latency raft's loop pays per Ready. fsync-ns/op is the fdatasync part.
//
// The direct variants write with O_DIRECT (the default), the pagecache
// ones through the page cache (NoDirectIO); both end with an fdatasync.
func BenchmarkSave(b *testing.B) {
	for _, mode := range []string{"direct", "pagecache"} {
		for _, n := range []int{1, 100} {
			b.Run(mode+"/"+strconv.Itoa(n)+"x256B", func(b *testing.B) {
				benchmarkSave(b, n, mode == "pagecache")
			})
		}
	}
}

func benchmarkSave(b *testing.B, n int, noDirect bool) {
	var fsyncs time.Duration
	w, err := Create(filepath.Join(b.TempDir(), "wal"), []byte("m"),
		Options{NoDirectIO: noDirect, OnFsync: func(d time.Duration) { fsyncs += d }})
	if err != nil {
		b.Fatal(err)
	}
	if !noDirect && w.direct == nil {
		b.Skip("the filesystem of the temporary directory refuses O_DIRECT")
	}
	defer w.Close()
	// Let the background segment allocation finish so it does not
	// compete for the disk during the measurement.
	p := <-w.next
	w.next <- p

	// The entries are built once and renumbered in place, so that
	// allocs/op is Save's own.
	data := make([]byte, 256)
	es := make([]*raftpb.Entry, n)
	for j := range es {
		es[j] = ent(1, 1, "")
		es[j].Data = data
	}
	st := hs(1, 1, 0)
	index := uint64(0)
	b.SetBytes(int64(n * 256))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, e := range es {
			index++
			*e.Index = index
		}
		*st.Commit = index
		if err := w.Save(st, es, true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(fsyncs.Nanoseconds())/float64(b.N), "fsync-ns/op")
}

// BenchmarkRawFdatasync is the floor for BenchmarkSave on the same disk: a
// bare pwrite + fdatasync of a Save-sized buffer, into a preallocated file
// (what the WAL does) and appended to a growing file (what preallocation
// avoids).
func BenchmarkRawFdatasync(b *testing.B) {
	for _, size := range []int{304, 30400} { // ≈ 1 and 100 entry records
		for _, mode := range []string{"prealloc", "append"} {
			b.Run(mode+"/"+strconv.Itoa(size)+"B", func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "raw")
				var f *os.File
				var err error
				if mode == "prealloc" {
					f, err = allocSegment(path, DefaultSegmentSize, false)
				} else {
					f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
				}
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				buf := make([]byte, size)
				for i := range buf {
					buf[i] = byte(i)
				}
				b.SetBytes(int64(size))
				b.ResetTimer()
				off := int64(0)
				for i := 0; i < b.N; i++ {
					if mode == "prealloc" && off+int64(size) > DefaultSegmentSize {
						off = 0
					}
					if _, err := f.WriteAt(buf, off); err != nil {
						b.Fatal(err)
					}
					off += int64(size)
					if err := fdatasync(f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkReadAll measures startup: reading back 100k entries of 256 B
// (about 30 MiB, one segment).
func BenchmarkReadAll(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "wal")
	o := Options{NoFsync: true}
	w, err := Create(dir, []byte("m"), o)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 256)
	for i := uint64(0); i < 1000; i++ {
		es := make([]*raftpb.Entry, 100)
		for j := range es {
			es[j] = ent(i*100+uint64(j)+1, 1, "")
			es[j].Data = data
		}
		if err := w.Save(hs(1, 1, i*100), es, false); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := Open(dir, Snapshot{}, o)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, es, err := w.ReadAll(); err != nil || len(es) != 100000 {
			b.Fatal(err, len(es))
		}
		w.Close()
	}
}
