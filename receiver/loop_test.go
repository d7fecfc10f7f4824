package receiver

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// A closed connection's state serves the next connection: that one's spans
// carry its own addresses, and the parse failures of the closed one are not
// counted again.
func TestConnStateReused(t *testing.T) {
	loop := newTestLoop(t)
	ts := uint64(0)
	for i, clientPort := range []uint16{40001, 40002} {
		evs := exchangeEvents(events.Read, events.Write, 1)
		junk := dataEvent(events.Read, 4242, 0, 0, "\x00\x01 not http\r\n")
		closing := events.Event{Kind: events.Close, Pid: 4242}
		for _, ev := range []events.Event{evs[0], evs[1], junk, closing} {
			ev.Sock = uint64(0x1000 + i) // a socket of its own
			ev.Remote = netip.AddrPortFrom(clientEnd.Addr(), clientPort)
			ts++
			ev.Time = ts
			feed(t, loop, ev)
		}
	}
	assert.Equal(t, 1, loop.conns.Spare(), "the second connection reused the first's state")
	assert.Equal(t, int64(2), loop.counts.requests)
	assert.Equal(t, map[failureKey]int64{{"http1", "not_http"}: 2}, loop.counts.failures, "one run of junk per connection")

	require.Equal(t, 2, loop.batchSpans)
	loop.resolve()
	got := loop.batch.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i, want := range []int64{40001, 40002} {
		span := got.At(i)
		port, _ := span.Attributes().Get("client.port")
		assert.Equal(t, want, port.Int())
		assert.Equal(t, "GET /users/*", span.Name())
		assert.Equal(t, ptrace.SpanKindServer, span.Kind())
	}
}

// A server span whose peer is on this host waits for the client's write;
// once one waited in vain, the connection's next spans do not wait.
func TestUnwatchedPeerStopsParking(t *testing.T) {
	l := newTestLoop(t)
	req := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	loopback := func(ev events.Event) events.Event {
		ev.Local = netip.MustParseAddrPort("127.0.0.1:8080")
		ev.Remote = netip.MustParseAddrPort("127.0.0.1:50000")
		return ev
	}
	feed(t, l, loopback(dataEvent(events.Read, 4242, 1, 1, req)))
	feed(t, l, loopback(dataEvent(events.Write, 4242, 1, 2, resp)))
	require.Len(t, l.parked, 1, "waits for a client that may be watched")
	require.Zero(t, l.batchSpans)

	l.parked[0].since = time.Now().Add(-linkGrace)
	l.unpark(false)
	require.Empty(t, l.parked)
	require.Equal(t, 1, l.batchSpans)

	feed(t, l, loopback(dataEvent(events.Read, 4242, 1, 3, req)))
	feed(t, l, loopback(dataEvent(events.Write, 4242, 1, 4, resp)))
	require.Empty(t, l.parked, "the peer is known not to be watched")
	require.Equal(t, 2, l.batchSpans)

	// The next connection reuses the closed one's state, not its verdict.
	feed(t, l, loopback(events.Event{Kind: events.Close, Pid: 4242, Sock: 1, Time: 5}))
	feed(t, l, loopback(dataEvent(events.Read, 4242, 2, 6, req)))
	feed(t, l, loopback(dataEvent(events.Write, 4242, 2, 7, resp)))
	require.Len(t, l.parked, 1, "a new peer may be watched")
}

// Each request keeps the kernel context of the event that began it: an
// event of another connection in between, a close, or a request whose
// head ends one read later does not hand it to the wrong span.
func TestKernelContextGoesToItsRequest(t *testing.T) {
	l := newTestLoop(t)
	served := func(b byte) tracecontext.Chosen {
		var c tracecontext.Chosen
		c.Kind, c.TraceID, c.SpanID = tracecontext.Served, [16]byte{b}, [8]byte{b}
		return c
	}
	ev := func(sock uint64, ts uint64, data string, c tracecontext.Chosen) events.Event {
		e := dataEvent(events.Read, 4242, sock, ts, data)
		e.Chosen = c
		return e
	}
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	// Connection 1: a request line whose head ends in the next read.
	feed(t, l, ev(1, 1, "GET /one HTTP/1.1\r\n", served(1)))
	// Connection 2, in between: a whole request with a context of its own.
	feed(t, l, ev(2, 2, "GET /two HTTP/1.1\r\n\r\n", served(2)))
	feed(t, l, ev(1, 3, "Host: x\r\n\r\n", tracecontext.Chosen{}))
	// Connection 3: a request cut by a close, after another event.
	feed(t, l, ev(3, 4, "GET /three HTTP/1.1\r\nHost", served(3)))
	for _, sock := range []uint64{1, 2} {
		w := dataEvent(events.Write, 4242, sock, 5, resp)
		feed(t, l, w)
	}
	feed(t, l, events.Event{Kind: events.Close, Pid: 4242, Sock: 3, Time: 6, Local: serverEnd, Remote: clientEnd})
	l.resolve()
	got := map[string]ptrace.Span{}
	ss := l.batch.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < ss.Len(); i++ {
		path, _ := ss.At(i).Attributes().Get("url.path")
		got[path.Str()] = ss.At(i)
	}
	require.Len(t, got, 3)
	for path, b := range map[string]byte{"/one": 1, "/two": 2, "/three": 3} {
		assert.Equal(t, [8]byte{b}, [8]byte(got[path].SpanID()), "%s has the span id the kernel sent on", path)
		assert.Equal(t, [16]byte{b}, [16]byte(got[path].TraceID()), "%s is in the trace the kernel chose", path)
	}
}

