package wal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
)

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term),
		Type: raftpb.EntryType_EntryNormal.Enum(), Data: []byte(data)}
}

// ents returns entries lo..hi (inclusive) at term with recognisable data.
func ents(lo, hi, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, ent(i, term, fmt.Sprintf("e%d-t%d", i, term)))
	}
	return out
}

func hs(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

// testOpts uses small segments and keeps fsync on: tests exercise the real
// write path.
func testOpts(lg *zap.Logger) Options {
	return Options{SegmentSize: 4096, Logger: lg}
}

func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	return zap.New(core), logs
}

func mustCreate(t *testing.T, dir string, meta []byte, o Options) *WAL {
	t.Helper()
	w, err := Create(dir, meta, o)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func mustSave(t *testing.T, w *WAL, st *raftpb.HardState, es []*raftpb.Entry) {
	t.Helper()
	if err := w.Save(st, es, true); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

func mustClose(t *testing.T, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

type readResult struct {
	meta []byte
	st   *raftpb.HardState
	ents []*raftpb.Entry
}

// openRead opens dir at snap and reads it; the WAL is left open for Save.
func openRead(t *testing.T, dir string, snap Snapshot, o Options) (*WAL, readResult, error) {
	t.Helper()
	w, err := Open(dir, snap, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	meta, st, es, err := w.ReadAll()
	if err != nil {
		w.Close()
		return nil, readResult{}, err
	}
	return w, readResult{meta, st, es}, nil
}

func mustRead(t *testing.T, dir string, snap Snapshot, o Options) (*WAL, readResult) {
	t.Helper()
	w, r, err := openRead(t, dir, snap, o)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return w, r
}

func checkEnts(t *testing.T, got, want []*raftpb.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries (%s), want %d (%s)", len(got), idxs(got), len(want), idxs(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func idxs(es []*raftpb.Entry) string {
	var b bytes.Buffer
	for _, e := range es {
		fmt.Fprintf(&b, "%d/%d ", e.GetIndex(), e.GetTerm())
	}
	return b.String()
}

func checkState(t *testing.T, got, want *raftpb.HardState) {
	t.Helper()
	if want == nil {
		want = &raftpb.HardState{}
	}
	if got.GetTerm() != want.GetTerm() || got.GetVote() != want.GetVote() || got.GetCommit() != want.GetCommit() {
		t.Fatalf("HardState: got %v, want %v", got, want)
	}
}

func segmentPaths(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		out = append(out, s.path)
	}
	return out
}

type recInfo struct {
	off, next int
	typ       recordType
}

// fileRecords lists the valid records of a segment file.
func fileRecords(t *testing.T, path string) []recInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []recInfo
	_, err = scanSegment(b, func(off int, typ recordType, data []byte) error {
		out = append(out, recInfo{off: off, next: alignUp(off + headerSize + len(data)), typ: typ})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lastSegment(t *testing.T, dir string) string {
	p := segmentPaths(t, dir)
	return p[len(p)-1]
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func walDir(t *testing.T) string { return filepath.Join(t.TempDir(), "wal") }
