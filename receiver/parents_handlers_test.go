package receiver

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/correlate"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
)

// h2Frames writes HTTP/2 frames: write adds them to b.
type h2Frames struct {
	b   bytes.Buffer
	f   *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

func newH2Frames() *h2Frames {
	w := &h2Frames{}
	w.f = http2.NewFramer(&w.b, nil)
	w.enc = hpack.NewEncoder(&w.hb)
	return w
}

func (w *h2Frames) headers(stream uint32, end bool, fields ...string) {
	w.hb.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		w.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	w.f.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: w.hb.Bytes(), EndStream: end, EndHeaders: true})
}

// take returns the frames written so far, and forgets them.
func (w *h2Frames) take() string {
	s := w.b.String()
	w.b.Reset()
	return s
}

// grpcRequests is the client's preface and a unary call of method on
// each stream, as a gRPC server reads them.
func grpcRequests(w *h2Frames, calls map[uint32]string) string {
	w.b.WriteString(http2.ClientPreface)
	w.f.WriteSettings()
	for _, stream := range []uint32{1, 3, 5, 7} {
		method, ok := calls[stream]
		if !ok {
			continue
		}
		w.headers(stream, false, ":method", "POST", ":scheme", "http", ":path", "/"+method,
			":authority", "127.0.0.1:8080", "content-type", "application/grpc", "te", "trailers")
		w.f.WriteData(stream, true, []byte{0, 0, 0, 0, 1, 'x'})
	}
	return w.take()
}

// grpcResponse is a server's OK answer on stream.
func grpcResponse(w *h2Frames, stream uint32) string {
	w.headers(stream, false, ":status", "200", "content-type", "application/grpc")
	w.f.WriteData(stream, false, []byte{0, 0, 0, 0, 1, 'y'})
	w.headers(stream, true, "grpc-status", "0")
	return w.take()
}

// handler is the event of the probe at a Go HTTP/2 handler's entry.
func handler(sock uint64, stream uint32, goroutine uint64, ts uint64) events.Event {
	return events.Event{Kind: events.GoHandler, Pid: 4242, Tid: 4242, Sock: sock, Time: ts, Task: goroutine,
		TaskTrigger: uint64(stream)}
}

// spansByName are the batch's spans, resolved, by name (gRPC method) or
// url.full.
func spansByName(t *testing.T, l *eventLoop) map[string]ptrace.Span {
	l.resolve()
	out := map[string]ptrace.Span{}
	rs := l.batch.ResourceSpans()
	for i := 0; i < rs.Len(); i++ {
		ss := rs.At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < ss.Len(); j++ {
			s := ss.At(j)
			key := s.Name()
			if v, ok := s.Attributes().Get("url.full"); ok {
				key = v.Str()
			}
			out[key] = s
		}
	}
	return out
}

// h2Call is a call of goroutine task, written on a connection of its own.
func h2Call(sock uint64, ts uint64, path string, task uint64) events.Event {
	ev := called(sock, ts, path)
	ev.Local = netip.AddrPortFrom(ev.Local.Addr(), uint16(50000+sock))
	ev.Task = task
	return ev
}

// A grpc-go server reads every stream of a connection on its reader
// goroutine (7) and serves each on a goroutine of its own: the handler
// events tie the streams' server spans to those, told after the request
// was read (stream 1) or before (stream 3), and each call goes under the
// call it was made for.
func TestGoHandlersServeStreams(t *testing.T) {
	l := goLoop(t)
	w := newH2Frames()
	accept := events.Event{Kind: events.Accept, Pid: 4242, Tid: 4242, Sock: 1, Time: 1, Local: serverEnd, Remote: clientEnd}
	reqs := dataEvent(events.Read, 4242, 1, 3, grpcRequests(w, map[uint32]string{1: "relay.Front/A", 3: "relay.Front/B"}))
	reqs.Task = 7
	callA, callB := h2Call(10, 5, "/call-of-a", 100), h2Call(11, 6, "/call-of-b", 101)
	respA := dataEvent(events.Write, 4242, 1, 9, grpcResponse(w, 1))
	respB := dataEvent(events.Write, 4242, 1, 10, grpcResponse(w, 3))
	respA.Task, respB.Task = 8, 8 // grpc-go's writer goroutine
	for _, ev := range []events.Event{accept, handler(1, 3, 101, 2), reqs, handler(1, 1, 100, 4),
		callB, callA, answered(callA, 7), answered(callB, 8), respA, respB} {
		feed(t, l, ev)
	}
	spans := spansByName(t, l)
	require.Len(t, spans, 4)
	assert.Equal(t, spans["relay.Front/A"].SpanID(), spans["http://b:9090/call-of-a"].ParentSpanID())
	assert.Equal(t, spans["relay.Front/B"].SpanID(), spans["http://b:9090/call-of-b"].ParentSpanID())
	assert.Equal(t, int64(2), l.linker.TakeOutcomes().Linked[correlate.RuleTask])
	assert.Equal(t, handlerCounts{matched: 1, matchedLater: 1}, l.parents.handlers.counts)
	assert.Empty(t, l.parents.handlers.pending)
}

