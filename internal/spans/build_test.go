package spans

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/http1"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

func TestPath(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b?c=d":               "/a/b",
		"/":                      "/",
		"http://example.com/x?y": "/x",
		"http://example.com":     "/",
		"*":                      "*",
	} {
		assert.Equal(t, want, Path(in), in)
	}
}

func TestSplitHost(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
	}{
		{"example.com:8080", "example.com", 8080},
		{"example.com", "example.com", 0},
		{"[::1]:80", "::1", 80},
		{"[::1]", "::1", 0},
		{"a:b", "a:b", 0},
		{"", "", 0},
	}
	for _, tt := range tests {
		h, p := splitHost(tt.in)
		assert.Equal(t, tt.host, h, tt.in)
		assert.Equal(t, tt.port, p, tt.in)
	}
}

func attrs(s ptrace.Span) map[string]any { return s.Attributes().AsRaw() }

func TestFillServerSpan(t *testing.T) {
	router, err := routes.New([]string{"/users/{id}"}, "heuristic")
	require.NoError(t, err)
	b := Builder{Router: router, Clock: Clock{Offset: 1000}}
	req := &Request{
		Exchange: http1.Exchange{Role: http1.RoleServer, Method: "POST", Target: "/users/7?x=1", Version: "1.1",
			Host: "api.local:8080", Status: 503, RequestStart: 10, RequestEnd: 20, ResponseStart: 30, ResponseEnd: 40,
			RequestBodySize: 12, ResponseBodySize: 0},
		Local:  netip.MustParseAddrPort("127.0.0.1:8080"),
		Remote: netip.MustParseAddrPort("127.0.0.2:50000"),
	}
	s := ptrace.NewSpan()
	id := &Identity{TraceID: NewTraceID(), SpanID: NewSpanID(), Flags: 1}
	b.Fill(s, req, id)
	assert.Equal(t, id.TraceID, s.TraceID())
	assert.Equal(t, id.SpanID, s.SpanID())
	assert.Equal(t, "POST /users/{id}", s.Name())
	assert.Equal(t, ptrace.SpanKindServer, s.Kind())
	assert.Equal(t, pcommon.Timestamp(1010), s.StartTimestamp())
	assert.Equal(t, pcommon.Timestamp(1040), s.EndTimestamp())
	assert.Equal(t, ptrace.StatusCodeError, s.Status().Code())
	assert.False(t, s.TraceID().IsEmpty())
	assert.True(t, s.ParentSpanID().IsEmpty())
	assert.Equal(t, map[string]any{
		"http.request.method":       "POST",
		"http.response.status_code": int64(503),
		"network.protocol.version":  "1.1",
		"url.scheme":                "http",
		"http.route":                "/users/{id}",
		"url.path":                  "/users/7",
		"server.address":            "api.local",
		"server.port":               int64(8080),
		"client.address":            "127.0.0.2",
		"client.port":               int64(50000),
		"network.peer.address":      "127.0.0.2",
		"network.peer.port":         int64(50000),
		"network.local.address":     "127.0.0.1",
		"network.local.port":        int64(8080),
		"http.request.body.size":    int64(12),
	}, attrs(s))
}

