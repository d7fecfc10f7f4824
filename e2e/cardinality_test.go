package e2e

import (
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// What scanners send — made-up methods, random paths — must not make a
// metric series each: methods the conventions do not name are _OTHER in
// metrics as in spans, and a service's routes beyond
// routes.max_per_service become _OTHER, counted.
func TestHostilePeerCardinality(t *testing.T) {
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.Pids = []int{srv.pid()}
		c.Routes.MaxPerService = 200
	})
	h.waitInstrumented(t, srv.pid())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	send := func(method, path string) {
		req, err := http.NewRequest(method, "http://"+srv.addr+path, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	letters := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rand.IntN(26))
		}
		return string(b)
	}
	const n = 400
	for i := 0; i < n; i++ {
		send(string([]byte{'X', byte('A' + i%26), byte('A' + i/26%26), 'Q'}), "/")
	}
	paths := map[string]bool{}
	for len(paths) < n {
		p := "/" + letters(10)
		if !paths[p] {
			paths[p] = true
			send(http.MethodGet, p)
		}
	}

	spans := h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 2*n)
	spanRoutes, overflowed := map[string]bool{}, 0
	for _, s := range spans {
		m := s.str("http.request.method")
		require.Contains(t, []string{"GET", "_OTHER"}, m)
		spanRoutes[s.str("http.route")] = true
		if s.str("http.route") == "_OTHER" {
			overflowed++
		}
	}
	// "/" took the first of the 200 routes, the GETs the next 199; the
	// other 201 GETs overflowed.
	assert.Len(t, spanRoutes, 201)
	assert.Equal(t, n-199, overflowed)

	h.waitRequestCount(t, srv.pid(), "http.server.request.duration", 2*n)
	series := map[[2]string]bool{}
	md := h.metrics.AllMetrics()[len(h.metrics.AllMetrics())-1]
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if ms.At(j).Name() != "http.server.request.duration" {
				continue
			}
			dps := ms.At(j).Histogram().DataPoints()
			for k := 0; k < dps.Len(); k++ {
				method, _ := dps.At(k).Attributes().Get("http.request.method")
				route, _ := dps.At(k).Attributes().Get("http.route")
				series[[2]string{method.Str(), route.Str()}] = true
			}
		}
	}
	assert.Len(t, series, 201, "(_OTHER, /), 199 GET routes, (GET, _OTHER)")
	assert.True(t, series[[2]string{"_OTHER", "/"}])
	assert.True(t, series[[2]string{"GET", "_OTHER"}])
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_cardinality_limited", "limit", "routes") == int64(n-199)
	}, 5*time.Second, 50*time.Millisecond, "routes limited: %d", h.selfMetric(t, "otelcol_receiver_ebpf_cardinality_limited", "limit", "routes"))
}
