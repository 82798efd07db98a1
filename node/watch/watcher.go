package watch

import (
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// watcher flags.
const (
	fPrevKV    uint16 = 1 << iota // attach the previous value to events
	fFragment                     // split big responses
	fProgress                     // periodic progress notifications
	fNoPut                        // drop PUT events
	fNoDelete                     // drop DELETE events
	fSent                         // events sent since the last progress tick
	fCompacted                    // canceled by compaction; kept until the client cancels
)

// watcher is one watch on a stream. All fields are guarded by Hub.mu.
// It is small on purpose: a hub holds hundreds of thousands of them.
type watcher struct {
	key []byte
	// end is nil for a single key, empty (non-nil) for "key and everything
	// after it", else the exclusive end of the range.
	end []byte
	s   *Stream
	id  int64
	// minRev is the next revision the watcher may be sent. Invariant: every
	// matching event below minRev has been queued on the stream (or predates
	// the watch). For a synced watcher the hub revision is the real bound
	// and minRev may lag it, except for a future start where minRev > rev+1.
	minRev int64
	// startRev is the requested start revision, 0 for "now". Progress is
	// withheld while it is ahead of the hub (etcd 3.6+: a progress
	// notification below the start revision would move a resuming client
	// backwards).
	startRev int64
	// g and pos locate the watcher in h.synced or h.unsynced (g.ws[pos]);
	// g is nil when the watcher is in neither (compacted).
	g      *group
	pos    int32
	flags  uint16
	synced bool
	// round marks the watchers chosen for the current catch-up step.
	round uint32
}

func newWatcher(s *Stream, id int64, key, end []byte, req *etcdserverpb.WatchCreateRequest) *watcher {
	w := &watcher{s: s, id: id, key: key, end: end, startRev: req.StartRevision}
	if req.PrevKv {
		w.flags |= fPrevKV
	}
	if req.Fragment {
		w.flags |= fFragment
	}
	if req.ProgressNotify {
		w.flags |= fProgress
	}
	for _, f := range req.Filters {
		switch f {
		case etcdserverpb.WatchCreateRequest_NOPUT:
			w.flags |= fNoPut
		case etcdserverpb.WatchCreateRequest_NODELETE:
			w.flags |= fNoDelete
		}
	}
	return w
}

// normalize applies etcd's create-request conventions: an empty key means
// "\x00" (the smallest key), an empty range end a single key and a range
// end of "\x00" every key from key on.
func normalize(key, end []byte) ([]byte, []byte) {
	if len(key) == 0 {
		key = []byte{0}
	}
	switch {
	case len(end) == 0:
		end = nil
	case len(end) == 1 && end[0] == 0:
		end = []byte{}
	}
	return key, end
}

// keep reports whether the watcher's filters let ev through.
func (w *watcher) keep(ev *mvccpb.Event) bool {
	if ev.Type == mvccpb.Event_PUT {
		return w.flags&fNoPut == 0
	}
	return w.flags&fNoDelete == 0
}

// filtered reports whether the watcher has filters at all.
func (w *watcher) filtered() bool { return w.flags&(fNoPut|fNoDelete) != 0 }
