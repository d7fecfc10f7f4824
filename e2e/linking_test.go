package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// chainStats counts, over requests 0..n-1, the traces that have every
// expected span (complete) and whose every parent is right (linked). A span
// belongs to request i when the last segment of its path is i: hops may
// rewrite the rest of the path.
func chainStats(h *harness, chain []hop, n int) (complete, linked int) {
	c := chainParents(h, chain, n)
	return c.complete, c.right
}

// chainShare is what chainParents counts: of the complete traces, those
// whose every hop is under the one before (right), those with a hop under
// another span (wrong: a lie), and the others, with a hop without a parent
// (unlinked: a trace cut in two, not a lie).
type chainShare struct {
	complete, right, wrong, unlinked int
}

func (c chainShare) String() string {
	pct := func(n int) float64 { return 100 * float64(n) / float64(max(c.complete, 1)) }
	return fmt.Sprintf("%d complete, %d linked (%.1f%%), %d wrong (%.1f%%), %d unlinked (%.1f%%)",
		c.complete, c.right, pct(c.right), c.wrong, pct(c.wrong), c.unlinked, pct(c.unlinked))
}

func chainParents(h *harness, chain []hop, n int) chainShare {
	byPath := map[string]map[hop][]span{}
	for _, c := range chain {
		for _, s := range h.spansOf(c.pid, c.kind) {
			p := lastSegment(s)
			if byPath[p] == nil {
				byPath[p] = map[hop][]span{}
			}
			byPath[p][c] = append(byPath[p][c], s)
		}
	}
	var share chainShare
	for i := 0; i < n; i++ {
		got := byPath[strconv.Itoa(i)]
		ok := true
		for _, c := range chain {
			ok = ok && len(got[c]) == 1
		}
		if !ok {
			continue
		}
		share.complete++
		wrong, unlinked := false, false
		for k := 1; k < len(chain); k++ {
			parent, child := got[chain[k-1]][0], got[chain[k]][0]
			if child.TraceID() == parent.TraceID() && child.ParentSpanID() == parent.SpanID() {
				continue
			}
			if child.ParentSpanID().IsEmpty() {
				unlinked = true
			} else {
				wrong = true
			}
			if os.Getenv("E2E_DEBUG_LINKS") != "" {
				fmt.Printf("request %d: hop %d (%v of pid %d) is not the child of hop %d (parent %s, want %s; trace %s, want %s)\n",
					i, k, chain[k].kind, chain[k].pid, k-1, child.ParentSpanID(), parent.SpanID(), child.TraceID(), parent.TraceID())
			}
		}
		switch {
		case wrong:
			share.wrong++
		case unlinked:
			share.unlinked++
		default:
			share.right++
		}
	}
	return share
}

