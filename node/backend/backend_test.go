package backend

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestGetMergedView(t *testing.T) {
	tests := []struct {
		name      string
		committed []string // k, v pairs committed first
		puts      []string // then buffered
		deletes   []string // then buffered
		key       string
		want      string
		wantOK    bool
	}{
		{name: "buffered put", puts: []string{"a", "1"}, key: "a", want: "1", wantOK: true},
		{name: "committed", committed: []string{"a", "1"}, key: "a", want: "1", wantOK: true},
		{name: "buffered overwrite", committed: []string{"a", "1"}, puts: []string{"a", "2"}, key: "a", want: "2", wantOK: true},
		{name: "buffered delete hides committed", committed: []string{"a", "1"}, deletes: []string{"a"}, key: "a"},
		{name: "put after delete in buffer", committed: []string{"a", "1"}, deletes: []string{"a"}, puts: []string{"a", "3"}, key: "a"},
		{name: "missing", committed: []string{"a", "1"}, key: "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := openTest(t, nil)
			put(b, Key, tt.committed...)
			mustCommit(t, b)
			put(b, Key, tt.puts...)
			del(b, Key, tt.deletes...)
			v, ok := b.Get(Key, []byte(tt.key))
			if ok != tt.wantOK || string(v) != tt.want {
				t.Fatalf("Get(%q) = %q, %v; want %q, %v", tt.key, v, ok, tt.want, tt.wantOK)
			}
			// The same answer after the commit.
			mustCommit(t, b)
			v, ok = b.Get(Key, []byte(tt.key))
			if ok != tt.wantOK || string(v) != tt.want {
				t.Fatalf("after commit Get(%q) = %q, %v; want %q, %v", tt.key, v, ok, tt.want, tt.wantOK)
			}
			// Other buckets are separate.
			if _, ok := b.Get(Lease, []byte(tt.key)); ok {
				t.Fatalf("key %q leaked into the lease bucket", tt.key)
			}
		})
	}
}

func TestPutDeleteOrderWithinTx(t *testing.T) {
	b, _ := openTest(t, nil)
	tx := b.BatchTx()
	tx.Put(Key, []byte("a"), []byte("1"))
	tx.Delete(Key, []byte("a"))
	tx.Put(Key, []byte("b"), []byte("1"))
	tx.Put(Key, []byte("b"), []byte("2"))
	if _, ok := b.Get(Key, []byte("a")); ok {
		t.Fatal("a visible after delete in the same tx")
	}
	tx.Unlock()
	mustCommit(t, b)
	if got := rangeAll(b, Key, "", "\xff", 0); !slices.Equal(got, []string{"b=2"}) {
		t.Fatalf("got %v", got)
	}
}

func TestRangeMerge(t *testing.T) {
	tests := []struct {
		name       string
		start, end string
		limit      int
		want       []string
	}{
		{name: "all", start: "a", end: "z", want: []string{"a=1", "b=B", "c=3", "e=5", "f=6", "g=G", "h=H"}},
		{name: "limit", start: "a", end: "z", limit: 3, want: []string{"a=1", "b=B", "c=3"}},
		{name: "limit skips tombstones", start: "c", end: "z", limit: 2, want: []string{"c=3", "e=5"}},
		{name: "half-open", start: "b", end: "e", want: []string{"b=B", "c=3"}},
		{name: "single key committed", start: "a", want: []string{"a=1"}},
		{name: "single key buffered", start: "h", want: []string{"h=H"}},
		{name: "single key deleted", start: "d"},
		{name: "empty interval", start: "e", end: "e"},
		{name: "reversed interval", start: "f", end: "b"},
		{name: "beyond", start: "x", end: "z"},
	}
	// committed: a b c d; flushing: b=B (overwrite), e, f, delete c? no; buf: d deleted, g, h
	// Layout over three layers:
	//   bbolt:    a=1 b=2 c=3 d=4
	//   flushing: b=B e=5 f=6 g=7
	//   buf:      d deleted, g=G, h=H
	b, _ := openTest(t, nil)
	put(b, Key, "a", "1", "b", "2", "c", "3", "d", "4")
	mustCommit(t, b)
	put(b, Key, "b", "B", "e", "5", "f", "6", "g", "7")
	finish := stageFlushing(t, b)
	del(b, Key, "d")
	put(b, Key, "g", "G", "h", "H")

	check := func(phase string) {
		for _, tt := range tests {
			t.Run(phase+"/"+tt.name, func(t *testing.T) {
				got := rangeAll(b, Key, tt.start, tt.end, tt.limit)
				if !slices.Equal(got, tt.want) {
					t.Fatalf("Range(%q, %q, %d) = %v; want %v", tt.start, tt.end, tt.limit, got, tt.want)
				}
			})
		}
	}
	check("during-commit")
	finish()
	check("after-commit")
	mustCommit(t, b)
	check("all-committed")
}

