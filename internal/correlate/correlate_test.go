package correlate

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

	client := l.ClientStarted(1, 11, in, "GET", "/a", "")
	proxyIn := l.ServerStarted(2, 21, in, "GET", "/a", "")
	proxyOut := l.ClientStarted(2, 21, out, "GET", "/a", "")
	backend := l.ServerStarted(3, 31, out, "GET", "/a", "")

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
	server := l.ServerStarted(3, 31, f, "GET", "/a", "")
	assert.True(t, l.Unlinked(server))
	client := l.ClientStarted(1, 11, f, "GET", "/a", "")
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
	early := l.ServerStarted(3, 31, f, "GET", "/1", "")
	l.Resolve(early) // done before its client's write showed up: a root
	late := l.ClientStarted(1, 11, f, "GET", "/1", "")
	next := l.ClientStarted(1, 11, f, "GET", "/2", "")
	server2 := l.ServerStarted(3, 31, f, "GET", "/2", "")
	l.Resolve(late)
	l.Resolve(next)
	l.Resolve(server2)
	assert.Equal(t, next.SpanID, server2.ParentID)
	waiting, _ := l.Size()
	assert.Zero(t, waiting, "the stale entry was dropped")
}

func TestTraceparent(t *testing.T) {
	l := New()
	s := l.ServerStarted(3, 31, flow("10.0.0.1:1", "10.0.0.2:80"), "GET", "/", tp)
	l.Resolve(s)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.TraceID.String())
	assert.Equal(t, "00f067aa0ba902b7", s.ParentID.String())
	assert.Equal(t, byte(1), s.Flags)

	// A watched client on this node is a better parent than the header.
	f := flow("127.0.0.1:5000", "127.0.0.1:80")
	c := l.ClientStarted(1, 11, f, "GET", "/", tp)
	s2 := l.ServerStarted(2, 21, f, "GET", "/", tp)
	l.Resolve(s2)
	assert.Equal(t, c.SpanID, s2.ParentID)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", c.TraceID.String(), "the client itself joins the header's trace")
}

// A service that serves /front and calls /back: content does not match, so
// the thread, or the only request in flight, decides.
func TestCallWhileServing(t *testing.T) {
	l := New()
	a := l.ServerStarted(5, 50, flow("127.0.0.1:1", "127.0.0.1:80"), "GET", "/front/1", "")
	b := l.ServerStarted(5, 51, flow("127.0.0.1:2", "127.0.0.1:80"), "GET", "/front/2", "")
	callB := l.ClientStarted(5, 51, flow("127.0.0.1:3", "127.0.0.1:81"), "GET", "/back/2", "")
	callA := l.ClientStarted(5, 50, flow("127.0.0.1:4", "127.0.0.1:81"), "GET", "/back/1", "")
	for _, s := range []*Span{callA, callB, a, b} {
		l.Resolve(s)
	}
	assert.Equal(t, a.SpanID, callA.ParentID, "same thread")
	assert.Equal(t, b.SpanID, callB.ParentID, "same thread")

	l.ServerDone(5, b)
	lone := l.ClientStarted(5, 99, flow("127.0.0.1:6", "127.0.0.1:81"), "GET", "/back/x", "")
	l.Resolve(lone)
	assert.Equal(t, a.SpanID, lone.ParentID, "the only request in flight")
}

func TestBounded(t *testing.T) {
	l := New()
	f := flow("127.0.0.1:1", "127.0.0.1:80")
	for i := 0; i < 100; i++ {
		l.ClientStarted(1, 1, f, "GET", "/", "") // nobody watched reads them
	}
	waiting, _ := l.Size()
	assert.Equal(t, maxWaitingPerFlow, waiting)
	l.FlowClosed(f)
	waiting, inflight := l.Size()
	require.Zero(t, waiting)
	require.Zero(t, inflight)

	s := l.ServerStarted(2, 2, f, "GET", "/", "")
	_, inflight = l.Size()
	assert.Equal(t, 1, inflight)
	l.ProcessExited(2)
	_, inflight = l.Size()
	assert.Zero(t, inflight)
	l.Resolve(s)
	assert.False(t, s.TraceID.IsEmpty())
}

// Lists kept for reuse hold nothing, and Compact drops them.
func TestKeptListsHoldNothing(t *testing.T) {
	l := New()
	f := flow("127.0.0.1:1", "127.0.0.1:80")
	c := l.ClientStarted(1, 1, f, "GET", "/", "")
	s := l.ServerStarted(2, 2, f, "GET", "/", "")
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
	l.ServerDone(2, l.ServerStarted(2, 2, f, "GET", "/", ""))
	allocs := testing.AllocsPerRun(100, func() {
		l.ServerDone(2, l.ServerStarted(2, 2, f, "GET", "/", ""))
	})
	assert.Equal(t, 1.0, allocs, "only the span itself")
}
