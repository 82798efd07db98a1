package lease

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// leasepbDescriptor rebuilds etcd's leasepb.Lease (server/lease/leasepb/
// lease.proto) so the hand-written codec is checked against real protobuf.
func leasepbDescriptor(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	i64 := descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("lease.proto"),
		Package: proto.String("leasepb"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Lease"),
			Field: []*descriptorpb.FieldDescriptorProto{
				{Name: proto.String("ID"), Number: proto.Int32(1), Type: i64, Label: opt, JsonName: proto.String("ID")},
				{Name: proto.String("TTL"), Number: proto.Int32(2), Type: i64, Label: opt, JsonName: proto.String("TTL")},
				{Name: proto.String("RemainingTTL"), Number: proto.Int32(3), Type: i64, Label: opt, JsonName: proto.String("RemainingTTL")},
			},
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().Get(0)
}

func TestRecordMatchesProtobuf(t *testing.T) {
	md := leasepbDescriptor(t)
	fields := md.Fields()
	for _, r := range []record{
		{ID: 1, TTL: 10},
		{ID: 0x7fffffffffffffff, TTL: MaxTTL, RemainingTTL: 3},
		{ID: -5, TTL: 2, RemainingTTL: 1},
		{ID: math.MinInt64, TTL: 1},
	} {
		m := dynamicpb.NewMessage(md)
		m.Set(fields.ByNumber(1), protoreflect.ValueOfInt64(r.ID))
		m.Set(fields.ByNumber(2), protoreflect.ValueOfInt64(r.TTL))
		m.Set(fields.ByNumber(3), protoreflect.ValueOfInt64(r.RemainingTTL))
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := r.marshal()
		if !bytes.Equal(got, want) {
			t.Errorf("%+v: marshal = %x, protobuf = %x", r, got, want)
		}
		back, err := unmarshalRecord(idKey(r.ID), want)
		if err != nil || back != r {
			t.Errorf("%+v: unmarshal = %+v, %v", r, back, err)
		}
	}
}

func TestIDKeyIsBigEndian(t *testing.T) {
	if got, want := idKey(0x0102030405060708), []byte{1, 2, 3, 4, 5, 6, 7, 8}; !bytes.Equal(got, want) {
		t.Fatalf("idKey = %x, want %x", got, want)
	}
	if got, want := idKey(-1), bytes.Repeat([]byte{0xff}, 8); !bytes.Equal(got, want) {
		t.Fatalf("idKey(-1) = %x, want %x", got, want)
	}
}

func TestUnmarshalRecord(t *testing.T) {
	good := record{ID: 7, TTL: 9}.marshal()
	tests := []struct {
		name    string
		k, v    []byte
		want    record
		wantErr bool
	}{
		{"ok", idKey(7), good, record{ID: 7, TTL: 9}, false},
		{"unknown fields skipped", idKey(7), append(append([]byte{}, good...), 0x22, 2, 'h', 'i', 0x28, 1), record{ID: 7, TTL: 9}, false},
		{"short key", []byte{7}, good, record{}, true},
		{"id mismatch", idKey(8), good, record{}, true},
		{"truncated varint", idKey(7), []byte{0x08, 0x80}, record{}, true},
		{"truncated tag", idKey(7), []byte{0x80}, record{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := unmarshalRecord(tt.k, tt.v)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
