package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
	"github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor"
)

// The receiver watches two servers; the pidfilter processor, given the
// service.instance.id the receiver logged for one of them, lets only that
// one's spans and metrics through.
func TestPidfilterKeepsOneProcess(t *testing.T) {
	requireRoot(t)
	keep, other := startGoServer(t), startGoServer(t)

	ctx := context.Background()
	pf := pidfilterprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig().(*pidfilterprocessor.Config)
	pcfg.Include = []string{fmt.Sprintf("%s:%d", hostname(t), keep.pid())}
	tracesOut, metricsOut := new(consumertest.TracesSink), new(consumertest.MetricsSink)
	tp, err := pf.CreateTraces(ctx, processortest.NewNopSettings(pf.Type()), pcfg, tracesOut)
	require.NoError(t, err)
	mp, err := pf.CreateMetrics(ctx, processortest.NewNopSettings(pf.Type()), pcfg, metricsOut)
	require.NoError(t, err)
	require.NoError(t, tp.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, mp.Start(ctx, componenttest.NewNopHost()))
	defer tp.Shutdown(ctx)
	defer mp.Shutdown(ctx)

	// Everything the receiver emits also goes to these sinks, before the
	// processor: the other process's spans are there, so their absence
	// after it is the processor's doing.
	allTraces, allMetrics := new(consumertest.TracesSink), new(consumertest.MetricsSink)
	rf := ebpfreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*ebpfreceiver.Config)
	rcfg.Discovery.Pids = []int{keep.pid(), other.pid()}
	rcfg.Metrics.Interval = 200 * time.Millisecond
	core, logs := observer.New(zap.InfoLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	teeTraces, err := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		cp := ptrace.NewTraces()
		td.CopyTo(cp)
		allTraces.ConsumeTraces(ctx, cp)
		return tp.ConsumeTraces(ctx, td)
	})
	require.NoError(t, err)
	teeMetrics, err := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		cp := pmetric.NewMetrics()
		md.CopyTo(cp)
		allMetrics.ConsumeMetrics(ctx, cp)
		return mp.ConsumeMetrics(ctx, md)
	})
	require.NoError(t, err)
	tr, err := rf.CreateTraces(ctx, set, rcfg, teeTraces)
	require.NoError(t, err)
	mr, err := rf.CreateMetrics(ctx, set, rcfg, teeMetrics)
	require.NoError(t, err)
	require.NoError(t, tr.Start(ctx, nil))
	require.NoError(t, mr.Start(ctx, nil))
	defer tr.Shutdown(ctx)
	defer mr.Shutdown(ctx)

	h := &harness{traces: tracesOut, metrics: metricsOut, logs: logs}
	h.waitInstrumented(t, keep.pid())
	h.waitInstrumented(t, other.pid())
	for i := 0; i < 10; i++ {
		for _, s := range []*peer{keep, other} {
			resp, err := http.Get("http://" + s.addr + "/hello")
			require.NoError(t, err)
			resp.Body.Close()
		}
	}
	all := &harness{traces: allTraces, metrics: allMetrics}
	all.waitSpans(t, other.pid(), ptrace.SpanKindServer, 10)
	all.waitRequestCount(t, other.pid(), "http.server.request.duration", 10)
	h.waitSpans(t, keep.pid(), ptrace.SpanKindServer, 10)
	h.waitRequestCount(t, keep.pid(), "http.server.request.duration", 10)
	assert.Empty(t, h.spansOf(other.pid(), ptrace.SpanKindServer), "the other process's spans are dropped")
	assert.Zero(t, h.requestCount(other.pid(), "http.server.request.duration"), "and its metrics")
}
