package watch

// progressReady reports whether a progress notification at the hub revision
// is true for w: it is synced (everything up to h.rev is queued) and not
// waiting for a future start revision.
func (h *Hub) progressReady(w *watcher) bool {
	return w.synced && w.g != nil && w.startRev <= h.rev
}

// flushProgress answers pending RequestProgress calls whose streams are now
// entirely synced. The notification is queued behind every event up to
// h.rev, so it is a valid bookmark. Caller holds h.mu.
func (h *Hub) flushProgress() {
	for s := range h.pendingProgress {
		ready, live := true, 0
		for _, w := range s.watchers {
			if w.flags&fCompacted != 0 {
				continue // receives nothing more; must not block the stream
			}
			live++
			if !h.progressReady(w) {
				ready = false
				break
			}
		}
		switch {
		case live == 0:
			// etcd sends nothing to a stream without watchers.
			delete(h.pendingProgress, s)
		case ready:
			if s.offer(newResp(invalidID, h.rev)) {
				delete(h.pendingProgress, s)
			}
		}
	}
}

// progressTick sends the periodic progress notification (WatchId = the
// watcher's, no events, Header.Revision = h.rev) to each progress_notify
// watcher that was sent no events since the previous tick, like etcd.
// Watchers that are not synced are skipped: events are on their way. A
// full stream drops the notification.
func (h *Hub) progressTick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams {
		if s.progress == 0 {
			continue
		}
		for _, w := range s.watchers {
			if w.flags&fProgress == 0 {
				continue
			}
			if w.flags&fSent != 0 {
				w.flags &^= fSent
				continue
			}
			if h.progressReady(w) {
				s.offer(newResp(w.id, h.rev))
			}
		}
	}
}
