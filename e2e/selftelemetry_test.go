package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// The receiver's own metrics tell what it saw, sent and lost.
func TestSelfTelemetry(t *testing.T) {
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h.waitInstrumented(t, srv.pid())
	for i := 0; i < 20; i++ {
		resp, err := http.Get("http://" + srv.addr + "/self")
		require.NoError(t, err)
		resp.Body.Close()
	}
	h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 20)
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_spans", "outcome", "sent") == 20 &&
			h.selfMetric(t, "otelcol_receiver_ebpf_requests", "", "") == 20
	}, 5*time.Second, 20*time.Millisecond, "spans sent %d, requests %d",
		h.selfMetric(t, "otelcol_receiver_ebpf_spans", "outcome", "sent"), h.selfMetric(t, "otelcol_receiver_ebpf_requests", "", ""))
	assert.GreaterOrEqual(t, h.selfMetric(t, "otelcol_receiver_ebpf_events_read", "", ""), int64(40), "a read and a write per request at least")
	assert.Equal(t, int64(1), h.selfMetric(t, "otelcol_receiver_ebpf_processes", "", ""))
	assert.Equal(t, int64(1), h.selfMetric(t, "otelcol_receiver_ebpf_map_entries", "map", "selected_pids"))
	assert.Zero(t, h.selfMetric(t, "otelcol_receiver_ebpf_events_lost", "reason", "ring_full_data"))
	assert.Zero(t, h.selfMetric(t, "otelcol_receiver_ebpf_spans", "outcome", "dropped"))
	assert.Positive(t, h.selfMetric(t, "otelcol_receiver_ebpf_map_capacity", "map", "selected_pids"))
}
