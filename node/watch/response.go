package watch

import (
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// invalidID is the watch ID of responses that belong to no watcher: failed
// creates and stream-wide progress notifications (clientv3.InvalidWatchID).
const invalidID = -1

// respAlloc puts a response, its header and room for one event in a single
// allocation; most responses carry exactly one event.
type respAlloc struct {
	r   etcdserverpb.WatchResponse
	h   etcdserverpb.ResponseHeader
	one [1]*mvccpb.Event
}

// newResp returns a response with its own header (the API layer fills the
// header in place, so headers are never shared).
func newResp(id, rev int64) *etcdserverpb.WatchResponse {
	a := &respAlloc{}
	a.h.Revision = rev
	a.r.Header = &a.h
	a.r.WatchId = id
	return &a.r
}

func newEventResp(id, rev int64, ev *mvccpb.Event) *etcdserverpb.WatchResponse {
	a := &respAlloc{}
	a.h.Revision = rev
	a.r.Header = &a.h
	a.r.WatchId = id
	a.one[0] = ev
	a.r.Events = a.one[:]
	return &a.r
}

// isCreate reports whether ev created its key; etcd attaches no prev_kv to
// those (there is nothing before them).
func isCreate(ev *mvccpb.Event) bool {
	return ev.Type == mvccpb.Event_PUT && ev.Kv.CreateRevision == ev.Kv.ModRevision
}

// prevCache resolves prev_kv once per event for all watchers that want it.
// Events handed to Notify are shared by every watcher, so prev_kv never
// mutates them: watchers that want it get a copy with PrevKv filled.
type prevCache struct {
	src Source
	m   map[*mvccpb.Event]*mvccpb.Event
}

func (c *prevCache) withPrev(ev *mvccpb.Event) *mvccpb.Event {
	if ev.PrevKv != nil || isCreate(ev) {
		return ev
	}
	if e, ok := c.m[ev]; ok {
		return e
	}
	e := ev
	// A failed or empty lookup (e.g. the previous revision was compacted)
	// leaves prev_kv unset, as in etcd.
	if kv, err := c.src.KeyAt(ev.Kv.Key, ev.Kv.ModRevision-1); err == nil && kv != nil {
		e = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv, PrevKv: kv}
	}
	if c.m == nil {
		c.m = make(map[*mvccpb.Event]*mvccpb.Event)
	}
	c.m[ev] = e
	return e
}

// withoutPrev strips a PrevKv the producer attached, for watchers that did
// not ask for it.
func withoutPrev(ev *mvccpb.Event) *mvccpb.Event {
	if ev.PrevKv == nil {
		return ev
	}
	return &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
}

func (c *prevCache) reset() { clear(c.m) }

// shape applies the watcher's filters and prev_kv choice to evs. It returns
// evs itself when nothing changes, so the common case allocates nothing.
func (h *Hub) shape(w *watcher, evs []*mvccpb.Event) []*mvccpb.Event {
	needCopy := w.filtered()
	if !needCopy {
		for _, ev := range evs {
			if (w.flags&fPrevKV != 0) != (ev.PrevKv != nil) {
				needCopy = true
				break
			}
		}
	}
	if !needCopy {
		return evs
	}
	out := make([]*mvccpb.Event, 0, len(evs))
	for _, ev := range evs {
		if !w.keep(ev) {
			continue
		}
		if w.flags&fPrevKV != 0 {
			ev = h.prev.withPrev(ev)
		} else {
			ev = withoutPrev(ev)
		}
		out = append(out, ev)
	}
	return out
}

// eventResps builds the responses carrying evs to w at header revision rev:
// one response, or fragments when the watcher asked for them and the
// response is big. Fragments follow etcd: every fragment holds at least one
// event, all but the last have Fragment=true, and a fragment stays below
// MaxRequestBytes unless it is a single event.
func (h *Hub) eventResps(w *watcher, rev int64, evs []*mvccpb.Event, dst []*etcdserverpb.WatchResponse) []*etcdserverpb.WatchResponse {
	if len(evs) == 1 {
		return append(dst, newEventResp(w.id, rev, evs[0]))
	}
	r := newResp(w.id, rev)
	r.Events = evs
	if w.flags&fFragment == 0 {
		return append(dst, r)
	}
	limit := h.o.MaxRequestBytes
	sizes := make([]int, len(evs))
	total := 0
	for i, ev := range evs {
		sizes[i] = 1 + protowire.SizeBytes(proto.Size(ev)) // tag of field 11 is one byte
		total += sizes[i]
	}
	r.Events = nil
	if proto.Size(r)+total < limit {
		r.Events = evs
		return append(dst, r)
	}
	r.Fragment = true
	base := proto.Size(r)
	for i := 0; i < len(evs); {
		j, size := i+1, base+sizes[i]
		for j < len(evs) && size+sizes[j] < limit {
			size += sizes[j]
			j++
		}
		f := newResp(w.id, rev)
		f.Events = evs[i:j:j]
		f.Fragment = j < len(evs)
		dst = append(dst, f)
		i = j
	}
	return dst
}
