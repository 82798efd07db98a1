package auth

import (
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/authpb"
)

func sp(start, end string) span {
	if end == "∞" {
		return span{[]byte(start), nil}
	}
	return span{[]byte(start), []byte(end)}
}

func (rs rangeSet) String() string {
	s := ""
	for _, x := range rs {
		end := string(x.end)
		if x.end == nil {
			end = "∞"
		}
		s += fmt.Sprintf("[%q,%q)", x.start, end)
	}
	return s
}

func TestNewRangeSetMerges(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []span
		want rangeSet
	}{
		{"empty", nil, nil},
		{"one", []span{sp("a", "b")}, rangeSet{sp("a", "b")}},
		{"disjoint stay apart, sorted", []span{sp("c", "d"), sp("a", "b")}, rangeSet{sp("a", "b"), sp("c", "d")}},
		{"touching merge", []span{sp("a", "b"), sp("b", "c")}, rangeSet{sp("a", "c")}},
		{"overlapping merge", []span{sp("a", "c"), sp("b", "d")}, rangeSet{sp("a", "d")}},
		{"contained vanish", []span{sp("a", "z"), sp("b", "c")}, rangeSet{sp("a", "z")}},
		{"open end swallows the rest", []span{sp("m", "∞"), sp("x", "y"), sp("a", "b")}, rangeSet{sp("a", "b"), sp("m", "∞")}},
		{"open end extends an overlapping span", []span{sp("a", "c"), sp("b", "∞")}, rangeSet{sp("a", "∞")}},
		{"point next to its range", []span{sp("a", "a\x00"), sp("a\x00", "b")}, rangeSet{sp("a", "b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := newRangeSet(tc.in); got.String() != tc.want.String() {
				t.Fatalf("newRangeSet(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestPermSpan(t *testing.T) {
	for _, tc := range []struct {
		key, end string
		want     span
		ok       bool
	}{
		{"a", "", sp("a", "a\x00"), true},
		{"a", "b", sp("a", "b"), true},
		{"a", "\x00", sp("a", "∞"), true},
		{"\x00", "\x00", sp("\x00", "∞"), true}, // etcdctl's --prefix '' / --from-key ''
		{"", "\x00", sp("", "∞"), true},         // the same, as stored before etcd's fix
		{"b", "a", span{}, false},
		{"a", "a", span{}, false},
	} {
		got, ok := permSpan(&authpb.Permission{Key: []byte(tc.key), RangeEnd: []byte(tc.end)})
		if ok != tc.ok || (rangeSet{got}).String() != (rangeSet{tc.want}).String() {
			t.Errorf("permSpan(%q, %q) = %v, %v; want %v, %v", tc.key, tc.end, got, ok, tc.want, tc.ok)
		}
	}
}

// TestRangeSetContains checks request ranges against the union of
// permissions, in etcd's request encoding (end "" = one key, "\x00" = open).
func TestRangeSetContains(t *testing.T) {
	type q struct {
		key, end string
		want     bool
	}
	for _, tc := range []struct {
		name  string
		perms [][2]string // key, range end
		qs    []q
	}{
		{"nothing granted", nil, []q{{"a", "", false}, {"a", "b", false}, {"\x00", "\x00", false}}},
		{"single key", [][2]string{{"foo", ""}}, []q{
			{"foo", "", true}, {"fo", "", false}, {"foo0", "", false},
			{"foo", "foo\x00", true}, {"foo", "foo0", false},
		}},
		{"prefix", [][2]string{{"foo", "fop"}}, []q{
			{"foo", "", true}, {"foo/bar", "", true}, {"fop", "", false}, {"fo", "", false},
			{"foo", "fop", true}, {"foo/a", "foo/b", true}, {"foo", "foq", false}, {"fo", "fop", false},
			{"foo", "\x00", false},
		}},
		{"adjacent grants cover a range across them", [][2]string{{"a", "c"}, {"c", "e"}}, []q{
			{"b", "d", true}, {"a", "e", true}, {"a", "f", false},
		}},
		{"a gap breaks coverage", [][2]string{{"a", "c"}, {"d", "e"}}, []q{
			{"b", "d", false}, {"c", "", false}, {"d", "", true},
		}},
		{"from key", [][2]string{{"m", "\x00"}}, []q{
			{"m", "", true}, {"zzz", "", true}, {"l", "", false}, {"m", "\x00", true}, {"n", "\x00", true}, {"l", "\x00", false},
		}},
		{"every key, as etcdctl grants it for an empty key", [][2]string{{"\x00", "\x00"}}, []q{
			{"\x00", "", true}, {"a", "", true}, {"\xff\xff", "", true},
			{"\x00", "\x00", true}, // etcdctl get --prefix ''
			{"a", "z", true},
		}},
		{"every key, empty key as stored by old versions", [][2]string{{"", "\x00"}}, []q{
			{"\x00", "\x00", true}, {"a", "", true},
		}},
		{"inverted request range", [][2]string{{"a", "z"}}, []q{{"m", "c", true}, {"m", "0", false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var spans []span
			for _, p := range tc.perms {
				if s, ok := permSpan(&authpb.Permission{Key: []byte(p[0]), RangeEnd: []byte(p[1])}); ok {
					spans = append(spans, s)
				}
			}
			rs := newRangeSet(spans)
			for _, x := range tc.qs {
				if got := rs.contains([]byte(x.key), []byte(x.end)); got != x.want {
					t.Errorf("%v contains(%q, %q) = %v, want %v", rs, x.key, x.end, got, x.want)
				}
			}
		})
	}
}

func TestMergePermsByType(t *testing.T) {
	roles := map[string]*authpb.Role{
		"r": {Name: []byte("r"), KeyPermission: []*authpb.Permission{
			{PermType: authpb.Permission_READ, Key: []byte("r"), RangeEnd: []byte("s")},
			{PermType: authpb.Permission_WRITE, Key: []byte("w"), RangeEnd: []byte("x")},
		}},
		"rw": {Name: []byte("rw"), KeyPermission: []*authpb.Permission{
			{PermType: authpb.Permission_READWRITE, Key: []byte("b")},
		}},
	}
	p := mergePerms(&authpb.User{Roles: []string{"missing", "r", "rw"}}, roles)
	for _, tc := range []struct {
		key         string
		read, write bool
	}{
		{"r1", true, false},
		{"w1", false, true},
		{"b", true, true},
		{"c", false, false},
	} {
		if got := p.read.containsKey([]byte(tc.key)); got != tc.read {
			t.Errorf("read %q = %v, want %v", tc.key, got, tc.read)
		}
		if got := p.write.containsKey([]byte(tc.key)); got != tc.write {
			t.Errorf("write %q = %v, want %v", tc.key, got, tc.write)
		}
	}
}
