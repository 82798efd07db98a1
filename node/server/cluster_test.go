package server

import (
	"slices"
	"testing"

	"github.com/ballastdb/ballast/node/membership"
)

// ms builds members from a compact description: "s" a started voter, "u" an
// unstarted voter, "l" a learner (started).
func ms(desc string) []*membership.Member {
	var out []*membership.Member
	for i, c := range desc {
		m := &membership.Member{ID: uint64(i + 1), PeerURLs: []string{"http://p"}}
		switch c {
		case 's':
			m.Name = "m"
		case 'l':
			m.Name, m.IsLearner = "m", true
		}
		out = append(out, m)
	}
	return out
}

func TestStrictReconfigRules(t *testing.T) {
	for _, tc := range []struct {
		members     string
		add         bool
		removeFirst bool // remove member 1
		promote     bool
	}{
		// A lone started member may add a second voter (etcd's exception).
		{members: "s", add: true, removeFirst: false, promote: true},
		// 2 started of 3: a 4th voter needs 3 started; a promoted learner
		// counts as started, so it may join.
		{members: "ssu", add: false, removeFirst: false, promote: true},
		{members: "sss", add: true, removeFirst: true, promote: true},
		// N never-started members added to N: the trap the check prevents.
		{members: "ssuu", add: false, removeFirst: false, promote: true},
		{members: "sssu", add: true, removeFirst: true, promote: true},
		{members: "suu", add: false, removeFirst: false, promote: false},
		// Learners do not count as voters.
		{members: "sl", add: true, removeFirst: false, promote: true},
		{members: "ssl", add: true, removeFirst: true, promote: true},
	} {
		m := ms(tc.members)
		if got := readyToAddVoter(m); got != tc.add {
			t.Errorf("%s: readyToAddVoter = %v, want %v", tc.members, got, tc.add)
		}
		if got := readyToRemoveVoter(m, 1); got != tc.removeFirst {
			t.Errorf("%s: readyToRemoveVoter(1) = %v, want %v", tc.members, got, tc.removeFirst)
		}
		if got := readyToPromote(m); got != tc.promote {
			t.Errorf("%s: readyToPromote = %v, want %v", tc.members, got, tc.promote)
		}
	}
}

func TestCheckPeerURLs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		ok   bool
	}{
		{in: []string{"http://10.0.0.2:2380"}, want: []string{"http://10.0.0.2:2380"}, ok: true},
		{in: []string{"https://b:2380", "http://a:2380/"}, want: []string{"http://a:2380", "https://b:2380"}, ok: true},
		{in: nil},
		{in: []string{"10.0.0.2:2380"}},
		{in: []string{"unix://x"}},
		{in: []string{"http://a:2380/path"}},
	} {
		got, err := checkPeerURLs(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !slices.Equal(got, tc.want)) {
			t.Errorf("checkPeerURLs(%q) = %q, %v", tc.in, got, err)
		}
	}
}
