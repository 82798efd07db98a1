package backend

import (
	"hash/crc32"
	"testing"
)

func TestHashMatchesEtcdAlgorithm(t *testing.T) {
	b, _ := openTest(t, nil)
	put(b, Key, "k1", "v1", "k2", "v2")
	put(b, Meta, "consistent_index", "ignored", "finishedCompactRev", "r")
	got, err := b.Hash(DefaultHashIgnores)
	if err != nil {
		t.Fatal(err)
	}
	// Bucket names in bbolt (byte) order, each followed by its non-ignored
	// keys and values.
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	for _, s := range []string{
		"alarm", "auth", "authRoles", "authUsers", "cluster",
		"key", "k1", "v1", "k2", "v2",
		"lease", "members", "members_removed",
		"meta", "finishedCompactRev", "r",
	} {
		h.Write([]byte(s))
	}
	if want := h.Sum32(); got != want {
		t.Fatalf("Hash = %08x, want %08x", got, want)
	}
}

func TestHashStability(t *testing.T) {
	tests := []struct {
		name   string
		change func(b *Backend)
		same   bool
	}{
		{name: "no change", change: func(*Backend) {}, same: true},
		{name: "consistent index and term are ignored", change: func(b *Backend) {
			tx := b.BatchTx()
			SetConsistentIndex(tx, 99, 7)
			SetStorageVersion(tx)
			tx.Unlock()
		}, same: true},
		{name: "put changes it", change: func(b *Backend) { put(b, Key, "x", "1") }},
		{name: "overwrite changes it", change: func(b *Backend) { put(b, Key, "a", "2") }},
		{name: "delete changes it", change: func(b *Backend) { del(b, Key, "a") }},
		{name: "other bucket changes it", change: func(b *Backend) { put(b, AuthUsers, "u", "1") }},
		{name: "compaction rev changes it", change: func(b *Backend) {
			tx := b.BatchTx()
			SetFinishedCompact(tx, 5)
			tx.Unlock()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, o := openTest(t, nil)
			put(b, Key, "a", "1")
			h1, err := b.Hash(DefaultHashIgnores)
			if err != nil {
				t.Fatal(err)
			}
			// Stable across Close/Open and Defrag.
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			b, err = Open(o)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Defrag(); err != nil {
				t.Fatal(err)
			}
			tt.change(b) // buffered: Hash must commit it
			h2, err := b.Hash(DefaultHashIgnores)
			if err != nil {
				t.Fatal(err)
			}
			if (h1 == h2) != tt.same {
				t.Fatalf("hash %08x -> %08x, want same=%v", h1, h2, tt.same)
			}
		})
	}
}