func TestFillClientSpan(t *testing.T) {
	router, err := routes.New(nil, "")
	require.NoError(t, err)
	b := Builder{Router: router, RecordQuery: true}
	req := &Request{
		Exchange: http1.Exchange{Role: http1.RoleClient, Method: "BREW", Target: "/pot?sugar=2", Version: "1.0",
			Status: 418, RequestStart: 5, RequestEnd: 6, ResponseStart: 7, ResponseEnd: 8, ResponseBodySize: 3,
			Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		Local:  netip.MustParseAddrPort("127.0.0.1:40000"),
		Remote: netip.MustParseAddrPort("[::1]:9000"),
	}
	s := ptrace.NewSpan()
	c, _ := ParseTraceparent(req.Traceparent)
	b.Fill(s, req, &Identity{TraceID: c.TraceID, SpanID: NewSpanID(), ParentID: c.SpanID, Flags: c.Flags})
	assert.Equal(t, "HTTP", s.Name())
	assert.Equal(t, ptrace.SpanKindClient, s.Kind())
	assert.Equal(t, ptrace.StatusCodeError, s.Status().Code(), "4xx is an error on a client span")
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.TraceID().String())
	assert.Equal(t, "b7ad6b7169203331", s.ParentSpanID().String())
	assert.Equal(t, map[string]any{
		"http.request.method":          "_OTHER",
		"http.request.method_original": "BREW",
		"http.response.status_code":    int64(418),
		"network.protocol.version":     "1.0",
		"url.scheme":                   "http",
		"url.full":                     "http://[::1]:9000/pot",
		"url.query":                    "sugar=2",
		"server.address":               "::1",
		"server.port":                  int64(9000),
		"network.peer.address":         "::1",
		"network.peer.port":            int64(9000),
		"network.local.address":        "127.0.0.1",
		"network.local.port":           int64(40000),
		"http.response.body.size":      int64(3),
	}, attrs(s))
}

func TestNoResponseIsAnError(t *testing.T) {
	router, _ := routes.New(nil, "path")
	b := Builder{Router: router}
	s := ptrace.NewSpan()
	b.Fill(s, &Request{Exchange: http1.Exchange{Role: http1.RoleServer, Method: "GET", Target: "/slow", Version: "1.1", RequestStart: 1, RequestEnd: 2}}, &Identity{})
	assert.Equal(t, ptrace.StatusCodeError, s.Status().Code())
	assert.Equal(t, pcommon.Timestamp(2), s.EndTimestamp())
	_, has := s.Attributes().Get("http.response.status_code")
	assert.False(t, has)
}

func TestTextLine(t *testing.T) {
	router, _ := routes.New(nil, "")
	b := Builder{Router: router}
	id := &Identity{TraceID: pcommon.TraceID{0xa}, SpanID: pcommon.SpanID{0xb}, ParentID: pcommon.SpanID{0xc}, Flags: 1}
	server := ptrace.NewSpan()
	b.Fill(server, &Request{
		Exchange: http1.Exchange{Role: http1.RoleServer, Method: "GET", Target: "/users/42?x", Version: "1.1", Status: 200,
			RequestStart: 1_000_000, ResponseEnd: 6_045_099, ResponseBodySize: 5},
		Local: netip.MustParseAddrPort("127.0.0.1:8080"), Remote: netip.MustParseAddrPort("127.0.0.1:50312"),
	}, id)
	assert.Equal(t, "1970-01-01 00:00:00.001000 (5.045099ms) HTTP 200 GET /users/42 [127.0.0.1:50312]->[127.0.0.1:8080] size:5B svc=[api] "+
		"traceparent=[00-0a000000000000000000000000000000-0b00000000000000[0c00000000000000]-01]", TextLine(server, "api"))

	client := ptrace.NewSpan()
	b.Fill(client, &Request{
		Exchange: http1.Exchange{Role: http1.RoleClient, Method: "POST", Target: "/orders", Version: "1.1", Host: "shop:9000",
			RequestStart: 0, ResponseEnd: 1500, RequestBodySize: 12},
		Local: netip.MustParseAddrPort("127.0.0.1:40000"), Remote: netip.MustParseAddrPort("127.0.0.2:9000"),
	}, &Identity{TraceID: pcommon.TraceID{0xa}, SpanID: pcommon.SpanID{0xd}})
	assert.Equal(t, "1970-01-01 00:00:00.000000 (1.5µs) HTTPClient - POST /orders [127.0.0.1:40000]->[127.0.0.2:9000] size:12B svc=[shop-client] "+
		"traceparent=[00-0a000000000000000000000000000000-0d00000000000000[0000000000000000]-00]", TextLine(client, "shop-client"))
}

