// Package protoscan reads single fields out of encoded protobuf messages
// without decoding them: on hot paths (WAL replay, apply) a whole decode
// would allocate the message and copy every bytes field only for one
// number.
package protoscan

import "google.golang.org/protobuf/encoding/protowire"

// Varint returns the value of the varint field num of the encoded message
// msg. As when decoding, the last occurrence wins. ok is false when the
// field is absent or msg does not parse.
func Varint(msg []byte, num protowire.Number) (v uint64, ok bool) {
	parsed := walk(msg, func(n protowire.Number, typ protowire.Type, value []byte) bool {
		if n != num || typ != protowire.VarintType {
			return true
		}
		x, l := protowire.ConsumeVarint(value)
		if l < 0 {
			return false
		}
		v, ok = x, true
		return true
	})
	if !parsed {
		return 0, false
	}
	return v, ok
}

// NestedVarint returns the varint field inner of the message field outer
// of msg. Decoding merges repeated occurrences of a message field, so the
// last occurrence of outer that holds inner wins.
func NestedVarint(msg []byte, outer, inner protowire.Number) (v uint64, ok bool) {
	parsed := walk(msg, func(n protowire.Number, typ protowire.Type, value []byte) bool {
		if n != outer || typ != protowire.BytesType {
			return true
		}
		sub, l := protowire.ConsumeBytes(value)
		if l < 0 {
			return false
		}
		if x, found := Varint(sub, inner); found {
			v, ok = x, true
		}
		return true
	})
	if !parsed {
		return 0, false
	}
	return v, ok
}

// walk calls f with the number, wire type and encoded value (from the
// value's first byte to the end of msg) of each field of msg in order, and
// reports whether msg parsed to its end and f accepted every field.
func walk(msg []byte, f func(num protowire.Number, typ protowire.Type, value []byte) bool) bool {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return false
		}
		msg = msg[n:]
		if !f(num, typ, msg) {
			return false
		}
		if n = protowire.ConsumeFieldValue(num, typ, msg); n < 0 {
			return false
		}
		msg = msg[n:]
	}
	return true
}
