package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// otherHost is a network namespace joined to this one by a veth pair: a
// second host on the same machine, reached at addr.
type otherHost struct {
	ns, addr string
}

func newOtherHost(t *testing.T) otherHost {
	t.Helper()
	requireRoot(t)
	id := os.Getpid() % 10000
	ns, here, there := fmt.Sprintf("oe2e-%d", id), fmt.Sprintf("oe2ea%d", id), fmt.Sprintf("oe2eb%d", id)
	subnet := fmt.Sprintf("10.231.%d", id%250)
	ip := func(args ...string) {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	ip("netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "delete", here).Run()
		exec.Command("ip", "netns", "delete", ns).Run()
	})
	ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", ns)
	ip("addr", "add", subnet+".1/30", "dev", here)
	ip("link", "set", here, "up")
	ip("-n", ns, "addr", "add", subnet+".2/30", "dev", there)
	ip("-n", ns, "link", "set", there, "up")
	ip("-n", ns, "link", "set", "lo", "up")
	return otherHost{ns: ns, addr: subnet + ".2"}
}

// startEcho runs the echo peer on the other host.
func (o otherHost) startEcho(t *testing.T) *peer {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", o.ns, os.Args[0]) // ip execs it: the pid stays
	cmd.Env = append(os.Environ(), "E2E_ROLE=echo", "E2E_ADDR="+o.addr+":0")
	return startReady(t, cmd)
}

// echo is what the echo peer answered to one request.
type echo struct {
	traceparent      string
	length, declared int
	seq              int // the request's number on its connection, from 1
}

func parseEcho(t *testing.T, s string) echo {
	var e echo
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "tp":
			e.traceparent = v
		case "len":
			e.length, _ = strconv.Atoi(v)
		case "declared":
			e.declared, _ = strconv.Atoi(v)
		case "seq":
			e.seq, _ = strconv.Atoi(v)
		}
	}
	require.NotContains(t, s, "error", "request failed")
	return e
}

// startEchoClient starts the echo client; with wait it stops after its
// first request until go() is called. env is added to its environment.
func startEchoClient(t *testing.T, url string, n, concurrency int, wait bool, env ...string) (p *peer, resume func() map[string]echo) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "E2E_ROLE=echo-client", "E2E_URL="+url,
		"E2E_REQUESTS="+strconv.Itoa(n), "E2E_CONCURRENCY="+strconv.Itoa(concurrency))
	cmd.Env = append(cmd.Env, env...)
	var stdin io.WriteCloser
	if wait {
		cmd.Env = append(cmd.Env, "E2E_WAIT=1")
		var err error
		stdin, err = cmd.StdinPipe()
		require.NoError(t, err)
	}
	p = startPeer(t, cmd)
	answers := map[string]echo{}
	read := func(until string) {
		for {
			line := p.readLine(t)
			if line == until {
				return
			}
			f := strings.SplitN(line, " ", 3)
			require.True(t, len(f) == 3 && f[0] == "ECHO", "client said %q", line)
			answers[f[1]] = parseEcho(t, f[2])
		}
	}
	if wait {
		read("CONNECTED")
	}
	return p, func() map[string]echo {
		if stdin != nil {
			fmt.Fprintln(stdin)
		}
		read("DONE")
		return answers
	}
}

// spanContext is the traceparent a span's context makes.
func spanContext(s span) string {
	return fmt.Sprintf("00-%s-%s-%02x", s.TraceID(), s.SpanID(), s.Flags())
}

// byLastSegment indexes spans by the last segment of their path.
func byLastSegment(spans []span) map[string]span {
	out := map[string]span{}
	for _, s := range spans {
		out[lastSegment(s)] = s
	}
	return out
}

