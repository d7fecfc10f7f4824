package receiver

import (
	"net/netip"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/cardinality"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/known"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

// Addresses of two hosts: a peer on this host would make server spans
// wait for their client's write, which the benchmarks never send.
var (
	serverEnd = netip.MustParseAddrPort("10.0.0.1:8080")
	clientEnd = netip.MustParseAddrPort("10.0.0.2:50000")
)

// dataEvent is an event of pid on connection sock carrying data, seen from
// the watched process's end: a read or a write, as kind says. The watched
// process is the server when it reads requests.
func dataEvent(kind events.Kind, pid uint32, sock uint64, ts uint64, data string) events.Event {
	return events.Event{Kind: kind, Pid: pid, Tid: pid, Sock: sock, Time: ts, Local: serverEnd, Remote: clientEnd,
		Len: uint32(len(data)), Data: []byte(data)}
}

// BenchmarkEventsToPdata measures the user-space path from ring buffer
// records to spans and metric observations: decoding, HTTP parsing,
// correlation, span and histogram building. One op is one event; a request
// is two (its read and its response's write).
func BenchmarkEventsToPdata(b *testing.B) {
	benchmarkEvents(b, events.Read, events.Write)
}

// BenchmarkEventsToPdataClient is BenchmarkEventsToPdata for a watched
// client: it writes the requests and reads the responses.
func BenchmarkEventsToPdataClient(b *testing.B) {
	benchmarkEvents(b, events.Write, events.Read)
}

// benchmarkEvents feeds requests carried by events of kind reqKind, and
// responses by events of kind respKind, on 8 keep-alive connections.
func benchmarkEvents(b *testing.B, reqKind, respKind events.Kind) {
	loop := newTestLoop(b)
	raws := encode(exchangeEvents(reqKind, respKind, 8))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		feedRaw(b, loop, raws[i%len(raws)], uint64(i))
		if loop.batchSpans >= batchSpans {
			loop.flush()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// newTestLoop returns an event loop watching process 4242, whose batches
// are read and dropped until the test ends.
func newTestLoop(tb testing.TB) *eventLoop {
	router, _ := routes.New(nil, "")
	opts := Options{Registry: known.Registry(nil), Protocols: protocols.Options{
		Routes: routes.NewLimiter(router, 200), RPCMethods: cardinality.New(100)}}
	r := New(opts, componenttest.NewNopTelemetrySettings(), "bench")
	r.procs = newProcesses("/proc", "host")
	r.procs.add(discovery.Process{Pid: 4242, ExeName: "server", ServiceName: "server"})
	r.agg = redmetrics.New(maxSeries)
	telemetry, err := newTelemetry(r)
	if err != nil {
		tb.Fatal(err)
	}
	r.tb = telemetry
	r.ended = make(chan *process, endedQueue)
	r.SetTraces(consumertest.NewNop())
	r.SetMetrics(consumertest.NewNop())
	loop := newEventLoop(r)
	go func() {
		for range loop.out { // the sender's part is the pipeline's cost, not ours
		}
	}()
	tb.Cleanup(func() { close(loop.out) })
	return loop
}

// exchangeEvents returns the events of one request and its response on
// each of conns connections: the request carried by an event of kind
// reqKind, the response by one of kind respKind.
func exchangeEvents(reqKind, respKind events.Kind, conns int) []events.Event {
	req := "GET /users/42 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nhello, world\n"
	var evs []events.Event
	for conn := uint64(0); conn < uint64(conns); conn++ {
		evs = append(evs, dataEvent(reqKind, 4242, 0x1000+conn, 1, req), dataEvent(respKind, 4242, 0x1000+conn, 2, resp))
	}
	return evs
}

func encode(evs []events.Event) [][]byte {
	raws := make([][]byte, len(evs))
	for i := range evs {
		raws[i] = events.Encode(&evs[i])
	}
	return raws
}

// feedRaw decodes and handles one raw event as the loop does, at time ts.
func feedRaw(tb testing.TB, loop *eventLoop, raw []byte, ts uint64) {
	if err := events.Decode(raw, &loop.ev); err != nil {
		tb.Fatal(err)
	}
	loop.ev.Time = ts
	loop.handle(&loop.ev)
}

// feed handles ev as the loop does, at its time.
func feed(tb testing.TB, loop *eventLoop, ev events.Event) {
	feedRaw(tb, loop, events.Encode(&ev), ev.Time)
}

// shortConns returns n requests, each on a connection of its own that is
// closed after its response, encoded.
func shortConns(n int) [][][]byte {
	conns := make([][][]byte, n)
	for i := range conns {
		evs := exchangeEvents(events.Read, events.Write, 1)
		evs = append(evs, events.Event{Kind: events.Close, Pid: 4242, Time: 3, Local: serverEnd, Remote: clientEnd})
		for j := range evs {
			evs[j].Sock = uint64(0x10000 + i)
		}
		conns[i] = encode(evs)
	}
	return conns
}

// BenchmarkEventsToPdataShortConns is BenchmarkEventsToPdata with one
// request per connection (HTTP/1.0 clients, proxies that do not reuse
// connections): each connection is opened, used once and closed, so a
// request is three events.
func BenchmarkEventsToPdataShortConns(b *testing.B) {
	loop := newTestLoop(b)
	conns := shortConns(4096) // socket addresses come back, as the kernel's do
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		conn := conns[(i/3)%len(conns)]
		feedRaw(b, loop, conn[i%3], uint64(i))
		if loop.batchSpans >= batchSpans {
			loop.flush()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
