package mvcc

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestRangeValuesAndKeysOnly reads the same keys with values, keys only, and
// from the write buffer and from bbolt, and checks every field.
func TestRangeValuesAndKeysOnly(t *testing.T) {
	e := newEnv(t, Options{})
	e.txn(func(w *WriteTxn) { w.Put([]byte("a"), []byte("1"), 5) }) // rev 2
	e.put("b", "")                                                  // rev 3: an empty value
	e.put("a", "22")                                                // rev 4
	committed := func() {
		if err := e.be.ForceCommit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, where := range []struct {
		name string
		prep func()
	}{{"buffered", func() {}}, {"committed", committed}} {
		where.prep()
		for _, tt := range []struct {
			name string
			o    RangeOptions
			want []string
		}{
			{"values", RangeOptions{}, []string{"a=22 c2 m4 v2 l0", "b= c3 m3 v1 l0"}},
			{"keys only", RangeOptions{KeysOnly: true}, []string{"a= c2 m4 v2 l0", "b= c3 m3 v1 l0"}},
			{"keys only at rev 2 (leased)", RangeOptions{KeysOnly: true, Rev: 2}, []string{"a= c2 m2 v1 l0"}},
			{"values at rev 2 (leased)", RangeOptions{Rev: 2}, []string{"a=1 c2 m2 v1 l5"}},
		} {
			t.Run(where.name+"/"+tt.name, func(t *testing.T) {
				res, err := e.rng("a", []byte("z"), tt.o)
				if err != nil {
					t.Fatal(err)
				}
				got := kvsString(res.KVs)
				if len(got) != len(tt.want) {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("got %q, want %q", got, tt.want)
					}
				}
				for _, kv := range res.KVs {
					if tt.o.KeysOnly && kv.Value != nil {
						t.Errorf("keys only returned a value for %q", kv.Key)
					}
				}
			})
		}
	}
}

// TestKVDecoder: the decoder agrees with proto.Unmarshal, keeps fields the
// store does not write (by falling back to it), and hands out slices that
// cannot overwrite each other.
func TestKVDecoder(t *testing.T) {
	marshal := func(kv *mvccpb.KeyValue) []byte {
		b, err := proto.Marshal(kv)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := &mvccpb.KeyValue{Key: []byte("key"), Value: []byte("value"), CreateRevision: 2, ModRevision: 9, Version: 3, Lease: 77}
	withUnknown := protowire.AppendVarint(protowire.AppendTag(marshal(plain), 15, protowire.VarintType), 1)
	d := newKVDecoder(3, false)
	var got []*mvccpb.KeyValue
	for _, v := range [][]byte{marshal(plain), withUnknown, marshal(&mvccpb.KeyValue{Key: []byte("k2")})} {
		kv, err := d.decode(v)
		if err != nil {
			t.Fatal(err)
		}
		want := &mvccpb.KeyValue{}
		if err := proto.Unmarshal(v, want); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(kv, want) {
			t.Errorf("decoded %v, want %v", kv, want)
		}
		got = append(got, kv)
	}
	if len(got[1].ProtoReflect().GetUnknown()) == 0 {
		t.Error("the unknown field was dropped")
	}
	_ = append(got[0].Key, 'X')
	if string(got[0].Value) != "value" {
		t.Errorf("appending to a key overwrote the value: %q", got[0].Value)
	}
	if _, err := d.decode([]byte{0x0a, 0x05, 'a'}); err == nil {
		t.Error("a truncated value decoded without error")
	}

	k := newKVDecoder(1, true)
	kv, err := k.decode(marshal(plain))
	if err != nil {
		t.Fatal(err)
	}
	if want := "key= c2 m9 v3 l0"; kvString(kv) != want || kv.Value != nil {
		t.Errorf("keys only: %s, want %s", kvString(kv), want)
	}
}
