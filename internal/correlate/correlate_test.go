package correlate

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

func flow(client, server string) Flow {
	return Flow{Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server)}
}

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// client (pid 1) -> proxy (pid 2) -> backend (pid 3), events in kernel order.
func TestProxyChain(t *testing.T) {
	l := New()
	in := flow("127.0.0.1:40000", "127.0.0.1:9000")  // client -> proxy
	out := flow("127.0.0.1:40001", "127.0.0.1:8080") // proxy -> backend

	client := l.ClientStarted(1, Thread{Tid: 11}, in, "GET", "/a", "", nil)
	proxyIn := l.ServerStarted(2, Thread{Tid: 21}, in, "GET", "/a", "", nil)
	proxyOut := l.ClientStarted(2, Thread{Tid: 21}, out, "GET", "/a", "", nil)
	backend := l.ServerStarted(3, Thread{Tid: 31}, out, "GET", "/a", "", nil)

	for _, s := range []*Span{backend, proxyOut, proxyIn, client} { // built in the order responses end
		l.Resolve(s)
	}
	assert.True(t, client.ParentID.IsEmpty(), "the client is the root")
	assert.Equal(t, client.SpanID, proxyIn.ParentID)
	assert.Equal(t, proxyIn.SpanID, proxyOut.ParentID)
	assert.Equal(t, proxyOut.SpanID, backend.ParentID)
	for _, s := range []*Span{proxyIn, proxyOut, backend} {
		assert.Equal(t, client.TraceID, s.TraceID)
	}
}

// The kernel may report the server's read before the client's write: the
// server finds its client when it is resolved.
func TestLateClientWrite(t *testing.T) {
	l := New()
	f := flow("127.0.0.1:40000", "127.0.0.1:8080")
	server := l.ServerStarted(3, Thread{Tid: 31}, f, "GET", "/a", "", nil)
	assert.True(t, l.Unlinked(server))
	client := l.ClientStarted(1, Thread{Tid: 11}, f, "GET", "/a", "", nil)
	assert.False(t, l.Unlinked(server), "found once the write is reported")
	l.Resolve(server)
	l.Resolve(client)
	assert.Equal(t, client.SpanID, server.ParentID)
	assert.Equal(t, client.TraceID, server.TraceID)
}

// A client write reported after its server finished is left waiting; the
// next request on the connection must not take it.
func TestStaleClientWriteIsSkipped(t *testing.T) {
	l := New()
	f := flow("127.0.0.1:40000", "127.0.0.1:8080")
	early := l.ServerStarted(3, Thread{Tid: 31}, f, "GET", "/1", "", nil)
	l.Resolve(early) // done before its client's write showed up: a root
	late := l.ClientStarted(1, Thread{Tid: 11}, f, "GET", "/1", "", nil)
	next := l.ClientStarted(1, Thread{Tid: 11}, f, "GET", "/2", "", nil)
	server2 := l.ServerStarted(3, Thread{Tid: 31}, f, "GET", "/2", "", nil)
	l.Resolve(late)
	l.Resolve(next)
	l.Resolve(server2)
	assert.Equal(t, next.SpanID, server2.ParentID)
	waiting, _ := l.Size()
	assert.Zero(t, waiting, "the stale entry was dropped")
}

func TestTraceparent(t *testing.T) {
	l := New()
	s := l.ServerStarted(3, Thread{Tid: 31}, flow("10.0.0.1:1", "10.0.0.2:80"), "GET", "/", tp, nil)
	l.Resolve(s)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.TraceID.String())
	assert.Equal(t, "00f067aa0ba902b7", s.ParentID.String())
	assert.Equal(t, byte(1), s.Flags)

	// A watched client on this node is a better parent than the header.
	f := flow("127.0.0.1:5000", "127.0.0.1:80")
	c := l.ClientStarted(1, Thread{Tid: 11}, f, "GET", "/", tp, nil)
	s2 := l.ServerStarted(2, Thread{Tid: 21}, f, "GET", "/", tp, nil)
	l.Resolve(s2)
	assert.Equal(t, c.SpanID, s2.ParentID)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", c.TraceID.String(), "the client itself joins the header's trace")
}

// A service that serves /front and calls /back: content does not match, so
// the thread, or the only request in flight, decides.
func TestCallWhileServing(t *testing.T) {
	l := New()
	l.SetRuntime(5, Threads)
	a := l.ServerStarted(5, Thread{Tid: 50}, flow("127.0.0.1:1", "127.0.0.1:80"), "GET", "/front/1", "", nil)
	b := l.ServerStarted(5, Thread{Tid: 51}, flow("127.0.0.1:2", "127.0.0.1:80"), "GET", "/front/2", "", nil)
	callB := l.ClientStarted(5, Thread{Tid: 51}, flow("127.0.0.1:3", "127.0.0.1:81"), "GET", "/back/2", "", nil)
	callA := l.ClientStarted(5, Thread{Tid: 50}, flow("127.0.0.1:4", "127.0.0.1:81"), "GET", "/back/1", "", nil)
	for _, s := range []*Span{callA, callB, a, b} {
		l.Resolve(s)
	}
	assert.Equal(t, a.SpanID, callA.ParentID, "same thread")
	assert.Equal(t, b.SpanID, callB.ParentID, "same thread")

	l.ServerDone(5, b)
	lone := l.ClientStarted(5, Thread{Tid: 99}, flow("127.0.0.1:6", "127.0.0.1:81"), "GET", "/back/x", "", nil)
	l.Resolve(lone)
	assert.Equal(t, a.SpanID, lone.ParentID, "the only request in flight")
}

