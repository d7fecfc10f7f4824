package receiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

func testLoop(t testing.TB) *eventLoop {
	router, _ := routes.New(nil, "")
	r := New(Options{Router: router}, componenttest.NewNopTelemetrySettings(), "test")
	r.procs = newProcesses("/proc", "host")
	r.procs.add(discovery.Process{Pid: 4242, ExeName: "server", ServiceName: "server"})
	r.agg = redmetrics.New(maxSeries)
	tb, err := newTelemetry(r)
	if err != nil {
		t.Fatal(err)
	}
	r.tb = tb
	r.SetTraces(consumertest.NewNop())
	return newEventLoop(r)
}

func feed(t *testing.T, l *eventLoop, raw []byte) {
	t.Helper()
	require.NoError(t, events.Decode(raw, &l.ev))
	l.handle(&l.ev)
}

// A server span whose peer is on this host waits for the client's write;
// once one waited in vain, the connection's next spans do not wait.
func TestUnwatchedPeerStopsParking(t *testing.T) {
	l := testLoop(t)
	req := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	loopback := func(raw []byte) []byte {
		copy(raw[48:], []byte{127, 0, 0, 1})
		copy(raw[64:], []byte{127, 0, 0, 1})
		return raw
	}
	feed(t, l, loopback(rawEvent(bpf.EventRead, 4242, 1, 1, req)))
	feed(t, l, loopback(rawEvent(bpf.EventWrite, 4242, 1, 2, resp)))
	require.Len(t, l.parked, 1, "waits for a client that may be watched")
	require.Zero(t, l.batchSpans)

	l.parked[0].since = time.Now().Add(-linkGrace)
	l.unpark(false)
	require.Empty(t, l.parked)
	require.Equal(t, 1, l.batchSpans)

	feed(t, l, loopback(rawEvent(bpf.EventRead, 4242, 1, 3, req)))
	feed(t, l, loopback(rawEvent(bpf.EventWrite, 4242, 1, 4, resp)))
	require.Empty(t, l.parked, "the peer is known not to be watched")
	require.Equal(t, 2, l.batchSpans)
}