func TestRangeStopsWhenFnReturnsFalse(t *testing.T) {
	b, _ := openTest(t, nil)
	put(b, Key, "a", "1", "b", "2", "c", "3")
	n := 0
	b.Range(Key, []byte("a"), []byte("z"), 0, func(k, v []byte) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("fn called %d times, want 2", n)
	}
}

// TestRangeRandomAgainstModel interleaves random writes, commits and
// mid-commit states, and compares every read with a map model. The buffer
// chunking (iterChunk) is exercised by ranges longer than a chunk.
func TestRangeRandomAgainstModel(t *testing.T) {
	b, _ := openTest(t, nil)
	rng := rand.New(rand.NewSource(1))
	m := model{}
	key := func() string { return fmt.Sprintf("k%03d", rng.Intn(300)) }
	var finish func()
	for step := 0; step < 3000; step++ {
		switch r := rng.Intn(100); {
		case r < 45:
			k, v := key(), fmt.Sprint(step)
			put(b, Key, k, v)
			m[k] = v
		case r < 65:
			k := key()
			del(b, Key, k)
			delete(m, k)
		case r < 68:
			if finish != nil {
				finish()
				finish = nil
			}
			mustCommit(t, b)
		case r < 70:
			if finish == nil {
				finish = stageFlushing(t, b)
			}
		case r < 72:
			if finish != nil {
				finish()
				finish = nil
			}
		default:
			s, e := key(), key()
			if s > e {
				s, e = e, s
			}
			if rng.Intn(5) == 0 {
				e = ""
			}
			limit := rng.Intn(4) * rng.Intn(100)
			got, want := rangeAll(b, Key, s, e, limit), m.rangeOf(s, e, limit)
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: Range(%q, %q, %d)\n got %v\nwant %v", step, s, e, limit, got, want)
			}
			k := key()
			v, ok := b.Get(Key, []byte(k))
			if mv, mok := m[k]; ok != mok || string(v) != mv {
				t.Fatalf("step %d: Get(%q) = %q, %v; want %q, %v", step, k, v, ok, mv, mok)
			}
			// BatchTx.Get (whose cursor outlives commits) and GetMany agree.
			tx := b.BatchTx()
			var tv []byte
			tok := tx.Get(Key, []byte(k), func(v []byte) { tv = append([]byte(nil), v...) })
			tx.Unlock()
			if mv, mok := m[k]; tok != mok || string(tv) != mv {
				t.Fatalf("step %d: BatchTx.Get(%q) = %q, %v; want %q, %v", step, k, tv, tok, mv, mok)
			}
			keys := make([][]byte, rng.Intn(6))
			for i := range keys {
				keys[i] = []byte(key())
			}
			many := make([]string, len(keys))
			b.GetMany(Key, keys, func(i int, v []byte) { many[i] = "=" + string(v) })
			for i, k := range keys {
				want := ""
				if mv, ok := m[string(k)]; ok {
					want = "=" + mv
				}
				if many[i] != want {
					t.Fatalf("step %d: GetMany(%q)[%d] = %q, want %q", step, keys, i, many[i], want)
				}
			}
		}
	}
	if finish != nil {
		finish()
	}
}

func TestCommitByCount(t *testing.T) {
	var commits atomic.Int32
	b, _ := openTest(t, func(o *Options) {
		o.BatchLimit = 3
		o.OnCommit = func(time.Duration) { commits.Add(1) }
	})
	for i, want := range []int32{0, 0, 1, 1, 1, 2} {
		put(b, Key, fmt.Sprint(i), "v")
		// Unlock commits synchronously once the limit is reached.
		if got := commits.Load(); got != want {
			t.Fatalf("after write %d: %d commits, want %d", i, got, want)
		}
	}
}

func TestCommitByInterval(t *testing.T) {
	committed := make(chan time.Duration, 10)
	b, o := openTest(t, func(o *Options) {
		o.BatchInterval = time.Millisecond
		o.OnCommit = func(d time.Duration) { committed <- d }
	})
	put(b, Key, "a", "1")
	select {
	case <-committed:
	case <-time.After(10 * time.Second):
		t.Fatal("no commit within 10s with a 1ms batch interval")
	}
	// The commit is on disk: a plain bbolt reader sees it after Close.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := boltGet(t, o.Path, Key, "a"); got != "1" {
		t.Fatalf("committed value = %q", got)
	}
}

