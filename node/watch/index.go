package watch

import (
	"bytes"
	"sort"
)

// group is the set of watchers that watch exactly the same key or range.
type group struct {
	key, end []byte // as in watcher
	ws       []*watcher
}

// index finds the watchers interested in a key: single-key watchers through
// a map, range watchers through a list of distinct ranges sorted by start
// key, so a lookup only compares the ranges that start at or before the key.
// (A range-heavy deployment, like kube-apiserver's prefix watches, has few
// distinct ranges; an interval tree can replace the list if that changes.)
type index struct {
	keys   map[string]*group
	ranges []*group // sorted by (key, end); end "" (open) sorts last
	n      int      // watchers in the index
}

func newIndex() index { return index{keys: make(map[string]*group)} }

func (x *index) add(w *watcher) {
	var g *group
	if w.end == nil {
		g = x.keys[string(w.key)]
		if g == nil {
			g = &group{key: w.key}
			x.keys[string(w.key)] = g
		}
	} else {
		i := sort.Search(len(x.ranges), func(i int) bool { return !rangeLess(x.ranges[i], w.key, w.end) })
		if i < len(x.ranges) && bytes.Equal(x.ranges[i].key, w.key) && bytes.Equal(x.ranges[i].end, w.end) {
			g = x.ranges[i]
		} else {
			g = &group{key: w.key, end: w.end}
			x.ranges = append(x.ranges, nil)
			copy(x.ranges[i+1:], x.ranges[i:])
			x.ranges[i] = g
		}
	}
	w.g, w.pos = g, int32(len(g.ws))
	g.ws = append(g.ws, w)
	x.n++
}

// remove takes w out of the index it is in; w.g must belong to x.
func (x *index) remove(w *watcher) {
	g := w.g
	last := len(g.ws) - 1
	moved := g.ws[last]
	g.ws[w.pos], moved.pos = moved, w.pos
	g.ws[last] = nil
	g.ws = g.ws[:last]
	w.g, w.pos = nil, 0
	x.n--
	if last > 0 {
		return
	}
	if g.end == nil {
		delete(x.keys, string(g.key))
		return
	}
	i := sort.Search(len(x.ranges), func(i int) bool { return !rangeLess(x.ranges[i], g.key, g.end) })
	copy(x.ranges[i:], x.ranges[i+1:])
	x.ranges[len(x.ranges)-1] = nil
	x.ranges = x.ranges[:len(x.ranges)-1]
}

// match appends to dst the watchers whose key or range contains k.
func (x *index) match(k []byte, dst []*watcher) []*watcher {
	if g := x.keys[string(k)]; g != nil {
		dst = append(dst, g.ws...)
	}
	for _, g := range x.ranges {
		if bytes.Compare(g.key, k) > 0 {
			break // sorted by start: no later range can contain k
		}
		if len(g.end) == 0 || bytes.Compare(k, g.end) < 0 {
			dst = append(dst, g.ws...)
		}
	}
	return dst
}

// each calls fn for every watcher until fn returns false. fn must not change
// the index. Map order makes the visiting order vary between calls, which
// keeps a bounded catch-up step from always picking the same watchers.
func (x *index) each(fn func(*watcher) bool) {
	for _, g := range x.keys {
		for _, w := range g.ws {
			if !fn(w) {
				return
			}
		}
	}
	for _, g := range x.ranges {
		for _, w := range g.ws {
			if !fn(w) {
				return
			}
		}
	}
}

// rangeLess orders range groups by start key, then end key, with the open
// end (empty) last.
func rangeLess(g *group, key, end []byte) bool {
	if c := bytes.Compare(g.key, key); c != 0 {
		return c < 0
	}
	switch {
	case len(g.end) == 0:
		return false
	case len(end) == 0:
		return true
	}
	return bytes.Compare(g.end, end) < 0
}