// A client on this host calls a server on another host. The first request
// of each connection reaches it with a traceparent equal to the client
// span's context, bodies intact; later requests on a connection go out
// unchanged, counted; a request with its own traceparent keeps it. The
// server, watched too, continues the client's trace as its child.
func TestPropagationAcrossHosts(t *testing.T) {
	host := newOtherHost(t)
	srv := host.startEcho(t)
	port := srv.addr[strings.LastIndexByte(srv.addr, ':')+1:]
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.ContextPropagation = "headers"
		c.Discovery.Pids = []int{srv.pid()}
		c.Discovery.OpenPorts = port // selects the client at connect()
	})
	h.waitInstrumented(t, srv.pid())
	injected := func() int64 {
		return h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "outcome", "injected")
	}
	notInjected := func(reason string) int64 {
		return h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "reason", reason)
	}

	const n = 60
	// A connection per request: every request is the first of its own.
	client, done := startEchoClient(t, "http://"+srv.addr+"/tp/{i}", n, 4, false, "E2E_CLOSE=1")
	answers := done()
	clientSpans := byLastSegment(h.waitSpans(t, client.pid(), ptrace.SpanKindClient, n+1))
	serverSpans := byLastSegment(h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, n+1))
	for i := 0; i < n; i++ {
		key := strconv.Itoa(i)
		got, c, s := answers[key], clientSpans[key], serverSpans[key]
		require.Equal(t, spanContext(c), got.traceparent, "request %d: the header is the client span's context", i)
		if i%2 == 1 {
			require.Equal(t, echo{got.traceparent, i, i, 1}, got, "request %d: the body is intact", i)
		}
		require.Equal(t, c.TraceID(), s.TraceID(), "request %d", i)
		require.Equal(t, c.SpanID(), s.ParentSpanID(), "request %d", i)
		require.True(t, c.ParentSpanID().IsEmpty(), "request %d: the client serves nothing", i)
	}
	own := answers["own"]
	require.Equal(t, ownTraceparent, own.traceparent, "a request's own traceparent is left as it is")
	ownSpan := clientSpans[strconv.Itoa(n)]
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", ownSpan.TraceID().String())
	require.Equal(t, "b7ad6b7169203331", ownSpan.ParentSpanID().String())
	require.Eventually(t, func() bool { return injected() == n }, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, int64(1), h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "outcome", "kept"))
	assert.Zero(t, h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "outcome", "not_injected"))
	assert.Empty(t, h.logs.FilterMessageSnippet("could not carry a traceparent").All())

	// Keep-alive connections: only a connection's first request carries
	// one; the others go out as they were, and are counted.
	h.traces.Reset()
	client, done = startEchoClient(t, "http://"+srv.addr+"/ka/{i}", n, 4, false)
	answers = done()
	clientSpans = byLastSegment(h.waitSpans(t, client.pid(), ptrace.SpanKindClient, n+1))
	// Go's transport may dial more connections than it keeps (a request
	// finding no idle one dials while another comes back): the echo
	// numbers requests per connection, and exactly the first ones carry it.
	carried := 0
	for i := 0; i < n; i++ {
		key := strconv.Itoa(i)
		got := answers[key]
		if got.seq == 1 {
			require.Equal(t, spanContext(clientSpans[key]), got.traceparent, "request %d, first on its connection", i)
			carried++
		} else {
			require.Empty(t, got.traceparent, "request %d, number %d on its connection", i, got.seq)
		}
		if i%2 == 1 {
			require.Equal(t, i, got.length, "request %d: the body is intact", i)
		}
	}
	t.Logf("PROPAGATION keep-alive: %d of %d requests were first on their connection and carried a traceparent", carried, n)
	require.GreaterOrEqual(t, carried, 1)
	require.Less(t, carried, n/2, "connections are reused")
	require.Eventually(t, func() bool {
		return injected() == int64(n+carried) && notInjected("reused_connection") == int64(n-carried)
	}, 5*time.Second, 20*time.Millisecond, "injected %d, reused %d", injected(), notInjected("reused_connection"))
	assert.Len(t, h.logs.FilterMessageSnippet("could not carry a traceparent").All(), 1, "said once")
	// Plans live from a write's entry to its exit, connection states from
	// connect to close: none is left.
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_map_entries", "map", "plans") == 0 &&
			h.selfMetric(t, "otelcol_receiver_ebpf_map_entries", "map", "sock_states") == 0
	}, 5*time.Second, 50*time.Millisecond)
	assert.Equal(t, int64(16384), h.selfMetric(t, "otelcol_receiver_ebpf_map_capacity", "map", "forwardable"))
}