func boltGet(t *testing.T, path string, bucket []byte, key string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	db.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucket).Get([]byte(key)))
		return nil
	})
	return v
}

func TestReopenKeepsData(t *testing.T) {
	b, o := openTest(t, nil)
	put(b, Key, "committed", "1")
	mustCommit(t, b)
	put(b, Lease, "buffered", "2") // committed by Close
	del(b, Key, "nothing")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != ErrClosed {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	b2, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	for _, c := range []struct {
		bucket []byte
		k, v   string
	}{{Key, "committed", "1"}, {Lease, "buffered", "2"}} {
		if v, ok := b2.Get(c.bucket, []byte(c.k)); !ok || string(v) != c.v {
			t.Errorf("%s/%s = %q, %v after reopen", c.bucket, c.k, v, ok)
		}
	}
}

func TestOpenCreatesAllBuckets(t *testing.T) {
	b, o := openTest(t, nil)
	b.Close()
	db, err := bolt.Open(o.Path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error { names = append(names, string(name)); return nil })
	})
	want := []string{"alarm", "auth", "authRoles", "authUsers", "cluster", "key", "lease", "members", "members_removed", "meta"}
	if !slices.Equal(names, want) {
		t.Fatalf("buckets %v, want %v", names, want)
	}
}

// TestHolderIsNeverSplit commits every millisecond while a writer writes
// groups of keys, yielding between writes; a checker reading bbolt directly
// must only ever see whole groups.
func TestHolderIsNeverSplit(t *testing.T) {
	const groups, groupSize = 50, 20
	var commits atomic.Int32
	b, _ := openTest(t, func(o *Options) {
		o.BatchInterval = time.Millisecond
		o.OnCommit = func(time.Duration) { commits.Add(1) }
	})
	done := make(chan struct{})
	checked := make(chan error, 1)
	go func() {
		for {
			select {
			case <-done:
				checked <- nil
				return
			default:
			}
			b.mu.RLock()
			db := b.db
			b.mu.RUnlock()
			err := db.View(func(tx *bolt.Tx) error {
				if n := tx.Bucket(Key).Stats().KeyN; n%groupSize != 0 {
					return fmt.Errorf("a commit holds %d keys, not a multiple of %d", n, groupSize)
				}
				return nil
			})
			if err != nil {
				checked <- err
				return
			}
		}
	}()
	for g := 0; g < groups; g++ {
		tx := b.BatchTx()
		for i := 0; i < groupSize; i++ {
			tx.Put(Key, []byte(fmt.Sprintf("%03d-%03d", g, i)), []byte("v"))
			runtime.Gosched() // let the committer try to cut the group
		}
		tx.Unlock()
	}
	mustCommit(t, b)
	close(done)
	if err := <-checked; err != nil {
		t.Fatal(err)
	}
	if commits.Load() < 2 {
		t.Logf("only %d commits happened; the test was weak this run", commits.Load())
	}
}

func TestForceCommitWaitsForHolder(t *testing.T) {
	b, _ := openTest(t, nil)
	tx := b.BatchTx()
	tx.Put(Key, []byte("a"), []byte("1"))
	returned := make(chan struct{})
	go func() { b.ForceCommit(); close(returned) }()
	// Wait until the commit is under way (it holds cmu and now waits for us).
	for b.cmu.TryLock() {
		b.cmu.Unlock()
		runtime.Gosched()
	}
	tx.Put(Key, []byte("b"), []byte("2"))
	b.mu.RLock()
	taken := b.flushing != nil || b.buf.n != 2
	b.mu.RUnlock()
	if taken {
		t.Fatal("a commit took the buffer while BatchTx was held")
	}
	tx.Unlock()
	<-returned
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.buf.empty() || b.rbk[0].Get([]byte("a")) == nil || b.rbk[0].Get([]byte("b")) == nil {
		t.Fatal("ForceCommit did not commit the holder's writes")
	}
}

func TestFailedCommitKeepsWritesBuffered(t *testing.T) {
	var commits atomic.Int32
	b, _ := openTest(t, func(o *Options) { o.OnCommit = func(time.Duration) { commits.Add(1) } })
	tooLong := strings.Repeat("k", bolt.MaxKeySize+1)
	put(b, Key, "ok", "1", tooLong, "x")
	if err := b.ForceCommit(); err == nil {
		t.Fatal("commit of an oversized key succeeded")
	}
	if commits.Load() != 0 {
		t.Fatal("OnCommit called for a failed commit")
	}
	if v, ok := b.Get(Key, []byte("ok")); !ok || string(v) != "1" {
		t.Fatalf("write lost by failed commit: %q, %v", v, ok)
	}
	// A newer write to a key of the failed batch wins over it.
	put(b, Key, "ok", "2")
	del(b, Key, tooLong)
	mustCommit(t, b)
	if v, _ := b.Get(Key, []byte("ok")); string(v) != "2" {
		t.Fatalf("ok = %q after retry, want 2", v)
	}
	if commits.Load() != 1 {
		t.Fatalf("%d commits, want 1", commits.Load())
	}
}

