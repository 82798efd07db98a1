// Package plan decides the operator's next step for one EtcdCluster. Next
// is a pure function from what the reconciler observed — spec, StatefulSet,
// pods, the bootstrap state and the member list — to exactly one Action,
// in the spirit of raft's Ready: the reconciler performs the action,
// observes again and asks again. Because the decision depends on nothing
// but the observation, an operator killed after any step makes the same
// decision when it comes back, and every rule can be tested with a table.
//
// The rules keep etcd's strict reconfiguration: at most one membership
// change in flight (a learner blocks further changes until it is promoted
// or removed), members join as learners, and a voter is only removed while
// the remaining voters keep a healthy quorum.
package plan

import (
	"fmt"
	"sort"
)

// Observed is one observation of a cluster.
type Observed struct {
	// Name of the cluster, for messages.
	Name string
	// Size is spec.size: the number of voting members wanted.
	Size int
	// Paused is spec.paused.
	Paused bool
	// BootstrapState is the bootstrap ConfigMap's initial cluster state:
	// "new" until the cluster has formed, then "existing".
	BootstrapState string
	// Replicas is the StatefulSet's spec.replicas.
	Replicas int
	// Pods by ordinal; an ordinal without a pod is absent.
	Pods map[int]Pod
	// Listed is true when a linearizable member list succeeded, which
	// needs a quorum. Members and ClusterID are only meaningful then.
	Listed    bool
	ClusterID uint64
	Members   []Member
}

// Member is one listed member, with what its status request said.
type Member struct {
	ID uint64
	// Ordinal is the ordinal whose peer URL the member has; -1 for a
	// peer URL that belongs to no ordinal of this cluster.
	Ordinal int
	Learner bool
	// Started: the member has joined and published its name.
	Started bool
	// Healthy: it answered a status request and knows a leader.
	Healthy bool
	Leader  bool
}

// Pod is what matters of a member pod.
type Pod struct {
	// ReplaceRequested: the container is not running and its last run
	// ended with join.ReplaceMarker — it cannot go on as the member the
	// cluster knows (its data is gone, or the cluster removed its ID).
	ReplaceRequested bool
	// Deleting: the pod has a deletion timestamp.
	Deleting bool
}

// Kind of action.
type Kind string

const (
	// Wait: nothing to do now; Reason says what the cluster waits for.
	Wait Kind = "Wait"
	// SetBootstrapExisting flips the bootstrap ConfigMap to "existing".
	SetBootstrapExisting Kind = "SetBootstrapExisting"
	// SetReplicas sets the StatefulSet's replicas.
	SetReplicas Kind = "SetReplicas"
	// AddLearner adds a learner with the peer URL of Ordinal.
	AddLearner Kind = "AddLearner"
	// Promote makes learner MemberID a voter.
	Promote Kind = "Promote"
	// Remove removes MemberID.
	Remove Kind = "Remove"
	// MoveLeader moves leadership from MemberID to TargetID.
	MoveLeader Kind = "MoveLeader"
	// RecreatePod deletes the volume claim and the pod of Ordinal, so the
	// StatefulSet starts it again on a fresh volume.
	RecreatePod Kind = "RecreatePod"
)

// Reasons: CamelCase, for conditions and events.
const (
	ReasonPaused            = "Paused"
	ReasonBootstrapping     = "Bootstrapping"
	ReasonNoQuorum          = "QuorumLost"
	ReasonClusterFormed     = "ClusterFormed"
	ReasonPodsForMembers    = "StartingMemberPods"
	ReasonRetiringLearner   = "RemovingLearner"
	ReasonWaitingForLearner = "WaitingForLearner"
	ReasonPromoting         = "PromotingLearner"
	ReasonLearnerUnhealthy  = "WaitingForLearnerHealth"
	ReasonReplacing         = "ReplacingMember"
	ReasonFreshVolume       = "ReplacingMemberVolume"
	ReasonReplaceBlocked    = "ReplaceWouldLoseQuorum"
	ReasonScalingUp         = "ScalingUp"
	ReasonScalingDown       = "ScalingDown"
	ReasonScaleUpBlocked    = "WaitingForHealthyMembers"
	ReasonScaleDownBlocked  = "ScaleDownWouldLoseQuorum"
	ReasonMovingLeader      = "MovingLeader"
	ReasonShrinking         = "RemovingMemberPods"
	ReasonUnknownMember     = "UnknownMember"
	ReasonReconciled        = "Reconciled"
)

// Action is the one step to take now.
type Action struct {
	Kind Kind
	// Replicas for SetReplicas.
	Replicas int
	// Ordinal of the member or pod concerned (AddLearner, RecreatePod,
	// and for messages); -1 when none.
	Ordinal int
	// MemberID for Promote, Remove, MoveLeader.
	MemberID uint64
	// TargetID for MoveLeader.
	TargetID uint64
	// Reason and Message explain the step (or the wait) to humans.
	Reason  string
	Message string
}

// Progressing reports whether the action changes the cluster or waits for
// a change already under way, as opposed to resting.
func (a Action) Progressing() bool {
	return !(a.Kind == Wait && (a.Reason == ReasonReconciled || a.Reason == ReasonPaused))
}

