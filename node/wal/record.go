package wal

import (
	"encoding/binary"
	"hash/crc32"
)

// recordType tags a record. New on-disk versions get new types; old readers
// then refuse them as unknown instead of misreading them.
type recordType uint8

const (
	typeSegment   recordType = 1 // data: seq uint64, firstIndex uint64 (LE)
	typeMetadata  recordType = 2 // data: opaque bytes given to Create
	typeEntry     recordType = 3 // data: marshalled raftpb.Entry
	typeHardState recordType = 4 // data: marshalled raftpb.HardState
	typeSnapshot  recordType = 5 // data: index uint64, term uint64 (LE)
)

func (t recordType) known() bool { return t >= typeSegment && t <= typeSnapshot }

const (
	headerSize = 16
	align      = 8
	// maxDataLen bounds a single record so that a damaged length field
	// cannot make the reader allocate or checksum absurd amounts of data.
	maxDataLen = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// typeCRC[t] is crc32c of the single byte t: the seed for a record's data
// CRC, precomputed so that encoding does not allocate a one-byte slice.
var typeCRC [256]uint32

func init() {
	for i := range typeCRC {
		typeCRC[i] = crc32.Update(0, castagnoli, []byte{byte(i)})
	}
}

func dataCRC(t recordType, data []byte) uint32 {
	return crc32.Update(typeCRC[t], castagnoli, data)
}

var zeroHeader [headerSize]byte

// beginRecord reserves room for a header at the end of buf; the caller
// appends the data and then calls finishRecord with the returned start.
func beginRecord(buf []byte) ([]byte, int) {
	return append(buf, zeroHeader[:]...), len(buf)
}

// finishRecord fills in the header of the record that starts at start and
// pads it to the alignment. start must itself be aligned.
func finishRecord(buf []byte, start int, t recordType) []byte {
	data := buf[start+headerSize:]
	h := buf[start : start+headerSize]
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(data)))
	binary.LittleEndian.PutUint32(h[4:8], dataCRC(t, data))
	h[8] = byte(t)
	h[9], h[10], h[11] = 0, 0, 0
	binary.LittleEndian.PutUint32(h[12:16], crc32.Checksum(h[0:12], castagnoli))
	if pad := (align - len(buf)%align) % align; pad > 0 {
		buf = append(buf, zeroHeader[:pad]...)
	}
	return buf
}

func appendRecord(buf []byte, t recordType, data []byte) []byte {
	buf, start := beginRecord(buf)
	buf = append(buf, data...)
	return finishRecord(buf, start, t)
}

func appendTwoUint64(buf []byte, t recordType, a, b uint64) []byte {
	buf, start := beginRecord(buf)
	buf = binary.LittleEndian.AppendUint64(buf, a)
	buf = binary.LittleEndian.AppendUint64(buf, b)
	return finishRecord(buf, start, t)
}

// Reasons a record is not valid. reasonZero is not damage: it is how the
// end of data looks in a preallocated segment.
const (
	reasonZero         = "zero header (end of data)"
	reasonShortHeader  = "truncated record header"
	reasonHeaderCRC    = "record header checksum mismatch"
	reasonReserved     = "reserved header bytes are not zero"
	reasonUnknownType  = "unknown record type"
	reasonTooLong      = "record length exceeds the limit"
	reasonPastEnd      = "record extends past the end of the file"
	reasonDataCRC      = "record data checksum mismatch"
	reasonBadPadding   = "record padding is missing or not zero"
	reasonNoSegmentHdr = "segment does not start with a segment header record"
)

// headerLen returns the data length of the record header at off if the
// header itself is intact, whatever the state of the data.
func headerLen(buf []byte, off int) (int, bool) {
	if len(buf)-off < headerSize {
		return 0, false
	}
	h := buf[off : off+headerSize]
	n := binary.LittleEndian.Uint32(h[0:4])
	if crc32.Checksum(h[0:12], castagnoli) != binary.LittleEndian.Uint32(h[12:16]) ||
		h[9]|h[10]|h[11] != 0 || !recordType(h[8]).known() || n > maxDataLen {
		return 0, false
	}
	return int(n), true
}

// readRecord decodes the record at off (aligned) in buf. It returns a
// non-empty reason when there is no valid record there; data aliases buf.
func readRecord(buf []byte, off int) (t recordType, data []byte, next int, reason string) {
	rest := buf[off:]
	if len(rest) < headerSize {
		if allZero(rest) {
			return 0, nil, 0, reasonZero
		}
		return 0, nil, 0, reasonShortHeader
	}
	h := rest[:headerSize]
	if binary.LittleEndian.Uint64(h[0:8]) == 0 && binary.LittleEndian.Uint64(h[8:16]) == 0 {
		return 0, nil, 0, reasonZero
	}
	if crc32.Checksum(h[0:12], castagnoli) != binary.LittleEndian.Uint32(h[12:16]) {
		return 0, nil, 0, reasonHeaderCRC
	}
	if h[9]|h[10]|h[11] != 0 {
		return 0, nil, 0, reasonReserved
	}
	t = recordType(h[8])
	if !t.known() {
		return 0, nil, 0, reasonUnknownType
	}
	n := uint64(binary.LittleEndian.Uint32(h[0:4]))
	if n > maxDataLen {
		return 0, nil, 0, reasonTooLong
	}
	// n <= 1 GiB, so these sums cannot overflow an int on 64-bit, and on
	// 32-bit they are compared as uint64 first.
	if headerSize+n > uint64(len(rest)) {
		return 0, nil, 0, reasonPastEnd
	}
	end := headerSize + int(n)
	data = rest[headerSize:end]
	if dataCRC(t, data) != binary.LittleEndian.Uint32(h[4:8]) {
		return 0, nil, 0, reasonDataCRC
	}
	padded := alignUp(end)
	if padded > len(rest) || !allZero(rest[end:padded]) {
		return 0, nil, 0, reasonBadPadding
	}
	return t, data, off + padded, ""
}

func alignUp(n int) int { return (n + align - 1) &^ (align - 1) }

func twoUint64(data []byte) (a, b uint64, ok bool) {
	if len(data) != 16 {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(data[0:8]), binary.LittleEndian.Uint64(data[8:16]), true
}

// maxDataLen must fit the uint32 length field; this fails to compile if not.
const _ = uint32(maxDataLen)
