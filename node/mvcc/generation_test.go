package mvcc

import (
	"fmt"
	"math/rand"
	"testing"
)

// TestCreateAndVersionAgainstModel runs random puts, deletes, multi-key
// transactions, compactions and reopens, with a few keys put often enough
// to exceed maxGenWalk, and checks after every step that every key read at
// every live revision, with values and keys only, carries the creation
// revision and version of a simple model. Puts and keys-only reads take
// these from the index when it can tell them (generationAt), so this checks
// that it tells them right, before and after compactions.
func TestCreateAndVersionAgainstModel(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testCreateAndVersion(t, seed) })
	}
}

type modelKV struct{ create, version int64 }

func testCreateAndVersion(t *testing.T, seed int64) {
	e := newEnv(t, Options{CompactionBatchLimit: 7})
	rng := rand.New(rand.NewSource(seed))
	keys := []string{"a", "b", "c", "d", "e", "f"}
	// history[rev][key] is the model's state after revision rev.
	history := map[int64]map[string]modelKV{1: {}}
	cur := map[string]modelKV{}
	compacted := int64(0)
	snapshot := func(rev int64) {
		m := make(map[string]modelKV, len(cur))
		for k, v := range cur {
			m[k] = v
		}
		history[rev] = m
	}
	for step := 0; step < 600; step++ {
		rev := e.s.Rev()
		switch r := rng.Intn(100); {
		case r < 60: // puts: "a" is hot, to pass maxGenWalk
			k := keys[rng.Intn(len(keys))]
			if rng.Intn(3) == 0 {
				k = "a"
			}
			e.put(k, fmt.Sprint(step))
			kv := cur[k]
			if kv.version == 0 {
				kv.create = rev + 1
			}
			kv.version++
			cur[k] = kv
			snapshot(rev + 1)
		case r < 70: // a transaction putting several keys
			n := 1 + rng.Intn(3)
			picked := rng.Perm(len(keys))[:n]
			e.txn(func(w *WriteTxn) {
				for _, i := range picked {
					w.Put([]byte(keys[i]), []byte("t"), 0)
				}
			})
			for _, i := range picked {
				kv := cur[keys[i]]
				if kv.version == 0 {
					kv.create = rev + 1
				}
				kv.version++
				cur[keys[i]] = kv
			}
			snapshot(rev + 1)
		case r < 82:
			k := keys[rng.Intn(len(keys))]
			if len(e.del(k, nil)) > 0 {
				delete(cur, k)
				snapshot(rev + 1)
			}
		case r < 92:
			if rev > compacted {
				at := compacted + 1 + rng.Int63n(rev-compacted)
				if err := e.compact(at); err != nil {
					t.Fatalf("step %d: compact %d: %v", step, at, err)
				}
				for r := range history {
					if r < at {
						delete(history, r)
					}
				}
				compacted = at
			}
		default:
			e.reopen()
		}
		for at, want := range history {
			for _, keysOnly := range []bool{false, true} {
				res, err := e.rng("a", []byte("z"), RangeOptions{Rev: at, KeysOnly: keysOnly})
				if err != nil {
					t.Fatalf("step %d: range at %d: %v", step, at, err)
				}
				if len(res.KVs) != len(want) {
					t.Fatalf("step %d: range at %d (keys only %v): %d keys, want %d", step, at, keysOnly, len(res.KVs), len(want))
				}
				for _, kv := range res.KVs {
					m := want[string(kv.Key)]
					if kv.CreateRevision != m.create || kv.Version != m.version {
						t.Fatalf("step %d: %q at %d (keys only %v): create %d version %d, want %d %d",
							step, kv.Key, at, keysOnly, kv.CreateRevision, kv.Version, m.create, m.version)
					}
				}
			}
		}
	}
}

// TestGenerationAt covers generationAt's limits directly.
func TestGenerationAt(t *testing.T) {
	rv := func(main int64) revision { return revision{main: main} }
	tomb := func(main int64) revision { return revision{main: main, tomb: true} }
	long := revision{main: 1 << 50, sub: 3}
	var walk []revision // one revision more than generationAt counts
	for i := int64(1); i <= maxGenWalk+1; i++ {
		walk = append(walk, rv(10+i))
	}
	tests := []struct {
		name       string
		revs       []revision
		at         revision
		compactRev int64
		create     int64
		version    int64
		ok         bool
	}{
		{"one", []revision{rv(5)}, rv(5), 0, 5, 1, true},
		{"three", []revision{rv(5), rv(7), rv(9)}, rv(9), 0, 5, 3, true},
		{"at an older one", []revision{rv(5), rv(7), rv(9)}, rv(7), 0, 5, 2, true},
		{"after a tombstone", []revision{rv(2), tomb(3), rv(5), rv(7)}, rv(7), 0, 5, 2, true},
		{"before a tombstone", []revision{rv(2), rv(3), tomb(4), rv(5)}, rv(3), 0, 2, 2, true},
		{"compacted before it", []revision{rv(5), rv(7)}, rv(7), 4, 5, 2, true},
		{"first at the compaction", []revision{rv(5), rv(7)}, rv(7), 5, 0, 0, false},
		{"first below the compaction", []revision{rv(5), rv(7)}, rv(7), 6, 0, 0, false},
		{"tombstone below the compaction, generation after", []revision{tomb(3), rv(8)}, rv(8), 5, 8, 1, true},
		{"long form", []revision{rv(5), long}, long, 0, 5, 2, true},
		{"too long", walk, walk[len(walk)-1], 0, 0, 0, false},
		{"just short enough", walk[1:], walk[len(walk)-1], 0, 12, maxGenWalk, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ki := &keyIndex{key: "k"}
			for _, r := range tt.revs {
				ki.add(r)
			}
			c, v, ok := ki.generationAt(tt.at, tt.compactRev)
			if c != tt.create || v != tt.version || ok != tt.ok {
				t.Errorf("generationAt = %d, %d, %v; want %d, %d, %v", c, v, ok, tt.create, tt.version, tt.ok)
			}
		})
	}
}
