package concurrencypb

import (
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/protoadapt"
)

// v1 is what every message here implements: the "v1" protobuf message
// methods, which google.golang.org/protobuf wraps with a descriptor derived
// from the struct tags.
type v1 = protoadapt.MessageV1

// V2 returns m as a google.golang.org/protobuf message, for APIs that take
// only those (proto.Marshal, protojson, grpc-gateway's marshalers). The
// result shares m's memory: decoding into it fills m.
func V2(m v1) protoadapt.MessageV2 { return protoadapt.MessageV2Of(m) }

// text renders m on one line in the protobuf text format, for String.
func text(m v1) string { return prototext.MarshalOptions{}.Format(V2(m)) }