func TestSnapshotIsAValidBoltFile(t *testing.T) {
	b, o := openTest(t, nil)
	put(b, Key, "a", "1")
	mustCommit(t, b)
	put(b, Meta, "m", "2") // buffered: Snapshot commits it
	s, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot are not in it.
	put(b, Key, "later", "3")
	mustCommit(t, b)

	path := o.Path + ".snap"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.WriteTo(f)
	if err != nil {
		t.Fatal(err)
	}
	if n != s.Size() {
		t.Fatalf("wrote %d bytes, Size() = %d", n, s.Size())
	}
	f.Close()
	s.Close()

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s missing", name)
			}
		}
		if v := tx.Bucket(Key).Get([]byte("a")); string(v) != "1" {
			return fmt.Errorf("key/a = %q", v)
		}
		if v := tx.Bucket(Meta).Get([]byte("m")); string(v) != "2" {
			return fmt.Errorf("meta/m = %q", v)
		}
		if v := tx.Bucket(Key).Get([]byte("later")); v != nil {
			return fmt.Errorf("write after the snapshot is in it")
		}
		for cerr := range tx.Check() {
			return cerr
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDefragKeepsDataAndShrinks(t *testing.T) {
	b, o := openTest(t, nil)
	val := bytes.Repeat([]byte("v"), 1024)
	for i := 0; i < 5000; i++ {
		tx := b.BatchTx()
		tx.Put(Key, []byte(fmt.Sprintf("%05d", i)), val)
		tx.Unlock()
	}
	mustCommit(t, b)
	for i := 10; i < 5000; i++ {
		del(b, Key, fmt.Sprintf("%05d", i))
	}
	mustCommit(t, b)
	// Pages freed by a commit are pending until the next write tx: one more
	// commit turns them into free pages, which SizeInUse leaves out.
	put(b, Alarm, "x", "y")
	mustCommit(t, b)
	put(b, Lease, "buffered", "x") // Defrag commits pending writes first
	before, beforeInUse := b.Size(), b.SizeInUse()
	if beforeInUse >= before {
		t.Fatalf("in use %d >= size %d after deleting most keys", beforeInUse, before)
	}
	if err := b.Defrag(); err != nil {
		t.Fatal(err)
	}
	if after := b.Size(); after >= before/4 {
		t.Fatalf("size %d -> %d: defrag did not shrink the file", before, after)
	}
	st, err := os.Stat(o.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() >= before/4 {
		t.Fatalf("file is %d bytes after defrag, was %d", st.Size(), before)
	}
	if got := len(rangeAll(b, Key, "", "\xff", 0)); got != 10 {
		t.Fatalf("%d keys after defrag, want 10", got)
	}
	if v, _ := b.Get(Lease, []byte("buffered")); string(v) != "x" {
		t.Fatal("lease/buffered lost")
	}
	// Still writable, and the data survives a reopen.
	put(b, Key, "new", "1")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if boltGet(t, o.Path, Key, "new") != "1" || boltGet(t, o.Path, Key, "00009") != string(val) {
		t.Fatal("data missing after defrag and reopen")
	}
	if matches, _ := os.ReadDir(dirOf(o.Path)); len(matches) != 1 {
		t.Fatalf("left-over files next to the db: %v", matches)
	}
}

func dirOf(p string) string { return p[:strings.LastIndexByte(p, os.PathSeparator)] }

// TestGetManyChunks looks up more keys than one hold of the read lock
// covers, in no particular order, some missing, some only buffered.
func TestGetManyChunks(t *testing.T) {
	b, _ := openTest(t, nil)
	var keys [][]byte
	for i := 0; i < 3*rangeChunk; i++ {
		k := fmt.Sprintf("k%04d", (i*7919)%(3*rangeChunk))
		keys = append(keys, []byte(k))
		if i%3 != 0 {
			put(b, Key, k, "v"+k)
		}
		if i == rangeChunk {
			mustCommit(t, b)
		}
	}
	got := 0
	b.GetMany(Key, keys, func(i int, v []byte) {
		if string(v) != "v"+string(keys[i]) {
			t.Errorf("keys[%d] = %q: got %q", i, keys[i], v)
		}
		got++
	})
	if want := 2 * rangeChunk; got != want {
		t.Errorf("found %d keys, want %d", got, want)
	}
}
