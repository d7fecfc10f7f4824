package semconv

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
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

// options returns protocol options whose routes come from patterns, at
// most max per service.
func options(t testing.TB, patterns []string, unmatched string, max int) *protocols.Options {
	router, err := routes.New(patterns, unmatched)
	require.NoError(t, err)
	return &protocols.Options{Routes: routes.NewLimiter(router, max)}
}

func conn(local, remote string) *protocols.ConnInfo {
	c := &protocols.ConnInfo{Service: "svc"}
	if local != "" {
		c.Local, c.Remote = netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)
	}
	return c
}

func exchange(role protocols.Role, times ...uint64) *protocols.Exchange {
	x := &protocols.Exchange{Role: role}
	if len(times) == 4 {
		x.RequestStart, x.RequestEnd, x.ResponseStart, x.ResponseEnd = times[0], times[1], times[2], times[3]
	}
	return x
}

func fill(h *HTTP, x *protocols.Exchange, c *protocols.ConnInfo, o *protocols.Options, n *HTTPNames) ptrace.Span {
	s := ptrace.NewSpan()
	h.Fill(s, x, c, o, n)
	return s
}

func TestFillServerSpan(t *testing.T) {
	o := options(t, []string{"/users/{id}"}, "heuristic", 100)
	h := &HTTP{Method: "POST", Target: "/users/7?x=1", Version: "1.1", Host: "api.local:8080", Status: 503,
		Scheme: "http", RequestBodySize: 12}
	s := fill(h, exchange(protocols.RoleServer, 10, 20, 30, 40), conn("127.0.0.1:8080", "127.0.0.2:50000"), o, &HTTPNames{})
	assert.Equal(t, "POST /users/{id}", s.Name())
	assert.Equal(t, ptrace.StatusCodeError, s.Status().Code())
	assert.Equal(t, map[string]any{
		"http.request.method":       "POST",
		"http.response.status_code": int64(503),
		"error.type":                "503",
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
	}, s.Attributes().AsRaw())
}

func TestFillClientSpan(t *testing.T) {
	o := options(t, nil, "", 100)
	o.RecordQuery = true
	h := &HTTP{Method: "BREW", Target: "/pot?sugar=2", Version: "1.0", Status: 418, Scheme: "http", ResponseBodySize: 3}
	s := fill(h, exchange(protocols.RoleClient, 5, 6, 7, 8), conn("127.0.0.1:40000", "[::1]:9000"), o, &HTTPNames{})
	assert.Equal(t, "HTTP", s.Name())
	assert.Equal(t, ptrace.StatusCodeError, s.Status().Code(), "4xx is an error on a client span")
	assert.Equal(t, map[string]any{
		"http.request.method":          "_OTHER",
		"http.request.method_original": "BREW",
		"http.response.status_code":    int64(418),
		"error.type":                   "418",
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
	}, s.Attributes().AsRaw())
}

func TestNoResponseIsAnError(t *testing.T) {
	o := options(t, nil, "path", 100)
	h := &HTTP{Method: "GET", Target: "/slow", Version: "1.1", Scheme: "http"}
	s := fill(h, exchange(protocols.RoleServer, 1, 2, 0, 0), conn("", ""), o, &HTTPNames{})
	assert.Equal(t, ptrace.StatusCodeError, s.Status().Code())
	_, has := s.Attributes().Get("http.response.status_code")
	assert.False(t, has)
	et, _ := s.Attributes().Get("error.type")
	assert.Equal(t, NoResponse, et.Str())
}

// Spans and metrics say the same of an exchange: method, route, error
// and server, from one definition.
func TestSpanAndMetricAgree(t *testing.T) {
	o := options(t, nil, "heuristic", 2)
	c := conn("127.0.0.1:8080", "127.0.0.2:50000")
	for _, tt := range []struct {
		role   protocols.Role
		method string
		target string
		status int
	}{
		{protocols.RoleServer, "GET", "/a/1", 200},
		{protocols.RoleServer, "SCAN", "/b", 500},
		{protocols.RoleServer, "GET", "/c", 0},
		{protocols.RoleServer, "GET", "/d", 200}, // beyond 2 routes: _OTHER
		{protocols.RoleClient, "PUT", "/x", 404},
		{protocols.RoleClient, "FOO", "/y", 200},
	} {
		h := &HTTP{Method: tt.method, Target: tt.target, Status: tt.status, Version: "1.1", Scheme: "http", Host: "api:81"}
		x := exchange(tt.role, 1, 2, 3, 4)
		names := &HTTPNames{}
		span := fill(h, x, c, o, names)
		k, obs, ok := h.Metric(x, c, o, names)
		require.True(t, ok)
		point := pcommon.NewMap()
		k.Family.Attributes(&k, point)
		for _, key := range []string{"http.request.method", "http.route", "error.type", "http.response.status_code", "server.port"} {
			sv, inSpan := span.Attributes().Get(key)
			mv, inMetric := point.Get(key)
			require.Equal(t, inSpan, inMetric, "%s of %+v", key, tt)
			if inSpan {
				assert.Equal(t, sv.AsString(), mv.AsString(), "%s of %+v", key, tt)
			}
		}
		if tt.role == protocols.RoleClient {
			sv, _ := span.Attributes().Get("server.address")
			mv, _ := point.Get("server.address")
			assert.Equal(t, sv.AsString(), mv.AsString())
		} else {
			_, has := point.Get("server.address")
			assert.False(t, has, "a server's Host header is its client's to choose: not a metric attribute")
		}
		assert.InDelta(t, 3e-9, obs[0], 1e-12)
	}
	route, _ := fill(&HTTP{Method: "GET", Target: "/d", Scheme: "http"}, exchange(protocols.RoleServer), c, o, &HTTPNames{}).Attributes().Get("http.route")
	assert.Equal(t, routes.Overflow, route.Str())
	assert.Equal(t, uint64(3), o.Routes.Overflowed(), "/c and /d (a span and a metric each), and /d again")
}