func TestBounded(t *testing.T) {
	l := New()
	f := flow("127.0.0.1:1", "127.0.0.1:80")
	for i := 0; i < 100; i++ {
		l.ClientStarted(1, Thread{Tid: 1}, f, "GET", "/", "", nil) // nobody watched reads them
	}
	waiting, _ := l.Size()
	assert.Equal(t, maxWaitingPerFlow, waiting)
	l.FlowClosed(f)
	waiting, inflight := l.Size()
	require.Zero(t, waiting)
	require.Zero(t, inflight)

	s := l.ServerStarted(2, Thread{Tid: 2}, f, "GET", "/", "", nil)
	_, inflight = l.Size()
	assert.Equal(t, 1, inflight)
	l.ProcessExited(2)
	_, inflight = l.Size()
	assert.Zero(t, inflight)
	l.Resolve(s)
	assert.False(t, s.TraceID.IsEmpty())
}

// With propagation, what the kernel put on the wire wins: the client span
// carries exactly the ids the next hop received, and the server span the
// kernel's span id, in the kernel's trace when nothing else links it.
func TestKernelContexts(t *testing.T) {
	l := New()
	served := &tracecontext.Identity{TraceID: pcommon.TraceID{1, 2, 3}, SpanID: pcommon.SpanID{4, 5}, Flags: 1}
	front := l.ServerStarted(7, Thread{Tid: 70}, flow("10.0.0.9:1", "10.0.0.2:80"), "GET", "/front", "", served)
	sent := &tracecontext.Identity{TraceID: served.TraceID, SpanID: pcommon.SpanID{6, 7}, ParentID: served.SpanID, Flags: 1}
	call := l.ClientStarted(7, Thread{Tid: 70}, flow("10.0.0.2:5000", "10.0.0.3:80"), "GET", "/back", "", sent)
	l.Resolve(call)
	l.Resolve(front)
	assert.Equal(t, served.SpanID, front.SpanID)
	assert.Equal(t, served.TraceID, front.TraceID, "nothing on this node is its parent")
	assert.True(t, front.ParentID.IsEmpty())
	assert.Equal(t, tracecontext.Identity{TraceID: sent.TraceID, SpanID: sent.SpanID, ParentID: served.SpanID, Flags: 1}, call.Identity)

	// A watched server on this node at the other end still becomes the
	// injected span's child, in its trace.
	back := l.ServerStarted(8, Thread{Tid: 80}, flow("10.0.0.2:5000", "10.0.0.3:80"), "GET", "/back", "", &tracecontext.Identity{TraceID: sent.TraceID, SpanID: pcommon.SpanID{9}, ParentID: sent.SpanID, Flags: 1})
	l.Resolve(back)
	assert.Equal(t, sent.SpanID, back.ParentID)
	assert.Equal(t, sent.TraceID, back.TraceID)
	assert.Equal(t, pcommon.SpanID{9}, back.SpanID)
}

// Lists kept for reuse hold nothing, and Compact drops them.
func TestKeptListsHoldNothing(t *testing.T) {
	l := New()
	f := flow("127.0.0.1:1", "127.0.0.1:80")
	c := l.ClientStarted(1, Thread{Tid: 1}, f, "GET", "/", "", nil)
	s := l.ServerStarted(2, Thread{Tid: 2}, f, "GET", "/", "", nil)
	l.ServerDone(2, s)
	l.Resolve(s)
	assert.Equal(t, c.SpanID, s.ParentID)
	waiting, inflight := l.Size()
	assert.Zero(t, waiting)
	assert.Zero(t, inflight)
	for _, w := range l.waiting {
		assert.Empty(t, w[:cap(w)][0], "a taken span is not held")
	}
	l.Compact()
	assert.Empty(t, l.waiting)
	assert.Empty(t, l.inflight)
}

// A process serving a request at a time appends into the list it kept.
func TestServeWithoutAllocating(t *testing.T) {
	l := New()
	f := flow("127.0.0.1:1", "127.0.0.1:80")
	l.ServerDone(2, l.ServerStarted(2, Thread{Tid: 2}, f, "GET", "/", "", nil))
	allocs := testing.AllocsPerRun(100, func() {
		l.ServerDone(2, l.ServerStarted(2, Thread{Tid: 2}, f, "GET", "/", "", nil))
	})
	assert.Equal(t, 1.0, allocs, "only the span itself")
}

// Two pods talking to a sidecar on the same loopback address and port are
// two connections: a server span never takes the other namespace's client.
func TestFlowsOfTwoNamespacesStayApart(t *testing.T) {
	l := New()
	podA := Flow{Netns: 1, Client: netip.MustParseAddrPort("127.0.0.1:40000"), Server: netip.MustParseAddrPort("127.0.0.1:15001")}
	podB := podA
	podB.Netns = 2
	clientA := l.ClientStarted(10, Thread{Tid: 10}, podA, "GET", "/", "", nil)
	serverB := l.ServerStarted(20, Thread{Tid: 20}, podB, "GET", "/", "", nil)
	l.Resolve(serverB)
	l.Resolve(clientA)
	assert.NotEqual(t, clientA.TraceID, serverB.TraceID)
	assert.True(t, serverB.ParentID.IsEmpty(), "no client of its own namespace wrote it")
	serverA := l.ServerStarted(21, Thread{Tid: 21}, podA, "GET", "/", "", nil)
	l.Resolve(serverA)
	assert.Equal(t, clientA.SpanID, serverA.ParentID)
}
