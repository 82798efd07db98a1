package watch

import (
	"errors"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

var errTestCompacted = errors.New("test: compacted")

// memSource is an in-memory Source: an append-only event log plus the
// version history of every key.
type memSource struct {
	mu      sync.Mutex
	rev     int64
	compact int64
	log     []*mvccpb.Event
	hist    map[string][]*mvccpb.KeyValue // newest last; a deletion is a KeyValue with Version 0
	// strict makes Events fail for from <= compact (instead of from <
	// compact), the stricter contract some adapters may implement.
	strict bool
	// onEvents runs at the start of every Events call, without the lock.
	onEvents func(from, to int64)
	reads    int
	failNext error // returned once by the next Events call
}

func newMemSource() *memSource { return &memSource{hist: make(map[string][]*mvccpb.KeyValue)} }

type op struct {
	key, val string
	del      bool
}

func put(k, v string) op { return op{key: k, val: v} }
func del(k string) op    { return op{key: k, del: true} }

// apply commits ops as one revision and returns it with its events.
func (m *memSource) apply(ops ...op) (int64, []*mvccpb.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	rev := m.rev
	var evs []*mvccpb.Event
	for _, o := range ops {
		h := m.hist[o.key]
		var last *mvccpb.KeyValue
		if len(h) > 0 && h[len(h)-1].Version > 0 {
			last = h[len(h)-1]
		}
		if o.del {
			if last == nil {
				continue
			}
			m.hist[o.key] = append(h, &mvccpb.KeyValue{Key: []byte(o.key), ModRevision: rev})
			evs = append(evs, &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte(o.key), ModRevision: rev}})
			continue
		}
		kv := &mvccpb.KeyValue{Key: []byte(o.key), Value: []byte(o.val), ModRevision: rev, CreateRevision: rev, Version: 1}
		if last != nil {
			kv.CreateRevision, kv.Version = last.CreateRevision, last.Version+1
		}
		m.hist[o.key] = append(h, kv)
		evs = append(evs, &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv})
	}
	m.log = append(m.log, evs...)
	return rev, evs
}

func (m *memSource) setCompact(rev int64) {
	m.mu.Lock()
	m.compact = rev
	m.mu.Unlock()
}

func (m *memSource) Rev() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev
}

func (m *memSource) CompactRev() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.compact
}

func (m *memSource) Events(from, to int64, limit int) ([]*mvccpb.Event, error) {
	if m.onEvents != nil {
		m.onEvents(from, to)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if err := m.failNext; err != nil {
		m.failNext = nil
		return nil, err
	}
	if from < m.compact || (m.strict && from <= m.compact) {
		return nil, errTestCompacted
	}
	var out []*mvccpb.Event
	for _, ev := range m.log {
		r := ev.Kv.ModRevision
		if r < from || r >= to {
			continue
		}
		if limit > 0 && len(out) >= limit && r != out[len(out)-1].Kv.ModRevision {
			break
		}
		out = append(out, ev)
	}
	return out, nil
}

func (m *memSource) KeyAt(key []byte, rev int64) (*mvccpb.KeyValue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.hist[string(key)]
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].ModRevision <= rev {
			if h[i].Version == 0 {
				return nil, nil
			}
			return h[i], nil
		}
	}
	return nil, nil
}
