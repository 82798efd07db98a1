package raftwire

import (
	"bytes"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func u64(v uint64) *uint64 { return &v }

func entry(term, index uint64, typ raftpb.EntryType, data []byte) *raftpb.Entry {
	return &raftpb.Entry{Term: u64(term), Index: u64(index), Type: typ.Enum(), Data: data}
}

// messages covers the shapes raft sends, and the corners of presence.
func messages() map[string]*raftpb.Message {
	return map[string]*raftpb.Message{
		"empty": {},
		"append": {Type: raftpb.MsgApp.Enum(), To: u64(2), From: u64(1), Term: u64(7), LogTerm: u64(7), Index: u64(41),
			Commit: u64(40), Entries: []*raftpb.Entry{
				entry(7, 42, raftpb.EntryNormal, []byte("put a")),
				entry(7, 43, raftpb.EntryConfChangeV2, bytes.Repeat([]byte{0xff}, 300)),
				entry(7, 44, raftpb.EntryNormal, nil),      // empty entry after an election: no Data field
				entry(7, 45, raftpb.EntryNormal, []byte{}), // present but empty
			}},
		"append response": {Type: raftpb.MsgAppResp.Enum(), To: u64(1), From: u64(3), Term: u64(7), Index: u64(45)},
		"rejection": {Type: raftpb.MsgAppResp.Enum(), To: u64(1), From: u64(3), Term: u64(7), Index: u64(45),
			Reject: proto.Bool(true), RejectHint: u64(30), LogTerm: u64(6)},
		"explicit false and zeros": {Type: raftpb.MsgHup.Enum(), To: u64(0), Reject: proto.Bool(false), Commit: u64(0)},
		"heartbeat":                {Type: raftpb.MsgHeartbeat.Enum(), To: u64(2), From: u64(1), Term: u64(1 << 62), Commit: u64(1 << 40), Context: []byte("read-index ctx")},
		"empty context":            {Type: raftpb.MsgHeartbeatResp.Enum(), Context: []byte{}},
		"vote":                     {Type: raftpb.MsgPreVote.Enum(), To: u64(3), From: u64(2), Term: u64(9), LogTerm: u64(8), Index: u64(100), Vote: u64(2)},
		"entry without fields":     {Type: raftpb.MsgProp.Enum(), Entries: []*raftpb.Entry{{}}},
		"snapshot (slow path)": {Type: raftpb.MsgSnap.Enum(), To: u64(2), Snapshot: &raftpb.Snapshot{
			Data: []byte("db"), Metadata: &raftpb.SnapshotMetadata{Index: u64(10), Term: u64(2),
				ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}},
		"responses (slow path)": {Type: raftpb.MsgStorageAppend.Enum(), Responses: []*raftpb.Message{
			{Type: raftpb.MsgStorageAppendResp.Enum(), Index: u64(3)}}},
	}
}

func TestAppendMessageMatchesProto(t *testing.T) {
	for name, m := range messages() {
		t.Run(name, func(t *testing.T) {
			want, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendMessage([]byte("prefix"), m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[len("prefix"):], want) {
				t.Fatalf("AppendMessage = %x\nproto.Marshal = %x", got[len("prefix"):], want)
			}
		})
	}
}

func TestAppendEntryMatchesProto(t *testing.T) {
	for _, e := range messages()["append"].Entries {
		want, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got := AppendEntry(nil, e)
		if !bytes.Equal(got, want) || entrySize(e) != len(want) {
			t.Fatalf("entry %d: AppendEntry = %x (entrySize %d), proto.Marshal = %x", e.GetIndex(), got, entrySize(e), want)
		}
	}
}

func TestAppendHardStateMatchesProto(t *testing.T) {
	for _, v := range [][3]uint64{{0, 0, 0}, {1, 2, 3}, {1 << 62, 0, 1 << 40}} {
		want, err := proto.Marshal(&raftpb.HardState{Term: u64(v[0]), Vote: u64(v[1]), Commit: u64(v[2])})
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendHardState(nil, v[0], v[1], v[2]); !bytes.Equal(got, want) {
			t.Fatalf("%v: AppendHardState = %x, proto.Marshal = %x", v, got, want)
		}
	}
}

func TestDecodeMessageRoundTrip(t *testing.T) {
	for name, m := range messages() {
		t.Run(name, func(t *testing.T) {
			b, err := AppendMessage(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			// proto.Equal compares presence too: a set zero is not an
			// absent field, an empty Data not a nil one.
			if !proto.Equal(got, m) {
				t.Fatalf("decoded %v, want %v", got, m)
			}
			clear(b) // the result must not alias the input
			if !proto.Equal(got, m) {
				t.Fatalf("decoded message changed with its input: %v", got)
			}
		})
	}
}

// TestCarvedFieldsAreCapped: appending to one entry's data must not write
// into the next entry's, although they share one allocation.
func TestCarvedFieldsAreCapped(t *testing.T) {
	b, _ := AppendMessage(nil, messages()["append"])
	m, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(m.Entries[0].Data, "XXXXXXXX"...)
	if got := string(m.Entries[1].Data[:3]); got != "\xff\xff\xff" {
		t.Fatalf("entry 1 data starts %q after appending to entry 0", got)
	}
}

// TestDecodeFallsBackToProto: input the fast path does not take still
// decodes exactly as proto.Unmarshal does, unknown fields and all.
func TestDecodeFallsBackToProto(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	heartbeat, _ := AppendMessage(nil, messages()["heartbeat"])
	for name, b := range map[string][]byte{
		"unknown field":             protowire.AppendVarint(tag(heartbeat, 99, protowire.VarintType), 5),
		"unknown message type":      protowire.AppendVarint(tag(nil, msgType, protowire.VarintType), 999),
		"unknown entry type":        protowire.AppendBytes(tag(nil, msgEntries, protowire.BytesType), protowire.AppendVarint(tag(nil, entryType, protowire.VarintType), 7)),
		"known field, wrong wire":   protowire.AppendBytes(tag(nil, msgTerm, protowire.BytesType), []byte("x")),
		"fixed64 field":             protowire.AppendFixed64(tag(slices.Clone(heartbeat), 20, protowire.Fixed64Type), 1),
		"unknown field in entry":    protowire.AppendBytes(tag(nil, msgEntries, protowire.BytesType), protowire.AppendVarint(tag(nil, 9, protowire.VarintType), 1)),
		"index repeated, last wins": protowire.AppendVarint(tag(protowire.AppendVarint(tag(nil, msgIndex, protowire.VarintType), 1), msgIndex, protowire.VarintType), 2),
	} {
		t.Run(name, func(t *testing.T) {
			want := &raftpb.Message{}
			if err := proto.Unmarshal(b, want); err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("decoded %v, proto.Unmarshal %v", got, want)
			}
		})
	}
}

func TestDecodeRejectsWhatProtoRejects(t *testing.T) {
	heartbeat, _ := AppendMessage(nil, messages()["heartbeat"])
	for name, b := range map[string][]byte{
		"cut varint":  {msgTerm << 3, 0x80},
		"cut bytes":   heartbeat[:len(heartbeat)-2],
		"bad tag":     {0},
		"cut entry":   {msgEntries<<3 | 2, 3, entryTerm << 3, 0x80, 0x80},
		"group field": {msgTerm<<3 | 3},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeMessage(b); err == nil {
				t.Fatalf("DecodeMessage(%x) succeeded", b)
			}
			if err := proto.Unmarshal(b, &raftpb.Message{}); err == nil {
				t.Fatalf("proto.Unmarshal(%x) succeeded: the case is wrong", b)
			}
		})
	}
}

