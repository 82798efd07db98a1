package wal

import (
	"bytes"
	"errors"
	"testing"

	"go.uber.org/zap"
)

// sampleSegment encodes a plausible segment without touching the disk.
func sampleSegment() []byte {
	w := &WAL{metadata: []byte("node-1/cluster-7"), hs: hardState{term: 2, vote: 1, commit: 3}}
	buf := w.headerRecords(nil, 1, 1)
	for _, e := range ents(1, 5, 2) {
		buf, _ = appendEntry(buf, e)
	}
	buf = appendHardState(buf, hardState{term: 2, vote: 1, commit: 5})
	buf = appendTwoUint64(buf, typeSnapshot, 3, 2)
	buf, _ = appendEntry(buf, ent(4, 3, "rewrite"))
	return buf
}

// FuzzReadRecords feeds arbitrary bytes as a segment: decoding must never
// panic, every record it accepts must re-encode to exactly the bytes it
// came from, and the tail classification must be consistent.
func FuzzReadRecords(f *testing.F) {
	seg := sampleSegment()
	f.Add(seg)
	f.Add(seg[:len(seg)/2])
	f.Add(append(bytes.Clone(seg), make([]byte, 100)...))
	flipped := bytes.Clone(seg)
	flipped[len(flipped)/2] ^= 0x40
	f.Add(flipped)
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		next := 0
		res, err := scanSegment(data, func(off int, typ recordType, payload []byte) error {
			if off != next {
				t.Fatalf("record at %d, previous one ended at %d", off, next)
			}
			enc := appendRecord(nil, typ, payload)
			if off+len(enc) > len(data) || !bytes.Equal(enc, data[off:off+len(enc)]) {
				t.Fatalf("record at %d does not re-encode to its bytes", off)
			}
			next = off + len(enc)
			return nil
		})
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		if res.end != next || res.end%align != 0 {
			t.Fatalf("end %d, last record ended at %d", res.end, next)
		}
		switch res.tail {
		case tailClean:
			if !allZero(data[res.end:]) {
				t.Fatalf("clean tail at %d has non-zero bytes", res.end)
			}
		case tailTorn:
			if res.reason == "" || res.dirty == 0 {
				t.Fatalf("torn tail without reason or extent: %+v", res)
			}
		case tailCorrupt:
			if _, _, _, why := readRecord(data, res.validAfter); why != "" || res.validAfter <= res.end {
				t.Fatalf("corrupt tail, but no valid record at %d: %s", res.validAfter, why)
			}
		}

		// The full replay of record payloads either succeeds or reports
		// ErrCorrupt; it never panics.
		r := logReader{lg: zap.NewNop(), start: Snapshot{Index: 2}}
		if _, _, err := r.readSegment(segment{seq: 1, firstIndex: 1, path: "fuzz"}, data, true); err != nil {
			var ce *ErrCorrupt
			if !errors.As(err, &ce) {
				t.Fatalf("readSegment: %v is not ErrCorrupt", err)
			}
		}
	})
}
