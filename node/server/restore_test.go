package server

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/backend"
)

// leaderDB returns the bytes of a db such as a leader streams: consistent
// index ci at term, and conf (nil: not recorded).
func leaderDB(t *testing.T, ci, term uint64, conf *raftpb.ConfState) []byte {
	t.Helper()
	be, err := backend.Open(backend.Options{Path: filepath.Join(t.TempDir(), "db"), NoFsync: true, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	tx := be.BatchTx()
	tx.Put(backend.Key, []byte("k"), []byte("v"))
	backend.SetConsistentIndex(tx, ci, term)
	if conf != nil {
		backend.SetConfState(tx, conf)
	}
	tx.Unlock()
	sn, err := be.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testServer(t *testing.T, id uint64) *Server {
	t.Helper()
	s := &Server{opts: Options{DataDir: t.TempDir(), UnsafeNoFsync: true}, lg: zap.NewNop(), id: id}
	if err := os.MkdirAll(s.opts.snapDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}

func snapMsg(index, term uint64) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(),
		From: proto.Uint64(2),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(index), Term: proto.Uint64(term),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}},
		}},
	}
}

// snapDirFiles lists the snap dir's files.
func snapDirFiles(t *testing.T, s *Server) []string {
	t.Helper()
	des, err := os.ReadDir(s.opts.snapDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func TestReceiveSnapshot(t *testing.T) {
	conf := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	for _, tc := range []struct {
		name      string
		self      uint64
		body      []byte
		msgIndex  uint64
		wantErr   string
		wantIndex uint64 // the snapshot's metadata afterwards
		wantTerm  uint64
		wantConf  *raftpb.ConfState
	}{
		{name: "moved up to the db", self: 1, body: leaderDB(t, 50, 3, conf), msgIndex: 40,
			wantIndex: 50, wantTerm: 3, wantConf: conf},
		{name: "db at the snapshot", self: 1, body: leaderDB(t, 40, 3, conf), msgIndex: 40,
			wantIndex: 40, wantTerm: 2, wantConf: &raftpb.ConfState{Voters: []uint64{1, 2}}},
		{name: "db without conf state", self: 1, body: leaderDB(t, 50, 3, nil), msgIndex: 40,
			wantIndex: 50, wantTerm: 3, wantConf: &raftpb.ConfState{Voters: []uint64{1, 2}}},
		{name: "db without term", self: 1, body: leaderDB(t, 50, 0, conf), msgIndex: 40,
			wantIndex: 40, wantTerm: 2, wantConf: &raftpb.ConfState{Voters: []uint64{1, 2}}},
		{name: "self not in the db's conf", self: 9, body: leaderDB(t, 50, 3, conf), msgIndex: 40,
			wantIndex: 40, wantTerm: 2, wantConf: &raftpb.ConfState{Voters: []uint64{1, 2}}},
		{name: "db behind the snapshot", self: 1, body: leaderDB(t, 30, 3, conf), msgIndex: 40,
			wantErr: "holds raft entries up to 30 only"},
		{name: "truncated", self: 1, body: leaderDB(t, 50, 3, conf)[:20000], msgIndex: 40,
			wantErr: "unusable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testServer(t, tc.self)
			m := snapMsg(tc.msgIndex, 2)
			err := s.receiveSnapshot(m, bytes.NewReader(tc.body))
			files := snapDirFiles(t, s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if len(files) != 0 {
					t.Fatalf("files left: %v", files)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			md := m.GetSnapshot().GetMetadata()
			if md.GetIndex() != tc.wantIndex || md.GetTerm() != tc.wantTerm || !proto.Equal(md.GetConfState(), tc.wantConf) {
				t.Fatalf("metadata %v, want index %d term %d conf %v", md, tc.wantIndex, tc.wantTerm, tc.wantConf)
			}
			if want := []string{snapDBName(tc.wantTerm, tc.wantIndex)}; !slices.Equal(files, want) {
				t.Fatalf("files %v, want %v", files, want)
			}
		})
	}
}

func TestInstallSnapshotDBAtRestart(t *testing.T) {
	s := testServer(t, 1)
	be, err := backend.Open(backend.Options{Path: s.opts.dbPath(), NoFsync: true, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	s.be = be
	tx := be.BatchTx()
	backend.SetConsistentIndex(tx, 10, 2)
	tx.Unlock()
	s.consistentIndex = 10
	write := func(name string, body []byte) {
		if err := os.WriteFile(filepath.Join(s.opts.snapDir(), name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sn := func(index, term uint64) *raftpb.Snapshot {
		return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term)}}
	}

	// Nothing to do; stale and partial files go.
	write(snapDBName(2, 8), leaderDB(t, 8, 2, nil))
	write("incoming-1"+partSuffix, []byte("partial"))
	if err := s.installSnapshotDBAtRestart(nil, &raftpb.HardState{}); err != nil {
		t.Fatal(err)
	}
	if files := snapDirFiles(t, s); !slices.Equal(files, []string{"db"}) {
		t.Fatalf("files %v", files)
	}

	// The backend is older than the snapshot and the db received with it
	// is gone: refuse.
	if err := s.installSnapshotDBAtRestart(sn(50, 3), &raftpb.HardState{}); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("err = %v", err)
	}

	// The received db is there: install it.
	write(snapDBName(3, 50), leaderDB(t, 50, 3, nil))
	write(snapDBName(3, 60), leaderDB(t, 60, 3, nil)) // a later one raft has not persisted: kept
	// The last run stopped before the hard state after the snapshot's WAL
	// marker was written: its commit index is raised to the snapshot's.
	hs := &raftpb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(2), Commit: proto.Uint64(45)}
	if err := s.installSnapshotDBAtRestart(sn(50, 3), hs); err != nil {
		t.Fatal(err)
	}
	if hs.GetCommit() != 50 || hs.GetTerm() != 3 || hs.GetVote() != 2 {
		t.Fatalf("hard state %v, want commit 50 term 3 vote 2", hs)
	}
	if ci, _ := backend.ReadConsistentIndex(be); ci != 50 || s.consistentIndex != 50 {
		t.Fatalf("consistent index %d (server %d), want 50", ci, s.consistentIndex)
	}
	if v, ok := be.Get(backend.Key, []byte("k")); !ok || string(v) != "v" {
		t.Fatalf("key/k = %q, %v", v, ok)
	}
	if files := snapDirFiles(t, s); !slices.Equal(files, []string{snapDBName(3, 60), "db"}) {
		t.Fatalf("files %v", files)
	}
}
