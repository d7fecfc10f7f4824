package e2e

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
)

// A next consumer that never returns does not block the kernel side nor
// grow the receiver's memory: batches beyond a small queue are dropped, and
// counted.
func TestStuckConsumer(t *testing.T) {
	requireRoot(t)
	srv := startGoServer(t)
	release := make(chan struct{})
	stuck, err := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		<-release
		return nil
	})
	require.NoError(t, err)

	f := ebpfreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*ebpfreceiver.Config)
	cfg.Discovery.Pids = []int{srv.pid()}
	core, logs := observer.New(zap.InfoLevel)
	tel := componenttestTelemetry(t)
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	r, err := f.CreateTraces(context.Background(), set, cfg, stuck)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), nil))
	h := &harness{logs: logs, tel: tel, traces: new(consumertest.TracesSink), comps: []component.Component{r}}
	h.waitInstrumented(t, srv.pid())

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// 40000 spans fill about 20 batches of 2048: more than the queue of 8
	// (and the one the stuck consumer holds) takes.
	for round := 0; round < 8; round++ {
		_, ok := runGoClient(t, "http://"+srv.addr+"/stuck", 5000, 8)
		require.Equal(t, 5000, ok, "the watched server is not slowed to a halt")
	}
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_spans", "outcome", "dropped") > 0 &&
			h.selfMetric(t, "otelcol_receiver_ebpf_requests", "", "") == 40000
	}, 10*time.Second, 50*time.Millisecond, "dropped %d, requests %d",
		h.selfMetric(t, "otelcol_receiver_ebpf_spans", "outcome", "dropped"), h.selfMetric(t, "otelcol_receiver_ebpf_requests", "", ""))
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("BACKPRESSURE: 40000 requests, %d spans dropped, heap %d KiB -> %d KiB",
		h.selfMetric(t, "otelcol_receiver_ebpf_spans", "outcome", "dropped"), before.HeapAlloc>>10, after.HeapAlloc>>10)
	assert.Less(t, int64(after.HeapAlloc)-int64(before.HeapAlloc), int64(48<<20), "the queue is bounded: 9 batches at most")
	close(release)
	h.stop(t)
}
