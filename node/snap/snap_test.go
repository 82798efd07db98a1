package snap

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
)

func snapshot(term, index uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data: []byte("small"),
		Metadata: &raftpb.SnapshotMetadata{
			Term: proto.Uint64(term), Index: proto.Uint64(index),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		},
	}
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func TestSaveLoadNewest(t *testing.T) {
	tests := []struct {
		name  string
		saved [][2]uint64 // term, index
		want  [2]uint64
	}{
		{"one", [][2]uint64{{1, 10}}, [2]uint64{1, 10}},
		{"newest by index", [][2]uint64{{1, 10}, {2, 30}, {2, 20}}, [2]uint64{2, 30}},
		{"index above 16 bits and terms across hex digits", [][2]uint64{{9, 0xffff}, {0x10, 0x10000}}, [2]uint64{0x10, 0x10000}},
		{"same snapshot twice", [][2]uint64{{3, 7}, {3, 7}}, [2]uint64{3, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "snap") // Save creates it
			for _, s := range tt.saved {
				if err := Save(dir, snapshot(s[0], s[1])); err != nil {
					t.Fatal(err)
				}
			}
			got, err := LoadNewest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want := snapshot(tt.want[0], tt.want[1]); !proto.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for _, n := range files(t, dir) {
				if filepath.Ext(n) != ".snap" {
					t.Fatalf("Save left %s behind", n)
				}
			}
		})
	}
}

func TestSaveRejectsEmpty(t *testing.T) {
	for _, s := range []*raftpb.Snapshot{nil, {}, {Metadata: &raftpb.SnapshotMetadata{Term: proto.Uint64(1)}}} {
		if err := Save(t.TempDir(), s); err == nil {
			t.Fatalf("Save(%v) succeeded", s)
		}
	}
}

func TestNoSnapshot(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		if _, err := LoadNewest(dir); !errors.Is(err, ErrNoSnapshot) {
			t.Fatalf("LoadNewest(%s): %v, want ErrNoSnapshot", dir, err)
		}
	}
}

// TestBrokenNewestFallsBack damages the newest file in each way a crash or
// a disk can, and expects the older snapshot with a warning naming the file.
func TestBrokenNewestFallsBack(t *testing.T) {
	newest := fileName(2, 20)
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"flipped byte", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			b[len(b)-3] ^= 1
			os.WriteFile(path, b, 0o600)
		}},
		{"truncated", func(t *testing.T, path string) { os.Truncate(path, 12) }},
		{"empty", func(t *testing.T, path string) { os.Truncate(path, 0) }},
		{"not ours", func(t *testing.T, path string) { os.WriteFile(path, []byte("hello, world"), 0o600) }},
		{"content of another snapshot", func(t *testing.T, path string) {
			b, _ := os.ReadFile(filepath.Join(filepath.Dir(path), fileName(1, 10)))
			os.WriteFile(path, b, 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, s := range []*raftpb.Snapshot{snapshot(1, 10), snapshot(2, 20)} {
				if err := Save(dir, s); err != nil {
					t.Fatal(err)
				}
			}
			tt.damage(t, filepath.Join(dir, newest))
			core, logs := observer.New(zapcore.WarnLevel)
			got, err := LoadNewestWithLogger(dir, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, snapshot(1, 10)) {
				t.Fatalf("got %v, want the older snapshot", got)
			}
			if w := logs.All(); len(w) != 1 || w[0].ContextMap()["file"] != filepath.Join(dir, newest) {
				t.Fatalf("warnings %v, want one naming %s", w, newest)
			}
		})
	}
}

func TestPurge(t *testing.T) {
	tests := []struct {
		keep    int
		want    []string
		wantErr bool
	}{
		{keep: 0, wantErr: true},
		{keep: 1, want: []string{fileName(3, 30)}},
		{keep: 2, want: []string{fileName(2, 20), fileName(3, 30)}},
		{keep: 5, want: []string{fileName(1, 10), fileName(2, 20), fileName(3, 30)}},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		for _, s := range []*raftpb.Snapshot{snapshot(2, 20), snapshot(1, 10), snapshot(3, 30)} {
			if err := Save(dir, s); err != nil {
				t.Fatal(err)
			}
		}
		// Leftovers of an interrupted Save, and a file that is not ours.
		os.WriteFile(filepath.Join(dir, fileName(4, 40)+".123.tmp"), []byte("partial"), 0o600)
		os.WriteFile(filepath.Join(dir, "db"), []byte("bbolt"), 0o600)
		err := Purge(dir, tt.keep)
		if (err != nil) != tt.wantErr {
			t.Fatalf("keep %d: Purge error %v", tt.keep, err)
		}
		if tt.wantErr {
			continue
		}
		// ReadDir sorts by name, and hex names sort before "db".
		if got := files(t, dir); !slices.Equal(got, append(slices.Clone(tt.want), "db")) {
			t.Fatalf("keep %d: left %v, want %v and db", tt.keep, got, tt.want)
		}
	}
}
