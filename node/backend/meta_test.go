package backend

import (
	"bytes"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func metaRaw(t *testing.T, b *Backend, key []byte) []byte {
	t.Helper()
	v, _ := b.Get(Meta, key)
	return v
}

func TestConsistentIndexEncoding(t *testing.T) {
	tests := []struct {
		name             string
		index, term      uint64
		wantIdx, wantTrm []byte
	}{
		{name: "both", index: 0x0102030405060708, term: 5,
			wantIdx: []byte{1, 2, 3, 4, 5, 6, 7, 8}, wantTrm: []byte{0, 0, 0, 0, 0, 0, 0, 5}},
		{name: "zero index is never saved", index: 0, term: 5},
		{name: "unknown term is not saved", index: 9, term: 0, wantIdx: []byte{0, 0, 0, 0, 0, 0, 0, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := openTest(t, nil)
			tx := b.BatchTx()
			SetConsistentIndex(tx, tt.index, tt.term)
			tx.Unlock()
			mustCommit(t, b)
			if got := metaRaw(t, b, []byte("consistent_index")); !bytes.Equal(got, tt.wantIdx) {
				t.Errorf("consistent_index = %x, want %x", got, tt.wantIdx)
			}
			if got := metaRaw(t, b, []byte("term")); !bytes.Equal(got, tt.wantTrm) {
				t.Errorf("term = %x, want %x", got, tt.wantTrm)
			}
			idx, term := ReadConsistentIndex(b)
			wantIdx, wantTerm := uint64(0), uint64(0)
			if tt.wantIdx != nil {
				wantIdx = tt.index
			}
			if tt.wantTrm != nil {
				wantTerm = tt.term
			}
			if idx != wantIdx || term != wantTerm {
				t.Errorf("ReadConsistentIndex = %d, %d; want %d, %d", idx, term, wantIdx, wantTerm)
			}
		})
	}
}

func TestConfState(t *testing.T) {
	tests := []struct {
		name     string
		cs       *raftpb.ConfState
		wantJSON string
	}{
		{name: "voters and learners", cs: &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}},
			wantJSON: `{"voters":[1,2],"learners":[3]}`},
		{name: "joint", cs: &raftpb.ConfState{Voters: []uint64{1}, VotersOutgoing: []uint64{2}, LearnersNext: []uint64{4}, AutoLeave: proto.Bool(true)},
			wantJSON: `{"voters":[1],"voters_outgoing":[2],"learners_next":[4],"auto_leave":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := openTest(t, nil)
			if cs, err := ReadConfState(b); cs != nil || err != nil {
				t.Fatalf("ReadConfState on empty backend = %v, %v", cs, err)
			}
			tx := b.BatchTx()
			SetConfState(tx, tt.cs)
			tx.Unlock()
			if got := string(metaRaw(t, b, []byte("confState"))); got != tt.wantJSON {
				t.Errorf("confState = %s, want %s", got, tt.wantJSON)
			}
			got, err := ReadConfState(b)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.cs) {
				t.Errorf("ReadConfState = %v, want %v", got, tt.cs)
			}
		})
	}
}

func TestReadConfStateWrittenByEtcd(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want *raftpb.ConfState
		err  bool
	}{
		// etcd 3.5/3.6 (gogo protobuf) always wrote every field.
		{name: "etcd 3.6", raw: `{"voters":[1,2],"learners":null,"voters_outgoing":null,"learners_next":null,"auto_leave":false}`,
			want: &raftpb.ConfState{Voters: []uint64{1, 2}, AutoLeave: proto.Bool(false)}},
		{name: "garbage", raw: `{"voters":`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := openTest(t, nil)
			put(b, Meta, "confState", tt.raw)
			got, err := ReadConfState(b)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if !tt.err && !proto.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCompactRevs(t *testing.T) {
	b, _ := openTest(t, nil)
	if s, f := ReadCompactRevs(b); s != 0 || f != 0 {
		t.Fatalf("empty backend: %d, %d", s, f)
	}
	tx := b.BatchTx()
	SetScheduledCompact(tx, 0x0102)
	SetFinishedCompact(tx, 7)
	tx.Unlock()
	// etcd's revision key: 8 bytes main, '_', 8 bytes sub (0).
	want := []byte{0, 0, 0, 0, 0, 0, 1, 2, '_', 0, 0, 0, 0, 0, 0, 0, 0}
	if got := metaRaw(t, b, []byte("scheduledCompactRev")); !bytes.Equal(got, want) {
		t.Fatalf("scheduledCompactRev = %x, want %x", got, want)
	}
	if s, f := ReadCompactRevs(b); s != 0x0102 || f != 7 {
		t.Fatalf("ReadCompactRevs = %d, %d", s, f)
	}
}

func TestStorageVersion(t *testing.T) {
	b, _ := openTest(t, nil)
	tx := b.BatchTx()
	SetStorageVersion(tx)
	tx.Unlock()
	// etcd writes semver major.minor.0; our schema is etcd 3.6's.
	if got := string(metaRaw(t, b, []byte("storageVersion"))); got != "3.6.0" {
		t.Fatalf("storageVersion = %q", got)
	}
}
