package member

import (
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// The reconciler decides by these predicates; clientv3 may hand back the
// gRPC status or its typed EtcdError, possibly wrapped.
func TestErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		is   func(error) bool
		want bool
	}{
		{"learner not ready (grpc)", rpctypes.ErrGRPCLearnerNotReady, IsLearnerNotReady, true},
		{"learner not ready (typed)", rpctypes.ErrMemberLearnerNotReady, IsLearnerNotReady, true},
		{"learner not ready (wrapped)", fmt.Errorf("promote: %w", rpctypes.ErrMemberLearnerNotReady), IsLearnerNotReady, true},
		{"unhealthy (grpc)", rpctypes.ErrGRPCUnhealthy, IsUnhealthy, true},
		{"unhealthy (typed)", rpctypes.ErrUnhealthy, IsUnhealthy, true},
		{"member not found", rpctypes.ErrMemberNotFound, IsMemberNotFound, true},
		{"peer URL exists", rpctypes.ErrGRPCPeerURLExist, IsPeerURLExist, true},
		{"other error", errors.New("context deadline exceeded"), IsUnhealthy, false},
		{"nil", nil, IsLearnerNotReady, false},
		{"unhealthy is not not-found", rpctypes.ErrUnhealthy, IsMemberNotFound, false},
	} {
		if got := tc.is(tc.err); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFormatID(t *testing.T) {
	if got := FormatID(0x8e9e05c52164694d); got != "8e9e05c52164694d" {
		t.Errorf("FormatID = %s", got)
	}
	if got := FormatID(0x1); got != "1" {
		t.Errorf("FormatID = %s", got)
	}
}
