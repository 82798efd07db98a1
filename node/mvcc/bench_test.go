package mvcc

import (
	"fmt"
	"math/rand"
	"testing"
)

// The benchmarks below mirror the bench's workloads (hack/bench): 8-byte
// keys, 256-byte values, puts at random over 10 000 keys in batches like the
// apply loop's, and ranges over 1 000 keys.

const (
	benchKeySpace = 10000
	benchValSize  = 256
)

func benchKey(i int) []byte { return []byte(fmt.Sprintf("k%07d", i)) }

// filledEnv is a store holding n keys, each written twice, with everything
// committed to bbolt (as after a while of steady load).
func filledEnv(b *testing.B, n int) *env {
	e := newEnv(b, Options{})
	val := make([]byte, benchValSize)
	for round := 0; round < 2; round++ {
		for i := 0; i < n; i += 100 {
			e.txn(func(w *WriteTxn) {
				for j := i; j < i+100 && j < n; j++ {
					w.Put(benchKey(j), val, 0)
				}
			})
		}
	}
	if err := e.be.ForceCommit(); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkPut overwrites random existing keys, 100 single-put transactions
// per backend batch, as the apply loop does under load.
func BenchmarkPut(b *testing.B) {
	e := filledEnv(b, benchKeySpace)
	rng := rand.New(rand.NewSource(1))
	keys := make([][]byte, benchKeySpace)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	val := make([]byte, benchValSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		tx := e.be.BatchTx()
		for j := 0; j < 100 && i < b.N; j, i = j+1, i+1 {
			w := e.s.Write(tx)
			w.Put(keys[rng.Intn(len(keys))], val, 0)
			w.End()
		}
		tx.Unlock()
	}
}

func BenchmarkRange(b *testing.B) {
	e := filledEnv(b, 1000)
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct {
		name string
		end  []byte
		o    RangeOptions
	}{
		{"one", nil, RangeOptions{}},
		{"limit100", []byte("l"), RangeOptions{Limit: 101}},
		{"limit100-keys-only", []byte("l"), RangeOptions{Limit: 101, KeysOnly: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				key := benchKey(rng.Intn(1000))
				if c.end != nil {
					key = []byte("k")
				}
				rt := e.s.Read()
				res, err := rt.Range(key, c.end, c.o)
				rt.End()
				if err != nil || len(res.KVs) == 0 {
					b.Fatal(err, len(res.KVs))
				}
			}
		})
	}
}

// BenchmarkIndexGet looks up random keys, as every put does before it
// appends a revision. At a million keys the records are far out of the
// CPU caches, so the cost is mostly memory accesses per search step.
func BenchmarkIndexGet(b *testing.B) {
	for _, n := range []int{benchKeySpace, 1000000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			x := newIndex()
			keys := make([][]byte, n)
			for i := range keys {
				keys[i] = []byte(fmt.Sprintf("/registry/pods/default/p%09d", i))
			}
			rand.New(rand.NewSource(1)).Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			for i, k := range keys {
				x.addLocked(k, revision{main: int64(i + 1)})
			}
			rng := rand.New(rand.NewSource(2))
			b.ResetTimer()
			for b.Loop() {
				if x.getLocked(keys[rng.Intn(n)]) == nil {
					b.Fatal("key not found")
				}
			}
		})
	}
}
