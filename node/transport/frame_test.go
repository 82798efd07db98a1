package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func msgApp(from, to, index uint64, entries, entrySize int) *raftpb.Message {
	m := &raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: proto.Uint64(from), To: proto.Uint64(to),
		Term: proto.Uint64(3), LogTerm: proto.Uint64(3), Index: proto.Uint64(index), Commit: proto.Uint64(index),
	}
	for i := 0; i < entries; i++ {
		m.Entries = append(m.Entries, &raftpb.Entry{
			Term: proto.Uint64(3), Index: proto.Uint64(index + uint64(i) + 1), Type: raftpb.EntryNormal.Enum(),
			Data: bytes.Repeat([]byte{byte(i)}, entrySize),
		})
	}
	return m
}

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		msgs []*raftpb.Message
	}{
		{"empty message", []*raftpb.Message{{}}},
		{"heartbeat", []*raftpb.Message{{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(7)}}},
		{"append", []*raftpb.Message{msgApp(1, 2, 10, 100, 256)}},
		{"several", []*raftpb.Message{msgApp(1, 2, 10, 3, 10), {Type: raftpb.MsgVote.Enum()}, msgApp(1, 2, 13, 1, 2<<20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf []byte
			for i, m := range tt.msgs {
				var err error
				if buf, err = appendFrame(buf, m); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					buf = appendKeepalive(buf) // keepalives are skipped
				}
			}
			fr := newFrameReader(bytes.NewReader(buf))
			var got []*raftpb.Message
			total := 0
			for {
				m, n, err := fr.next()
				total += n
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if m != nil {
					got = append(got, m)
				}
			}
			if total != len(buf) {
				t.Fatalf("read %d bytes, wrote %d", total, len(buf))
			}
			if len(got) != len(tt.msgs) {
				t.Fatalf("got %d messages, want %d", len(got), len(tt.msgs))
			}
			for i := range got {
				if !proto.Equal(got[i], tt.msgs[i]) {
					t.Fatalf("message %d differs after the round trip", i)
				}
			}
		})
	}
}

func TestFrameReaderErrors(t *testing.T) {
	good, _ := appendFrame(nil, msgApp(1, 2, 1, 2, 8))
	huge := binary.BigEndian.AppendUint32([]byte{frameMessage}, maxFrameSize+1)
	tests := []struct {
		name string
		in   []byte
		want error
		msg  string // substring of the error when want is nil
	}{
		{"clean end", nil, io.EOF, ""},
		{"cut header", good[:2], io.ErrUnexpectedEOF, ""},
		{"cut payload", good[:len(good)-1], io.ErrUnexpectedEOF, ""},
		{"too large", huge, errFrameTooLarge, ""},
		{"large length, few bytes", binary.BigEndian.AppendUint32([]byte{frameMessage}, 200<<20), io.ErrUnexpectedEOF, ""},
		{"garbage payload", []byte{frameMessage, 0, 0, 0, 2, 0xff, 0xff}, nil, "bad raft message"},
		{"unknown kind", []byte{7, 0, 0, 0, 0}, errBadFrame, ""},
		{"keepalive with payload", []byte{frameKeepalive, 0, 0, 0, 1, 0}, errBadFrame, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := newFrameReader(bytes.NewReader(tt.in)).next()
			switch {
			case err == nil:
				t.Fatal("no error")
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("error %v, want %v", err, tt.want)
			case tt.want == nil && !strings.Contains(err.Error(), tt.msg):
				t.Fatalf("error %v, want one mentioning %q", err, tt.msg)
			}
		})
	}
}

// FuzzDecodeFrame feeds arbitrary bytes to the frame reader: it must never
// panic, never allocate far beyond its input, and whatever it decodes must
// survive re-encoding.
func FuzzDecodeFrame(f *testing.F) {
	for _, m := range []*raftpb.Message{{}, msgApp(1, 2, 5, 2, 16), {Type: raftpb.MsgSnap.Enum(), Snapshot: &raftpb.Snapshot{Data: []byte("x")}}} {
		b, _ := appendFrame(nil, m)
		f.Add(b)
	}
	f.Add([]byte{frameKeepalive, 0, 0, 0, 0})
	f.Add([]byte{frameMessage, 0, 0, 0, 0})
	f.Add([]byte{frameMessage, 0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := newFrameReader(bytes.NewReader(in))
		for consumed := 0; ; {
			m, n, err := fr.next()
			consumed += n
			if consumed > len(in) {
				t.Fatalf("consumed %d of %d bytes", consumed, len(in))
			}
			if cap(fr.buf) > len(in)+frameGrowStep {
				t.Fatalf("buffer of %d bytes for %d bytes of input", cap(fr.buf), len(in))
			}
			if err != nil {
				return
			}
			if m == nil {
				continue
			}
			b, err := appendFrame(nil, m)
			if err != nil {
				t.Fatalf("re-encoding a decoded message: %v", err)
			}
			m2, _, err := newFrameReader(bytes.NewReader(b)).next()
			if err != nil || !proto.Equal(m, m2) {
				t.Fatalf("re-encoded message does not decode to itself: %v", err)
			}
		}
	})
}