// lastSegment is the last segment of a span's path (of url.full for a
// client span): the request's number, which hops do not rewrite.
func lastSegment(s span) string {
	p := s.str("url.path")
	if p == "" {
		p = pathOfURL(s.str("url.full"))
	}
	return p[strings.LastIndexByte(p, '/')+1:]
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

// startNginx runs nginx in the foreground with one worker, configured by
// body (the main context, after the common settings), and returns the
// worker's pid: the worker is the process that moves the bytes.
func startNginx(t *testing.T, body string) int {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user root; # its temporary files live in the test's directory
worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log stderr error;
events { worker_connections 1024; }
%[2]s
`, dir, body)
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	master := startPeer(t, exec.Command("nginx", "-p", dir, "-c", path))
	var worker int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", master.pid(), master.pid()))
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &worker)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "nginx started no worker")
	return worker
}

func nginxStream(t *testing.T, backend string) (int, string) {
	port := freePort(t)
	pid := startNginx(t, fmt.Sprintf("stream { server { listen 127.0.0.1:%d; proxy_pass %s; } }", port, backend))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr)
	return pid, addr
}

func nginxHTTP(t *testing.T, backend string) (int, string) {
	port := freePort(t)
	dir := t.TempDir()
	pid := startNginx(t, fmt.Sprintf(`http {
    access_log off;
    client_body_temp_path %[3]s/body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    upstream next { server %[2]s; keepalive 32; }
    server {
        listen 127.0.0.1:%[1]d;
        location / { proxy_pass http://next; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}`, port, backend, dir))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr)
	return pid, addr
}

func haproxyTCP(t *testing.T, backend string) (int, string) {
	p, addr := startHAProxy(t, backend)
	return p.pid(), addr
}

// topology builds a chain in front of a Go backend: it returns the address
// clients call, the request path pattern, and the expected hops.
type topology struct {
	name  string
	build func(t *testing.T) (entry, path string, chain []hop)
}

// proxied puts proxies (outermost first) in front of a Go backend.
func proxied(proxies ...func(*testing.T, string) (int, string)) func(t *testing.T) (string, string, []hop) {
	return func(t *testing.T) (string, string, []hop) {
		backend := startGoServer(t)
		chain := []hop{{backend.pid(), ptrace.SpanKindServer}}
		next := backend.addr
		for i := len(proxies) - 1; i >= 0; i-- {
			pid, addr := proxies[i](t, next)
			chain = append([]hop{{pid, ptrace.SpanKindServer}, {pid, ptrace.SpanKindClient}}, chain...)
			next = addr
		}
		return next, "/req/{i}", chain
	}
}

// relayed is a Go service that calls a Go backend while serving each
// request (on another path), as microservices do.
func relayed(t *testing.T) (string, string, []hop) {
	backend := startGoServer(t)
	relay := startGoServer(t, "E2E_DOWNSTREAM="+backend.addr)
	return relay.addr, "/front/{i}", []hop{
		{relay.pid(), ptrace.SpanKindServer}, {relay.pid(), ptrace.SpanKindClient}, {backend.pid(), ptrace.SpanKindServer},
	}
}

// watchChain starts a receiver watching every process of chain, once each
// is instrumented; propagation sets context_propagation.
func watchChain(t *testing.T, chain []hop, propagation ...string) *harness {
	var pids []int
	for _, c := range chain {
		pids = append(pids, c.pid)
	}
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.Pids = pids
		if len(propagation) > 0 {
			c.ContextPropagation = propagation[0]
		}
	})
	for _, pid := range pids {
		h.waitInstrumented(t, pid)
	}
	for _, pid := range pids {
		h.waitRuntimeOf(t, pid)
	}
	return h
}

var topologies = []topology{
	{"haproxy-tcp", proxied(haproxyTCP)},
	{"haproxy-tcp-x2", proxied(haproxyTCP, haproxyTCP)},
	{"nginx-stream", proxied(nginxStream)},
	{"nginx-stream-x2", proxied(nginxStream, nginxStream)},
	{"nginx-http-proxy", proxied(nginxHTTP)},
	{"go-service-calls-go-service", relayed},
}

// Every topology, with 1 client and with 32 concurrent keep-alive clients:
// each request gives one trace holding every hop's spans, each the child of
// the one before. The figures are logged for the README.
func TestLinkingAcrossHops(t *testing.T) {
	for _, topo := range topologies {
		for _, load := range []struct {
			name              string
			requests, clients int
			minLinked         float64
		}{
			// 100% measured; one miss is tolerated so that a rare scheduling
			// accident does not fail CI (see the README).
			{"sequential", 100, 1, 0.99},
			{"32-clients", 320, 32, 0.99},
		} {
			t.Run(topo.name+"/"+load.name, func(t *testing.T) {
				entry, path, chain := topo.build(t)
				h := watchChain(t, chain)
				_, ok := runGoClient(t, "http://"+entry+path, load.requests, load.clients)
				require.Equal(t, load.requests, ok)
				last := chain[len(chain)-1]
				h.waitSpans(t, last.pid, last.kind, load.requests)
				h.waitSpans(t, chain[0].pid, chain[0].kind, load.requests)

				c := chainParents(h, chain, load.requests)
				t.Logf("LINKING %s %s: %d requests, %s", topo.name, load.name, load.requests, c)
				require.Equal(t, load.requests, c.complete, "every hop's span is there")
				require.LessOrEqual(t, float64(c.wrong)/float64(load.requests), 0.005, "wrong parents")
				require.GreaterOrEqual(t, float64(c.right)/float64(load.requests), load.minLinked)
			})
		}
	}
}

// With context_propagation: headers the proxies' forwarded requests carry
// a traceparent the kernel chose: linking on the node must stay as right
// as without it (the kernel matches what a proxy writes to what it read).
func TestLinkingWithPropagation(t *testing.T) {
	for _, topo := range []topology{
		{"haproxy-tcp-x2", proxied(haproxyTCP, haproxyTCP)},
		{"nginx-stream-x2", proxied(nginxStream, nginxStream)},
		{"nginx-http-proxy", proxied(nginxHTTP)},
		{"go-service-calls-go-service", relayed},
	} {
		t.Run(topo.name, func(t *testing.T) {
			entry, path, chain := topo.build(t)
			h := watchChain(t, chain, "headers")
			const requests = 320
			_, ok := runGoClient(t, "http://"+entry+path, requests, 32)
			require.Equal(t, requests, ok)
			last := chain[len(chain)-1]
			h.waitSpans(t, last.pid, last.kind, requests)
			h.waitSpans(t, chain[0].pid, chain[0].kind, requests)
			c := chainParents(h, chain, requests)
			t.Logf("LINKING+PROPAGATION %s 32-clients: %d requests, %s", topo.name, requests, c)
			require.Equal(t, requests, c.complete)
			require.LessOrEqual(t, float64(c.wrong)/requests, 0.005, "wrong parents")
			require.GreaterOrEqual(t, float64(c.right)/requests, 0.99)
			require.Positive(t, h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "outcome", "injected"))
		})
	}
}

// A request that already carries a traceparent makes the whole chain join
// that trace.
func TestIncomingTraceparentJoinsTheChain(t *testing.T) {
	entry, _, chain := proxied(haproxyTCP, haproxyTCP)(t)
	h := watchChain(t, chain)
	out, err := exec.Command("curl", "-sS", "-o", "/dev/null", "-H", "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "http://"+entry+"/req/0").CombinedOutput()
	require.NoError(t, err, string(out))
	complete, linked := 0, 0
	require.Eventually(t, func() bool {
		complete, linked = chainStats(h, chain, 1)
		return linked == 1
	}, 10*time.Second, 50*time.Millisecond, "complete %d, linked %d", complete, linked)
	first := h.spansOf(chain[0].pid, chain[0].kind)[0]
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", first.TraceID().String())
	require.Equal(t, "00f067aa0ba902b7", first.ParentSpanID().String())
	backend := h.spansOf(chain[len(chain)-1].pid, ptrace.SpanKindServer)[0]
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", backend.TraceID().String())
}
