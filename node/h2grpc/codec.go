package h2grpc

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// parseTimeout decodes a grpc-timeout value ("100m": up to eight digits and
// a unit) into a duration. Its errors are grpc-go's: a call with a
// malformed timeout is refused.
func parseTimeout(v string) (time.Duration, error) {
	if len(v) < 2 {
		return 0, fmt.Errorf("transport: timeout string is too short: %q", v)
	}
	if len(v) > 9 {
		return 0, fmt.Errorf("transport: timeout string is too long: %q", v)
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, fmt.Errorf("transport: timeout unit is not recognized: %q", v)
	}
	n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
	if err != nil {
		return 0, err
	}
	if n > uint64(math.MaxInt64/unit) {
		return math.MaxInt64, nil
	}
	return time.Duration(n) * unit, nil
}

// isGRPCContentType accepts "application/grpc" and its "+codec" and
// ";params" variants.
func isGRPCContentType(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

func isBinaryHeader(name string) bool { return strings.HasSuffix(name, "-bin") }

// decodeBinaryHeader accepts base64 with or without padding, as grpc-go.
func decodeBinaryHeader(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

func encodeBinaryHeader(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// appendMD adds metadata as header fields; keys gRPC reserves are left out.
func appendMD(fields []hpack.HeaderField, md metadata.MD) []hpack.HeaderField {
	for k, vs := range md {
		if isReservedHeader(k) {
			continue
		}
		for _, v := range vs {
			if isBinaryHeader(k) {
				v = encodeBinaryHeader([]byte(v))
			}
			fields = append(fields, hpack.HeaderField{Name: k, Value: v})
		}
	}
	return fields
}

// isReservedHeader: pseudo-headers and the headers gRPC itself uses, which
// metadata may not carry either way.
func isReservedHeader(k string) bool {
	if k == "" || k[0] == ':' {
		return true
	}
	switch k {
	case "content-type", "user-agent", "grpc-message-type", "grpc-encoding", "grpc-accept-encoding",
		"grpc-message", "grpc-status", "grpc-timeout", "grpc-status-details-bin", "te":
		return true
	}
	return false
}

var codeStrings = func() [17]string {
	var s [17]string
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func codeString(c codes.Code) string {
	if int(c) < len(codeStrings) {
		return codeStrings[c]
	}
	return strconv.FormatUint(uint64(c), 10)
}

// encodeMessage percent-encodes a grpc-message value: bytes outside
// printable ASCII, and '%' itself, become %XX.
func encodeMessage(m string) string {
	clean := true
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < ' ' || c > '~' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return m
	}
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c >= ' ' && c <= '~' && c != '%' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}

// unknownMethod is grpc-go's answer to a call of an unregistered method.
func unknownMethod(path string, services map[string]bool) error {
	p := strings.TrimPrefix(path, "/")
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return status.Errorf(codes.Unimplemented, "malformed method name: %q", path)
	}
	svc, method := p[:i], p[i+1:]
	if services[svc] {
		return status.Errorf(codes.Unimplemented, "unknown method %v for service %v", method, svc)
	}
	return status.Errorf(codes.Unimplemented, "unknown service %v", svc)
}
