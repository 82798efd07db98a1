package watch

import (
	"math"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"
)

const (
	// maxWatchersPerSync bounds the watchers served by one catch-up step
	// (etcd's value), so one step's lock hold stays short.
	maxWatchersPerSync = 512
	// tailRevs: a catch-up window this small is read while holding the hub
	// lock. Reading outside the lock lets Notify run meanwhile, but then the
	// hub may have moved on by the time the read returns; under a steady
	// write load the last few revisions would be chased forever. Holding
	// the lock for a short final read guarantees the watcher lands synced.
	tailRevs = 64
)

// syncRound is one catch-up step for a batch of unsynced watchers: report
// compactions, read the next window of history from the Source, queue each
// watcher's share and move the ones that reached the hub revision to the
// synced index. It reports whether any watcher moved forward.
func (h *Hub) syncRound() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.unsynced.n == 0 {
		// A progress request may wait for room on a drained stream.
		h.flushProgress()
		return false
	}
	h.round++
	if h.round == 0 {
		h.round = 1 // 0 means "not chosen"
	}
	round := h.round
	cur := h.rev
	compactRev := h.src.CompactRev()

	h.syncSet = h.syncSet[:0]
	h.unsynced.each(func(w *watcher) bool {
		h.syncSet = append(h.syncSet, w)
		return len(h.syncSet) < maxWatchersPerSync
	})
	moved := false
	minRev := int64(math.MaxInt64)
	n := 0
	for _, w := range h.syncSet {
		switch {
		case w.minRev > cur:
			// Nothing to read (a watcher made unsynced by Restore with a
			// future start): it is synced by definition.
			h.unsynced.remove(w)
			h.addSynced(w)
			moved = true
		case !w.s.hasRoom():
			// Retried when the consumer drains the stream.
		case w.minRev < compactRev:
			if h.compacted(w, compactRev) {
				moved = true
			}
		default:
			w.round = round
			minRev = min(minRev, w.minRev)
			h.syncSet[n] = w
			n++
		}
	}
	clear(h.syncSet[n:])
	h.syncSet = h.syncSet[:n]
	if n == 0 {
		h.flushProgress()
		return moved
	}

	to := min(cur+1, minRev+int64(h.o.SyncBatch))
	var evs []*mvccpb.Event
	var err error
	if to-minRev <= tailRevs {
		evs, err = h.src.Events(minRev, to, 0)
	} else {
		// Read without the lock: Notify keeps running. Chosen watchers
		// stay in the unsynced index meanwhile; Cancel or Close may remove
		// them, which the loop below checks.
		h.mu.Unlock()
		evs, err = h.src.Events(minRev, to, 0)
		h.mu.Lock()
	}
	if err != nil {
		h.readFailed(err, minRev, to)
		clear(h.syncSet)
		return moved
	}

	// Group the events per chosen watcher, in order.
	for _, ev := range evs {
		h.matches = h.unsynced.match(ev.Kv.Key, h.matches[:0])
		for _, w := range h.matches {
			if w.round == round && ev.Kv.ModRevision >= w.minRev {
				h.batch[w] = append(h.batch[w], ev)
			}
		}
	}
	clear(h.matches)
	for _, w := range h.syncSet {
		if w.round != round || w.g == nil || w.synced {
			continue // canceled or closed while the lock was released
		}
		w.round = 0
		if evs := h.shape(w, h.batch[w]); len(evs) > 0 {
			// The header says how far the watcher got: to-1, even when its
			// last event is older.
			h.resps = h.eventResps(w, to-1, evs, h.resps[:0])
			ok := w.s.offer(h.resps...)
			clear(h.resps)
			if !ok {
				continue // same window again once the stream drains
			}
			w.flags |= fSent
		}
		// to is set by the slowest chosen watcher; one that started later
		// than that only moves forward.
		w.minRev = max(w.minRev, to)
		moved = true
		if w.minRev > h.rev {
			h.unsynced.remove(w)
			h.addSynced(w)
		}
	}
	h.prev.reset()
	clear(h.batch)
	clear(h.syncSet)
	h.flushProgress()
	return moved
}

// compacted sends w etcd's compaction cancellation (WatchId, CompactRevision,
// Canceled; no cancel reason) and retires the watcher. It stays known to
// the stream, as in etcd, until the client cancels it. Reports whether the
// response was queued; if not, the next step retries.
func (h *Hub) compacted(w *watcher, compactRev int64) bool {
	r := newResp(w.id, h.rev)
	r.CompactRevision = compactRev
	r.Canceled = true
	if !w.s.offer(r) {
		return false
	}
	h.unsynced.remove(w)
	w.flags |= fCompacted
	return true
}

// readFailed handles a failed history read. A read that starts at or below
// the compaction revision failed because of the compaction (it raced the
// read, or the Source does not serve the compaction revision itself, as
// node/mvcc does not): the affected watchers get the compaction response.
// Anything else is logged and retried on the next tick.
func (h *Hub) readFailed(err error, from, to int64) {
	if compactRev := h.src.CompactRev(); from <= compactRev {
		for _, w := range h.syncSet {
			if w.round == h.round && w.g != nil && !w.synced && w.minRev <= compactRev {
				w.round = 0
				h.compacted(w, compactRev)
			}
		}
		return
	}
	h.lg.Warn("watch catch-up could not read history; unsynced watchers wait and retry",
		zap.Int64("from-revision", from), zap.Int64("to-revision", to), zap.Error(err))
}
