package h2grpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rawClient speaks HTTP/2 frames to a Server directly, to send what a
// well-behaved gRPC client never would.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	fr *http2.Framer
}

func dialRaw(t *testing.T, o Options) *rawClient {
	t.Helper()
	s := NewServer(o)
	s.RegisterService(&testServiceDesc, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(nc, clientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c
}

// testServiceDesc has one unary method that waits for its call to end:
// the raw tests only exercise the transport.
var testServiceDesc = grpcServiceDesc("test.Raw", "Call")

// until reads frames until match returns true, failing on EOF.
func (c *rawClient) until(match func(http2.Frame) bool) http2.Frame {
	c.t.Helper()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("reading frames: %v", err)
		}
		if match(f) {
			return f
		}
	}
}

func (c *rawClient) headers(id uint32, endStream bool) {
	c.t.Helper()
	c.request(id, endStream, "POST", "application/grpc")
}

// request sends a request's HEADERS with the given method, content type
// and extra fields.
func (c *rawClient) request(id uint32, endStream bool, method, contentType string, extra ...hpack.HeaderField) {
	c.t.Helper()
	c.requestPath(id, endStream, "/test.Raw/Call", method, contentType, extra...)
}

// requestPath is request for a method other than Call.
func (c *rawClient) requestPath(id uint32, endStream bool, path, method, contentType string, extra ...hpack.HeaderField) {
	c.t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: method}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: path},
		{Name: ":authority", Value: "x"}, {Name: "content-type", Value: contentType},
	}, extra...) {
		_ = enc.WriteField(f)
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndHeaders: true, EndStream: endStream}); err != nil {
		c.t.Fatal(err)
	}
}

func goAwayWith(code http2.ErrCode) func(http2.Frame) bool {
	return func(f http2.Frame) bool {
		g, ok := f.(*http2.GoAwayFrame)
		return ok && g.ErrCode == code
	}
}

