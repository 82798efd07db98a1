package plan

import (
	"fmt"
	"testing"
)

// voter and learner build members; ordinal doubles as the ID's low digits
// so expectations read easily.
func voter(ord int, healthy bool) Member {
	return Member{ID: uint64(0x100 + ord), Ordinal: ord, Started: true, Healthy: healthy}
}

func leader(ord int) Member {
	m := voter(ord, true)
	m.Leader = true
	return m
}

func learner(ord int, started, healthy bool) Member {
	return Member{ID: uint64(0x100 + ord), Ordinal: ord, Learner: true, Started: started, Healthy: healthy}
}

func pods(ords ...int) map[int]Pod {
	m := map[int]Pod{}
	for _, o := range ords {
		m[o] = Pod{}
	}
	return m
}

func withReplace(p map[int]Pod, ord int) map[int]Pod {
	p[ord] = Pod{ReplaceRequested: true}
	return p
}

func TestNext(t *testing.T) {
	existing := func(size, replicas int, p map[int]Pod, ms ...Member) Observed {
		return Observed{Name: "c", Size: size, BootstrapState: "existing", Replicas: replicas, Pods: p, Listed: true, ClusterID: 0xabc, Members: ms}
	}
	for _, tc := range []struct {
		name string
		o    Observed
		want Action // Message is not compared
	}{
		{
			name: "paused changes nothing, even with work to do",
			o:    Observed{Name: "c", Size: 3, Paused: true, Replicas: 1, Listed: true, BootstrapState: "existing", Members: []Member{leader(0)}},
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonPaused},
		},
		{
			name: "new cluster with no pod starts ordinal 0",
			o:    Observed{Name: "c", Size: 3, BootstrapState: "new", Replicas: 0},
			want: Action{Kind: SetReplicas, Replicas: 1, Ordinal: 0, Reason: ReasonBootstrapping},
		},
		{
			name: "new cluster waits for ordinal 0",
			o:    Observed{Name: "c", Size: 3, BootstrapState: "new", Replicas: 1, Pods: pods(0)},
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonBootstrapping},
		},
		{
			name: "formed cluster flips the ConfigMap before anything else",
			o:    Observed{Name: "c", Size: 3, BootstrapState: "new", Replicas: 1, Pods: pods(0), Listed: true, ClusterID: 0xabc, Members: []Member{leader(0)}},
			want: Action{Kind: SetBootstrapExisting, Ordinal: -1, Reason: ReasonClusterFormed},
		},
		{
			name: "no member list on an existing cluster: quorum lost, no change",
			o:    Observed{Name: "c", Size: 3, BootstrapState: "existing", Replicas: 3, Pods: withReplace(pods(0, 1, 2), 1)},
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonNoQuorum},
		},
		{
			name: "scale up adds the lowest free ordinal as a learner",
			o:    existing(3, 1, pods(0), leader(0)),
			want: Action{Kind: AddLearner, Ordinal: 1, Reason: ReasonScalingUp},
		},
		{
			name: "an added learner gets its pod (operator restarted between add and replicas)",
			o:    existing(3, 1, pods(0), leader(0), learner(1, false, false)),
			want: Action{Kind: SetReplicas, Replicas: 2, Ordinal: 1, Reason: ReasonPodsForMembers},
		},
		{
			name: "an unstarted learner is waited for",
			o:    existing(3, 2, pods(0, 1), leader(0), learner(1, false, false)),
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonWaitingForLearner},
		},
		{
			name: "a started, healthy learner is promoted",
			o:    existing(3, 2, pods(0, 1), leader(0), learner(1, true, true)),
			want: Action{Kind: Promote, MemberID: 0x101, Ordinal: 1, Reason: ReasonPromoting},
		},
		{
			name: "a started learner that does not answer is not promoted",
			o:    existing(3, 2, pods(0, 1), leader(0), learner(1, true, false)),
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonLearnerUnhealthy},
		},
		{
			name: "a learner blocks further changes: no second add while one is in flight",
			o:    existing(5, 3, pods(0, 1, 2), leader(0), voter(1, true), learner(2, false, false)),
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonWaitingForLearner},
		},
		{
			name: "an unstarted learner whose pod has old data gets a fresh volume",
			o:    existing(3, 2, withReplace(pods(0, 1), 1), leader(0), learner(1, false, false)),
			want: Action{Kind: RecreatePod, Ordinal: 1, MemberID: 0x101, Reason: ReasonFreshVolume},
		},
		{
			name: "a started learner whose pod lost its data is removed",
			o:    existing(3, 2, withReplace(pods(0, 1), 1), leader(0), learner(1, true, false)),
			want: Action{Kind: Remove, MemberID: 0x101, Ordinal: 1, Reason: ReasonReplacing},
		},
		{
			name: "a learner above size is removed (size lowered during a scale-up)",
			o:    existing(1, 2, pods(0, 1), leader(0), learner(1, true, true)),
			want: Action{Kind: Remove, MemberID: 0x101, Ordinal: 1, Reason: ReasonRetiringLearner},
		},
		{
			name: "an unstarted learner above size is removed without starting its pod",
			o:    existing(1, 1, pods(0), leader(0), learner(1, false, false)),
			want: Action{Kind: Remove, MemberID: 0x101, Ordinal: 1, Reason: ReasonRetiringLearner},
		},
		{
			name: "scale up waits while a member is unhealthy",
			o:    existing(5, 3, pods(0, 1, 2), leader(0), voter(1, true), voter(2, false)),
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonScaleUpBlocked},
		},
		{
			name: "steady state",
			o:    existing(3, 3, pods(0, 1, 2), leader(0), voter(1, true), voter(2, true)),
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonReconciled},
		},
		{
			name: "scale down removes the highest non-leader",
			o:    existing(3, 5, pods(0, 1, 2, 3, 4), leader(0), voter(1, true), voter(2, true), voter(3, true), voter(4, true)),
			want: Action{Kind: Remove, MemberID: 0x104, Ordinal: 4, Reason: ReasonScalingDown},
		},
		{
			name: "scale down moves leadership off the member to remove first",
			o:    existing(3, 5, pods(0, 1, 2, 3, 4), voter(0, true), voter(1, true), voter(2, true), voter(3, true), leader(4)),
			want: Action{Kind: MoveLeader, MemberID: 0x104, TargetID: 0x100, Ordinal: 4, Reason: ReasonMovingLeader},
		},
		{
			name: "leadership goes to a healthy voter",
			o:    existing(3, 4, pods(0, 1, 2, 3), voter(0, false), voter(1, true), voter(2, true), leader(3)),
			want: Action{Kind: MoveLeader, MemberID: 0x103, TargetID: 0x101, Ordinal: 3, Reason: ReasonMovingLeader},
		},
		{
			name: "after a removal the pod goes before the next removal",
			o:    existing(3, 5, pods(0, 1, 2, 3, 4), leader(0), voter(1, true), voter(2, true), voter(3, true)),
			want: Action{Kind: SetReplicas, Replicas: 4, Ordinal: 4, Reason: ReasonShrinking},
		},
		{
			name: "scale down refused when the rest would lack a healthy quorum",
			o:    existing(2, 3, pods(0, 1, 2), leader(0), voter(1, false), voter(2, true)),
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonScaleDownBlocked},
		},
		{
			name: "an unhealthy member above size may go when the rest keep quorum",
			o:    existing(3, 4, pods(0, 1, 2, 3), leader(0), voter(1, true), voter(2, true), voter(3, false)),
			want: Action{Kind: Remove, MemberID: 0x103, Ordinal: 3, Reason: ReasonScalingDown},
		},
		{
			name: "a member whose pod lost its data is removed for replacement",
			o:    existing(3, 3, withReplace(pods(0, 1, 2), 1), leader(0), voter(1, false), voter(2, true)),
			want: Action{Kind: Remove, MemberID: 0x101, Ordinal: 1, Reason: ReasonReplacing},
		},
		{
			name: "replacement refused when the rest lack a healthy quorum",
			o:    existing(3, 3, withReplace(pods(0, 1, 2), 1), leader(0), voter(1, false), voter(2, false)),
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonReplaceBlocked},
		},
		{
			name: "a pod asking for replacement with no member left gets a fresh volume",
			o:    existing(3, 3, withReplace(pods(0, 1, 2), 1), leader(0), voter(2, true)),
			want: Action{Kind: RecreatePod, Ordinal: 1, Reason: ReasonFreshVolume},
		},
		{
			name: "a removed member's pod being deleted is left alone, and it is re-added",
			o:    existing(3, 3, map[int]Pod{0: {}, 1: {ReplaceRequested: true, Deleting: true}, 2: {}}, leader(0), voter(2, true)),
			want: Action{Kind: AddLearner, Ordinal: 1, Reason: ReasonScalingUp},
		},
		{
			name: "a hole below size is filled before members above size are removed",
			o:    existing(3, 4, pods(0, 1, 2, 3), leader(0), voter(1, true), voter(3, true)),
			want: Action{Kind: AddLearner, Ordinal: 2, Reason: ReasonScalingUp},
		},
		{
			name: "a scaled-down member asking for replacement is not replaced",
			o:    existing(3, 4, withReplace(pods(0, 1, 2, 3), 3), leader(0), voter(1, true), voter(2, true), voter(3, false)),
			want: Action{Kind: Remove, MemberID: 0x103, Ordinal: 3, Reason: ReasonScalingDown},
		},
		{
			name: "the StatefulSet is grown back when it lost a member's pod",
			o:    existing(3, 2, pods(0, 1), leader(0), voter(1, true), voter(2, true)),
			want: Action{Kind: SetReplicas, Replicas: 3, Ordinal: 2, Reason: ReasonPodsForMembers},
		},
		{
			name: "a member of no ordinal is reported, not removed",
			o:    existing(1, 1, pods(0), leader(0), Member{ID: 0x999, Ordinal: -1, Started: true, Healthy: true}),
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonUnknownMember},
		},
		{
			name: "single member scaled to three",
			o:    existing(3, 1, pods(0), leader(0)),
			want: Action{Kind: AddLearner, Ordinal: 1, Reason: ReasonScalingUp},
		},
		{
			name: "the last member is never removed",
			o:    existing(1, 2, pods(0, 1), voter(0, false), leader(1)),
			want: Action{Kind: Wait, Ordinal: -1, Reason: ReasonScaleDownBlocked},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Next(tc.o)
			if got.Message == "" {
				t.Errorf("Next: empty message in %+v", got)
			}
			got.Message = ""
			if got != tc.want {
				t.Errorf("Next:\n got  %+v\n want %+v", got, tc.want)
			}
		})
	}
}

