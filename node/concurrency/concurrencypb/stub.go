package concurrencypb

import (
	"context"

	"google.golang.org/grpc"
)

// unaryHandler adapts a server method expression (LockServer.Lock) to the
// handler a grpc.MethodDesc wants: decode the request, then call the
// method through the server's interceptors, if any.
func unaryHandler[S any, Req any, Resp any](method string, call func(S, context.Context, *Req) (*Resp, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(Req)
		if err := dec(in); err != nil {
			return nil, err
		}
		handle := func(ctx context.Context, req any) (any, error) {
			resp, err := call(srv.(S), ctx, req.(*Req))
			if err != nil {
				// not a typed nil in a non-nil interface
				return nil, err
			}
			return resp, nil
		}
		if interceptor == nil {
			return handle(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, handle)
	}
}

// invoke makes one unary call and returns the response.
func invoke[Resp any](ctx context.Context, cc grpc.ClientConnInterface, method string, in any, opts []grpc.CallOption) (*Resp, error) {
	out := new(Resp)
	if err := cc.Invoke(ctx, method, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}
