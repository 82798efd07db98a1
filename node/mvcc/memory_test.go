package mvcc

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/google/btree"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchKeys returns n distinct 16-byte keys in random order.
func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key-%012d", i))
	}
	rand.New(rand.NewSource(1)).Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys
}

// BenchmarkIndexMemory reports the index's heap cost for 100k keys of 16
// bytes: B/key with one revision each (everything: B-tree nodes, record, key
// bytes) and B/rev for each further revision (10 per key, before compaction).
func BenchmarkIndexMemory(b *testing.B) {
	const n = 100000
	const extra = 9
	keys := benchKeys(n)
	for i := 0; i < b.N; i++ {
		base := heapInUse()
		x := newIndex()
		rev := int64(2)
		for _, k := range keys {
			x.addLocked(k, revision{main: rev})
			rev++
		}
		one := heapInUse()
		for j := 0; j < extra; j++ {
			for _, k := range keys {
				x.addLocked(k, revision{main: rev, sub: int64(j % 3)})
				rev++
			}
		}
		many := heapInUse()
		b.ReportMetric(float64(one-base)/n, "B/key")
		b.ReportMetric(float64(many-one)/(n*extra), "B/rev")
		var scratch []revision
		x.tree.Ascend(func(ki *keyIndex) bool { ki.compact(rev, &scratch); return true })
		after := heapInUse()
		b.ReportMetric(float64(after-base)/n, "B/key-compacted")
		runtime.KeepAlive(x)
	}
}

// BenchmarkIndexCompact1M reports how long compacting an index of 1M keys
// (3 revisions each) takes in total and how long one chunk holds the lock.
func BenchmarkIndexCompact1M(b *testing.B) {
	const n = 1000000
	keys := benchKeys(n)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		x := newIndex()
		rev := int64(2)
		for j := 0; j < 3; j++ {
			for _, k := range keys {
				x.addLocked(k, revision{main: rev})
				rev++
			}
		}
		b.StartTimer()
		start := time.Now()
		x.compact(rev - 1)
		took := time.Since(start)
		b.ReportMetric(float64(took.Milliseconds()), "ms/compact")
		b.ReportMetric(float64(took.Microseconds())/float64(n/compactChunkKeys), "µs/chunk")
	}
}

// etcd-shaped records: the field layout of etcd's keyIndex, generation and
// revision (server/storage/mvcc/key_index.go), filled the way its put does,
// to measure etcd's index cost on the same machine with the same keys.
type etcdRev struct{ main, sub int64 }

type etcdGen struct {
	ver     int64
	created etcdRev
	revs    []etcdRev
}

type etcdKeyIndex struct {
	key         []byte
	modified    etcdRev
	generations []etcdGen
}

func (ki *etcdKeyIndex) put(r etcdRev) {
	if len(ki.generations) == 0 {
		ki.generations = append(ki.generations, etcdGen{})
	}
	g := &ki.generations[len(ki.generations)-1]
	if len(g.revs) == 0 {
		g.created = r
	}
	g.revs = append(g.revs, r)
	g.ver++
	ki.modified = r
}

// BenchmarkEtcdShapedIndexMemory is BenchmarkIndexMemory for etcd's layout.
func BenchmarkEtcdShapedIndexMemory(b *testing.B) {
	const n = 100000
	const extra = 9
	keys := benchKeys(n)
	less := func(a, b *etcdKeyIndex) bool { return string(a.key) < string(b.key) }
	for i := 0; i < b.N; i++ {
		base := heapInUse()
		tr := btree.NewG(32, less)
		rev := int64(2)
		for _, k := range keys {
			ki := &etcdKeyIndex{key: append([]byte(nil), k...)}
			ki.put(etcdRev{main: rev})
			tr.ReplaceOrInsert(ki)
			rev++
		}
		one := heapInUse()
		for j := 0; j < extra; j++ {
			for _, k := range keys {
				ki, _ := tr.Get(&etcdKeyIndex{key: k})
				ki.put(etcdRev{main: rev, sub: int64(j % 3)})
				rev++
			}
		}
		many := heapInUse()
		b.ReportMetric(float64(one-base)/n, "B/key")
		b.ReportMetric(float64(many-one)/(n*extra), "B/rev")
		runtime.KeepAlive(tr)
	}
}