// A worker goroutine serves one stream after another: once told it
// serves the next, its calls are no earlier stream's, even while that
// one's response is still to be read.
func TestGoHandlerWorkerMovesOn(t *testing.T) {
	l := goLoop(t)
	w := newH2Frames()
	accept := events.Event{Kind: events.Accept, Pid: 4242, Tid: 4242, Sock: 1, Time: 1, Local: serverEnd, Remote: clientEnd}
	reqs := dataEvent(events.Read, 4242, 1, 2, grpcRequests(w, map[uint32]string{1: "relay.Front/A", 3: "relay.Front/B"}))
	reqs.Task = 7
	callB := h2Call(10, 5, "/call-of-b", 100)
	for _, ev := range []events.Event{accept, reqs, handler(1, 1, 100, 3), handler(1, 3, 100, 4), callB, answered(callB, 6),
		dataEvent(events.Write, 4242, 1, 7, grpcResponse(w, 1)), dataEvent(events.Write, 4242, 1, 8, grpcResponse(w, 3))} {
		feed(t, l, ev)
	}
	spans := spansByName(t, l)
	assert.Equal(t, spans["relay.Front/B"].SpanID(), spans["http://b:9090/call-of-b"].ParentSpanID())
}

// Nothing is guessed: a call of a goroutine no handler event named is
// left without a parent while two streams are served, and a handler whose
// stream never shows is dropped with its connection, counted.
func TestGoHandlerUnknownStream(t *testing.T) {
	l := goLoop(t)
	w := newH2Frames()
	accept := events.Event{Kind: events.Accept, Pid: 4242, Tid: 4242, Sock: 1, Time: 1, Local: serverEnd, Remote: clientEnd}
	reqs := dataEvent(events.Read, 4242, 1, 2, grpcRequests(w, map[uint32]string{1: "relay.Front/A", 3: "relay.Front/B"}))
	reqs.Task = 7
	call := h2Call(10, 5, "/call", 555)
	for _, ev := range []events.Event{accept, reqs, handler(1, 5, 100, 3), handler(9, 1, 101, 3), call, answered(call, 6),
		dataEvent(events.Write, 4242, 1, 7, grpcResponse(w, 1)), dataEvent(events.Write, 4242, 1, 8, grpcResponse(w, 3))} {
		feed(t, l, ev)
	}
	spans := spansByName(t, l)
	assert.True(t, spans["http://b:9090/call"].ParentSpanID().IsEmpty())
	assert.Equal(t, int64(1), l.linker.TakeOutcomes().Unlinked[correlate.ReasonSeveralInProcess])
	require.Len(t, l.parents.handlers.pending, 2)
	feed(t, l, events.Event{Kind: events.Close, Pid: 4242, Sock: 1, Time: 9})
	assert.Len(t, l.parents.handlers.pending, 1)
	assert.Equal(t, uint64(1), l.parents.handlers.counts.dropped)
	assert.Equal(t, int64(1), l.counts.failures[failureKey{"http2", reasonHandlerUnmatched}])
	l.ended(4242, 10)
	assert.Empty(t, l.parents.handlers.pending)
	assert.Equal(t, uint64(2), l.parents.handlers.counts.dropped)
}
