package wal

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/ballastdb/ballast/node/raftwire"
)

// maxKeptBuf caps the encoding buffer kept between Saves, so one huge
// batch does not pin its memory forever.
const maxKeptBuf = 4 << 20

// Save appends ents and then st (if not empty) in one write, and makes them
// durable with one fdatasync when sync is true (raft.MustSync). Entries
// whose index is at or below an earlier entry's replace that entry and
// everything after it, as raft's log does.
func (w *WAL) Save(st *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	hasState := !raft.IsEmptyHardState(st)
	if !hasState && len(ents) == 0 {
		return nil
	}
	buf := w.buf[:0]
	var err error
	for _, e := range ents {
		if buf, err = appendEntry(buf, e); err != nil {
			return err
		}
	}
	var hs hardState
	if hasState {
		hs = hardState{term: st.GetTerm(), vote: st.GetVote(), commit: st.GetCommit()}
		buf = appendHardState(buf, hs)
	}
	// The new segment's firstIndex must stay a bound on the live entries of
	// all older segments: those are <= lastIndex, or were replaced by this
	// batch if it starts lower.
	first := w.lastIndex + 1
	if len(ents) > 0 && ents[0].GetIndex() < first {
		first = ents[0].GetIndex()
	}
	err = w.write(buf, first, sync)
	if cap(buf) <= maxKeptBuf {
		w.buf = buf
	} else {
		w.buf = nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		w.lastIndex = ents[len(ents)-1].GetIndex()
	}
	if hasState {
		w.hs = hs
	}
	return nil
}

// SaveSnapshot records that the log may start after s, and makes the
// record durable. Save the snapshot itself (package snap) first: a marker
// must never point at a snapshot that does not exist.
func (w *WAL) SaveSnapshot(s Snapshot) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writable(); err != nil {
		return err
	}
	var b [headerSize + 16]byte
	buf := appendTwoUint64(b[:0], typeSnapshot, s.Index, s.Term)
	if err := w.write(buf, w.lastIndex+1, true); err != nil {
		return err
	}
	if s.Index >= w.snap.Index {
		w.snap = s
	}
	return nil
}

func (w *WAL) writable() error {
	switch {
	case w.err != nil:
		return w.err
	case w.state == stateOpened:
		return errors.New("wal: ReadAll must be called after Open and before writing")
	case w.state == stateClosed:
		return errors.New("wal: closed")
	}
	return nil
}

// write puts buf at the end of the log, in a new segment if it does not fit
// the current one. A batch is never split: one write call, one fdatasync.
func (w *WAL) write(buf []byte, firstIndex uint64, sync bool) error {
	// A batch larger than a whole segment goes alone into a fresh segment,
	// which then simply grows past its preallocated size.
	if w.off+int64(len(buf)) > w.o.SegmentSize && w.off > w.headerEnd {
		if err := w.cut(firstIndex); err != nil {
			return w.fail(err)
		}
	}
	// A direct write reaches the disk before it returns, so the time
	// reported as the fdatasync's counts it too: the figure users watch
	// for a slow disk stays whole.
	start := time.Now()
	var err error
	if w.direct != nil {
		if err = w.direct.write(buf); errors.Is(err, syscall.EINVAL) {
			w.stopDirect(err) // refused before any byte was written
		}
	}
	if w.direct == nil {
		_, err = w.f.WriteAt(buf, w.off)
		start = time.Now()
	}
	if err != nil {
		return w.fail(err)
	}
	w.off += int64(len(buf))
	if sync {
		if err := w.syncSince(start); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

func appendEntry(buf []byte, e *raftpb.Entry) ([]byte, error) {
	// Index 0 is not a raft index; recovery relies on every entry having one.
	if e.GetIndex() == 0 {
		return buf, errors.New("wal: entry without an index")
	}
	buf, start := beginRecord(buf)
	buf = raftwire.AppendEntry(buf, e)
	if len(buf)-start-headerSize > maxDataLen {
		return buf[:start], fmt.Errorf("wal: entry %d is larger than %d bytes", e.GetIndex(), maxDataLen)
	}
	return finishRecord(buf, start, typeEntry), nil
}

// appendHardState writes hs as a hard state record.
func appendHardState(buf []byte, hs hardState) []byte {
	buf, start := beginRecord(buf)
	buf = raftwire.AppendHardState(buf, hs.term, hs.vote, hs.commit)
	return finishRecord(buf, start, typeHardState)
}
