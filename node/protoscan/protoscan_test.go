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
