// Package h2grpc is the server side of gRPC over HTTP/2: it reads frames
// from client connections, runs each call's handler through the
// grpc.ServiceDesc that generated code registers, and writes the answers
// back. The services, interceptors and their contexts (metadata, peer,
// deadline, grpc.SetHeader) are grpc-go's own types, so handlers written
// for a *grpc.Server run here unchanged; only the transport is ours.
//
// Why not grpc-go's server transport: on a put-heavy load it was about 40%
// of the member's CPU. Per call it allocates a few kilobytes (a stream
// object, contexts, quota and buffer structures, the decoded header map)
// and hands every frame to a writer goroutine through a control buffer.
// Here a call costs its stream, its message bytes and its metadata; a
// handler writes its own frames into the connection's buffer, and one
// flusher per connection turns everything written meanwhile into a single
// write system call.
//
// One connection has:
//
//	a reader (ServeConn's goroutine): the only one to read the socket; it
//	      creates streams, delivers their data, applies the peer's
//	      settings and window updates, answers pings
//	handlers, one per call (a pooled goroutine): they receive from their
//	      stream's buffer and write frames under the write lock
//	a flusher: writes the reader's control frames and flushes the buffer
//
// Invariants:
//   - Only the reader reads the socket, and it never waits for the write
//     lock or for a window: frames it must send (settings and ping acks,
//     window updates, resets) go through the control queue. So a client
//     that stops reading cannot stop us from reading its window updates.
//   - The send windows (connection and per stream) are guarded by fcMu and
//     never go below zero: a handler takes quota before it writes a DATA
//     frame and waits on fcCond when there is none.
//   - Every DATA frame received counts against the connection window,
//     whether or not its stream still exists, and is given back at once
//     (as grpc-go does); a stream's window is given back only as its
//     handler consumes messages, so a stream whose handler does not read
//     holds at most one stream window of buffered data.
//   - A stream leaves the stream table exactly once, when its handler has
//     written its trailers (or a reset) or the connection has closed.
package h2grpc
