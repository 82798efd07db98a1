package watch

import (
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"
)

// Hub fans committed events out to watchers. It is safe for concurrent use;
// Notify must be called by one goroutine in revision order.
type Hub struct {
	src Source
	o   Options
	lg  *zap.Logger

	mu sync.Mutex
	// rev is the last revision handed to Notify (the store revision at
	// NewHub before that). Everything the hub sends is relative to it.
	rev      int64
	synced   index
	unsynced index
	streams  map[*Stream]struct{}
	// pendingProgress holds streams with an unanswered RequestProgress.
	pendingProgress map[*Stream]struct{}
	closed          bool

	// Scratch space for Notify and catch-up, guarded by mu.
	round   uint32
	prev    prevCache
	matches []*watcher
	chosen  []*watcher // Notify's watchers with events
	syncSet []*watcher // the catch-up step's watchers; kept across its unlocked read
	batch   map[*watcher][]*mvccpb.Event
	resps   []*etcdserverpb.WatchResponse

	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// NewHub returns a hub serving watches on src, starting at src.Rev().
func NewHub(src Source, o Options) *Hub {
	o = o.withDefaults()
	h := &Hub{
		src:             src,
		o:               o,
		lg:              o.Logger,
		rev:             src.Rev(),
		synced:          newIndex(),
		unsynced:        newIndex(),
		streams:         make(map[*Stream]struct{}),
		pendingProgress: make(map[*Stream]struct{}),
		prev:            prevCache{src: src},
		batch:           make(map[*watcher][]*mvccpb.Event),
		kick:            make(chan struct{}, 1),
		done:            make(chan struct{}),
	}
	if !o.manual {
		h.wg.Add(1)
		go h.run()
	}
	return h
}

// NewStream opens a watch stream. On a closed hub the stream is closed too.
func (h *Hub) NewStream() *Stream {
	s := newStream(h)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.o.manual {
		go s.pump()
	}
	if h.closed {
		s.closed = true
		h.closeQueue(s)
		return s
	}
	h.streams[s] = struct{}{}
	return s
}

// Notify hands the hub the events of one committed revision. It is called
// by the apply goroutine after each write, in strictly increasing revision
// order, and never waits for a consumer: watchers whose stream is full
// become unsynced and later catch up from the Source. evs must not be
// modified afterwards; they are shared by every watcher that receives them.
// An event may carry PrevKv already; watchers that asked for prev_kv then
// skip the Source lookup. After restoring a snapshot, call Notify(newRev,
// nil): the skipped revisions are then read from the Source for every
// watcher (or reported compacted), as etcd does on restore.
func (h *Hub) Notify(rev int64, evs []*mvccpb.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	switch {
	case rev <= h.rev:
		h.lg.Error("watch hub notified of an old revision; ignoring it (the apply loop must notify each revision once, in order)",
			zap.Int64("revision", rev), zap.Int64("hub-revision", h.rev))
		return
	case rev > h.rev+1:
		// Every revision has events, so revisions were skipped: a snapshot
		// was restored (call Notify(newRev, nil) after one) or a write path
		// did not notify. Synced watchers may have missed events; they
		// catch up from the Source instead.
		h.lg.Info("watch hub skipped revisions; re-reading them from the store for every watcher",
			zap.Int64("from-revision", h.rev+1), zap.Int64("to-revision", rev))
		h.resyncAll()
		h.rev = rev
		h.kickSync()
		return
	}
	h.rev = rev
	if h.synced.n > 0 && len(evs) > 0 {
		h.fanout(rev, evs)
	}
	if len(h.pendingProgress) > 0 {
		// A watcher waiting for a future start revision may have reached it.
		h.flushProgress()
	}
}

// fanout sends the events of rev to the synced watchers they match.
func (h *Hub) fanout(rev int64, evs []*mvccpb.Event) {
	defer h.prev.reset()
	if len(evs) == 1 {
		// One event: each watcher matches at most once, no grouping needed.
		h.matches = h.synced.match(evs[0].Kv.Key, h.matches[:0])
		for _, w := range h.matches {
			if rev >= w.minRev {
				h.deliverLive(w, rev, evs)
			}
		}
		clear(h.matches)
		return
	}
	// Several events: group them per watcher, keeping their order.
	h.chosen = h.chosen[:0]
	for _, ev := range evs {
		h.matches = h.synced.match(ev.Kv.Key, h.matches[:0])
		for _, w := range h.matches {
			if rev < w.minRev {
				continue
			}
			b, ok := h.batch[w]
			if !ok {
				h.chosen = append(h.chosen, w)
			}
			h.batch[w] = append(b, ev)
		}
	}
	for _, w := range h.chosen {
		h.deliverLive(w, rev, h.batch[w])
	}
	clear(h.batch)
	clear(h.matches)
	clear(h.chosen)
}

// deliverLive queues the events of rev for a synced watcher, or makes it a
// victim when its stream is full: it leaves the synced index with minRev =
// rev (everything before rev was delivered while it was synced) and the
// catch-up reads rev again from the Source.
func (h *Hub) deliverLive(w *watcher, rev int64, evs []*mvccpb.Event) {
	evs = h.shape(w, evs)
	if len(evs) == 0 {
		w.minRev = rev + 1
		return
	}
	h.resps = h.eventResps(w, rev, evs, h.resps[:0])
	ok := w.s.offer(h.resps...)
	clear(h.resps)
	if ok {
		w.minRev = rev + 1
		w.flags |= fSent
		return
	}
	w.minRev = rev
	h.synced.remove(w)
	h.addUnsynced(w)
}

// resyncAll makes every synced watcher unsynced from the revision after
// h.rev, which is how far it is known to have got.
func (h *Hub) resyncAll() {
	var all []*watcher
	h.synced.each(func(w *watcher) bool {
		all = append(all, w)
		return true
	})
	for _, w := range all {
		h.synced.remove(w)
		w.minRev = max(w.minRev, h.rev+1)
		h.addUnsynced(w)
	}
}

func (h *Hub) addSynced(w *watcher) {
	w.synced = true
	h.synced.add(w)
}

func (h *Hub) addUnsynced(w *watcher) {
	w.synced = false
	h.unsynced.add(w)
}

// detach takes w out of whichever index holds it.
func (h *Hub) detach(w *watcher) {
	switch {
	case w.g == nil:
	case w.synced:
		h.synced.remove(w)
	default:
		h.unsynced.remove(w)
	}
}

// Stats reports how many watchers are synced and unsynced (catching up,
// including victims of slow streams), for metrics.
func (h *Hub) Stats() (synced, unsynced int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.synced.n, h.unsynced.n
}

// Close closes every stream and stops the hub goroutine. Later Notify calls
// are ignored and new streams are born closed.
func (h *Hub) Close() {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		for s := range h.streams {
			h.closeStream(s)
		}
		h.mu.Unlock()
		close(h.done)
		h.wg.Wait()
	})
}

