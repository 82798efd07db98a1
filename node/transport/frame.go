package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ballastdb/ballast/node/raftwire"
)

// Wire format of a message stream (the body of POST /raft/stream) and of the
// head of a snapshot request (POST /raft/snapshot):
//
//	frame     = kind length payload
//	kind      = 1 byte: 1 message, 2 keepalive (any other value is an error)
//	length    = 4 bytes, big-endian uint32: the size of payload
//	payload   = a protobuf-encoded raftpb.Message (empty for a keepalive)
//
// A keepalive carries no message: the sender writes one when its stream has
// been idle, so that both ends notice a dead connection. A stream is a
// sequence of frames and ends with the request.
// A snapshot request is one frame (the MsgSnap) followed by the raw db bytes.

const (
	frameHeaderSize = 5
	frameMessage    = 1
	frameKeepalive  = 2
	// maxFrameSize bounds one message. raft caps MsgApp at MaxSizePerMsg, but
	// a single large entry may exceed it, so the bound is generous; memory is
	// only committed as the bytes actually arrive.
	maxFrameSize = 256 << 20
	// frameGrowStep is how much of a frame's buffer is allocated ahead of
	// the bytes that arrived, so a bogus length cannot make us allocate
	// maxFrameSize up front.
	frameGrowStep = 1 << 20
)

var (
	errFrameTooLarge = errors.New("transport: frame exceeds the maximum message size")
	errBadFrame      = errors.New("transport: bad frame")
)

// appendFrame appends m, framed, to buf.
func appendFrame(buf []byte, m *raftpb.Message) ([]byte, error) {
	start := len(buf)
	buf = append(buf, frameMessage, 0, 0, 0, 0)
	buf, err := raftwire.AppendMessage(buf, m)
	if err != nil {
		return buf[:start], err
	}
	n := len(buf) - start - frameHeaderSize
	if n > maxFrameSize {
		return buf[:start], fmt.Errorf("%w (%d bytes)", errFrameTooLarge, n)
	}
	binary.BigEndian.PutUint32(buf[start+1:], uint32(n))
	return buf, nil
}

// appendKeepalive appends an empty frame.
func appendKeepalive(buf []byte) []byte { return append(buf, frameKeepalive, 0, 0, 0, 0) }

// frameReader reads frames from a stream, reusing one buffer.
type frameReader struct {
	r   io.Reader
	max int
	buf []byte
}

func newFrameReader(r io.Reader) *frameReader { return &frameReader{r: r, max: maxFrameSize} }

// next reads one frame. It returns the message (nil for a keepalive) and the
// number of bytes the frame took on the wire. At a clean end of stream, between
// frames, it returns io.EOF; a stream cut inside a frame gives
// io.ErrUnexpectedEOF.
func (fr *frameReader) next() (*raftpb.Message, int, error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		return nil, 0, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	switch hdr[0] {
	case frameMessage:
	case frameKeepalive:
		if n != 0 {
			return nil, frameHeaderSize, fmt.Errorf("%w: keepalive with a %d-byte payload", errBadFrame, n)
		}
		return nil, frameHeaderSize, nil
	default:
		return nil, frameHeaderSize, fmt.Errorf("%w: unknown kind %d", errBadFrame, hdr[0])
	}
	if n > fr.max {
		return nil, frameHeaderSize, fmt.Errorf("%w (%d bytes, limit %d)", errFrameTooLarge, n, fr.max)
	}
	if err := fr.fill(n); err != nil {
		return nil, frameHeaderSize, err
	}
	// The message does not alias the buffer, so the buffer can be reused.
	m, err := raftwire.DecodeMessage(fr.buf[:n])
	if err != nil {
		return nil, frameHeaderSize + n, fmt.Errorf("transport: bad raft message: %w", err)
	}
	return m, frameHeaderSize + n, nil
}

// fill reads exactly n bytes into fr.buf[:n], growing the buffer no faster
// than the data arrives.
func (fr *frameReader) fill(n int) error {
	if cap(fr.buf) >= n {
		fr.buf = fr.buf[:n]
		_, err := io.ReadFull(fr.r, fr.buf)
		return noEOF(err)
	}
	fr.buf = fr.buf[:0]
	for len(fr.buf) < n {
		step := min(n-len(fr.buf), max(frameGrowStep, len(fr.buf)))
		have := len(fr.buf)
		fr.buf = slices.Grow(fr.buf, step)[:have+step]
		if _, err := io.ReadFull(fr.r, fr.buf[have:]); err != nil {
			return noEOF(err)
		}
	}
	return nil
}

// shrink drops a buffer grown for an unusually large frame.
func (fr *frameReader) shrink() {
	if cap(fr.buf) > 4*frameGrowStep {
		fr.buf = nil
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
