package api

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"
)

// TestFixedFlowControlWindows speaks HTTP/2 to the client port by hand: the
// server announces the fixed windows, and a unary call's data is not
// answered with a bandwidth-estimation PING.
func TestFixedFlowControlWindows(t *testing.T) {
	env := startEnv(t, newFakeServer())
	conn, err := net.DialTimeout("tcp", env.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}

	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/etcdserverpb.KV/Range"},
		{":authority", env.addr}, {"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := proto.Marshal(&pb.RangeRequest{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 5, 5+len(msg)) // gRPC framing: not compressed, length
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	body = append(body, msg...)
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(1, true, body); err != nil {
		t.Fatal(err)
	}

	var streamWindow, connWindow uint32
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if err := fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
			if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
				streamWindow = v
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				connWindow += f.Increment
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				t.Errorf("the server sent a PING after request data: bandwidth estimation is on")
			}
		case *http2.HeadersFrame:
			done = f.StreamEnded() // the trailers end the call
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY: %v %s", f.ErrCode, f.DebugData())
		}
	}
	if streamWindow != streamWindowBytes {
		t.Errorf("SETTINGS_INITIAL_WINDOW_SIZE = %d, want %d", streamWindow, streamWindowBytes)
	}
	// The connection window starts at HTTP/2's 65535 and is raised by
	// WINDOW_UPDATEs on stream 0 (the one for our 5+len(msg) bytes too).
	if got, want := 65535+connWindow, uint32(connWindowBytes); got < want {
		t.Errorf("connection window = %d, want at least %d", got, want)
	}
}
