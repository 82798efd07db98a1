package concurrency

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"reflect"
	"testing"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// callCtx is the context of a gRPC call from addr, over a connection with
// the client certificate cn (none when cn is ""), carrying md.
func callCtx(addr net.Addr, cn string, md metadata.MD) context.Context {
	p := &peer.Peer{Addr: addr}
	if cn != "" {
		cert := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
		p.AuthInfo = credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}}
	}
	ctx := peer.NewContext(context.Background(), p)
	if md != nil {
		ctx = metadata.NewIncomingContext(ctx, md)
	}
	return ctx
}

func TestForwardedCommonName(t *testing.T) {
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2379}
	tests := []struct {
		name   string
		ctx    context.Context
		wantCN string
		wantOK bool
	}{
		{"no peer", context.Background(), "", false},
		{"network call claiming a CN", callCtx(tcp, "", metadata.Pairs(forwardedCNKey, "root")), "", false},
		{"network call with a certificate", callCtx(tcp, "alice", nil), "", false},
		{"loopback call without a CN", callCtx(loopbackAddr{}, "", metadata.Pairs("token", "t")), "", false},
		{"loopback call with a CN", callCtx(loopbackAddr{}, "", metadata.Pairs(forwardedCNKey, "alice")), "alice", true},
		{"loopback call with an empty CN", callCtx(loopbackAddr{}, "", metadata.Pairs(forwardedCNKey, "")), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cn, ok := ForwardedCommonName(tt.ctx)
			if cn != tt.wantCN || ok != tt.wantOK {
				t.Errorf("ForwardedCommonName = %q, %v; want %q, %v", cn, ok, tt.wantCN, tt.wantOK)
			}
		})
	}
}

// TestForwardedIdentity: what the services pass on about who the caller
// is — its token, or its certificate's CN, never a CN it merely claims.
func TestForwardedIdentity(t *testing.T) {
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2379}
	tests := []struct {
		name string
		ctx  context.Context
		want metadata.MD
	}{
		{"certificate", callCtx(tcp, "alice", nil), metadata.Pairs(forwardedCNKey, "alice")},
		{"certificate and token", callCtx(tcp, "alice", metadata.Pairs("token", "t")),
			metadata.Pairs("token", "t", forwardedCNKey, "alice")},
		{"claimed CN without a certificate", callCtx(tcp, "", metadata.Pairs(forwardedCNKey, "root")), nil},
		{"claimed CN over another certificate", callCtx(tcp, "alice", metadata.Pairs(forwardedCNKey, "root")),
			metadata.Pairs(forwardedCNKey, "alice")},
		{"loopback call passes its CN on", callCtx(loopbackAddr{}, "", metadata.Pairs(forwardedCNKey, "alice")),
			metadata.Pairs(forwardedCNKey, "alice")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := forwarded(tt.ctx); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("forwarded = %v, want %v", got, tt.want)
			}
		})
	}
}