func TestTooManyPings(t *testing.T) {
	c := dialRaw(t, Options{KeepaliveMinTime: time.Hour})
	for i := range 4 {
		if err := c.fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	g := c.until(goAwayWith(http2.ErrCodeEnhanceYourCalm)).(*http2.GoAwayFrame)
	if string(g.DebugData()) != "too_many_pings" {
		t.Fatalf("GOAWAY debug data %q", g.DebugData())
	}
}

// settled waits for the server's answer to our SETTINGS. Any write takes
// a queued PING answer along; tests of when that answer leaves start
// after this one.
func (c *rawClient) settled() {
	c.t.Helper()
	c.until(func(f http2.Frame) bool { s, ok := f.(*http2.SettingsFrame); return ok && s.IsAck() })
}

func isPingAck(f http2.Frame) bool {
	p, ok := f.(*http2.PingFrame)
	return ok && p.IsAck()
}

// TestPingAnsweredOnIdleConnection: with no other write to travel with, a
// PING answer leaves when its short wait ends.
func TestPingAnsweredOnIdleConnection(t *testing.T) {
	c := dialRaw(t, Options{})
	c.settled()
	if err := c.fr.WritePing(false, [8]byte{7}); err != nil {
		t.Fatal(err)
	}
	if p := c.until(isPingAck).(*http2.PingFrame); p.Data != [8]byte{7} {
		t.Fatalf("PING answer carries %v, want the PING's data", p.Data)
	}
}

// TestPingAnswerTravelsWithTheResponse: a PING right before a call, as
// grpc-go clients send them, is answered in the write that carries the
// call's response. The wait is made endless here, so the answer can only
// come with the response, after it.
func TestPingAnswerTravelsWithTheResponse(t *testing.T) {
	c := dialRaw(t, Options{pingAckDelay: time.Hour})
	c.settled()
	if err := c.fr.WritePing(false, [8]byte{7}); err != nil {
		t.Fatal(err)
	}
	c.requestPath(1, false, "/test.Raw/Answer", "POST", "application/grpc")
	if err := c.fr.WriteData(1, true, []byte{0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	f := c.until(func(f http2.Frame) bool {
		_, answer := f.(*http2.MetaHeadersFrame)
		return answer || isPingAck(f)
	})
	h, ok := f.(*http2.MetaHeadersFrame)
	if !ok {
		t.Fatal("the PING was answered before the call's response")
	}
	if h.StreamID != 1 || h.PseudoValue("status") != "200" || !slices.Contains(h.RegularFields(), hpack.HeaderField{Name: "grpc-status", Value: "5"}) {
		t.Fatalf("response on stream %d with %v, want NotFound on stream 1", h.StreamID, h.Fields)
	}
	c.until(isPingAck)
}

// TestHeadersThatDoNotEndTheStream: a second HEADERS on a call must be
// trailers, which end the client's side; one that does not is a stream
// error.
func TestHeadersThatDoNotEndTheStream(t *testing.T) {
	c := dialRaw(t, Options{})
	c.headers(1, false)
	c.headers(1, false)
	f := c.until(func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok }).(*http2.RSTStreamFrame)
	if f.StreamID != 1 || f.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("RST_STREAM stream %d code %v, want stream 1 PROTOCOL_ERROR", f.StreamID, f.ErrCode)
	}
}

func TestEvenStreamIDIsAProtocolError(t *testing.T) {
	c := dialRaw(t, Options{})
	c.headers(2, true)
	c.until(goAwayWith(http2.ErrCodeProtocol))
}

// TestNotAGRPCRequest: an HTTP/2 request that is not gRPC gets grpc-go's
// answer: an HTTP status, a gRPC status and message, end of stream, and
// RST_STREAM NO_ERROR when the client had not finished sending.
func TestNotAGRPCRequest(t *testing.T) {
	badTimeout := hpack.HeaderField{Name: "grpc-timeout", Value: "10x"}
	badBinary := hpack.HeaderField{Name: "trace-bin", Value: "%%%"}
	tests := []struct {
		name, method, contentType string
		extra                     []hpack.HeaderField
		endStream                 bool
		wantHTTP, wantCode        string
		wantMessage               string
	}{
		{"JSON body", "POST", "application/json", nil, false, "415", "3", `invalid gRPC request content-type "application/json"`},
		{"no content type", "POST", "", nil, true, "415", "3", `invalid gRPC request content-type ""`},
		{"GET", "GET", "application/grpc", nil, true, "405", "13", `Received a HEADERS frame with :method "GET" which should be POST`},
		{"content type is checked first", "GET", "text/html", []hpack.HeaderField{badTimeout}, false, "415", "3", `invalid gRPC request content-type "text/html"`},
		{"malformed grpc-timeout", "POST", "application/grpc", []hpack.HeaderField{badTimeout}, false, "400", "13", `malformed grpc-timeout: transport: timeout unit is not recognized: "10x"`},
		{"malformed binary metadata", "POST", "application/grpc", []hpack.HeaderField{badBinary}, true, "400", "13", `malformed binary metadata "%%%" in header "trace-bin": illegal base64 data at input byte 0`},
		{"header errors before the method", "GET", "application/grpc", []hpack.HeaderField{badBinary}, true, "400", "13", `malformed binary metadata "%%%" in header "trace-bin": illegal base64 data at input byte 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, Options{})
			c.request(1, tt.endStream, tt.method, tt.contentType, tt.extra...)
			h := c.until(func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok }).(*http2.MetaHeadersFrame)
			if h.StreamID != 1 || !h.StreamEnded() {
				t.Fatalf("answer on stream %d, end of stream %v", h.StreamID, h.StreamEnded())
			}
			got := map[string]string{}
			for _, f := range h.Fields {
				got[f.Name] = f.Value
			}
			want := map[string]string{":status": tt.wantHTTP, "content-type": "application/grpc",
				"grpc-status": tt.wantCode, "grpc-message": encodeMessage(tt.wantMessage)}
			if !maps.Equal(got, want) {
				t.Fatalf("answer headers %v, want %v", got, want)
			}
			if tt.endStream {
				// Nothing more for this stream: the next frame is the
				// answer to a ping.
				if err := c.fr.WritePing(false, [8]byte{1}); err != nil {
					t.Fatal(err)
				}
				if f := c.until(func(f http2.Frame) bool {
					_, rst := f.(*http2.RSTStreamFrame)
					p, ping := f.(*http2.PingFrame)
					return rst || (ping && p.IsAck())
				}); f.Header().Type != http2.FramePing {
					t.Fatalf("got %v after the answer, want nothing for the stream", f)
				}
				return
			}
			f := c.until(func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok }).(*http2.RSTStreamFrame)
			if f.StreamID != 1 || f.ErrCode != http2.ErrCodeNo {
				t.Fatalf("RST_STREAM stream %d code %v, want stream 1 NO_ERROR", f.StreamID, f.ErrCode)
			}
		})
	}
}

func TestFlowControlViolationResetsTheStream(t *testing.T) {
	c := dialRaw(t, Options{StreamWindow: 65535, ConnWindow: 1 << 20})
	c.headers(1, false)
	// Twice the stream window, in frames of the default maximum size.
	chunk := make([]byte, 16384)
	for range 8 {
		if err := c.fr.WriteData(1, false, chunk); err != nil {
			break // the server may reset and stop reading; the reset is what counts
		}
	}
	f := c.until(func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok }).(*http2.RSTStreamFrame)
	if f.StreamID != 1 || f.ErrCode != http2.ErrCodeFlowControl {
		t.Fatalf("RST_STREAM stream %d code %v", f.StreamID, f.ErrCode)
	}
}

func TestSilentConnectionIsClosed(t *testing.T) {
	c := dialRaw(t, Options{KeepaliveTime: 50 * time.Millisecond, KeepaliveTimeout: 50 * time.Millisecond})
	c.until(func(f http2.Frame) bool { p, ok := f.(*http2.PingFrame); return ok && !p.IsAck() })
	// We do not answer: the server must hang up.
	for {
		if _, err := c.fr.ReadFrame(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the server kept a silent connection open")
				}
			}
			return
		}
	}
}

func TestParseTimeout(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string // grpc-go's texts
	}{
		{in: "100m", want: 100 * time.Millisecond},
		{in: "5S", want: 5 * time.Second},
		{in: "1H", want: time.Hour},
		{in: "2M", want: 2 * time.Minute},
		{in: "7u", want: 7000},
		{in: "9n", want: 9},
		{in: "99999999S", want: 99999999 * time.Second},
		{in: "99999999H", want: math.MaxInt64}, // clamped, not overflowed
		{in: "", wantErr: `transport: timeout string is too short: ""`},
		{in: "m", wantErr: `transport: timeout string is too short: "m"`},
		{in: "10x", wantErr: `transport: timeout unit is not recognized: "10x"`},
		{in: "-1S", wantErr: `strconv.ParseUint: parsing "-1": invalid syntax`},
		{in: "123456789S", wantErr: `transport: timeout string is too long: "123456789S"`},
	}
	for _, tt := range tests {
		got, err := parseTimeout(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("parseTimeout(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseTimeout(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestEncodeMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"100%", "100%25"},
		{"a\nb", "a%0Ab"},
		{"é", "%C3%A9"},
	}
	for _, tt := range tests {
		if got := encodeMessage(tt.in); got != tt.want {
			t.Errorf("encodeMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// grpcServiceDesc describes a service with method, which waits for its
// call to end, and "Answer", which fails at once with NotFound. Neither
// reads its request: what the client sends stays buffered against the
// stream's window.
func grpcServiceDesc(service, method string) grpc.ServiceDesc {
	return grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: method, Handler: func(_ any, ctx context.Context, _ func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}},
			{MethodName: "Answer", Handler: func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
				return nil, status.Error(codes.NotFound, "nothing here")
			}},
		},
	}
}
