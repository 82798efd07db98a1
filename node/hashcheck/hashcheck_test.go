package hashcheck

import (
	"errors"
	"reflect"
	"testing"
)

// corrupt lists the members of the corrupt findings (0: unknown member).
func corrupt(fs []Finding) []uint64 {
	var out []uint64
	for _, f := range fs {
		if f.Corrupt {
			out = append(out, f.Member)
		}
	}
	return out
}

// notes lists the members of the other findings.
func notes(fs []Finding) []uint64 {
	var out []uint64
	for _, f := range fs {
		if !f.Corrupt {
			out = append(out, f.Member)
		}
	}
	return out
}

func peer(id uint64, hash uint32, rev, compactRev, current int64) Peer {
	return Peer{ID: id, OK: true, Hash: Hash{Hash: hash, Revision: rev, CompactRevision: compactRev}, CurrentRevision: current}
}

func down(id uint64) Peer { return Peer{ID: id, Err: errors.New("connection refused")} }

func TestInitial(t *testing.T) {
	local := Hash{Hash: 7, Revision: 10, CompactRevision: 4}
	tests := []struct {
		name           string
		peers          []Peer
		corrupt, notes []uint64
	}{
		{"no peers", nil, nil, nil},
		{"all agree", []Peer{peer(2, 7, 10, 4, 12), peer(3, 7, 10, 4, 10)}, nil, nil},
		{"one differs", []Peer{peer(2, 7, 10, 4, 12), peer(3, 9, 10, 4, 10)}, []uint64{3}, nil},
		{"all differ", []Peer{peer(2, 8, 10, 4, 12), peer(3, 9, 10, 4, 10)}, []uint64{2, 3}, nil},
		{"compacted elsewhere", []Peer{peer(2, 8, 10, 6, 12)}, nil, []uint64{2}},
		{"no answer", []Peer{down(2), peer(3, 7, 10, 4, 10)}, nil, []uint64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := Initial(local, tt.peers)
			if got := corrupt(fs); !reflect.DeepEqual(got, tt.corrupt) {
				t.Errorf("corrupt = %v, want %v (%v)", got, tt.corrupt, fs)
			}
			if got := notes(fs); !reflect.DeepEqual(got, tt.notes) {
				t.Errorf("notes = %v, want %v (%v)", got, tt.notes, fs)
			}
		})
	}
}

func TestPeriodic(t *testing.T) {
	const leader = 1
	first := Hash{Hash: 7, Revision: 10, CompactRevision: 4}
	tests := []struct {
		name      string
		second    Hash
		secondRev int64
		peers     []Peer
		want      []uint64
	}{
		{"all agree", first, 10, []Peer{peer(2, 7, 10, 4, 10), peer(3, 7, 10, 4, 9)}, nil},
		{"writes went on", Hash{Hash: 8, Revision: 12, CompactRevision: 4}, 12, []Peer{peer(2, 7, 10, 4, 12)}, nil},
		{"a follower differs", first, 10, []Peer{peer(2, 7, 10, 4, 10), peer(3, 5, 10, 4, 10)}, []uint64{3}},
		{"the leader's own hash moved", Hash{Hash: 8, Revision: 10, CompactRevision: 4}, 10, nil, []uint64{leader}},
		{"a follower ahead", first, 10, []Peer{peer(2, 7, 10, 4, 11)}, []uint64{2}},
		{"a follower compacted further", first, 10, []Peer{peer(2, 9, 10, 6, 10)}, []uint64{2}},
		{"the leader compacted meanwhile", Hash{Hash: 3, Revision: 10, CompactRevision: 6}, 10, []Peer{peer(2, 9, 10, 6, 10)}, nil},
		{"no answer", first, 10, []Peer{down(2)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := Periodic(leader, first, tt.second, tt.secondRev, tt.peers)
			if got := corrupt(fs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("corrupt = %v, want %v (%v)", got, tt.want, fs)
			}
		})
	}
}

func TestCompaction(t *testing.T) {
	const leader = 1
	h := Hash{Hash: 7, Revision: 20, CompactRevision: 10}
	tests := []struct {
		name     string
		peers    []Peer
		want     []uint64
		wantDone bool
	}{
		{"all agree", []Peer{peer(2, 7, 20, 10, 25), peer(3, 7, 20, 10, 25)}, nil, true},
		{"one of three differs", []Peer{peer(2, 7, 20, 10, 25), peer(3, 5, 20, 10, 25)}, []uint64{3}, true},
		{"the leader is the odd one", []Peer{peer(2, 5, 20, 10, 25), peer(3, 5, 20, 10, 25)}, []uint64{leader}, true},
		{"no majority", []Peer{peer(2, 5, 20, 10, 25), peer(3, 6, 20, 10, 25)}, []uint64{0}, true},
		{"two against two of five", []Peer{peer(2, 7, 20, 10, 25), peer(3, 5, 20, 10, 25), peer(4, 5, 20, 10, 25), down(5)},
			[]uint64{0}, true},
		{"a peer not compacted yet", []Peer{peer(2, 7, 20, 10, 25), peer(3, 9, 20, 20, 25)}, nil, false},
		{"a peer down", []Peer{peer(2, 7, 20, 10, 25), down(3)}, nil, false},
		{"a mismatch even with a peer down", []Peer{peer(2, 5, 20, 10, 25), peer(3, 7, 20, 10, 25), down(4), peer(5, 7, 20, 10, 25)},
			[]uint64{2}, true},
		{"alone", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, done := Compaction(leader, h, tt.peers)
			if got := corrupt(fs); !reflect.DeepEqual(got, tt.want) || done != tt.wantDone {
				t.Errorf("corrupt = %v done %v, want %v %v (%v)", got, done, tt.want, tt.wantDone, fs)
			}
		})
	}
}
