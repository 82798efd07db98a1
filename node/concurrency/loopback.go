package concurrency

import (
	"context"
	"errors"
	"math"
	"net"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
)

// loopbackBufferBytes is the in-memory connection's buffer in each
// direction.
const loopbackBufferBytes = 1 << 20

// keepAliveTimeout bounds client/v3's wait for a first keep-alive answer.
// Sessions here are orphaned as soon as they are made, so it hardly
// matters; it only has to be set.
const keepAliveTimeout = 10 * time.Second

// forwardedMetadata are the request metadata the services pass on to the
// KV, Lease and Watch calls they make for the caller: the auth token (as
// gRPC sends it and as the gateway does) and "require leader". etcd gets
// the same effect by handing the caller's context to its in-process
// client.
var forwardedMetadata = []string{
	rpctypes.TokenFieldNameGRPC,
	rpctypes.TokenFieldNameSwagger,
	rpctypes.MetadataRequireLeaderKey,
}

// loopback reaches the member's own gRPC server over an in-memory
// connection. The connection is made on first use, from inside a call,
// when the server is certainly serving; it closes when the server stops.
type loopback struct {
	g  *grpc.Server
	lg *zap.Logger

	once sync.Once
	conn *grpc.ClientConn
	err  error
}

func (l *loopback) connect() (*grpc.ClientConn, error) {
	l.once.Do(func() {
		ln := loopbackListener{bufconn.Listen(loopbackBufferBytes)}
		conn, err := grpc.NewClient("passthrough:///ballast-concurrency",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
		)
		if err != nil {
			ln.Close()
			l.err = err
			return
		}
		l.conn = conn
		go func() {
			// Serve returns (and closes ln) when the server stops.
			if err := l.g.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				l.lg.Warn("the Lock and Election services lost their in-memory connection to this member; their calls fail until it restarts",
					zap.Error(err))
			}
			conn.Close()
		}()
	})
	return l.conn, l.err
}

// client returns a client/v3 client for one call of the Lock or Election
// service, and the context to make the call's requests with (ctx with the
// caller's forwarded metadata). The caller closes the client when the call
// ends, which ends the streams (keep-alive, watches) it opened.
//
// The client's own context outlives ctx: client/v3's concurrency package
// uses it to remove a waiter's key when the wait is abandoned — as etcd,
// whose in-process client lives as long as the server.
func (l *loopback) client(ctx context.Context) (*clientv3.Client, context.Context, error) {
	conn, err := l.connect()
	if err != nil {
		return nil, nil, err
	}
	md := forwarded(ctx)
	withMD := func(ctx context.Context) context.Context {
		if md == nil {
			return ctx
		}
		return metadata.NewOutgoingContext(ctx, md)
	}
	c := clientv3.NewCtxClient(withMD(context.WithoutCancel(ctx)), clientv3.WithZapLogger(l.lg))
	c.KV = clientv3.NewKVFromKVClient(etcdserverpb.NewKVClient(conn), c)
	c.Lease = clientv3.NewLeaseFromLeaseClient(etcdserverpb.NewLeaseClient(conn), c, keepAliveTimeout)
	c.Watcher = clientv3.NewWatchFromWatchClient(etcdserverpb.NewWatchClient(conn), c)
	return c, withMD(ctx), nil
}

// forwarded is the part of the call's incoming metadata that the calls
// made on its behalf carry (forwardedMetadata), plus the caller's client
// certificate CN (see identity.go); nil when there is nothing to carry.
// Anything else the caller sent, forwardedCNKey included, stays behind.
func forwarded(ctx context.Context) metadata.MD {
	in, _ := metadata.FromIncomingContext(ctx)
	var md metadata.MD
	set := func(k string, v ...string) {
		if md == nil {
			md = metadata.MD{}
		}
		md.Set(k, v...)
	}
	for _, k := range forwardedMetadata {
		if v := in.Get(k); len(v) > 0 {
			set(k, v...)
		}
	}
	if cn, ok := callerCommonName(ctx); ok {
		set(forwardedCNKey, cn)
	}
	return md
}
