package semconv

import (
	"net/netip"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

// HTTPDurationBounds are the conventions' advised buckets, in seconds.
var HTTPDurationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// SizeBounds are buckets for body sizes, in bytes.
var SizeBounds = []float64{0, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000}

// HTTP is one HTTP exchange, whatever the version of HTTP carried it.
type HTTP struct {
	Method  string // as sent
	Target  string // the request-target (HTTP/1) or :path (HTTP/2)
	Host    string // the Host header or :authority; "" when absent
	Status  int    // the final response's status; 0 when no response came
	Version string // "1.0", "1.1", "2"; "" when not seen
	Scheme  string // "http" or "https"

	// Body bytes: decoded (chunked, DATA frames) where the framing was
	// seen, else bytes counted.
	RequestBodySize, ResponseBodySize int64

	// view is what Fill and Metric both say, made once per exchange: a
	// route given for want of room is counted once.
	memo   httpView
	viewed bool
}

// HTTPNames keeps what costs an allocation to make from a request: a
// route, a span name, a url.full. Requests on one connection repeat their
// targets, so a parser keeps one HTTPNames per connection and they are
// made once per target.
type HTTPNames struct {
	route struct{ target, service, value string }
	name  struct{ method, route, value string }
	full  struct{ target, host, value string }
}

// Forget drops what the next connection cannot reuse: url.full holds the
// server's address. A route (made per service) and a span name hold
// nothing of the connection: behind clients that do not reuse
// connections, making them again would cost allocations per request.
func (n *HTTPNames) Forget() { n.full.value = "" }

// HTTPServer and HTTPClient count HTTP exchanges by role.
var (
	HTTPServer = &redmetrics.Family{Instruments: []redmetrics.Instrument{
		{Name: "http.server.request.duration", Unit: "s", Description: "Duration of HTTP server requests.", Bounds: HTTPDurationBounds},
		{Name: "http.server.request.body.size", Unit: "By", Description: "Size of HTTP server request bodies.", Bounds: SizeBounds},
		{Name: "http.server.response.body.size", Unit: "By", Description: "Size of HTTP server response bodies.", Bounds: SizeBounds},
	}, Attributes: httpMetricAttributes}
	HTTPClient = &redmetrics.Family{Instruments: []redmetrics.Instrument{
		{Name: "http.client.request.duration", Unit: "s", Description: "Duration of HTTP client requests.", Bounds: HTTPDurationBounds},
		{Name: "http.client.request.body.size", Unit: "By", Description: "Size of HTTP client request bodies.", Bounds: SizeBounds},
		{Name: "http.client.response.body.size", Unit: "By", Description: "Size of HTTP client response bodies.", Bounds: SizeBounds},
	}, Attributes: httpMetricAttributes}
)

// Key slots of the HTTP families.
const (
	httpMethod = iota
	httpRoute  // servers
	httpServerAddress
	httpVersion
	httpScheme
	httpErrorType
)

const (
	httpStatus = iota
	httpServerPort
)

// httpView is what spans and metrics both say of an exchange: the one
// definition of its method, route, error and server.
type httpView struct {
	method     string // the method, or "_OTHER"
	original   string // the method as sent, when it is not one the conventions name
	route      string // servers only
	errorType  string // "" when the exchange did not fail
	serverAddr string
	serverPort int
}

// view applies the conventions to h, once.
func (h *HTTP) view(x *protocols.Exchange, conn *protocols.ConnInfo, o *protocols.Options, names *HTTPNames) *httpView {
	if !h.viewed {
		h.memo, h.viewed = h.makeView(x, conn, o, names), true
	}
	return &h.memo
}

func (h *HTTP) makeView(x *protocols.Exchange, conn *protocols.ConnInfo, o *protocols.Options, names *HTTPNames) httpView {
	v := httpView{method: h.Method}
	if !KnownMethod(h.Method) {
		v.method, v.original = "_OTHER", h.Method
	}
	server := x.Role == protocols.RoleServer
	switch {
	case h.Status == 0:
		v.errorType = NoResponse
	case h.Status >= 500, !server && h.Status >= 400:
		v.errorType = strconv.Itoa(h.Status)
	}
	if server {
		v.route = names.routeOf(o, conn.Service, h.Target)
		v.serverAddr, v.serverPort = hostPort(h.Host, conn.Local, conn.LocalIP)
	} else {
		v.serverAddr, v.serverPort = hostPort(h.Host, conn.Remote, conn.RemoteIP)
	}
	return v
}

// KnownMethod reports whether the conventions name method; others are
// reported as _OTHER. A switch, unlike a map, does not hash the method.
func KnownMethod(method string) bool {
	switch method {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY":
		return true
	}
	return false
}

// routeOf is the bounded http.route of a server request's target. A route
// given for want of room is not kept: the limiter counts every request
// it is given to.
func (n *HTTPNames) routeOf(o *protocols.Options, service, target string) string {
	r := &n.route
	if r.value == "" || r.target != target || r.service != service {
		r.target, r.service, r.value = target, service, o.Routes.Route(service, Path(target))
	}
	route := r.value
	if route == routes.Overflow {
		r.value = ""
	}
	return route
}

// spanName is the span name of a request: "{method} {route}" on servers,
// "{method}" on clients, "HTTP" for methods the conventions do not name.
func (n *HTTPNames) spanName(v *httpView) string {
	method := v.method
	if v.original != "" {
		method = "HTTP"
	}
	if v.route == "" {
		return method // a constant, or the method as it was read
	}
	m := &n.name
	if m.value == "" || m.method != method || m.route != v.route {
		m.method, m.route, m.value = method, v.route, method+" "+v.route
	}
	return m.value
}

// urlFull is url.full of a client request. The scheme and the server's
// address are the connection's, so only the target and Host vary.
func (n *HTTPNames) urlFull(scheme, target, hostHeader, host string, port int, path string) string {
	f := &n.full
	if f.value == "" || f.target != target || f.host != hostHeader {
		f.target, f.host, f.value = target, hostHeader, scheme+"://"+joinHostPort(host, port)+path
	}
	return f.value
}

// Fill writes the span of exchange x: name, status and attributes.
func (h *HTTP) Fill(span ptrace.Span, x *protocols.Exchange, conn *protocols.ConnInfo, o *protocols.Options, names *HTTPNames) {
	v := h.view(x, conn, o, names)
	span.SetName(names.spanName(v))
	attrs := span.Attributes()
	// The exact count: a slice grown past its capacity is copied whole,
	// and one sized too large wastes what every span of a batch keeps.
	attrs.EnsureCapacity(h.attributeCount(x, conn, o, v))
	attrs.PutStr("http.request.method", v.method)
	if v.original != "" {
		attrs.PutStr("http.request.method_original", v.original)
	}
	if h.Status != 0 {
		attrs.PutInt("http.response.status_code", int64(h.Status))
	}
	if v.errorType != "" {
		attrs.PutStr("error.type", v.errorType)
	}
	if h.Version != "" {
		attrs.PutStr("network.protocol.version", h.Version)
	}
	scheme := h.scheme(conn)
	attrs.PutStr("url.scheme", scheme)
	path := Path(h.Target)
	attrs.PutStr("server.address", v.serverAddr)
	attrs.PutInt("server.port", int64(v.serverPort))
	if x.Role == protocols.RoleServer {
		attrs.PutStr("http.route", v.route)
		attrs.PutStr("url.path", path)
		putAddr(attrs, "client.address", "client.port", conn.Remote, conn.RemoteIP)
	} else {
		attrs.PutStr("url.full", names.urlFull(scheme, h.Target, h.Host, v.serverAddr, v.serverPort, path))
	}
	if o.RecordQuery {
		if i := strings.IndexByte(h.Target, '?'); i >= 0 {
			attrs.PutStr("url.query", h.Target[i+1:])
		}
	}
	putAddr(attrs, "network.peer.address", "network.peer.port", conn.Remote, conn.RemoteIP)
	putAddr(attrs, "network.local.address", "network.local.port", conn.Local, conn.LocalIP)
	if h.RequestBodySize > 0 {
		attrs.PutInt("http.request.body.size", h.RequestBodySize)
	}
	if h.ResponseBodySize > 0 {
		attrs.PutInt("http.response.body.size", h.ResponseBodySize)
	}
	switch {
	case v.errorType == NoResponse:
		span.Status().SetCode(ptrace.StatusCodeError)
		span.Status().SetMessage("no response: the connection ended first")
	case v.errorType != "":
		span.Status().SetCode(ptrace.StatusCodeError)
	}
}

// attributeCount is the number of attributes Fill puts.
func (h *HTTP) attributeCount(x *protocols.Exchange, conn *protocols.ConnInfo, o *protocols.Options, v *httpView) int {
	n := 4 // method, scheme, server.address, server.port
	for _, present := range []bool{
		v.original != "", h.Status != 0, v.errorType != "", h.Version != "",
		o.RecordQuery && strings.IndexByte(h.Target, '?') >= 0,
		h.RequestBodySize > 0, h.ResponseBodySize > 0,
	} {
		if present {
			n++
		}
	}
	if x.Role == protocols.RoleServer {
		n += 2 // http.route, url.path
		if conn.Remote.IsValid() {
			n += 2 // client.*
		}
	} else {
		n++ // url.full
	}
	if conn.Remote.IsValid() {
		n += 2
	}
	if conn.Local.IsValid() {
		n += 2
	}
	return n
}

// Metric says which HTTP series exchange x counts in: the same method,
// route, error and server as its span.
func (h *HTTP) Metric(x *protocols.Exchange, conn *protocols.ConnInfo, o *protocols.Options, names *HTTPNames) (redmetrics.Key, redmetrics.Observation, bool) {
	v := h.view(x, conn, o, names)
	k := redmetrics.Key{Family: HTTPClient}
	if x.Role == protocols.RoleServer {
		// A server's Host header is its client's to choose: server.address
		// is left out of server series, as the conventions allow.
		k.Family = HTTPServer
		k.Str[httpRoute] = v.route
	} else {
		k.Str[httpServerAddress] = v.serverAddr
	}
	k.Str[httpMethod] = v.method
	k.Str[httpVersion] = h.Version
	k.Str[httpScheme] = h.scheme(conn)
	k.Str[httpErrorType] = v.errorType
	k.Int[httpStatus] = int64(h.Status)
	k.Int[httpServerPort] = int64(v.serverPort)
	obs := redmetrics.Observation{Seconds(x), float64(h.RequestBodySize), float64(h.ResponseBodySize)}
	return k, obs, true
}

func httpMetricAttributes(k *redmetrics.Key, attrs pcommon.Map) {
	attrs.PutStr("http.request.method", k.Str[httpMethod])
	if k.Int[httpStatus] != 0 {
		attrs.PutInt("http.response.status_code", k.Int[httpStatus])
	}
	putNonEmpty(attrs, "error.type", k.Str[httpErrorType])
	putNonEmpty(attrs, "http.route", k.Str[httpRoute])
	putNonEmpty(attrs, "server.address", k.Str[httpServerAddress])
	attrs.PutInt("server.port", k.Int[httpServerPort])
	putNonEmpty(attrs, "network.protocol.version", k.Str[httpVersion])
	attrs.PutStr("url.scheme", k.Str[httpScheme])
}

// scheme is url.scheme: https for what a TLS library moved, whatever the
// parser took from the wire format (HTTP/1 has no scheme of its own).
func (h *HTTP) scheme(conn *protocols.ConnInfo) string {
	if conn.TLS && h.Scheme == "http" {
		return "https"
	}
	return h.Scheme
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

// hostPort is server.address and server.port: the Host header's when
// there is one, else the server's end of the connection.
func hostPort(hostHeader string, server netip.AddrPort, serverIP string) (string, int) {
	host, port := splitHost(hostHeader)
	if host == "" {
		host, port = ipText(serverIP, server), int(server.Port())
	}
	if port == 0 {
		port = int(server.Port())
	}
	return host, port
}

func joinHostPort(host string, port int) string {
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

func ipText(cached string, ap netip.AddrPort) string {
	if cached != "" {
		return cached
	}
	return ap.Addr().String()
}

func putAddr(attrs pcommon.Map, addrKey, portKey string, ap netip.AddrPort, text string) {
	if !ap.IsValid() {
		return
	}
	attrs.PutStr(addrKey, ipText(text, ap))
	attrs.PutInt(portKey, int64(ap.Port()))
}