// A Go service on this host that calls the other host while serving, on a
// connection per call: the call carries the service's trace, as the child
// of its server span. Sequential requests must all be right; with
// concurrent clients the header still always equals the client span's
// context, and how often the parent is right is measured.
func TestPropagationFromAServiceCall(t *testing.T) {
	host := newOtherHost(t)
	srv := host.startEcho(t)
	relay := startGoServer(t, "E2E_DOWNSTREAM="+srv.addr, "E2E_DOWNSTREAM_CLOSE=1")
	relayAddr := relay.addr
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.ContextPropagation = "headers"
		c.Discovery.Pids = []int{srv.pid(), relay.pid()}
	})
	h.waitInstrumented(t, srv.pid())
	h.waitInstrumented(t, relay.pid())

	total := 0
	for _, load := range []struct {
		clients, requests int
	}{{1, 50}, {8, 200}} {
		h.traces.Reset()
		_, done := startEchoClient(t, "http://"+relayAddr+"/front/{i}", load.requests, load.clients, false)
		answers := done()
		total += load.requests + 1
		calls := byLastSegment(h.waitSpans(t, relay.pid(), ptrace.SpanKindClient, load.requests+1))
		served := byLastSegment(h.waitSpans(t, relay.pid(), ptrace.SpanKindServer, load.requests+1))
		remote := byLastSegment(h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, load.requests+1))
		linked := 0
		for i := 0; i < load.requests; i++ {
			key := strconv.Itoa(i)
			call := calls[key]
			require.Equal(t, spanContext(call), answers[key].traceparent, "request %d: the header is the call's context", i)
			require.Equal(t, call.SpanID(), remote[key].ParentSpanID(), "request %d", i)
			if call.TraceID() == served[key].TraceID() && call.ParentSpanID() == served[key].SpanID() {
				linked++
			}
		}
		t.Logf("PROPAGATION go-service-calls-other-host %d clients: %d requests, %d calls the child of their request (%.1f%%)",
			load.clients, load.requests, linked, 100*float64(linked)/float64(load.requests))
		if load.clients == 1 {
			require.Equal(t, load.requests, linked, "sequential calls are all the child of their request")
		}
	}
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "outcome", "injected") == int64(total)
	}, 5*time.Second, 20*time.Millisecond, "every call got a header: %d",
		h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "outcome", "injected"))
}

// A connection opened before the receiver started cannot get the sk_msg
// program: its requests go out unchanged, their spans are still emitted,
// and the log says so once.
func TestPropagationFallsBackOnOldConnections(t *testing.T) {
	host := newOtherHost(t)
	srv := host.startEcho(t)
	const n = 10
	client, resume := startEchoClient(t, "http://"+srv.addr+"/old/{i}", n, 1, true)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.ContextPropagation = "headers"
		c.Discovery.Pids = []int{srv.pid(), client.pid()}
	})
	h.waitInstrumented(t, client.pid())
	answers := resume()
	clientSpans := byLastSegment(h.waitSpans(t, client.pid(), ptrace.SpanKindClient, n)) // 1..n-1 and own
	serverSpans := byLastSegment(h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, n))
	for i := 1; i < n; i++ {
		key := strconv.Itoa(i)
		require.Empty(t, answers[key].traceparent, "request %d went out unchanged", i)
		require.Equal(t, clientSpans[key].TraceID(), serverSpans[key].TraceID(), "request %d: still linked on this machine", i)
	}
	require.Equal(t, ownTraceparent, answers["own"].traceparent)
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "reason", "untracked_connection") == n-1
	}, 5*time.Second, 20*time.Millisecond)
	require.Len(t, h.logs.FilterMessageSnippet("could not carry a traceparent").All(), 1, "said once")
}