// The kernel's choice of caller is the span's: a TCP option's context as
// if it came in a header; a header the kernel read (its ids are the
// header's); a header only user space reads, dropped and reported, since
// the kernel started a trace of its own and carried it on to the calls.
func TestKernelCaller(t *testing.T) {
	id := tracecontext.Identity{TraceID: [16]byte{1, 2}, SpanID: [8]byte{3}, ParentID: [8]byte{4, 5}, Flags: 1}
	served := tracecontext.Chosen{Kind: tracecontext.Served, Identity: id}
	root := served
	root.ParentID = [8]byte{}
	const fromOption = "00-01020000000000000000000000000000-0405000000000000-01"
	for _, tt := range []struct {
		name, header string
		chosen       tracecontext.Chosen
		want         string
		dropped      bool
	}{
		{"a TCP option's caller, as if from a header", "", served, fromOption, false},
		{"the kernel's caller over a header it did not take", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", served, fromOption, false},
		{"no caller: a root", "", root, "", false},
		{"a header only user space reads: dropped", "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", root, "", true},
		{"a header nobody reads: no caller", "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", root, "", false},
		{"no kernel choice: the header stays", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracecontext.Chosen{},
			"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false},
		{"a client's ids are not a caller's", "", tracecontext.Chosen{Kind: tracecontext.Injected, Identity: id}, "", false},
	} {
		x := protocols.Exchange{Traceparent: tt.header, Chosen: tt.chosen}
		assert.Equal(t, tt.dropped, kernelCaller(&x), tt.name)
		assert.Equal(t, tt.want, x.Traceparent, tt.name)
	}
}

// With propagation on, a request whose traceparent the kernel could not
// read (version 01, which user space reads) gets a server span in the
// trace the kernel chose and sent on, without a parent, counted; one the
// kernel read is the caller's child.
func TestUnreadTraceparentKeepsTheKernelTrace(t *testing.T) {
	l := newTestLoop(t)
	const caller = "0af7651916cd43dd8448eb211c80319c"
	for sock, tp := range map[uint64]string{1: "01-" + caller + "-b7ad6b7169203331-01-x", 2: "00-" + caller + "-b7ad6b7169203331-01"} {
		var c tracecontext.Chosen
		c.Kind, c.TraceID, c.SpanID = tracecontext.Served, [16]byte{byte(sock)}, [8]byte{byte(sock)}
		if sock == 2 { // the kernel read this one: its trace and parent are the header's
			c.TraceID, c.ParentID = traceID(t, caller), [8]byte{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}
		}
		e := dataEvent(events.Read, 4242, sock, 1, "GET /"+strconv.Itoa(int(sock))+" HTTP/1.1\r\ntraceparent: "+tp+"\r\n\r\n")
		e.Chosen = c
		feed(t, l, e)
		feed(t, l, dataEvent(events.Write, 4242, sock, 2, "HTTP/1.1 204 No Content\r\n\r\n"))
	}
	l.resolve()
	ss := l.batch.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	require.Equal(t, 2, ss.Len())
	for i := 0; i < ss.Len(); i++ {
		s := ss.At(i)
		path, _ := s.Attributes().Get("url.path")
		switch path.Str() {
		case "/1":
			assert.Equal(t, [16]byte{1}, [16]byte(s.TraceID()), "the trace the kernel started and sent on")
			assert.True(t, s.ParentSpanID().IsEmpty(), "no parent: the kernel did not take the caller's")
		case "/2":
			assert.Equal(t, caller, s.TraceID().String())
			assert.Equal(t, "b7ad6b7169203331", s.ParentSpanID().String())
		}
	}
	assert.EqualValues(t, 1, l.counts.unreadTraceparent)
}

func traceID(t *testing.T, s string) (id pcommon.TraceID) {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	copy(id[:], b)
	return id
}
