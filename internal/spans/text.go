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
// (zeros for a root). Spans of other protocols print as DB (database
// clients) or RPC/RPCClient, with their status code and span name.
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
	kind, status, what := label(span, str)
	if span.Kind() == ptrace.SpanKindClient {
		client, server = server, client
	}
	if status == "" {
		status = "-"
	}
	b.WriteString(kind + " " + status + " " + what + " ")
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

// label names the span's protocol and role, its status and what it did.
func label(span ptrace.Span, str func(string) string) (kind, status, what string) {
	client := span.Kind() == ptrace.SpanKindClient
	switch {
	case str("http.request.method") != "":
		kind, status = "HTTP", str("http.response.status_code")
		what = str("http.request.method") + " " + str("url.path")
		if client {
			kind = "HTTPClient"
			what = str("http.request.method") + " " + urlPath(str("url.full"))
		}
	case str("db.system.name") != "":
		kind, status, what = "DB", str("db.response.status_code"), str("db.system.name")+" "+span.Name()
	case str("rpc.system.name") != "":
		kind, status, what = "RPC", str("rpc.response.status_code"), span.Name()
		if client {
			kind = "RPCClient"
		}
	default:
		kind, what = "SPAN", span.Name()
	}
	return kind, status, what
}

// urlPath is the path of a url.full.
func urlPath(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[i+3+j:]
		}
	}
	return "/"
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
