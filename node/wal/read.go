package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/ballastdb/ballast/node/protoscan"
)

// ReadAll reads the whole log, repairs a torn tail of the newest segment,
// and leaves the WAL ready for Save. It returns the metadata given to
// Create, the latest HardState (empty if none) and the entries after the
// snapshot given to Open, as raft sees them. It must be called exactly once,
// right after Open.
func (w *WAL) ReadAll() (metadata []byte, st *raftpb.HardState, ents []*raftpb.Entry, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateOpened {
		return nil, nil, nil, errors.New("wal: ReadAll may only be called once, right after Open")
	}
	r := logReader{start: w.start, lg: w.lg}
	var buf []byte
	var last *os.File
	defer func() {
		if err != nil && last != nil {
			last.Close()
		}
	}()
	var end, headerEnd int
	for i, seg := range w.segs {
		isLast := i == len(w.segs)-1
		var f *os.File
		if isLast {
			f, err = os.OpenFile(seg.path, os.O_RDWR, 0)
			last = f
		} else {
			f, err = os.Open(seg.path)
		}
		if err != nil {
			return nil, nil, nil, err
		}
		buf, err = readFile(f, buf)
		if !isLast {
			f.Close()
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("wal: read %s: %w", seg.path, err)
		}
		if end, headerEnd, err = r.readSegment(seg, buf, isLast); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := r.finish(); err != nil {
		return nil, nil, nil, err
	}
	if err := w.repairTail(last, buf, end); err != nil {
		return nil, nil, nil, err
	}

	w.metadata = r.metadata
	w.hs = r.hs
	w.snap = r.newestSnap
	w.lastIndex = r.lastIndex
	w.appendTo(last, w.lastPath(), int64(end))
	w.headerEnd = int64(headerEnd)
	w.state = stateWritable
	w.prepareNext()

	st = &raftpb.HardState{}
	if r.hs != (hardState{}) {
		st.Term, st.Vote, st.Commit = proto.Uint64(r.hs.term), proto.Uint64(r.hs.vote), proto.Uint64(r.hs.commit)
	}
	return bytes.Clone(r.metadata), st, r.ents, nil
}

// readFile reads all of f into buf, reusing its capacity.
func readFile(f *os.File, buf []byte) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return buf, err
	}
	n := int(fi.Size())
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(f, buf)
	return buf, err
}

// repairTail makes the newest segment end cleanly at end: non-zero bytes
// after it (a torn write) are overwritten with zeros, and a file shorter
// than SegmentSize is extended, so appends again never change its size.
// Zeroing every non-zero byte, not just the broken record, keeps the
// invariant that nothing valid-looking lies after the end of data.
func (w *WAL) repairTail(f *os.File, buf []byte, end int) error {
	dirty := int64(lastNonZero(buf[end:]) + 1)
	size := int64(len(buf))
	if dirty == 0 && size >= w.o.SegmentSize {
		return nil
	}
	err := zeroRange(f, int64(end), int64(end)+dirty)
	if err == nil {
		err = zeroRange(f, size, w.o.SegmentSize)
	}
	if err == nil && !w.o.NoFsync {
		err = fdatasync(f)
	}
	if err != nil {
		return fmt.Errorf("wal: repair %s: %w", f.Name(), err)
	}
	return nil
}

// logReader replays records into the log as raft sees it.
type logReader struct {
	start Snapshot // from Open: entries up to start.Index are not kept

	metadata   []byte
	hasMeta    bool
	hs         hardState
	newestSnap Snapshot
	foundStart bool
	lastIndex  uint64          // index of the last entry record
	ents       []*raftpb.Entry // ents[i].Index == start.Index+1+i
	// wrongTerm is the term of a marker at start.Index that disagrees
	// with start.Term (for the error message).
	wrongTerm *uint64
	lg        *zap.Logger
}