func TestInitialReplicas(t *testing.T) {
	for _, tc := range []struct {
		o    Observed
		want int
	}{
		{Observed{}, 1},
		{Observed{Listed: true, Members: []Member{voter(0, true), voter(1, true), learner(3, false, false)}}, 4},
		{Observed{Listed: false, Members: []Member{voter(4, true)}}, 1},
	} {
		if got := InitialReplicas(tc.o); got != tc.want {
			t.Errorf("InitialReplicas(%+v) = %d, want %d", tc.o, got, tc.want)
		}
	}
}

// TestNextConverges drives Next against a tiny model of a cluster (members
// join as soon as their pod exists) from every size to every other size —
// and, in a second pass, with the size changed again after a few steps —
// and checks that the model reaches the spec with at most one learner at a
// time and never without a voter.
func TestNextConverges(t *testing.T) {
	for from := 1; from <= 9; from++ {
		for to := 1; to <= 9; to++ {
			o := existing3(from)
			o.Size = to
			simulate(t, fmt.Sprintf("%d→%d", from, to), &o, -1, 0)
			for _, mid := range []int{1, 5, 9} {
				o := existing3(from)
				o.Size = mid
				simulate(t, fmt.Sprintf("%d→%d→%d", from, mid, to), &o, 3, to)
			}
		}
	}
}

