package http2

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Exchange is one stream: a gRPC call or an HTTP request and its
// response. It is the record of the protocol.
type Exchange struct {
	protocols.Exchange
	Kind     Kind
	StreamID uint32
	HTTP     semconv.HTTP // a plain HTTP stream's, Version "2"
	RPC      semconv.RPC  // a gRPC call's

	// What the request head said, for either kind.
	method, path, authority, scheme string

	conn *Conn // its options and the names made for its requests
}

// Common returns what every protocol's record has (protocols.Record).
func (x *Exchange) Common() *protocols.Exchange { return &x.Exchange }

// Fill writes the exchange's span name, status and attributes.
func (x *Exchange) Fill(span ptrace.Span, conn *protocols.ConnInfo) {
	if x.Kind == KindGRPC {
		x.RPC.Fill(span, &x.Exchange, conn, x.conn.methods)
		return
	}
	x.HTTP.Fill(span, &x.Exchange, conn, x.conn.opts, &x.conn.names)
}

// Metric says which series the exchange counts in.
func (x *Exchange) Metric(conn *protocols.ConnInfo) (redmetrics.Key, redmetrics.Observation, bool) {
	if x.Kind == KindGRPC {
		return x.RPC.Metric(&x.Exchange, conn, x.conn.methods)
	}
	return x.HTTP.Metric(&x.Exchange, conn, x.conn.opts, &x.conn.names)
}

// fillRPC makes st's record a gRPC call. What could not be decoded is
// left out: the method (counted), the status.
func (c *Conn) fillRPC(st *stream) bool {
	x := &st.x
	r := &x.RPC
	*r = semconv.RPC{System: semconv.GRPC}
	if st.hasPath && len(x.path) > 1 && x.path[0] == '/' {
		r.Method = x.path[1:]
	} else {
		c.fail(&c.stats.MethodUnknown, reasonMethodUnknown)
	}
	r.SetAuthority(x.authority)
	switch {
	case st.grpcStatus >= 0:
		r.StatusCode = semconv.GRPCStatusName(st.grpcStatus)
		r.Unrecognized = st.grpcStatus == grpcUnimplemented
	case st.rst:
		r.ErrorType = "_OTHER"
		if st.rstKnown {
			r.ErrorType = errorCodeName(st.rstCode)
		}
	case st.refused:
		r.ErrorType = "REFUSED_STREAM"
	case st.respEnd && !st.respPartial:
		// A response that ended without a grpc-status: the call failed,
		// by the HTTP status when it is not 200.
		r.ErrorType = "_OTHER"
		if st.status >= 0 && st.status != 200 {
			r.ErrorType = strconv.Itoa(st.status)
		}
	case !st.respEnd && !st.endLost:
		r.ErrorType = semconv.NoResponse
	}
	return true
}

// grpcUnimplemented is gRPC's status for a method the server does not
// know.
const grpcUnimplemented = 12

// fillHTTP makes st's record an HTTP exchange; it returns false when what
// the record needs could not be decoded (the method, or the status of a
// response that came) or when the stream's end was lost.
func (c *Conn) fillHTTP(st *stream) bool {
	x := &st.x
	switch {
	case !st.hasMethod || !st.hasPath:
		c.fail(&c.stats.MethodUnknown, reasonMethodUnknown)
		return false
	case st.respHead && st.status < 0, st.endLost && !st.respEnd && !st.rst:
		return false
	}
	h := &x.HTTP
	h.Method, h.Target, h.Host = x.method, x.path, x.authority
	h.Version, h.Scheme = "2", x.scheme
	if st.respHead {
		h.Status = st.status
	}
	return true
}

// errorCodeName is the name of an HTTP/2 error code (RFC 9113 7), the
// error.type of a call reset without a status.
func errorCodeName(code uint32) string {
	if code < uint32(len(errorCodeNames)) {
		return errorCodeNames[code]
	}
	return "_OTHER"
}

var errorCodeNames = [...]string{
	"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
	"STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
	"CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
}