// attributes sizes the map with attributeCount: a count that is too small
// costs a copy of every attribute, so it must match what is put.
func TestAttributeCountMatches(t *testing.T) {
	for _, role := range []protocols.Role{protocols.RoleServer, protocols.RoleClient} {
		for _, method := range []string{"GET", "BREW"} {
			for _, status := range []int{0, 200, 503} {
				for _, size := range []int64{0, 7} {
					for _, withConn := range []bool{true, false} {
						for _, recordQuery := range []bool{true, false} {
							o := options(t, nil, "", 100)
							o.RecordQuery = recordQuery
							h := &HTTP{Method: method, Target: "/a/1?q", Version: "1.1", Status: status, Scheme: "http",
								RequestBodySize: size, ResponseBodySize: size}
							c := conn("", "")
							if withConn {
								c = conn("127.0.0.1:8080", "[::1]:50000")
							}
							x := exchange(role)
							s := fill(h, x, c, o, &HTTPNames{})
							assert.Equal(t, s.Attributes().Len(), h.attributeCount(x, c, o, h.view(x, c, o, &HTTPNames{})), "%+v %v", h, role)
						}
					}
				}
			}
		}
	}
}

// The names kept for a connection follow its targets and methods.
func TestNamesFollowTheRequest(t *testing.T) {
	o := options(t, nil, "", 100)
	names := &HTTPNames{}
	c := conn("", "")
	for _, tt := range []struct{ method, target, name string }{
		{"GET", "/users/42", "GET /users/*"},
		{"GET", "/users/42", "GET /users/*"},
		{"POST", "/users/42", "POST /users/*"},
		{"POST", "/orders?id=1", "POST /orders"},
		{"BREW", "/orders?id=1", "HTTP /orders"},
		{"GET", "", "GET /"},
	} {
		s := fill(&HTTP{Method: tt.method, Target: tt.target, Scheme: "http"}, exchange(protocols.RoleServer), c, o, names)
		assert.Equal(t, tt.name, s.Name(), tt.target)
	}
	names.Forget()
	c = conn("10.0.0.1:40000", "10.0.0.2:80")
	for _, tt := range []struct{ host, target, full string }{
		{"", "/a?x", "http://10.0.0.2:80/a"},
		{"", "/a?x", "http://10.0.0.2:80/a"},
		{"shop:9000", "/a?x", "http://shop:9000/a"},
		{"shop:9000", "/b", "http://shop:9000/b"},
		{"[::1]", "/b", "http://[::1]:80/b"},
		{"", "/b", "http://10.0.0.2:80/b"},
	} {
		s := fill(&HTTP{Method: "GET", Target: tt.target, Host: tt.host, Scheme: "http"}, exchange(protocols.RoleClient), c, o, names)
		full, _ := s.Attributes().Get("url.full")
		assert.Equal(t, tt.full, full.Str(), "%s %s", tt.host, tt.target)
	}
}

// A connection repeating a target makes its route, name and url.full once.
func TestRepeatedTargetDoesNotAllocate(t *testing.T) {
	o := options(t, nil, "", 100)
	names := &HTTPNames{}
	h := &HTTP{Method: "GET", Target: "/users/42", Scheme: "http", Host: "shop:9000"}
	c := conn("10.0.0.1:40000", "10.0.0.2:80")
	server, client := exchange(protocols.RoleServer), exchange(protocols.RoleClient)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		h.viewed = false
		names.spanName(h.view(server, c, o, names))
	}))
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		names.urlFull("http", h.Target, h.Host, "shop", 9000, "/users/42")
	}))
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		h.viewed = false
		h.Metric(client, c, o, names)
	}))
}
