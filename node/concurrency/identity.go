package concurrency

import (
	"context"
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/test/bufconn"
)

// The services' calls reach the member over an in-memory connection, so
// they carry no client certificate of their own. A caller identified by
// its certificate (auth on, --client-cert-auth) would lose its identity on
// the way: etcd keeps it because its in-process client passes the caller's
// context along. Here the caller's verified common name travels in the
// forwardedCNKey metadata, and the member believes that metadata only on
// calls that came over the in-memory connection (ForwardedCommonName): a
// call from the network can send the key but is never trusted with it.

// forwardedCNKey carries the caller's certificate CN. "-bin": a CN may hold
// bytes that ASCII metadata cannot.
const forwardedCNKey = "ballast-forwarded-cn-bin"

// loopbackAddr is the remote address of every call on the in-memory
// connection. It is unexported: no connection from the network can have
// an address of this type.
type loopbackAddr struct{}

func (loopbackAddr) Network() string { return "ballast-loopback" }
func (loopbackAddr) String() string  { return "ballast-loopback" }

// loopbackListener hands the gRPC server connections that say they come
// from loopbackAddr.
type loopbackListener struct{ *bufconn.Listener }

func (l loopbackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return loopbackConn{c}, nil
}

type loopbackConn struct{ net.Conn }

func (loopbackConn) RemoteAddr() net.Addr { return loopbackAddr{} }

// fromLoopback reports whether the gRPC call ctx belongs to came over the
// in-memory connection of these services.
func fromLoopback(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	_, ok = p.Addr.(loopbackAddr)
	return ok
}

// ForwardedCommonName is the client-certificate CN of the caller a Lock or
// Election call acts for, when ctx is one of the calls these services make
// over their in-memory connection and the caller had a verified
// certificate. It is never taken from a call that came from the network.
// Whether the CN names a user (--client-cert-auth) is the caller's rule,
// the same as for a certificate on the connection itself.
func ForwardedCommonName(ctx context.Context) (cn string, ok bool) {
	if !fromLoopback(ctx) {
		return "", false
	}
	v := metadata.ValueFromIncomingContext(ctx, forwardedCNKey)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// callerCommonName is the CN of the verified client certificate of the
// connection the call ctx came on (as node/api reads it for a gRPC call),
// or the CN such a call forwarded, if ctx came over the loopback itself.
func callerCommonName(ctx context.Context) (string, bool) {
	if cn, ok := ForwardedCommonName(ctx); ok {
		return cn, true
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	return ti.State.VerifiedChains[0][0].Subject.CommonName, true
}
