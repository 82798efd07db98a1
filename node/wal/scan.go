package wal

import "bytes"

// tailKind says what follows the last valid record of a segment.
type tailKind int

const (
	// tailClean: only zeros (or nothing) follow. The normal case.
	tailClean tailKind = iota
	// tailTorn: invalid bytes follow, but no valid record after them. In
	// the newest segment this is a write cut short by a crash.
	tailTorn
	// tailCorrupt: an invalid record is followed by a valid one, so
	// data the writer had finished with was damaged afterwards.
	tailCorrupt
)

// scanResult describes a segment after scanSegment walked it.
type scanResult struct {
	end    int      // offset just past the last valid record
	tail   tailKind // what lies at end
	reason string   // why the record at end is invalid (tailTorn, tailCorrupt)
	// dirty is the length of the region starting at end that holds
	// non-zero bytes: what a torn-tail repair discards.
	dirty int
	// validAfter is the offset of a valid record found after end
	// (tailCorrupt only).
	validAfter int
}

// scanSegment calls fn for every valid record of buf in order, then
// classifies what follows the last one. An error from fn stops the scan and
// is returned as is. It never panics on arbitrary input (FuzzReadRecords).
func scanSegment(buf []byte, fn func(off int, t recordType, data []byte) error) (scanResult, error) {
	off := 0
	for off < len(buf) {
		t, data, next, reason := readRecord(buf, off)
		if reason != "" {
			return classifyTail(buf, off, reason), nil
		}
		if err := fn(off, t, data); err != nil {
			return scanResult{end: off}, err
		}
		off = next
	}
	return scanResult{end: off, tail: tailClean}, nil
}

// classifyTail decides whether the invalid bytes at end are a torn write or
// damage in the middle of the log: damage iff some aligned offset after end
// holds a valid record. A crash can leave a partial last write, but it
// cannot produce a complete, checksummed record after a broken one, because
// the writer only ever appends.
func classifyTail(buf []byte, end int, reason string) scanResult {
	r := scanResult{end: end, reason: reason}
	last := lastNonZero(buf[end:])
	if last < 0 {
		r.tail = tailClean
		return r
	}
	r.dirty = last + 1
	limit := end + r.dirty // no record can start in the zeros after this
	start := end + align
	// When the broken record's header is intact its extent is known, and
	// its data may be user bytes that happen to form a valid record: do
	// not mistake those for a later record.
	if n, ok := headerLen(buf, end); ok {
		start = max(start, end+alignUp(headerSize+n))
	}
	for o := start; o < limit; o += align {
		if _, _, _, why := readRecord(buf, o); why == "" {
			r.tail, r.validAfter = tailCorrupt, o
			return r
		}
	}
	r.tail = tailTorn
	return r
}

// zeros is a shared source of zero bytes for comparisons and for filling
// files. Never written to.
var zeros [1 << 20]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// lastNonZero returns the index of the last non-zero byte of b, or -1. It
// walks backwards in large chunks because a preallocated segment is mostly
// zeros after its data.
func lastNonZero(b []byte) int {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		chunk := b[len(b)-n:]
		if !bytes.Equal(chunk, zeros[:n]) {
			for i := n - 1; i >= 0; i-- {
				if chunk[i] != 0 {
					return len(b) - n + i
				}
			}
		}
		b = b[:len(b)-n]
	}
	return -1
}
