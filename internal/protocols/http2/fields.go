package http2

import (
	"bytes"
	"encoding/base64"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// Content types of a stream, as far as its kind goes.
const (
	ctAbsent = iota // no content-type field (or not decoded)
	ctGRPC          // application/grpc, application/grpc+proto, application/grpc;...
	ctOther         // any other
)

// fields are the fields of one header block that records use; the others
// are decoded (the table needs them) and dropped. It is the hpack.Handler
// of a side, reused for each block.
type fields struct {
	method, path, authority, scheme, traceparent, traceBin []byte
	hasMethod, hasPath, hasAuthority, hasScheme            bool
	hasTraceparent, hasTraceBin                            bool

	status     int // :status, -1 when absent
	grpcStatus int // grpc-status, -1 when absent or not a number
	ct         uint8
	unknown    int // fields that could not be decoded
	tooLong    int // fields longer than what is kept (counted in unknown too)
}

func (f *fields) reset() {
	f.method, f.path, f.authority = f.method[:0], f.path[:0], f.authority[:0]
	f.scheme, f.traceparent, f.traceBin = f.scheme[:0], f.traceparent[:0], f.traceBin[:0]
	f.hasMethod, f.hasPath, f.hasAuthority, f.hasScheme = false, false, false, false
	f.hasTraceparent, f.hasTraceBin = false, false
	f.status, f.grpcStatus, f.ct = -1, -1, ctAbsent
	f.unknown, f.tooLong = 0, 0
}

// complete reports whether every field of the block was decoded.
func (f *fields) complete() bool { return f.unknown == 0 }

// Field keeps the value of a field records use (hpack.Handler). A switch
// on string(name) does not allocate.
func (f *fields) Field(name, value []byte, _ bool) {
	switch string(name) {
	case ":method":
		f.method, f.hasMethod = f.keep(f.method, value, maxMethod)
	case ":path":
		f.path, f.hasPath = f.keep(f.path, value, maxPath)
	case ":authority":
		f.authority, f.hasAuthority = f.keep(f.authority, value, maxAuthority)
	case "host": // a request converted from HTTP/1 may name its server so
		if !f.hasAuthority {
			f.authority, f.hasAuthority = f.keep(f.authority, value, maxAuthority)
		}
	case ":scheme":
		f.scheme, f.hasScheme = f.keep(f.scheme, value, 16)
	case ":status":
		if f.status = number(value, 3); f.status < 100 {
			f.status = -1 // not a status
		}
	case "content-type":
		f.ct = contentType(value)
	case "grpc-status":
		f.grpcStatus = number(value, 4)
	case "traceparent":
		f.traceparent, f.hasTraceparent = f.keep(f.traceparent, value, maxTraceparent)
	case "grpc-trace-bin":
		f.traceBin, f.hasTraceBin = f.keep(f.traceBin, value, maxTraceBin)
	}
}

// Unknown counts a field that could not be decoded (hpack.Handler).
func (f *fields) Unknown() { f.unknown++ }

// keep copies value into dst when it is at most limit bytes; a longer one
// is as good as unknown.
func (f *fields) keep(dst, value []byte, limit int) ([]byte, bool) {
	if len(value) > limit {
		f.tooLong++
		f.unknown++
		return dst[:0], false
	}
	return append(dst[:0], value...), true
}

// number parses a decimal of 1 to digits digits, or returns -1.
func number(b []byte, digits int) int {
	if len(b) == 0 || len(b) > digits {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

var grpcContentType = []byte("application/grpc")

// contentType classifies a content-type value: gRPC's is
// "application/grpc", alone or followed by "+format" or parameters.
func contentType(v []byte) uint8 {
	if len(v) < len(grpcContentType) || !bytes.EqualFold(v[:len(grpcContentType)], grpcContentType) {
		return ctOther
	}
	if len(v) == len(grpcContentType) || v[len(grpcContentType)] == '+' || v[len(grpcContentType)] == ';' {
		return ctGRPC
	}
	return ctOther // application/grpc-web and the like
}

// traceparentOf is the W3C traceparent a request carried: its traceparent
// field, else its grpc-trace-bin field made into one; "" when neither.
func traceparentOf(f *fields) string {
	if f.hasTraceparent {
		return text(f.traceparent)
	}
	if f.hasTraceBin {
		return traceBinToTraceparent(f.traceBin)
	}
	return ""
}

// traceBinToTraceparent converts a grpc-trace-bin value (base64 of the
// OpenCensus binary trace context: version 0, then field 0 the 16-byte
// trace id, field 1 the 8-byte span id, field 2 the 1-byte options) to a
// traceparent; "" when it is not one.
func traceBinToTraceparent(v []byte) string {
	v = bytes.TrimRight(v, "=")
	var raw [maxTraceBin]byte
	n, err := base64.RawStdEncoding.Decode(raw[:], v)
	if err != nil {
		return ""
	}
	b := raw[:n]
	if len(b) < 1 || b[0] != 0 {
		return ""
	}
	b = b[1:]
	var traceID pcommon.TraceID
	var spanID pcommon.SpanID
	var flags byte
	var seen uint8
	for len(b) > 0 {
		switch {
		case b[0] == 0 && len(b) >= 17:
			copy(traceID[:], b[1:17])
			b, seen = b[17:], seen|1
		case b[0] == 1 && len(b) >= 9:
			copy(spanID[:], b[1:9])
			b, seen = b[9:], seen|2
		case b[0] == 2 && len(b) >= 2:
			flags = b[1]
			b = b[2:]
		default:
			b = nil // an unknown field ends what can be read
		}
	}
	if seen != 3 || traceID.IsEmpty() || spanID.IsEmpty() {
		return ""
	}
	return tracecontext.Format(traceID, spanID, flags&1)
}
