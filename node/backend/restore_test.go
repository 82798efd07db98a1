package backend

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// writeSnapshotFile streams b's committed content to path, as a leader
// streams its db with a raft snapshot.
func writeSnapshotFile(t *testing.T, b *Backend, path string) int64 {
	t.Helper()
	sn, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := sn.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// openSource opens a second backend next to dst's file, to build the
// content that replaces dst's.
func openSource(t *testing.T, dst Options) *Backend {
	t.Helper()
	o := dst
	o.Path = filepath.Join(filepath.Dir(dst.Path), "source", "db")
	src, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestReplaceSwapsContentAndDropsBufferedWrites(t *testing.T) {
	b, o := openTest(t, nil)
	put(b, Key, "old", "1")
	mustCommit(t, b)
	put(b, Key, "pending", "x") // buffered: must not survive the swap

	src := openSource(t, o)
	put(src, Key, "a", "1", "b", "2")
	cs := &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}
	tx := src.BatchTx()
	SetConsistentIndex(tx, 42, 7)
	SetConfState(tx, cs)
	tx.Unlock()
	path := filepath.Join(filepath.Dir(o.Path), "0000000000000007-000000000000002a.snap.db")
	size := writeSnapshotFile(t, src, path)

	info, err := InspectFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.ConsistentIndex != 42 || info.Term != 7 || info.Size != size || !proto.Equal(info.ConfState, cs) {
		t.Fatalf("InspectFile = %+v, want index 42 term 7 size %d conf %v", info, size, cs)
	}

	if err := b.Replace(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the replacing file is still there: %v", err)
	}
	want := []string{"a=1", "b=2"}
	if got := rangeAll(b, Key, "\x00", "\xff", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after Replace: %v, want %v", got, want)
	}
	if idx, term := ReadConsistentIndex(b); idx != 42 || term != 7 {
		t.Fatalf("consistent index %d term %d, want 42 7", idx, term)
	}
	if b.Size() != size {
		t.Fatalf("Size() = %d, want %d", b.Size(), size)
	}
	// The backend goes on working on the new file, and the dropped write
	// does not come back with the next commit or a reopen.
	put(b, Key, "c", "3")
	mustCommit(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	want = []string{"a=1", "b=2", "c=3"}
	if got := rangeAll(b2, Key, "\x00", "\xff", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopening: %v, want %v", got, want)
	}
}

func TestReplaceCreatesMissingBuckets(t *testing.T) {
	b, o := openTest(t, nil)
	// A db with only the two buckets InspectFile requires.
	path := filepath.Join(filepath.Dir(o.Path), "minimal.snap.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{Key, Meta} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InspectFile(path); err != nil {
		t.Fatal(err)
	}
	if err := b.Replace(path); err != nil {
		t.Fatal(err)
	}
	put(b, Members, "1", "m") // panics or fails to commit without the bucket
	mustCommit(t, b)
	if v, ok := b.Get(Members, []byte("1")); !ok || string(v) != "m" {
		t.Fatalf("members/1 = %q, %v", v, ok)
	}
}

func TestInspectFileRejectsIncompleteOrForeignFiles(t *testing.T) {
	b, o := openTest(t, nil)
	for i := 0; i < 2000; i++ {
		put(b, Key, fmt.Sprintf("key-%05d", i), fmt.Sprintf("%0100d", i))
	}
	dir := filepath.Dir(o.Path)
	whole := filepath.Join(dir, "whole")
	size := writeSnapshotFile(t, b, whole)
	data, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare")
	db, err := bolt.Open(bare, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		content []byte // nil: use the file as it is
		path    string
	}{
		{name: "truncated", content: data[:size/2]},
		{name: "two pages", content: data[:2*os.Getpagesize()]},
		{name: "garbage", content: []byte("this is not a database, not even close to one; pad it out a bit")},
		{name: "no buckets", path: bare},
		{name: "missing", path: filepath.Join(dir, "missing")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = filepath.Join(dir, "case")
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if info, err := InspectFile(path); err == nil {
				t.Fatalf("InspectFile accepted it: %+v", info)
			}
		})
	}
	if _, err := InspectFile(whole); err != nil {
		t.Fatalf("the whole file: %v", err)
	}
}

// TestReplaceWhileReading swaps the content under concurrent readers (run
// with -race). Every generation holds the same keys, all with the
// generation's number as value. A Get sees one generation, never going back
// once it saw a newer one; a Range of one chunk sees a single generation.
func TestReplaceWhileReading(t *testing.T) {
	const keys, generations, readers = 100, 4, 2
	b, o := openTest(t, nil)
	fill := func(be *Backend, gen int) {
		tx := be.BatchTx()
		for k := 0; k < keys; k++ {
			tx.Put(Key, []byte(fmt.Sprintf("k%03d", k)), []byte(strconv.Itoa(gen)))
		}
		tx.Unlock()
	}
	fill(b, 0)
	mustCommit(t, b)
	src := openSource(t, o)
	var files []string
	for gen := 1; gen <= generations; gen++ {
		fill(src, gen)
		path := filepath.Join(filepath.Dir(o.Path), fmt.Sprintf("gen%d.snap.db", gen))
		writeSnapshotFile(t, src, path)
		files = append(files, path)
	}

	var cur atomic.Int64 // newest generation installed
	stop := make(chan struct{})
	errc := make(chan error, readers)
	var wg sync.WaitGroup
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := 0
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				runtime.Gosched()
				floor := int(cur.Load())
				v, ok := b.Get(Key, []byte(fmt.Sprintf("k%03d", i%keys)))
				gen, _ := strconv.Atoi(string(v))
				if !ok || gen < seen || gen < floor {
					errc <- fmt.Errorf("get: %q, %v after seeing generation %d (installed %d)", v, ok, seen, floor)
					return
				}
				seen = gen
				// 100 keys are one chunk: one generation, read at once.
				n, first, same := 0, -1, true
				b.Range(Key, []byte("k"), []byte("l"), 0, func(_, v []byte) bool {
					g, _ := strconv.Atoi(string(v))
					if first < 0 {
						first = g
					}
					same = same && g == first
					n++
					return true
				})
				if n != keys || !same || first < seen {
					errc <- fmt.Errorf("range: %d keys (want %d), one generation: %v, generation %d after %d", n, keys, same, first, seen)
					return
				}
				seen = first
			}
		}()
	}
	for gen, path := range files {
		time.Sleep(5 * time.Millisecond) // let readers run on each generation; not synchronisation
		put(b, Key, "pending", "x")      // a buffered write of the old state, dropped
		if err := b.Replace(path); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.Get(Key, []byte("pending")); ok {
			t.Fatal("a buffered write survived Replace")
		}
		cur.Store(int64(gen + 1))
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if v, _ := b.Get(Key, []byte("k000")); string(v) != strconv.Itoa(generations) {
		t.Fatalf("k000 = %q after the last swap", v)
	}
}
