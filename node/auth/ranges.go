package auth

import (
	"bytes"
	"slices"

	"go.etcd.io/etcd/api/v3/authpb"
)

// span is the key range [start, end). A nil end means "to the end of the key
// space" (etcd's range end "\x00").
type span struct {
	start, end []byte
}

// rangeSet is a union of key ranges, normalised to spans sorted by start,
// none overlapping or touching another. A range is then inside the union
// exactly when it is inside one span, which is what etcd's interval-tree
// Contains computes for the intervals of a user's roles.
type rangeSet []span

// pointEnd is the end of the range holding just key: the next key in byte
// order is key followed by a zero byte.
func pointEnd(key []byte) []byte {
	return append(key[:len(key):len(key)], 0)
}

// isOpenEnd reports etcd's "no upper bound" range end.
func isOpenEnd(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// permSpan is the key range a role permission covers, as etcd reads it:
//   - no range end: the single key;
//   - range end "\x00": every key from Key on. etcdctl writes Key "\x00"
//     and range end "\x00" for an empty key with --prefix or --from-key, etcd's
//     fix for an empty key (etcd-io/etcd#8494): that is every key. An empty
//     Key (stored by versions before the fix) is read the same way;
//   - otherwise [Key, RangeEnd); ok is false when that is empty.
func permSpan(p *authpb.Permission) (sp span, ok bool) {
	switch end := p.GetRangeEnd(); {
	case len(end) == 0:
		return span{p.GetKey(), pointEnd(p.GetKey())}, true
	case isOpenEnd(end):
		return span{p.GetKey(), nil}, true
	case bytes.Compare(p.GetKey(), end) < 0:
		return span{p.GetKey(), end}, true
	}
	return span{}, false
}

// compareEnd orders range ends, nil (unbounded) last.
func compareEnd(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

// newRangeSet merges spans into their union.
func newRangeSet(spans []span) rangeSet {
	if len(spans) == 0 {
		return nil
	}
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(a, b span) int { return bytes.Compare(a.start, b.start) })
	out := rangeSet{sorted[0]}
	for _, sp := range sorted[1:] {
		last := &out[len(out)-1]
		// Overlapping or touching ([a,b) and [b,c)): extend the last span.
		if last.end == nil || bytes.Compare(sp.start, last.end) <= 0 {
			if compareEnd(sp.end, last.end) > 0 {
				last.end = sp.end
			}
			continue
		}
		out = append(out, sp)
	}
	return out
}

// covering returns the span that holds key, if any.
func (rs rangeSet) covering(key []byte) (span, bool) {
	// The last span starting at or before key is the only candidate.
	i, found := slices.BinarySearchFunc(rs, key, func(sp span, k []byte) int { return bytes.Compare(sp.start, k) })
	if !found {
		i--
	}
	if i < 0 {
		return span{}, false
	}
	sp := rs[i]
	return sp, sp.end == nil || bytes.Compare(key, sp.end) < 0
}

// containsKey reports whether key is in the union.
func (rs rangeSet) containsKey(key []byte) bool {
	_, ok := rs.covering(key)
	return ok
}

// contains reports whether the request range [key, end) is inside the union,
// with etcd's request encoding: an empty end is the single key, "\x00" is
// every key from key on. An inverted range (end before key), which selects
// nothing, is allowed when the keys between the two are.
func (rs rangeSet) contains(key, end []byte) bool {
	switch {
	case len(end) == 0:
		return rs.containsKey(key)
	case isOpenEnd(end):
		end = nil
	case bytes.Compare(end, key) < 0:
		key, end = end, pointEnd(key)
	}
	sp, ok := rs.covering(key)
	return ok && compareEnd(end, sp.end) <= 0
}
