package wal

import (
	"io"
	"os"
)

// Recognize tells whether dir holds a WAL in this package's format: its
// first segment starts with an intact segment header record. A WAL written by
// another program (etcd's, as left by `etcdutl snapshot restore`) does not.
func Recognize(dir string) bool {
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		return false
	}
	f, err := os.Open(segs[0].path)
	if err != nil {
		return false
	}
	defer f.Close()
	var h [headerSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return false
	}
	_, ok := headerLen(h[:], 0)
	return ok && recordType(h[8]) == typeSegment
}
