package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// With a ring buffer far too small for the load, events are lost, and every
// request is still accounted for: requests sent = server spans + requests
// counted as lost.
func TestLossAccounting(t *testing.T) {
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.Pids = []int{srv.pid()}
		c.RingBufferSize = 4096
	})
	h.waitInstrumented(t, srv.pid())

	const sent = 20000
	_, ok := runGoClient(t, "http://"+srv.addr+"/flood", sent, 8)
	require.Equal(t, sent, ok)

	lost := func() int64 { return h.selfMetric(t, "otelcol_receiver_ebpf_requests_lost", "", "") }
	spans := func() int { return len(h.spansOf(srv.pid(), ptrace.SpanKindServer)) }
	// Wait until the receiver has read everything the kernel delivered.
	last, stableSince := int64(-1), time.Now()
	require.Eventually(t, func() bool {
		now := int64(spans()) + lost()
		if now != last {
			last, stableSince = now, time.Now()
		}
		return time.Since(stableSince) > time.Second
	}, 30*time.Second, 50*time.Millisecond)
	lostRequests := lost()
	eventsLost := h.selfMetric(t, "otelcol_receiver_ebpf_events_lost", "reason", "ring_full_data")
	h.stop(t) // ends every connection: requests still waiting come out as spans

	got := spans()
	t.Logf("ACCOUNTING: %d requests sent, %d server spans, %d requests lost (%d events lost)", sent, got, lostRequests, eventsLost)
	require.Positive(t, eventsLost, "the ring buffer was meant to overflow")
	require.Equal(t, int64(sent), int64(got)+lostRequests)
}