// A request comes into a watched front with a traceparent, and the front
// calls a backend on another host, each watched by its own receiver, with
// propagation on. Version 00: the whole chain is the header's trace.
// Version 01, which user space reads and the kernel does not: the kernel
// started a trace of its own for the request and sent it on with the call,
// so the front's server span stays in that trace, a root, counted; its
// call and the backend's server span follow it, never the header's trace.
func TestUnreadTraceparentStaysWithItsCalls(t *testing.T) {
	const trace, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, tt := range []struct {
		version, after string
		unread         int64
	}{{"00", "", 0}, {"01", "-later", 1}} {
		t.Run("version-"+tt.version, func(t *testing.T) {
			host := newOtherHost(t)
			backend := host.startEcho(t)
			front := startReady(t, role("parents-go-front", "E2E_MODE="+frontHTTP, "E2E_BACKEND="+backend.addr))
			a := startReceiverNamed(t, "front-node", func(c *ebpfreceiver.Config) {
				c.ContextPropagation = "headers"
				c.Discovery.Pids = []int{front.pid()}
			})
			b := startReceiverNamed(t, "backend-node", func(c *ebpfreceiver.Config) {
				c.ContextPropagation = "headers"
				c.Discovery.Pids = []int{backend.pid()}
			})
			a.waitInstrumented(t, front.pid())
			b.waitInstrumented(t, backend.pid())

			tp := tt.version + "-" + trace + "-" + caller + "-01" + tt.after
			out, err := exec.Command("curl", "-sS", "-H", "traceparent: "+tp, "http://"+front.addr+"/call/1").CombinedOutput()
			require.NoError(t, err, string(out))
			require.Equal(t, "ok", string(out))
			served := a.waitSpans(t, front.pid(), ptrace.SpanKindServer, 1)[0]
			call := a.waitSpans(t, front.pid(), ptrace.SpanKindClient, 1)[0]
			behind := b.waitSpans(t, backend.pid(), ptrace.SpanKindServer, 1)[0]
			if tt.unread == 0 {
				assert.Equal(t, trace, served.TraceID().String(), "the header's trace")
				assert.Equal(t, caller, served.ParentSpanID().String(), "the header's caller")
			} else {
				assert.NotEqual(t, trace, served.TraceID().String(), "not the trace its call did not carry")
				assert.True(t, served.ParentSpanID().IsEmpty(), "a root: the kernel did not take the caller")
			}
			assert.Equal(t, served.TraceID(), call.TraceID(), "the call is in its request's trace")
			assert.Equal(t, served.SpanID(), call.ParentSpanID(), "the call is its request's child")
			assert.Equal(t, call.TraceID(), behind.TraceID(), "the backend continues the trace the call carried")
			assert.Equal(t, call.SpanID(), behind.ParentSpanID(), "the backend's span is the call's child")
			unread := func() int64 {
				return max(0, a.selfMetric(t, "otelcol_receiver_ebpf_propagation_requests", "reason", "unread_traceparent"))
			}
			require.Eventually(t, func() bool { return unread() == tt.unread }, 5*time.Second, 20*time.Millisecond,
				"requests counted as not continued: %d", unread())
			t.Logf("TRACEPARENT version %s: front %s parent %q, call %s, backend %s parent %s; counted not continued %d",
				tt.version, served.TraceID(), served.ParentSpanID(), call.TraceID(), behind.TraceID(), behind.ParentSpanID(), unread())
		})
	}
}
