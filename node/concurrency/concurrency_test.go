package concurrency

import (
	"context"
	"reflect"
	"testing"

	"github.com/ballastdb/ballast/node/concurrency/concurrencypb"
	"google.golang.org/grpc/metadata"
)

func TestForwarded(t *testing.T) {
	tests := []struct {
		name string
		in   metadata.MD // nil: no incoming metadata at all
		want metadata.MD
	}{
		{"no metadata", nil, nil},
		{"nothing to forward", metadata.Pairs("user-agent", "grpc-go", ":authority", "x"), nil},
		{"gRPC token", metadata.Pairs("token", "t1", "user-agent", "x"), metadata.Pairs("token", "t1")},
		{"gateway authorization", metadata.Pairs("authorization", "t2"), metadata.Pairs("authorization", "t2")},
		{"require leader", metadata.Pairs("hasleader", "true"), metadata.Pairs("hasleader", "true")},
		{"all", metadata.Pairs("token", "t", "hasleader", "true", "content-type", "application/grpc"),
			metadata.Pairs("token", "t", "hasleader", "true")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.in != nil {
				ctx = metadata.NewIncomingContext(ctx, tt.in)
			}
			if got := forwarded(ctx); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("forwarded = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWaits(t *testing.T) {
	tests := map[string]bool{
		concurrencypb.LockMethod:     true,
		concurrencypb.CampaignMethod: true,
		concurrencypb.ObserveMethod:  true,
		concurrencypb.UnlockMethod:   false,
		concurrencypb.ProclaimMethod: false,
		concurrencypb.LeaderMethod:   false,
		concurrencypb.ResignMethod:   false,
		"/etcdserverpb.KV/Range":     false,
	}
	for m, want := range tests {
		if got := Waits(m); got != want {
			t.Errorf("Waits(%s) = %v, want %v", m, got, want)
		}
	}
}
