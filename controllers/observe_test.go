package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/ballastdb/ballast/node/join"
)

func TestReplaceRequested(t *testing.T) {
	marker := join.ReplaceMarker + " data lost: member 8e9e05c52164694d"
	term := func(msg string) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ExitCode: 3, Message: msg}
	}
	for _, tc := range []struct {
		name string
		cs   corev1.ContainerStatus
		want bool
	}{
		{"terminated with the marker", corev1.ContainerStatus{Name: "ballast", State: corev1.ContainerState{Terminated: term(marker)}}, true},
		{"in back-off after the marker", corev1.ContainerStatus{Name: "ballast",
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: term(marker)}}, true},
		{"running again: the old marker no longer counts", corev1.ContainerStatus{Name: "ballast",
			State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			LastTerminationState: corev1.ContainerState{Terminated: term(marker)}}, false},
		{"terminated for another reason", corev1.ContainerStatus{Name: "ballast", State: corev1.ContainerState{Terminated: term("panic: boom")}}, false},
		{"waiting after another failure", corev1.ContainerStatus{Name: "ballast",
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: term("")}}, false},
		{"creating", corev1.ContainerStatus{Name: "ballast", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}, false},
		{"another container", corev1.ContainerStatus{Name: "sidecar", State: corev1.ContainerState{Terminated: term(marker)}}, false},
	} {
		p := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{tc.cs}}}
		if got := ReplaceRequested(p); got != tc.want {
			t.Errorf("%s: ReplaceRequested = %v, want %v", tc.name, got, tc.want)
		}
	}
}
