package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segmentExt = ".wal"
	tempExt    = ".tmp"
	lockName   = "LOCK"
)

// segment is one file of the log, as named on disk.
type segment struct {
	seq        uint64
	firstIndex uint64 // every live entry of earlier segments is below this
	path       string
}

func segmentName(seq, firstIndex uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, firstIndex, segmentExt)
}

func parseSegmentName(name string) (seq, firstIndex uint64, ok bool) {
	base, found := strings.CutSuffix(name, segmentExt)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(base[:16], 16, 64)
	firstIndex, err2 := strconv.ParseUint(base[17:], 16, 64)
	return seq, firstIndex, err1 == nil && err2 == nil
}

// listSegments returns the segments of dir ordered by seq, and refuses a
// gap in the sequence: a missing file in the middle would silently drop
// entries.
func listSegments(dir string) ([]segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, de := range des {
		seq, first, ok := parseSegmentName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		segs = append(segs, segment{seq: seq, firstIndex: first, path: filepath.Join(dir, de.Name())})
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, &ErrCorrupt{File: segs[i].path, Reason: fmt.Sprintf(
				"segment sequence jumps from %d to %d: a segment file is missing", segs[i-1].seq, segs[i].seq)}
		}
	}
	return segs, nil
}

// Exist reports whether dir holds at least one WAL segment.
func Exist(dir string) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, de := range des {
		if _, _, ok := parseSegmentName(de.Name()); ok {
			return true
		}
	}
	return false
}

// removeTemps deletes segment files that were being prepared when the
// previous owner stopped. They were never renamed into the log, so they
// hold nothing of value.
func removeTemps(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if strings.HasSuffix(de.Name(), segmentExt+tempExt) {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return nil
}

func tempSegmentPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x%s%s", seq, segmentExt, tempExt))
}

// allocSegment creates path filled with size zero bytes and makes that
// durable. Writing real zeros, rather than fallocate's unwritten extents,
// means later appends change neither the size nor the extent map, so their
// fdatasync flushes data only.
func allocSegment(path string, size int64, noSync bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	err = zeroRange(f, 0, size)
	if err == nil && !noSync {
		err = fdatasync(f)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// zeroRange writes zeros over [from, to) of f.
func zeroRange(f *os.File, from, to int64) error {
	for off := from; off < to; {
		n := min(to-off, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}