// readSegment replays one segment and returns where its valid data ends
// and where its first entry record starts (end if none). Only the newest
// segment may have a torn tail: older ones were made durable before their
// successor was created.
func (r *logReader) readSegment(seg segment, buf []byte, isLast bool) (end, firstEntry int, err error) {
	firstEntry = -1
	res, err := scanSegment(buf, func(off int, t recordType, data []byte) error {
		if off == 0 {
			if t != typeSegment {
				return corrupt(seg, off, reasonNoSegmentHdr)
			}
		} else if t == typeSegment {
			return corrupt(seg, off, "segment header record in the middle of a segment")
		}
		if t == typeEntry && firstEntry < 0 {
			firstEntry = off
		}
		if reason := r.apply(seg, t, data); reason != "" {
			return corrupt(seg, off, reason)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if res.end == 0 {
		return 0, 0, corrupt(seg, 0, reasonNoSegmentHdr+" ("+res.reason+")")
	}
	switch res.tail {
	case tailCorrupt:
		return 0, 0, corrupt(seg, res.end, fmt.Sprintf("%s, yet a valid record follows at offset %d", res.reason, res.validAfter))
	case tailTorn:
		if !isLast {
			return 0, 0, corrupt(seg, res.end, res.reason+", in a segment that is not the newest")
		}
		r.lg.Warn("WAL ends with a torn write that was never acknowledged (a crash interrupted it); cutting it off",
			zap.String("file", seg.path), zap.Int("offset", res.end), zap.Int("bytes", res.dirty), zap.String("reason", res.reason))
	}
	if firstEntry < 0 {
		firstEntry = res.end
	}
	return res.end, firstEntry, nil
}

func corrupt(seg segment, off int, reason string) error {
	return &ErrCorrupt{File: seg.path, Offset: int64(off), Reason: reason}
}

// apply replays one valid record; it returns why the record cannot be
// part of a consistent log, or "".
func (r *logReader) apply(seg segment, t recordType, data []byte) string {
	switch t {
	case typeSegment:
		seq, first, ok := twoUint64(data)
		if !ok || seq != seg.seq || first != seg.firstIndex {
			return fmt.Sprintf("segment header (sequence %d, first index %d) does not match the file name", seq, first)
		}
	case typeMetadata:
		if !r.hasMeta {
			r.metadata, r.hasMeta = bytes.Clone(data), true
		} else if !bytes.Equal(r.metadata, data) {
			return "metadata differs from the metadata of earlier segments"
		}
	case typeHardState:
		var hs raftpb.HardState
		if err := proto.Unmarshal(data, &hs); err != nil {
			return "undecodable HardState: " + err.Error()
		}
		r.hs = hardState{term: hs.GetTerm(), vote: hs.GetVote(), commit: hs.GetCommit()}
	case typeSnapshot:
		index, term, ok := twoUint64(data)
		if !ok {
			return "snapshot marker of the wrong size"
		}
		if index >= r.newestSnap.Index {
			r.newestSnap = Snapshot{Index: index, Term: term}
		}
		if index == r.start.Index && r.start.Index != 0 {
			if term == r.start.Term {
				r.foundStart = true
			} else {
				r.wrongTerm = &term // reported by finish
			}
		}
	case typeEntry:
		return r.applyEntry(data)
	}
	return ""
}

func (r *logReader) applyEntry(data []byte) string {
	index, ok := entryIndex(data)
	if !ok || index == 0 {
		return "entry record without a valid index"
	}
	r.lastIndex = index
	// Entries up to the snapshot are compacted away; raft never rewrites
	// them because they are committed.
	if index <= r.start.Index {
		return ""
	}
	pos := index - r.start.Index - 1
	if pos > uint64(len(r.ents)) {
		prev := r.start.Index + uint64(len(r.ents))
		return fmt.Sprintf("entry %d follows entry %d: entries are missing (if this member was opened with an older snapshot than the WAL was compacted to, open it with the newest snapshot)", index, prev)
	}
	e := &raftpb.Entry{}
	if err := proto.Unmarshal(data, e); err != nil {
		return "undecodable entry: " + err.Error()
	}
	// A lower index replaces the tail, like raft truncating a conflicting
	// suffix; clear the dropped pointers so the GC can take them.
	clear(r.ents[pos:])
	r.ents = append(r.ents[:pos], e)
	return ""
}

// finish checks the log as a whole once every segment is read.
func (r *logReader) finish() error {
	if !r.hasMeta {
		return errors.New("wal: no metadata record found in any segment")
	}
	if r.start.Index == 0 || r.foundStart {
		return nil
	}
	if r.wrongTerm != nil {
		return fmt.Errorf("%w: WAL has index %d at term %d, Open was given term %d",
			ErrSnapshotMismatch, r.start.Index, *r.wrongTerm, r.start.Term)
	}
	return fmt.Errorf("%w: index %d term %d (newest marker in the WAL: index %d term %d)",
		ErrSnapshotNotFound, r.start.Index, r.start.Term, r.newestSnap.Index, r.newestSnap.Term)
}

// entryIndex extracts the Index field (3) of a marshalled raftpb.Entry
// without unmarshalling it, so entries that the snapshot covers cost no
// allocation.
func entryIndex(b []byte) (index uint64, ok bool) {
	return protoscan.Varint(b, 3)
}