func TestDecodeAllocations(t *testing.T) {
	b, _ := AppendMessage(nil, messages()["append"])
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeMessage(b) }); n > 4 {
		t.Errorf("decoding a MsgApp with 4 entries takes %v allocations, want at most 4", n)
	}
	b, _ = AppendMessage(nil, messages()["append response"])
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeMessage(b) }); n > 1 {
		t.Errorf("decoding a MsgAppResp takes %v allocations, want 1", n)
	}
}

// FuzzDecodeMessage: for any input, the result (or the failure) is
// proto.Unmarshal's.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range messages() {
		b, _ := AppendMessage(nil, m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &raftpb.Message{}
		wantErr := proto.Unmarshal(b, want)
		got, err := DecodeMessage(b)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("DecodeMessage error %v, proto.Unmarshal error %v", err, wantErr)
		}
		if err == nil && !proto.Equal(got, want) {
			t.Fatalf("decoded %v, proto.Unmarshal %v", got, want)
		}
		if err == nil {
			// And what we encode, proto reads back the same.
			again, err := AppendMessage(nil, got)
			if err != nil {
				t.Fatal(err)
			}
			back := &raftpb.Message{}
			if err := proto.Unmarshal(again, back); err != nil || !proto.Equal(back, got) {
				t.Fatalf("re-encoded message decodes to %v (%v), want %v", back, err, got)
			}
		}
	})
}

func BenchmarkDecodeMessage(b *testing.B) {
	enc, _ := AppendMessage(nil, messages()["append"])
	b.Run("raftwire", func(b *testing.B) {
		for b.Loop() {
			_, _ = DecodeMessage(enc)
		}
	})
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			_ = proto.Unmarshal(enc, &raftpb.Message{})
		}
	})
}

func BenchmarkAppendMessage(b *testing.B) {
	m := messages()["append"]
	buf := make([]byte, 0, 4096)
	b.Run("raftwire", func(b *testing.B) {
		for b.Loop() {
			_, _ = AppendMessage(buf[:0], m)
		}
	})
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			_, _ = proto.MarshalOptions{}.MarshalAppend(buf[:0], m)
		}
	})
}
