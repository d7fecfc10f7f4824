package spans

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TextLine formats a span as one terminal line, the way the documents this
// product grew from show a chain of hops:
//
//	2026-11-22 18:21:07.519 (1.2ms) HTTP 200 GET /users/42 [127.0.0.1:50312]->[127.0.0.1:8080] size:5B svc=[api] traceparent=[00-<trace>-<span>[<parent>]-01]
//
// HTTP is a server span, HTTPClient a client span; the peer is on the left
// of the arrow and the server on the right; the parent id is in brackets
// (zeros for a root).
func TextLine(span ptrace.Span, service string) string {
	attrs := span.Attributes()
	str := func(k string) string {
		if v, ok := attrs.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	var b strings.Builder
	b.Grow(256)
	b.WriteString(span.StartTimestamp().AsTime().UTC().Format("2006-01-02 15:04:05.000000"))
	b.WriteString(" (")
	b.WriteString(time.Duration(span.EndTimestamp() - span.StartTimestamp()).String())
	b.WriteString(") ")
	// Addresses of the connection itself: a TCP proxy leaves the Host
	// header (server.address) naming its own front door at every hop.
	client := "[" + str("network.peer.address") + ":" + str("network.peer.port") + "]"
	server := "[" + str("network.local.address") + ":" + str("network.local.port") + "]"
	path := str("url.path")
	if span.Kind() == ptrace.SpanKindClient {
		b.WriteString("HTTPClient ")
		client, server = server, client
		if u := str("url.full"); strings.HasPrefix(u, "http://") {
			if i := strings.IndexByte(u[len("http://"):], '/'); i >= 0 {
				path = u[len("http://")+i:]
			}
		}
	} else {
		b.WriteString("HTTP ")
	}
	status := str("http.response.status_code")
	if status == "" {
		status = "-"
	}
	b.WriteString(status + " " + str("http.request.method") + " " + path + " ")
	b.WriteString(client + "->" + server)
	b.WriteString(" size:" + strconv.FormatInt(bodySize(span), 10) + "B")
	b.WriteString(" svc=[" + service + "]")
	b.WriteString(" traceparent=[00-" + span.TraceID().String() + "-" + span.SpanID().String())
	parent := span.ParentSpanID().String()
	if parent == "" {
		parent = "0000000000000000"
	}
	b.WriteString("[" + parent + "]-" + flagsHex(span.Flags()) + "]")
	return b.String()
}

func bodySize(span ptrace.Span) int64 {
	key := "http.response.body.size"
	if span.Kind() == ptrace.SpanKindClient {
		key = "http.request.body.size"
	}
	if v, ok := span.Attributes().Get(key); ok {
		return v.Int()
	}
	return 0
}

func flagsHex(f uint32) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[f>>4&0xf], digits[f&0xf]})
}
