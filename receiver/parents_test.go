package receiver

import (
	"math"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/conntrack"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/correlate"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/runtimes"
)

var backendEnd = netip.MustParseAddrPort("127.0.0.1:9090")

// served is a request of pid 4242 read on connection sock, from a client
// port of its own.
func served(sock uint64, ts uint64, path string) events.Event {
	ev := dataEvent(events.Read, 4242, sock, ts, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	ev.Remote = clientOf(sock)
	return ev
}

func clientOf(sock uint64) netip.AddrPort {
	return netip.AddrPortFrom(clientEnd.Addr(), uint16(40000+sock))
}

// called is a call of pid 4242 written on connection sock to the backend.
func called(sock uint64, ts uint64, path string) events.Event {
	ev := dataEvent(events.Write, 4242, sock, ts, "GET "+path+" HTTP/1.1\r\nHost: b\r\n\r\n")
	ev.Local, ev.Remote = netip.MustParseAddrPort("127.0.0.1:50000"), backendEnd
	return ev
}

func answered(ev events.Event, ts uint64) events.Event {
	resp := dataEvent(events.Read, 4242, ev.Sock, ts, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	if ev.Kind == events.Read { // a served request: its response is written
		resp.Kind = events.Write
	}
	resp.Local, resp.Remote = ev.Local, ev.Remote
	return resp
}

// spansByPath are the batch's spans, resolved, by their url.path or
// url.full.
func spansByPath(t *testing.T, l *eventLoop) map[string]ptrace.Span {
	l.resolve()
	out := map[string]ptrace.Span{}
	rs := l.batch.ResourceSpans()
	for i := 0; i < rs.Len(); i++ {
		ss := rs.At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < ss.Len(); j++ {
			s := ss.At(j)
			key := ""
			if v, ok := s.Attributes().Get("url.path"); ok && s.Kind() == ptrace.SpanKindServer {
				key = v.Str()
			} else if v, ok := s.Attributes().Get("url.full"); ok {
				key = v.Str()
			}
			out[key] = s
		}
	}
	return out
}

func goLoop(t *testing.T) *eventLoop {
	l := newTestLoop(t)
	l.runtimeRead(runtimes.Result{Pid: 4242, Kind: runtimes.Go, Tasks: true})
	require.Equal(t, runtimes.Go, l.parents.runtimes[4242])
	return l
}

// In Go the goroutine an event carries decides: a call written on the
// thread that read another request is still its own goroutine's request's.
func TestGoroutineDecidesTheParent(t *testing.T) {
	l := goLoop(t)
	a, b := served(1, 1, "/a"), served(2, 2, "/b")
	a.Task, b.Task = 100, 101
	b.Tid = a.Tid + 1
	call := called(3, 3, "/call-of-b")
	call.Task, call.Tid = 101, a.Tid // written on a's thread, for b's goroutine
	for _, ev := range []events.Event{a, b, call, answered(call, 4), answered(b, 5), answered(a, 6)} {
		feed(t, l, ev)
	}
	spans := spansByPath(t, l)
	require.Len(t, spans, 3)
	assert.Equal(t, spans["/b"].SpanID(), spans["http://b:9090/call-of-b"].ParentSpanID())
	assert.Equal(t, spans["/b"].TraceID(), spans["http://b:9090/call-of-b"].TraceID())
	assert.Equal(t, int64(1), l.linker.TakeOutcomes().Linked[correlate.RuleTask])
}

// A Go server may read a request's first byte on another goroutine (its
// connection's background read): the request is the goroutine's that read
// the rest, in which it began.
func TestGoRequestTakesTheGoroutineOfItsHead(t *testing.T) {
	l := goLoop(t)
	first := dataEvent(events.Read, 4242, 1, 1, "G")
	first.Task = 7 // the background read
	rest := dataEvent(events.Read, 4242, 1, 2, "ET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	rest.Task = 100
	other := served(2, 3, "/b")
	other.Task = 101
	call := called(3, 4, "/call")
	call.Task = 100
	for _, ev := range []events.Event{first, rest, other, call, answered(call, 5), answered(other, 6), answered(rest, 7)} {
		feed(t, l, ev)
	}
	spans := spansByPath(t, l)
	assert.Equal(t, spans["/a"].SpanID(), spans["http://b:9090/call"].ParentSpanID())
}

// A parser that drops a request it started has it abandoned: it is no
// candidate parent any more.
func TestAbandonedRequestIsNoParent(t *testing.T) {
	l := newTestLoop(t)
	l.runtimeRead(runtimes.Result{Pid: 4242, Kind: runtimes.Threads})
	feed(t, l, served(1, 1, "/kept"))
	feed(t, l, events.Event{Kind: events.Accept, Pid: 4242, Tid: 4242, Sock: 2, Time: 2, Local: serverEnd, Remote: clientOf(2)})
	c := l.conns.Get(conntrack.Key{Pid: 4242, Sock: 2})
	require.NotNil(t, c)
	// What a parser does with a request it started, then dropped.
	x := &protocols.Exchange{Role: protocols.RoleServer, Tid: 77, LinkOp: "GET", LinkTarget: "/dropped"}
	c.Sink.Started(x)
	require.NotNil(t, x.Tag)
	_, n := l.linker.Size()
	require.Equal(t, 2, n)
	protocols.Abandon(c.Sink, x)
	_, n = l.linker.Size()
	assert.Equal(t, 1, n)
	call := called(3, 3, "/call")
	call.Tid = 999 // a thread that serves nothing
	feed(t, l, call)
	feed(t, l, answered(call, 4))
	spans := spansByPath(t, l)
	assert.False(t, spans["http://b:9090/call"].ParentSpanID().IsEmpty(), "the only request left")
}

// Node.js: the context of a connection's parser ties its requests to the
// callbacks their handlers queued; the connect of a connection a handler
// opened ties it to the request through the socket's maker.
func TestNodeContexts(t *testing.T) {
	l := newTestLoop(t)
	l.runtimeRead(runtimes.Result{Pid: 4242, Kind: runtimes.Node, Tasks: true})
	f := func(v float64) uint64 { return math.Float64bits(v) }
	node := func(ev events.Event) events.Event { ev.Tid = 4242; return ev }
	accept := func(sock uint64, ctx float64) {
		feed(t, l, node(events.Event{Kind: events.Accept, Pid: 4242, Sock: sock, Local: serverEnd, Remote: clientOf(sock)}))
		feed(t, l, node(events.Event{Kind: events.NodeParser, Pid: 4242, TaskClock: f(ctx)}))
	}
	accept(1, 19)
	accept(2, 29)
	a, b := node(served(1, 1, "/a")), node(served(2, 2, "/b"))
	a.TaskClock, b.TaskClock = f(100), f(110)
	feed(t, l, a)
	feed(t, l, b)
	// b's handler queued a tick (id 120) that writes on a kept connection.
	callB := node(called(3, 3, "/call-of-b"))
	callB.Task, callB.TaskTrigger = f(120), f(29)
	// a's handler made a socket (id 131) and connected it in a tick the
	// socket triggered; its first request goes out in the connect's
	// callback.
	feed(t, l, node(events.Event{Kind: events.NodeSocket, Pid: 4242, Task: f(19), TaskTrigger: f(18), TaskClock: f(130)}))
	conn := node(events.Event{Kind: events.Connect, Pid: 4242, Sock: 4, Local: netip.MustParseAddrPort("127.0.0.1:50004"),
		Remote: backendEnd, Task: f(132), TaskTrigger: f(131)})
	callA := node(called(4, 4, "/call-of-a"))
	callA.Local = conn.Local
	callA.Task, callA.TaskTrigger = f(140), f(131)
	for _, ev := range []events.Event{callB, conn, callA, answered(callB, 5), answered(callA, 6), answered(b, 7), answered(a, 8)} {
		feed(t, l, ev)
	}
	spans := spansByPath(t, l)
	require.Len(t, spans, 4)
	assert.Equal(t, spans["/b"].SpanID(), spans["http://b:9090/call-of-b"].ParentSpanID())
	assert.Equal(t, spans["/a"].SpanID(), spans["http://b:9090/call-of-a"].ParentSpanID())
	o := l.linker.TakeOutcomes()
	assert.Equal(t, int64(1), o.Linked[correlate.RuleTask])
	assert.Equal(t, int64(1), o.Linked[correlate.RuleOpened])
}