// simulate applies Next's actions to the model until it rests. After
// switchAfter steps (when >= 0) spec.size becomes newSize.
func simulate(t *testing.T, name string, o *Observed, switchAfter, newSize int) {
	t.Helper()
	nextID := uint64(0x200)
	for step := 0; ; step++ {
		if step == switchAfter {
			o.Size = newSize
		}
		if step > 200 {
			t.Fatalf("%s: no convergence after 200 steps: %+v", name, o)
		}
		a := Next(*o)
		learners, voters := 0, 0
		for _, m := range o.Members {
			if m.Learner {
				learners++
			} else {
				voters++
			}
		}
		if learners > 1 {
			t.Fatalf("%s: %d learners at once", name, learners)
		}
		if voters < 1 {
			t.Fatalf("%s: no voter left", name)
		}
		switch a.Kind {
		case Wait:
			if a.Reason == ReasonReconciled && step >= switchAfter {
				if voters != o.Size || o.Replicas != o.Size {
					t.Fatalf("%s: reconciled with %d voters and %d replicas", name, voters, o.Replicas)
				}
				return
			}
			// Model: an added member starts once its pod exists.
			changed := false
			for i, m := range o.Members {
				if !m.Started && m.Ordinal < o.Replicas {
					o.Members[i].Started, o.Members[i].Healthy = true, true
					changed = true
				}
			}
			if !changed && step >= switchAfter {
				t.Fatalf("%s: stuck waiting: %+v in %+v", name, a, o)
			}
		case SetReplicas:
			o.Replicas = a.Replicas
			o.Pods = map[int]Pod{}
			for i := 0; i < a.Replicas; i++ {
				o.Pods[i] = Pod{}
			}
		case AddLearner:
			o.Members = append(o.Members, Member{ID: nextID, Ordinal: a.Ordinal, Learner: true})
			nextID++
		case Promote:
			for i := range o.Members {
				if o.Members[i].ID == a.MemberID {
					o.Members[i].Learner = false
				}
			}
		case MoveLeader:
			for i := range o.Members {
				o.Members[i].Leader = o.Members[i].ID == a.TargetID
			}
		case Remove:
			var kept []Member
			for _, m := range o.Members {
				if m.ID != a.MemberID {
					kept = append(kept, m)
				} else if m.Leader {
					t.Fatalf("%s: removes the leader %x without moving leadership first", name, m.ID)
				}
			}
			o.Members = kept
		default:
			t.Fatalf("%s: unexpected %+v", name, a)
		}
	}
}

// existing3 is a healthy cluster of n voters led by the highest ordinal
// (the worst case for scaling down).
func existing3(n int) Observed {
	o := Observed{Name: "c", BootstrapState: "existing", Replicas: n, Pods: map[int]Pod{}, Listed: true, ClusterID: 1}
	for i := 0; i < n; i++ {
		m := voter(i, true)
		m.Leader = i == n-1
		o.Members = append(o.Members, m)
		o.Pods[i] = Pod{}
	}
	return o
}