// attributes sizes the map with attributeCount: a count that is too small
// costs a copy of every attribute, so it must match what is put.
func TestAttributeCountMatches(t *testing.T) {
	router, _ := routes.New(nil, "")
	local, remote := netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("[::1]:50000")
	for _, role := range []http1.Role{http1.RoleServer, http1.RoleClient} {
		for _, method := range []string{"GET", "BREW"} {
			for _, status := range []int{0, 200} {
				for _, size := range []int64{0, 7} {
					for _, withConn := range []bool{true, false} {
						for _, recordQuery := range []bool{true, false} {
							b := Builder{Router: router, RecordQuery: recordQuery}
							req := &Request{Exchange: http1.Exchange{Role: role, Method: method, Target: "/a/1?q", Version: "1.1",
								Status: status, RequestBodySize: size, ResponseBodySize: size}}
							if withConn {
								req.SetConn(local, remote)
							}
							s := ptrace.NewSpan()
							b.Fill(s, req, &Identity{})
							assert.Equal(t, s.Attributes().Len(), b.attributeCount(req), "%+v", req)
						}
					}
				}
			}
		}
	}
}

// The route and name kept in a Request follow its target and method.
func TestNamesFollowTheRequest(t *testing.T) {
	router, _ := routes.New(nil, "")
	b := Builder{Router: router}
	req := &Request{}
	for _, c := range []struct{ method, target, name string }{
		{"GET", "/users/42", "GET /users/*"},
		{"GET", "/users/42", "GET /users/*"},
		{"POST", "/users/42", "POST /users/*"},
		{"POST", "/orders?id=1", "POST /orders"},
		{"BREW", "/orders?id=1", "HTTP /orders"},
		{"GET", "", "GET /"},
	} {
		req.Exchange = http1.Exchange{Role: http1.RoleServer, Method: c.method, Target: c.target}
		s := ptrace.NewSpan()
		b.Fill(s, req, &Identity{})
		assert.Equal(t, c.name, s.Name(), c.target)
		route, _ := s.Attributes().Get("http.route")
		assert.Equal(t, b.Route(c.target), route.Str())
		assert.Equal(t, b.Route(c.target), b.ServerRoute(req))
	}
	req.SetConn(netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80"))
	for _, c := range []struct{ host, target, full string }{
		{"", "/a?x", "http://10.0.0.2:80/a"},
		{"", "/a?x", "http://10.0.0.2:80/a"},
		{"shop:9000", "/a?x", "http://shop:9000/a"},
		{"shop:9000", "/b", "http://shop:9000/b"},
		{"[::1]", "/b", "http://[::1]:80/b"},
		{"", "/b", "http://10.0.0.2:80/b"},
	} {
		req.Exchange = http1.Exchange{Role: http1.RoleClient, Method: "GET", Target: c.target, Host: c.host}
		s := ptrace.NewSpan()
		b.Fill(s, req, &Identity{})
		full, _ := s.Attributes().Get("url.full")
		assert.Equal(t, c.full, full.Str(), "%s %s", c.host, c.target)
	}
	// A server request after a client one on the same Request.
	req.Exchange = http1.Exchange{Role: http1.RoleServer, Method: "GET", Target: "/b"}
	s := ptrace.NewSpan()
	b.Fill(s, req, &Identity{})
	assert.Equal(t, "GET /b", s.Name())
}

// A connection repeating a target makes its route and name once.
func TestRepeatedTargetDoesNotAllocate(t *testing.T) {
	router, _ := routes.New(nil, "")
	b := Builder{Router: router}
	target := "/users/42"
	req := &Request{Exchange: http1.Exchange{Role: http1.RoleServer, Method: "GET", Target: target}}
	allocs := testing.AllocsPerRun(100, func() {
		req.Target = target
		b.serverName(req)
		b.ServerRoute(req)
	})
	assert.Zero(t, allocs)

	req.Role, req.Host = http1.RoleClient, "shop:9000"
	allocs = testing.AllocsPerRun(100, func() {
		urlFull(req, "shop", 9000, "/users/42")
	})
	assert.Zero(t, allocs)
}
