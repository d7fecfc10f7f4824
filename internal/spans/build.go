// Package spans turns HTTP exchanges seen by the kernel into OpenTelemetry
// spans, following the HTTP semantic conventions.
package spans // import "github.com/otelcol-ebpf/ebpfreceiver/internal/spans"

import (
	"net/netip"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/http1"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

// Request is one exchange with the connection it was seen on.
type Request struct {
	http1.Exchange
	Local  netip.AddrPort // the watched process's end of the connection
	Remote netip.AddrPort // the peer's end
	// LocalIP and RemoteIP are Local's and Remote's addresses as text. A
	// caller sets them once per connection, since formatting them for every
	// span would cost an allocation each; empty ones are formatted here.
	LocalIP, RemoteIP string

	names names // of the connection's last request, kept by Builder
}

// names are what Builder makes from a request's target that costs an
// allocation: a route the heuristic rewrote, a span name, a url.full.
// Requests on a keep-alive connection repeat their targets (the parser then
// hands over the very same string), so they are made once per target.
type names struct {
	target      string // what the others were made from
	method      string // name's
	host        string // the Host header full was made with
	route, name string // of a server request; "" until made
	full        string // url.full of a client request; "" until made
}

// SetConn records the connection of the requests to come.
func (r *Request) SetConn(local, remote netip.AddrPort) {
	r.SetConnText(local, remote, local.Addr().String(), remote.Addr().String())
}

// SetConnText is SetConn for a caller that has the addresses' text already.
func (r *Request) SetConnText(local, remote netip.AddrPort, localIP, remoteIP string) {
	r.Local, r.Remote = local, remote
	r.LocalIP, r.RemoteIP = localIP, remoteIP
	// url.full holds the server's address; a route and a span name hold
	// nothing of the connection, and serve a reused Request on.
	r.names.host, r.names.full = "", ""
}

func ipText(cached string, ap netip.AddrPort) string {
	if cached != "" {
		return cached
	}
	return ap.Addr().String()
}

// Clock converts kernel monotonic timestamps to wall-clock time.
type Clock struct {
	// Offset is wall-clock ns minus monotonic ns, measured once at start.
	Offset int64
}

// Time converts a kernel timestamp.
func (c Clock) Time(mono uint64) pcommon.Timestamp {
	return pcommon.Timestamp(int64(mono) + c.Offset)
}

// Builder fills spans from requests.
type Builder struct {
	Router      *routes.Router
	RecordQuery bool
	Clock       Clock
}

// knownMethod reports whether the conventions name method; others become
// _OTHER. A switch, unlike a map, does not hash the method on every span.
func knownMethod(method string) bool {
	switch method {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY":
		return true
	}
	return false
}

// Route is the http.route of a request target.
func (b *Builder) Route(target string) string {
	return b.Router.Route(Path(target))
}

// ServerRoute is the http.route of a server request, made once for the
// requests of a connection that repeat a target.
func (b *Builder) ServerRoute(req *Request) string {
	n := &req.names
	if n.target != req.Target {
		*n = names{target: req.Target}
	}
	if n.route == "" { // a route is never empty
		n.route = b.Route(req.Target)
	}
	return n.route
}

// serverName is the span name of a server request, cached as its route is.
func (b *Builder) serverName(req *Request) string {
	route := b.ServerRoute(req)
	n := &req.names
	if n.name == "" || n.method != req.Method {
		n.method, n.name = req.Method, spanName(req.Method, route)
	}
	return n.name
}

// Path is the path of a request target: the query is cut, and an
// absolute-form target ("http://host/p", sent to forward proxies) loses its
// scheme and authority.
func Path(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		rest := target[strings.Index(target, "//")+2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
		return "/"
	}
	return target
}

// Identity places a span in its trace.
type Identity struct {
	TraceID  pcommon.TraceID
	SpanID   pcommon.SpanID
	ParentID pcommon.SpanID // empty for a root span
	Flags    byte
}

// Fill writes req into span: ids, name, kind, times, attributes, status.
// It keeps the route and name it made in req, for the next request of the
// connection.
func (b *Builder) Fill(span ptrace.Span, req *Request, id *Identity) {
	route, name := "", ""
	if req.Role == http1.RoleServer {
		route, name = b.ServerRoute(req), b.serverName(req)
	} else {
		name = spanName(req.Method, "") // a constant, or the method itself
	}
	span.SetTraceID(id.TraceID)
	span.SetSpanID(id.SpanID)
	span.SetParentSpanID(id.ParentID)
	span.SetFlags(uint32(id.Flags))
	span.SetName(name)
	span.SetStartTimestamp(b.Clock.Time(req.RequestStart))
	end := req.ResponseEnd
	if end == 0 {
		end = req.RequestEnd
	}
	span.SetEndTimestamp(b.Clock.Time(end))
	if req.Role == http1.RoleServer {
		span.SetKind(ptrace.SpanKindServer)
	} else {
		span.SetKind(ptrace.SpanKindClient)
	}
	b.attributes(span.Attributes(), req, route)
	setStatus(span.Status(), req)
}

func spanName(method, route string) string {
	if !knownMethod(method) {
		method = "HTTP"
	}
	if route == "" {
		return method
	}
	return method + " " + route
}

func (b *Builder) attributes(attrs pcommon.Map, req *Request, route string) {
	// The exact count: a slice grown past its capacity is copied whole,
	// and one sized too large wastes what every span of a batch keeps.
	attrs.EnsureCapacity(b.attributeCount(req))
	if knownMethod(req.Method) {
		attrs.PutStr("http.request.method", req.Method)
	} else {
		attrs.PutStr("http.request.method", "_OTHER")
		attrs.PutStr("http.request.method_original", req.Method)
	}
	if req.Status != 0 {
		attrs.PutInt("http.response.status_code", int64(req.Status))
	}
	attrs.PutStr("network.protocol.version", req.Version)
	attrs.PutStr("url.scheme", "http")
	path := Path(req.Target)
	if req.Role == http1.RoleServer {
		attrs.PutStr("http.route", route)
		attrs.PutStr("url.path", path)
		putHostPort(attrs, req.Host, req.Local, req.LocalIP)
		putAddr(attrs, "client.address", "client.port", req.Remote, req.RemoteIP)
	} else {
		host, port := putHostPort(attrs, req.Host, req.Remote, req.RemoteIP)
		attrs.PutStr("url.full", urlFull(req, host, port, path))
	}
	if b.RecordQuery {
		if i := strings.IndexByte(req.Target, '?'); i >= 0 {
			attrs.PutStr("url.query", req.Target[i+1:])
		}
	}
	putAddr(attrs, "network.peer.address", "network.peer.port", req.Remote, req.RemoteIP)
	putAddr(attrs, "network.local.address", "network.local.port", req.Local, req.LocalIP)
	if req.RequestBodySize > 0 {
		attrs.PutInt("http.request.body.size", req.RequestBodySize)
	}
	if req.ResponseBodySize > 0 {
		attrs.PutInt("http.response.body.size", req.ResponseBodySize)
	}
}

// attributeCount is the number of attributes attributes puts for req.
func (b *Builder) attributeCount(req *Request) int {
	n := 5 // method, protocol version, scheme, server.address, server.port
	if !knownMethod(req.Method) {
		n++ // http.request.method_original
	}
	if req.Status != 0 {
		n++
	}
	if req.Role == http1.RoleServer {
		n += 2 // http.route, url.path
		if req.Remote.IsValid() {
			n += 2 // client.address, client.port
		}
	} else {
		n++ // url.full
	}
	if b.RecordQuery && strings.IndexByte(req.Target, '?') >= 0 {
		n++
	}
	if req.Remote.IsValid() {
		n += 2 // network.peer.*
	}
	if req.Local.IsValid() {
		n += 2 // network.local.*
	}
	if req.RequestBodySize > 0 {
		n++
	}
	if req.ResponseBodySize > 0 {
		n++
	}
	return n
}

// putHostPort sets server.address and server.port from the Host header when
// there is one, else from the server's end of the connection, and returns
// them. Only client spans need them joined (url.full), so the joining, which
// allocates, is left to the caller.
func putHostPort(attrs pcommon.Map, hostHeader string, server netip.AddrPort, serverIP string) (string, int) {
	host, port := splitHost(hostHeader)
	if host == "" {
		host, port = ipText(serverIP, server), int(server.Port())
	}
	if port == 0 {
		port = int(server.Port())
	}
	attrs.PutStr("server.address", host)
	attrs.PutInt("server.port", int64(port))
	return host, port
}

// urlFull is the url.full of a client request, made once for the requests
// of a connection that repeat a target and a Host header.
func urlFull(req *Request, host string, port int, path string) string {
	n := &req.names
	if n.target != req.Target || n.host != req.Host {
		*n = names{target: req.Target, host: req.Host}
	}
	if n.full == "" {
		n.full = "http://" + hostPort(host, port) + path
	}
	return n.full
}

func hostPort(host string, port int) string {
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// splitHost splits a Host header ("example.com:8080", "[::1]:80", "a.b").
func splitHost(h string) (string, int) {
	if h == "" {
		return "", 0
	}
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return h, 0
		}
		port, _ := strconv.Atoi(strings.TrimPrefix(h[end+1:], ":"))
		return h[1:end], port
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if port, err := strconv.Atoi(h[i+1:]); err == nil && port > 0 && port < 65536 {
			return h[:i], port
		}
	}
	return h, 0
}

func putAddr(attrs pcommon.Map, addrKey, portKey string, ap netip.AddrPort, text string) {
	if !ap.IsValid() {
		return
	}
	attrs.PutStr(addrKey, ipText(text, ap))
	attrs.PutInt(portKey, int64(ap.Port()))
}

func setStatus(st ptrace.Status, req *Request) {
	switch {
	case req.Status == 0:
		st.SetCode(ptrace.StatusCodeError)
		st.SetMessage("no response: the connection ended first")
	case req.Status >= 500, req.Role == http1.RoleClient && req.Status >= 400:
		st.SetCode(ptrace.StatusCodeError)
	}
}
