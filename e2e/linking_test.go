package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// startHAProxy runs haproxy in TCP mode, forwarding a new loopback port to
// backend, and returns the peer and its address.
func startHAProxy(t *testing.T, backend string) (*peer, string) {
	t.Helper()
	port := freePort(t)
	cfg := fmt.Sprintf(`global
    maxconn 512
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend front
    bind 127.0.0.1:%d
    default_backend back
backend back
    server next %s
`, port, backend)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	p := startPeer(t, exec.Command("haproxy", "-db", "-f", path))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr)
	return p, addr
}

// hop is one expected span of a chain: the process and kind, in order from
// the entry to the backend; each span's parent is the one before it.
type hop struct {
	pid  int
	kind ptrace.SpanKind
}

// chainStats counts, over every request path, the traces that have every
// expected span (complete) and whose every parent is right (linked).
func chainStats(h *harness, chain []hop, paths []string) (complete, linked int) {
	byPath := map[string]map[hop][]span{}
	for _, c := range chain {
		for _, s := range h.spansOf(c.pid, c.kind) {
			p := s.str("url.path")
			if p == "" {
				p = pathOfURL(s.str("url.full"))
			}
			if byPath[p] == nil {
				byPath[p] = map[hop][]span{}
			}
			byPath[p][c] = append(byPath[p][c], s)
		}
	}
	for _, p := range paths {
		got := byPath[p]
		ok := true
		for _, c := range chain {
			ok = ok && len(got[c]) == 1
		}
		if !ok {
			continue
		}
		complete++
		right := true
		for i := 1; i < len(chain); i++ {
			parent, child := got[chain[i-1]][0], got[chain[i]][0]
			right = right && child.TraceID() == parent.TraceID() && child.ParentSpanID() == parent.SpanID()
		}
		if right {
			linked++
		}
	}
	return complete, linked
}

func pathOfURL(u string) string {
	n := 0
	for i := 0; i < len(u); i++ {
		if u[i] == '/' {
			n++
			if n == 3 {
				return u[i:]
			}
		}
	}
	return ""
}

// The seeds' story: a client, two TCP proxies, a Go backend. Each request
// gives one five-span trace: server and client span at each proxy, server
// span at the backend, each the child of the one before.
func TestTwoTCPProxiesOneTrace(t *testing.T) {
	for _, tc := range []struct {
		name        string
		requests    int
		concurrency int
		minLinked   float64
	}{
		{"sequential", 100, 1, 1.0},
		{"32 concurrent clients", 640, 32, 0.99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := startGoServer(t)
			inner, innerAddr := startHAProxy(t, backend.addr)
			outer, outerAddr := startHAProxy(t, innerAddr)
			h := startReceiver(t, func(c *ebpfreceiver.Config) {
				c.Discovery.Pids = []int{backend.pid(), inner.pid(), outer.pid()}
			})
			for _, p := range []*peer{backend, inner, outer} {
				h.waitInstrumented(t, p.pid())
			}
			_, ok := runGoClient(t, "http://"+outerAddr+"/req/{i}", tc.requests, tc.concurrency)
			require.Equal(t, tc.requests, ok)
			h.waitSpans(t, backend.pid(), ptrace.SpanKindServer, tc.requests)
			h.waitSpans(t, outer.pid(), ptrace.SpanKindServer, tc.requests)

			chain := []hop{
				{outer.pid(), ptrace.SpanKindServer}, {outer.pid(), ptrace.SpanKindClient},
				{inner.pid(), ptrace.SpanKindServer}, {inner.pid(), ptrace.SpanKindClient},
				{backend.pid(), ptrace.SpanKindServer},
			}
			paths := make([]string, tc.requests)
			for i := range paths {
				paths[i] = fmt.Sprintf("/req/%d", i)
			}
			complete, linked := chainStats(h, chain, paths)
			t.Logf("haproxy x2, %s: %d requests, %d complete traces, %d correctly linked", tc.name, tc.requests, complete, linked)
			require.Equal(t, tc.requests, complete)
			require.GreaterOrEqual(t, float64(linked)/float64(tc.requests), tc.minLinked)
		})
	}
}
