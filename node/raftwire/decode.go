package raftwire

import (
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// DecodeMessage decodes a raftpb.Message. The result does not alias b.
func DecodeMessage(b []byte) (*raftpb.Message, error) {
	if m, ok := decodeMessage(b); ok {
		return m, nil
	}
	// A snapshot, storage responses, an unknown field or enum value, or
	// bytes that do not parse: proto decides, keeps what it keeps as
	// unknown fields and words the error.
	m := &raftpb.Message{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// messageBlock is a decoded message together with its scalars, so that one
// allocation holds what proto.Unmarshal allocates field by field. The
// message's pointers point into the block.
type messageBlock struct {
	m                                                        raftpb.Message
	typ                                                      raftpb.MessageType
	to, from, term, logTerm, index, commit, rejectHint, vote uint64
	reject                                                   bool
}

// entryBlock is an entry together with its scalars.
type entryBlock struct {
	e           raftpb.Entry
	typ         raftpb.EntryType
	term, index uint64
}

// decodeMessage is the fast path. ok is false when b holds anything it does
// not handle exactly as proto.Unmarshal would; it then allocates nothing.
func decodeMessage(b []byte) (m *raftpb.Message, ok bool) {
	// The first pass checks everything and sizes the allocations, so the
	// second cannot fail.
	entries, dataLen, hasBytes, ok := survey(b)
	if !ok {
		return nil, false
	}
	mb := &messageBlock{}
	var ents []entryBlock
	if entries > 0 {
		ents = make([]entryBlock, 0, entries)
		mb.m.Entries = make([]*raftpb.Entry, 0, entries)
	}
	var data []byte // every bytes field's contents, in order
	if hasBytes {
		data = make([]byte, 0, dataLen)
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			b = b[n:]
			if num == msgContext {
				data, mb.m.Context = carve(data, v)
				continue
			}
			ents = ents[:len(ents)+1]
			eb := &ents[len(ents)-1]
			f, _ := parseEntry(v)
			eb.fill(&f)
			if f.hasData {
				data, eb.e.Data = carve(data, f.data)
			}
			mb.m.Entries = append(mb.m.Entries, &eb.e)
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		b = b[n:]
		mb.set(num, v)
	}
	return &mb.m, true
}

// set stores the varint field num.
func (mb *messageBlock) set(num protowire.Number, v uint64) {
	m := &mb.m
	switch num {
	case msgType:
		mb.typ = raftpb.MessageType(int32(v))
		m.Type = &mb.typ
	case msgTo:
		mb.to, m.To = v, &mb.to
	case msgFrom:
		mb.from, m.From = v, &mb.from
	case msgTerm:
		mb.term, m.Term = v, &mb.term
	case msgLogTerm:
		mb.logTerm, m.LogTerm = v, &mb.logTerm
	case msgIndex:
		mb.index, m.Index = v, &mb.index
	case msgCommit:
		mb.commit, m.Commit = v, &mb.commit
	case msgReject:
		mb.reject, m.Reject = v != 0, &mb.reject
	case msgRejectHint:
		mb.rejectHint, m.RejectHint = v, &mb.rejectHint
	case msgVote:
		mb.vote, m.Vote = v, &mb.vote
	}
}

// carve copies v to the end of data and returns the copy, capped so that
// appending to one field can never overwrite the next. The copy is non-nil
// even when v is empty: the field is present.
func carve(data, v []byte) (rest, field []byte) {
	start := len(data)
	data = append(data, v...)
	return data, data[start:len(data):len(data)]
}

// survey checks that b is a message the fast path decodes exactly as
// proto.Unmarshal would, and counts its entries and the bytes of its bytes
// fields.
func survey(b []byte) (entries, dataLen int, hasBytes, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, false, false
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && isVarintField(num):
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || num == msgType && !knownMessageType(v) {
				return 0, 0, false, false
			}
			b = b[n:]
		case typ == protowire.BytesType && (num == msgEntries || num == msgContext):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, 0, false, false
			}
			b = b[n:]
			hasBytes = true
			if num == msgContext {
				dataLen += len(v)
				continue
			}
			f, ok := parseEntry(v)
			if !ok {
				return 0, 0, false, false
			}
			entries++
			dataLen += len(f.data)
		default:
			// A snapshot, responses, a field this package does not know
			// or a known field with another wire type (proto keeps those
			// as unknown fields).
			return 0, 0, false, false
		}
	}
	return entries, dataLen, hasBytes, true
}

func isVarintField(num protowire.Number) bool {
	switch num {
	case msgType, msgTo, msgFrom, msgTerm, msgLogTerm, msgIndex, msgCommit, msgReject, msgRejectHint, msgVote:
		return true
	}
	return false
}

// knownMessageTypes and knownEntryTypes mark the values this version of
// raftpb names. proto2 enums are closed: proto.Unmarshal keeps any other
// value as an unknown field instead of setting the field.
var knownMessageTypes, knownEntryTypes = enumTable(raftpb.MessageType_name), enumTable(raftpb.EntryType_name)

// enumTable turns a generated name map into a lookup table (a map lookup
// per field is a noticeable share of decoding).
func enumTable(names map[int32]string) []bool {
	var t []bool
	for v := range names {
		if v >= 0 && v < 1<<10 {
			t = append(t, make([]bool, max(0, int(v)+1-len(t)))...)
			t[v] = true
		}
	}
	return t
}

func knownMessageType(v uint64) bool {
	return v < uint64(len(knownMessageTypes)) && knownMessageTypes[v]
}

func knownEntryType(v uint64) bool { return v < uint64(len(knownEntryTypes)) && knownEntryTypes[v] }

// entryFields is an encoded entry, parsed; data aliases the encoding.
type entryFields struct {
	typ, term, index           uint64
	hasType, hasTerm, hasIndex bool
	data                       []byte
	hasData                    bool
}

// parseEntry parses the encoded entry b. ok is false for anything
// proto.Unmarshal would not decode into the four fields.
func parseEntry(b []byte) (f entryFields, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return f, false
		}
		b = b[n:]
		if num == entryData && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return f, false
			}
			b = b[n:]
			f.data, f.hasData = v, true
			continue
		}
		if typ != protowire.VarintType {
			return f, false
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return f, false
		}
		b = b[n:]
		switch num {
		case entryType:
			if !knownEntryType(v) {
				return f, false
			}
			f.typ, f.hasType = v, true
		case entryTerm:
			f.term, f.hasTerm = v, true
		case entryIndex:
			f.index, f.hasIndex = v, true
		default:
			return f, false
		}
	}
	return f, true
}

// fill sets eb from f, except for the data.
func (eb *entryBlock) fill(f *entryFields) {
	e := &eb.e
	if f.hasType {
		eb.typ = raftpb.EntryType(int32(f.typ))
		e.Type = &eb.typ
	}
	if f.hasTerm {
		eb.term, e.Term = f.term, &eb.term
	}
	if f.hasIndex {
		eb.index, e.Index = f.index, &eb.index
	}
}
