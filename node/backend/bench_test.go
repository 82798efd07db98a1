package backend

import (
	"testing"
)

func benchBackend(b *testing.B, committed bool) *Backend {
	dir := b.TempDir()
	be, err := Open(Options{Path: dir + "/db", BatchLimit: 1 << 30, BatchInterval: 1 << 40, NoFsync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	tx := be.BatchTx()
	for i := 0; i < 10000; i++ {
		tx.Put(Key, revKey(i), make([]byte, 100))
	}
	tx.Unlock()
	if committed {
		if err := be.ForceCommit(); err != nil {
			b.Fatal(err)
		}
	}
	return be
}

func BenchmarkGet(b *testing.B) {
	for _, tc := range []struct {
		name      string
		committed bool
	}{{"buffered", false}, {"committed", true}} {
		b.Run(tc.name, func(b *testing.B) {
			be := benchBackend(b, tc.committed)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, ok := be.Get(Key, revKey(i%10000)); !ok {
						b.Fatal("missing")
					}
					i += 7
				}
			})
		})
	}
}

func BenchmarkRange1000(b *testing.B) {
	be := benchBackend(b, true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		be.Range(Key, revKey(1000), revKey(2000), 0, func(k, v []byte) bool { n++; return true })
		if n != 1000 {
			b.Fatal(n)
		}
	}
}
