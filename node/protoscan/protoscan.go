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
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return 0, false
		}
		msg = msg[l:]
		if n == num && typ == protowire.VarintType {
			x, l := protowire.ConsumeVarint(msg)
			if l < 0 {
				return 0, false
			}
			v, ok = x, true
			msg = msg[l:]
			continue
		}
		if l = protowire.ConsumeFieldValue(n, typ, msg); l < 0 {
			return 0, false
		}
		msg = msg[l:]
	}
	return v, ok
}
