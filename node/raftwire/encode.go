// Package raftwire encodes and decodes raft entries and messages by hand, on
// the paths every write takes: the WAL's entry and hard state records and
// the messages between members.
//
// The wire format is protobuf's, the one proto.Marshal writes for the proto2
// types of go.etcd.io/raft/v3/raftpb: fields in number order, a scalar field
// present exactly when its pointer is set, a bytes field exactly when its
// slice is non-nil. Either side may therefore be proto.Marshal or
// proto.Unmarshal. What the hand-written code saves is the reflection-driven
// walk over every field and, when decoding, an allocation per field: a
// decoded message takes one allocation for itself and its scalars, one for
// all its entries and their scalars, one for the entry pointers and one for
// all the entries' data.
//
// Messages this package does not handle itself (those carrying a snapshot
// or storage responses, which never travel on the hot path, or fields a
// newer raftpb added) and any input it does not fully understand go through
// proto.Marshal and proto.Unmarshal instead, so the result is always what
// proto would have produced.
package raftwire

import (
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers of raftpb.Entry.
const (
	entryType  = 1
	entryTerm  = 2
	entryIndex = 3
	entryData  = 4
)

// Field numbers of raftpb.Message.
const (
	msgType       = 1
	msgTo         = 2
	msgFrom       = 3
	msgTerm       = 4
	msgLogTerm    = 5
	msgIndex      = 6
	msgEntries    = 7
	msgCommit     = 8
	msgSnapshot   = 9
	msgReject     = 10
	msgRejectHint = 11
	msgContext    = 12
	msgVote       = 13
	msgResponses  = 14
)

// entrySize is the length of e's encoding.
func entrySize(e *raftpb.Entry) int {
	if hasUnknown(e) {
		return proto.Size(e)
	}
	n := 0
	if e.Type != nil {
		n += 1 + protowire.SizeVarint(uint64(*e.Type))
	}
	if e.Term != nil {
		n += 1 + protowire.SizeVarint(*e.Term)
	}
	if e.Index != nil {
		n += 1 + protowire.SizeVarint(*e.Index)
	}
	if e.Data != nil {
		n += 1 + protowire.SizeBytes(len(e.Data))
	}
	return n
}

// AppendEntry appends the encoding of e to buf.
func AppendEntry(buf []byte, e *raftpb.Entry) []byte {
	if hasUnknown(e) {
		// Marshalling an Entry cannot fail: it has no required fields
		// and no strings to validate.
		buf, _ = proto.MarshalOptions{}.MarshalAppend(buf, e)
		return buf
	}
	if e.Type != nil {
		buf = appendVarintField(buf, entryType, uint64(*e.Type))
	}
	if e.Term != nil {
		buf = appendVarintField(buf, entryTerm, *e.Term)
	}
	if e.Index != nil {
		buf = appendVarintField(buf, entryIndex, *e.Index)
	}
	if e.Data != nil {
		buf = appendBytesField(buf, entryData, e.Data)
	}
	return buf
}

// AppendMessage appends the encoding of m to buf.
func AppendMessage(buf []byte, m *raftpb.Message) ([]byte, error) {
	if m.Snapshot != nil || len(m.Responses) > 0 || hasUnknown(m) {
		return proto.MarshalOptions{}.MarshalAppend(buf, m)
	}
	if m.Type != nil {
		buf = appendVarintField(buf, msgType, uint64(*m.Type))
	}
	buf = appendOptional(buf, msgTo, m.To)
	buf = appendOptional(buf, msgFrom, m.From)
	buf = appendOptional(buf, msgTerm, m.Term)
	buf = appendOptional(buf, msgLogTerm, m.LogTerm)
	buf = appendOptional(buf, msgIndex, m.Index)
	for _, e := range m.Entries {
		buf = protowire.AppendTag(buf, msgEntries, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(entrySize(e)))
		buf = AppendEntry(buf, e)
	}
	buf = appendOptional(buf, msgCommit, m.Commit)
	if m.Reject != nil {
		buf = appendVarintField(buf, msgReject, protowire.EncodeBool(*m.Reject))
	}
	buf = appendOptional(buf, msgRejectHint, m.RejectHint)
	if m.Context != nil {
		buf = appendBytesField(buf, msgContext, m.Context)
	}
	return appendOptional(buf, msgVote, m.Vote), nil
}

// Field numbers of raftpb.HardState.
const (
	hardStateTerm   = 1
	hardStateVote   = 2
	hardStateCommit = 3
)

// AppendHardState appends the encoding of a raftpb.HardState with all three
// fields set to these values, as proto.Marshal writes it; taking the values
// spares building a message (four allocations) on every WAL save.
func AppendHardState(buf []byte, term, vote, commit uint64) []byte {
	buf = appendVarintField(buf, hardStateTerm, term)
	buf = appendVarintField(buf, hardStateVote, vote)
	return appendVarintField(buf, hardStateCommit, commit)
}

// hasUnknown tells whether m carries fields proto.Unmarshal did not know
// (a peer running a newer raftpb); only proto writes those back.
func hasUnknown(m proto.Message) bool { return len(m.ProtoReflect().GetUnknown()) > 0 }

// appendOptional appends the varint field num if v is set.
func appendOptional(buf []byte, num protowire.Number, v *uint64) []byte {
	if v == nil {
		return buf
	}
	return appendVarintField(buf, num, *v)
}

func appendVarintField(buf []byte, num protowire.Number, v uint64) []byte {
	buf = protowire.AppendTag(buf, num, protowire.VarintType)
	return protowire.AppendVarint(buf, v)
}

func appendBytesField(buf []byte, num protowire.Number, b []byte) []byte {
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	return protowire.AppendBytes(buf, b)
}