func wait(reason, format string, args ...any) Action {
	return Action{Kind: Wait, Ordinal: -1, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// InitialReplicas is the replica count of a StatefulSet created now: one
// pod to bootstrap a new cluster, or one per listed member when the
// StatefulSet is re-created under a running cluster.
func InitialReplicas(o Observed) int {
	n := 1
	if o.Listed {
		for _, m := range o.Members {
			if m.Ordinal+1 > n {
				n = m.Ordinal + 1
			}
		}
	}
	return n
}

// Next decides the next step. The rules, first match wins:
//
//  1. paused: nothing.
//  2. no member list: a new cluster waits for ordinal 0 to form it; an
//     existing one has lost quorum — no membership change without quorum.
//  3. the cluster has formed but the ConfigMap still says "new": flip it,
//     before any later member can start.
//  4. a listed member's ordinal has no pod: grow the StatefulSet to it.
//  5. a learner exists (one change in flight): remove it if its ordinal is
//     no longer wanted or its pod asks to be replaced, give it a fresh
//     volume if its pod cannot join, wait until it has started, then
//     promote it once healthy.
//  6. a member's pod asks to be replaced: remove the member while the
//     others keep quorum; a pod asking with no member left gets a fresh
//     volume (it is re-added by rule 7).
//  7. fewer than size members among the wanted ordinals: with every member
//     healthy, add a learner for the lowest free ordinal.
//  8. pods above both the highest member and size: shrink the StatefulSet.
//  9. members above size: move leadership off the highest one, then remove
//     it while the remaining voters keep a healthy quorum.
//  10. otherwise the cluster is as specified.
func Next(o Observed) Action {
	if o.Paused {
		return wait(ReasonPaused, "spec.paused is set: the operator changes nothing")
	}
	if !o.Listed {
		if o.BootstrapState != "existing" {
			if o.Replicas < 1 {
				return Action{Kind: SetReplicas, Replicas: 1, Ordinal: 0, Reason: ReasonBootstrapping,
					Message: fmt.Sprintf("starting member %s-0 to form the cluster", o.Name)}
			}
			return wait(ReasonBootstrapping, "waiting for member %s-0 to form the cluster", o.Name)
		}
		return wait(ReasonNoQuorum, "the cluster does not answer a linearizable member list (no quorum or no member reachable); membership is left unchanged until it does")
	}
	if o.BootstrapState != "existing" {
		return Action{Kind: SetBootstrapExisting, Ordinal: -1, Reason: ReasonClusterFormed,
			Message: fmt.Sprintf("cluster %x formed; later members join it as learners", o.ClusterID)}
	}

	members := append([]Member(nil), o.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Ordinal < members[j].Ordinal })
	byOrdinal := map[int]Member{}
	maxOrdinal := -1
	for _, m := range members {
		if m.Ordinal < 0 {
			continue
		}
		byOrdinal[m.Ordinal] = m
		if m.Ordinal > maxOrdinal {
			maxOrdinal = m.Ordinal
		}
	}

	// 4. Every listed member needs its pod, an added learner included —
	// except a learner that rule 5 is about to remove.
	need := -1
	for _, m := range members {
		if m.Ordinal > need && !(m.Learner && m.Ordinal >= o.Size) {
			need = m.Ordinal
		}
	}
	if o.Replicas < need+1 {
		return Action{Kind: SetReplicas, Replicas: need + 1, Ordinal: need, Reason: ReasonPodsForMembers,
			Message: fmt.Sprintf("growing the StatefulSet to %d pods for member %s-%d", need+1, o.Name, need)}
	}

	// 5. A learner is the membership change in flight.
	for _, l := range members {
		if !l.Learner {
			continue
		}
		name := memberName(o.Name, l.Ordinal)
		if l.Ordinal < 0 || l.Ordinal >= o.Size {
			return Action{Kind: Remove, MemberID: l.ID, Ordinal: l.Ordinal, Reason: ReasonRetiringLearner,
				Message: fmt.Sprintf("removing learner %s (%x): spec.size is %d", name, l.ID, o.Size)}
		}
		if !l.Started {
			if p, ok := o.Pods[l.Ordinal]; ok && p.ReplaceRequested && !p.Deleting {
				return Action{Kind: RecreatePod, Ordinal: l.Ordinal, MemberID: l.ID, Reason: ReasonFreshVolume,
					Message: fmt.Sprintf("pod %s cannot join as learner %x with its old data; re-creating it on a fresh volume", name, l.ID)}
			}
			return wait(ReasonWaitingForLearner, "waiting for pod %s to join as learner %x", name, l.ID)
		}
		if p, ok := o.Pods[l.Ordinal]; ok && p.ReplaceRequested {
			return Action{Kind: Remove, MemberID: l.ID, Ordinal: l.Ordinal, Reason: ReasonReplacing,
				Message: fmt.Sprintf("removing learner %s (%x), whose pod reports it cannot rejoin; it is added back as a new learner", name, l.ID)}
		}
		if !l.Healthy {
			return wait(ReasonLearnerUnhealthy, "waiting for learner %s (%x) to answer status before promoting it", name, l.ID)
		}
		return Action{Kind: Promote, MemberID: l.ID, Ordinal: l.Ordinal, Reason: ReasonPromoting,
			Message: fmt.Sprintf("promoting learner %s (%x) to a voting member", name, l.ID)}
	}

	voters, healthyVoters := 0, 0
	allHealthy := true
	for _, m := range members {
		if !m.Healthy {
			allHealthy = false
		}
		if !m.Learner {
			voters++
			if m.Healthy {
				healthyVoters++
			}
		}
	}
	// canRemove: the voters left after removing m keep a healthy quorum.
	canRemove := func(m Member) bool {
		left, healthyLeft := voters-1, healthyVoters
		if m.Healthy {
			healthyLeft--
		}
		return left >= 1 && healthyLeft >= left/2+1
	}

	// 6. Replacement of members that cannot go on.
	for _, m := range members {
		if m.Ordinal < 0 || m.Ordinal >= o.Size {
			continue
		}
		if p, ok := o.Pods[m.Ordinal]; !ok || !p.ReplaceRequested {
			continue
		}
		name := memberName(o.Name, m.Ordinal)
		if !canRemove(m) {
			return wait(ReasonReplaceBlocked, "member %s (%x) must be replaced, but removing it would leave the other members without a healthy quorum", name, m.ID)
		}
		return Action{Kind: Remove, MemberID: m.ID, Ordinal: m.Ordinal, Reason: ReasonReplacing,
			Message: fmt.Sprintf("removing member %s (%x), whose pod reports it cannot rejoin; it is added back as a new learner", name, m.ID)}
	}
	for _, ord := range sortedOrdinals(o.Pods) {
		p := o.Pods[ord]
		if _, listed := byOrdinal[ord]; listed || ord >= o.Size || !p.ReplaceRequested || p.Deleting {
			continue
		}
		return Action{Kind: RecreatePod, Ordinal: ord, Reason: ReasonFreshVolume,
			Message: fmt.Sprintf("pod %s holds data of a removed member; re-creating it on a fresh volume", memberName(o.Name, ord))}
	}

	// 7. Scale up, one learner at a time, only while every member is
	// healthy.
	wanted := 0
	free := -1
	for i := 0; i < o.Size; i++ {
		if _, ok := byOrdinal[i]; ok {
			wanted++
		} else if free < 0 {
			free = i
		}
	}
	if wanted < o.Size {
		if !allHealthy {
			return wait(ReasonScaleUpBlocked, "%d of %d members; waiting for every member to be healthy before adding %s", wanted, o.Size, memberName(o.Name, free))
		}
		return Action{Kind: AddLearner, Ordinal: free, Reason: ReasonScalingUp,
			Message: fmt.Sprintf("adding %s as a learner (%d of %d members)", memberName(o.Name, free), wanted, o.Size)}
	}

	// 8. Pods that hold no member and are not wanted.
	keep := maxOrdinal + 1
	if keep < o.Size {
		keep = o.Size
	}
	if o.Replicas > keep {
		return Action{Kind: SetReplicas, Replicas: keep, Ordinal: keep, Reason: ReasonShrinking,
			Message: fmt.Sprintf("shrinking the StatefulSet to %d pods", keep)}
	}

	// 9. Scale down from the highest ordinal.
	if n := len(members); n > 0 && members[n-1].Ordinal >= o.Size {
		m := members[n-1]
		name := memberName(o.Name, m.Ordinal)
		if m.Leader {
			for _, t := range members {
				if !t.Learner && t.Healthy && t.Ordinal >= 0 && t.Ordinal < o.Size {
					return Action{Kind: MoveLeader, MemberID: m.ID, TargetID: t.ID, Ordinal: m.Ordinal, Reason: ReasonMovingLeader,
						Message: fmt.Sprintf("moving leadership from %s (%x) to %s (%x) before removing it", name, m.ID, memberName(o.Name, t.Ordinal), t.ID)}
				}
			}
			return wait(ReasonScaleDownBlocked, "member %s (%x) leads and no other healthy voter can take over", name, m.ID)
		}
		if !canRemove(m) {
			return wait(ReasonScaleDownBlocked, "removing member %s (%x) would leave the other members without a healthy quorum", name, m.ID)
		}
		return Action{Kind: Remove, MemberID: m.ID, Ordinal: m.Ordinal, Reason: ReasonScalingDown,
			Message: fmt.Sprintf("removing member %s (%x): spec.size is %d", name, m.ID, o.Size)}
	}

	for _, m := range members {
		if m.Ordinal < 0 {
			return wait(ReasonUnknownMember, "member %x has a peer URL of no pod of this cluster; remove it by hand if it does not belong", m.ID)
		}
	}
	return wait(ReasonReconciled, "%d members, as specified", len(members))
}

func memberName(cluster string, ordinal int) string {
	if ordinal < 0 {
		return "(unknown)"
	}
	return fmt.Sprintf("%s-%d", cluster, ordinal)
}

func sortedOrdinals(pods map[int]Pod) []int {
	out := make([]int, 0, len(pods))
	for k := range pods {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
