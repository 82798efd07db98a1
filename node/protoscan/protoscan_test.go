package protoscan

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestVarint(t *testing.T) {
	entry, err := proto.Marshal(&raftpb.Entry{Term: proto.Uint64(7), Index: proto.Uint64(1 << 40), Data: []byte("payload")})
	if err != nil {
		t.Fatal(err)
	}
	// Index (3) again at the end: decoding keeps the last one.
	twice := protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), entry...), 3, protowire.VarintType), 9)
	// Field 3 as bytes is not the varint field.
	asBytes := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte{1, 2})
	for _, tc := range []struct {
		name   string
		msg    []byte
		num    protowire.Number
		want   uint64
		wantOK bool
	}{
		{"index", entry, 3, 1 << 40, true},
		{"term", entry, 2, 7, true},
		{"absent", entry, 5, 0, false},
		{"last occurrence wins", twice, 3, 9, true},
		{"other wire type", asBytes, 3, 0, false},
		{"empty", nil, 3, 0, false},
		{"truncated", entry[:len(entry)-2], 3, 0, false},
		{"garbage", []byte{0xff, 0xff, 0xff}, 3, 0, false},
	} {
		got, ok := Varint(tc.msg, tc.num)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: Varint = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestNestedVarint(t *testing.T) {
	inner := func(id uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), id)
	}
	field := func(msg []byte, sub []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(msg, 100, protowire.BytesType), sub)
	}
	other := protowire.AppendBytes(protowire.AppendTag(nil, 4, protowire.BytesType), []byte("a put"))
	for _, tc := range []struct {
		name   string
		msg    []byte
		want   uint64
		wantOK bool
	}{
		{"once", field(other, inner(42)), 42, true},
		{"merged: the last that holds it wins", field(field(field(other, inner(1)), inner(2)), nil), 2, true},
		{"outer without inner", field(other, nil), 0, false},
		{"absent", other, 0, false},
		{"outer as varint is not the message", protowire.AppendVarint(protowire.AppendTag(nil, 100, protowire.VarintType), 5), 0, false},
		{"truncated", field(other, inner(42))[:len(other)+3], 0, false},
	} {
		got, ok := NestedVarint(tc.msg, 100, 1)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: NestedVarint = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}
