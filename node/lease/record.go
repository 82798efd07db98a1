package lease

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The lease bucket uses etcd's layout so that snapshot files move between
// etcd and ballast: key is the lease ID as 8 bytes big-endian (the int64
// reinterpreted as uint64), value is a marshalled leasepb.Lease:
//
//	message Lease { int64 ID = 1; int64 TTL = 2; int64 RemainingTTL = 3; }
//
// leasepb lives in etcd's server module, so the three varint fields are
// written by hand. Like proto.Marshal of a proto3 message, zero fields are
// omitted and the rest appear in field-number order, so the bytes are the ones
// etcd would write.
const (
	fieldID           protowire.Number = 1
	fieldTTL          protowire.Number = 2
	fieldRemainingTTL protowire.Number = 3
)

// record is the persisted form of a lease.
type record struct {
	ID, TTL, RemainingTTL int64
}

func idKey(id int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(id))
}

func (r record) marshal() []byte {
	b := make([]byte, 0, 3*(1+protowire.SizeVarint(1<<63)))
	for _, f := range [...]struct {
		n protowire.Number
		v int64
	}{{fieldID, r.ID}, {fieldTTL, r.TTL}, {fieldRemainingTTL, r.RemainingTTL}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.n, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f.v))
		}
	}
	return b
}

// unmarshalRecord decodes one bucket entry. Unknown fields are skipped, as
// proto.Unmarshal would, so a newer etcd adding fields does not break restore.
func unmarshalRecord(k, v []byte) (record, error) {
	var r record
	if len(k) != 8 {
		return r, fmt.Errorf("lease key %x: want 8 bytes, got %d", k, len(k))
	}
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return r, fmt.Errorf("lease %x: %w", k, protowire.ParseError(n))
		}
		v = v[n:]
		if typ != protowire.VarintType || num < fieldID || num > fieldRemainingTTL {
			n = protowire.ConsumeFieldValue(num, typ, v)
			if n < 0 {
				return r, fmt.Errorf("lease %x: %w", k, protowire.ParseError(n))
			}
			v = v[n:]
			continue
		}
		x, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return r, fmt.Errorf("lease %x: %w", k, protowire.ParseError(n))
		}
		v = v[n:]
		switch num {
		case fieldID:
			r.ID = int64(x)
		case fieldTTL:
			r.TTL = int64(x)
		case fieldRemainingTTL:
			r.RemainingTTL = int64(x)
		}
	}
	if id := int64(binary.BigEndian.Uint64(k)); r.ID != id {
		return r, fmt.Errorf("lease key %016x holds a record for lease %016x", id, r.ID)
	}
	return r, nil
}
