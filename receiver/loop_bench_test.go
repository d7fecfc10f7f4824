package receiver

import (
	"encoding/binary"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

// rawEvent lays out a read or write event of pid on connection sock as the
// kernel does.
func rawEvent(kind byte, pid uint32, sock uint64, ts uint64, data string) []byte {
	raw := make([]byte, bpf.HeaderSize+len(data))
	le := binary.LittleEndian
	raw[0], raw[1] = kind, 2 // AF_INET
	le.PutUint16(raw[2:], 8080)
	le.PutUint16(raw[4:], 50000)
	le.PutUint16(raw[6:], uint16(len(data)))
	le.PutUint32(raw[8:], pid)
	le.PutUint32(raw[12:], pid)
	le.PutUint32(raw[20:], uint32(len(data)))
	le.PutUint64(raw[32:], ts)
	le.PutUint64(raw[40:], sock)
	// Addresses of two hosts: a peer on this host would make server spans
	// wait for their client's write, which the benchmark never sends.
	copy(raw[48:], []byte{10, 0, 0, 1})
	copy(raw[64:], []byte{10, 0, 0, 2})
	copy(raw[bpf.HeaderSize:], data)
	return raw
}

// BenchmarkEventsToPdata measures the user-space path from ring buffer
// records to spans and metric observations: decoding, HTTP parsing,
// correlation, span and histogram building. One op is one event; a request
// is two (its read and its response's write).
func BenchmarkEventsToPdata(b *testing.B) {
	benchmarkEvents(b, bpf.EventRead, bpf.EventWrite)
}

// BenchmarkEventsToPdataClient is BenchmarkEventsToPdata for a watched
// client: it writes the requests and reads the responses.
func BenchmarkEventsToPdataClient(b *testing.B) {
	benchmarkEvents(b, bpf.EventWrite, bpf.EventRead)
}

// benchmarkEvents feeds requests carried by events of kind reqKind, and
// responses by events of kind respKind, on 8 keep-alive connections.
func benchmarkEvents(b *testing.B, reqKind, respKind byte) {
	loop := newTestLoop(b)
	raws := exchangeEvents(reqKind, respKind, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		feedEvent(b, loop, raws[i%len(raws)], uint64(i))
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
	r := New(Options{Router: router}, componenttest.NewNopTelemetrySettings(), "bench")
	r.procs = newProcesses("/proc", "host")
	r.procs.add(discovery.Process{Pid: 4242, ExeName: "server", ServiceName: "server"})
	r.agg = redmetrics.New(maxSeries)
	telemetry, err := newTelemetry(r)
	if err != nil {
		tb.Fatal(err)
	}
	r.tb = telemetry
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
func exchangeEvents(reqKind, respKind byte, conns int) [][]byte {
	req := "GET /users/42 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nhello, world\n"
	var raws [][]byte
	for conn := uint64(0); conn < uint64(conns); conn++ {
		raws = append(raws, rawEvent(reqKind, 4242, 0x1000+conn, 1, req), rawEvent(respKind, 4242, 0x1000+conn, 2, resp))
	}
	return raws
}

// feedEvent decodes and handles one raw event as the loop does, at time ts.
func feedEvent(tb testing.TB, loop *eventLoop, raw []byte, ts uint64) {
	if err := events.Decode(raw, &loop.ev); err != nil {
		tb.Fatal(err)
	}
	loop.ev.Time = ts
	loop.handle(&loop.ev)
}

// BenchmarkEventsToPdataShortConns is BenchmarkEventsToPdata with one
// request per connection (HTTP/1.0 clients, proxies that do not reuse
// connections): each connection is opened, used once and closed, so a
// request is three events.
func BenchmarkEventsToPdataShortConns(b *testing.B) {
	loop := newTestLoop(b)
	model := exchangeEvents(bpf.EventRead, bpf.EventWrite, 1)
	raws := append(model, rawEvent(bpf.EventClose, 4242, 0x1000, 3, ""))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		raw := raws[i%len(raws)]
		binary.LittleEndian.PutUint64(raw[40:], uint64(i/len(raws))) // a socket of its own
		feedEvent(b, loop, raw, uint64(i))
		if loop.batchSpans >= batchSpans {
			loop.flush()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
