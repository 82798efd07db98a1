package mvcc

import (
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers of mvccpb.KeyValue (api/v3 kv.proto).
const (
	fieldKey            = 1
	fieldCreateRevision = 2
	fieldModRevision    = 3
	fieldVersion        = 4
	fieldValue          = 5
	fieldLease          = 6
)

// kvHead is the part of a stored KeyValue the store itself needs. It is
// decoded straight from the wire bytes: restore, compaction, hashing and Put
// would otherwise unmarshal (and copy) every value just to learn its key.
type kvHead struct {
	key     []byte // aliases the decoded buffer
	create  int64
	version int64
	lease   int64
}

func parseKVHead(b []byte) (kvHead, error) {
	var h kvHead
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return h, fmt.Errorf("mvcc: stored KeyValue is corrupt: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == fieldKey && typ == protowire.BytesType:
			h.key, n = protowire.ConsumeBytes(b)
		case (num == fieldCreateRevision || num == fieldVersion || num == fieldLease) && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			switch num {
			case fieldCreateRevision:
				h.create = int64(v)
			case fieldVersion:
				h.version = int64(v)
			default:
				h.lease = int64(v)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return h, fmt.Errorf("mvcc: stored KeyValue is corrupt: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return h, nil
}

// unmarshalKV decodes a stored value; the result owns its bytes.
func unmarshalKV(v []byte) (*mvccpb.KeyValue, error) {
	kv := &mvccpb.KeyValue{}
	if err := proto.Unmarshal(v, kv); err != nil {
		return nil, fmt.Errorf("mvcc: stored KeyValue is corrupt: %w", err)
	}
	return kv, nil
}

// kvDecoder decodes the stored values of one read into KeyValues allocated
// together: the messages in one slice, their key and value bytes copied into
// shared chunks. A range of n keys then costs a few allocations instead of
// four per key (message, key, value, and proto.Unmarshal's own). The bytes
// of a chunk are never written again once handed out, and every slice is
// capped at its length, so a caller appending to one cannot reach its
// neighbour.
type kvDecoder struct {
	msgs  []mvccpb.KeyValue
	chunk []byte
	// keysOnly leaves out value and lease (see RangeOptions.KeysOnly).
	keysOnly bool
}

// kvChunkSize caps the chunks sized ahead of need; a chunk holds whole
// values only.
const kvChunkSize = 4 << 10

func newKVDecoder(n int, keysOnly bool) *kvDecoder {
	return &kvDecoder{msgs: make([]mvccpb.KeyValue, 0, n), keysOnly: keysOnly}
}

// copyBytes returns a copy of b that the decoder owns.
func (d *kvDecoder) copyBytes(b []byte) []byte { return ownedCopy(d, b) }

// copyString is copyBytes for a string.
func (d *kvDecoder) copyString(s string) []byte { return ownedCopy(d, s) }

// ownedCopy appends b to the decoder's current chunk and returns that part,
// capped so that later appends cannot reach into it.
func ownedCopy[T ~string | ~[]byte](d *kvDecoder, b T) []byte {
	if len(b) == 0 {
		return nil
	}
	d.reserve(len(b))
	start := len(d.chunk)
	d.chunk = append(d.chunk, b...)
	return d.chunk[start:len(d.chunk):len(d.chunk)]
}

// reserve makes room for n more bytes in the current chunk.
func (d *kvDecoder) reserve(n int) {
	if cap(d.chunk)-len(d.chunk) < n {
		// Room for this and, guessing from its size, the messages still to
		// come; a single-key read allocates just what it needs.
		left := cap(d.msgs) - len(d.msgs) + 1
		d.chunk = make([]byte, 0, max(n, min(kvChunkSize, 2*n*left)))
	}
}

// next returns the next message, empty.
func (d *kvDecoder) next() *mvccpb.KeyValue {
	d.msgs = append(d.msgs, mvccpb.KeyValue{})
	return &d.msgs[len(d.msgs)-1]
}

// decode decodes the stored value v (which it does not keep) into the next
// message. A value holding a field the store never writes, which only a
// newer etcd could have put there, goes through proto.Unmarshal instead,
// so that nothing in it is lost.
func (d *kvDecoder) decode(v []byte) (*mvccpb.KeyValue, error) {
	kv := d.next()
	var key, value []byte
	for b := v; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("mvcc: stored KeyValue is corrupt: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == fieldKey || num == fieldValue) && typ == protowire.BytesType:
			var f []byte
			f, n = protowire.ConsumeBytes(b)
			if num == fieldKey {
				key = f
			} else {
				value = f
			}
		case num >= fieldCreateRevision && num <= fieldLease && num != fieldValue && typ == protowire.VarintType:
			var x uint64
			x, n = protowire.ConsumeVarint(b)
			switch num {
			case fieldCreateRevision:
				kv.CreateRevision = int64(x)
			case fieldModRevision:
				kv.ModRevision = int64(x)
			case fieldVersion:
				kv.Version = int64(x)
			case fieldLease:
				kv.Lease = int64(x)
			}
		default:
			return d.decodeSlow(kv, v)
		}
		if n < 0 {
			return nil, fmt.Errorf("mvcc: stored KeyValue is corrupt: %w", protowire.ParseError(n))
		}
		b = b[n:]
	}
	kv.Key = d.copyBytes(key)
	if d.keysOnly {
		kv.Lease = 0
	} else {
		kv.Value = d.copyBytes(value)
	}
	return kv, nil
}

func (d *kvDecoder) decodeSlow(kv *mvccpb.KeyValue, v []byte) (*mvccpb.KeyValue, error) {
	full, err := unmarshalKV(v)
	if err != nil {
		return nil, err
	}
	if d.keysOnly {
		kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease, kv.Value = full.Key, full.CreateRevision, full.ModRevision, full.Version, 0, nil
		return kv, nil
	}
	return full, nil
}