// closeStream cancels the stream's watchers and closes its queue. Caller
// holds h.mu.
func (h *Hub) closeStream(s *Stream) {
	if s.closed {
		return
	}
	s.closed = true
	for _, w := range s.watchers {
		h.detach(w)
	}
	s.watchers = nil
	delete(h.streams, s)
	delete(h.pendingProgress, s)
	h.closeQueue(s)
}

func (h *Hub) closeQueue(s *Stream) {
	s.mu.Lock()
	s.qclosed = true
	clear(s.q)
	s.q, s.head = nil, 0
	s.mu.Unlock()
	close(s.done)
}

// kickSync wakes the hub goroutine for a catch-up step.
func (h *Hub) kickSync() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run is the hub goroutine: catch-up steps for unsynced watchers and the
// periodic progress notifications.
func (h *Hub) run() {
	defer h.wg.Done()
	syncT := time.NewTicker(h.o.SyncInterval)
	defer syncT.Stop()
	progT := time.NewTicker(h.o.ProgressInterval)
	defer progT.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-progT.C:
			h.progressTick()
		case <-syncT.C:
			h.syncStep()
		case <-h.kick:
			h.syncStep()
		}
	}
}

// syncStep runs one catch-up step and, if it moved anything, asks for
// another right away (through the kick channel, so progress ticks and Close
// are not starved by a long catch-up).
func (h *Hub) syncStep() {
	if h.syncRound() {
		h.kickSync()
	}
}
