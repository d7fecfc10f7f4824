package pidfilterprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor/internal/metadata"
	"github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor/internal/metadatatest"
)

func componentSettings() component.TelemetrySettings {
	return componenttest.NewNopTelemetrySettings()
}

var ids = []string{"node-1:10", "node-1:20", "node-2:10", "node-2:30"}

func traces() ptrace.Traces {
	td := ptrace.NewTraces()
	for _, id := range ids {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.instance.id", id)
		rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName(id)
	}
	td.ResourceSpans().AppendEmpty() // no identity
	return td
}

func instanceIDs[T interface{ Resource() pcommon.Resource }](n int, at func(int) T) []string {
	var out []string
	for i := 0; i < n; i++ {
		v, ok := at(i).Resource().Attributes().Get("service.instance.id")
		if ok {
			out = append(out, v.Str())
		} else {
			out = append(out, "-")
		}
	}
	return out
}

func TestProcessAllSignals(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := &Config{Include: []string{"*:10", "node-2:30"}, Exclude: []string{"node-2:10"}, Missing: MissingDrop}
	f := NewFactory()
	ctx := context.Background()

	ts, ms, ls := new(consumertest.TracesSink), new(consumertest.MetricsSink), new(consumertest.LogsSink)
	tp, err := f.CreateTraces(ctx, set, cfg, ts)
	require.NoError(t, err)
	mp, err := f.CreateMetrics(ctx, set, cfg, ms)
	require.NoError(t, err)
	lp, err := f.CreateLogs(ctx, set, cfg, ls)
	require.NoError(t, err)
	for _, c := range []component.Component{tp, mp, lp} {
		require.NoError(t, c.Start(ctx, componenttest.NewNopHost()))
		defer func(c component.Component) { require.NoError(t, c.Shutdown(ctx)) }(c)
	}

	require.NoError(t, tp.ConsumeTraces(ctx, traces()))
	md := pmetric.NewMetrics()
	ld := plog.NewLogs()
	for _, id := range ids {
		md.ResourceMetrics().AppendEmpty().Resource().Attributes().PutStr("service.instance.id", id)
		ld.ResourceLogs().AppendEmpty().Resource().Attributes().PutStr("service.instance.id", id)
	}
	require.NoError(t, mp.ConsumeMetrics(ctx, md))
	require.NoError(t, lp.ConsumeLogs(ctx, ld))

	want := []string{"node-1:10", "node-2:30"}
	require.Len(t, ts.AllTraces(), 1)
	got := ts.AllTraces()[0].ResourceSpans()
	assert.Equal(t, want, instanceIDs(got.Len(), got.At))
	gotM := ms.AllMetrics()[0].ResourceMetrics()
	assert.Equal(t, want, instanceIDs(gotM.Len(), gotM.At))
	gotL := ls.AllLogs()[0].ResourceLogs()
	assert.Equal(t, want, instanceIDs(gotL.Len(), gotL.At))

	// A batch with nothing left is not passed on at all.
	empty := ptrace.NewTraces()
	empty.ResourceSpans().AppendEmpty().Resource().Attributes().PutStr("service.instance.id", "node-1:20")
	require.NoError(t, tp.ConsumeTraces(ctx, empty))
	assert.Len(t, ts.AllTraces(), 1)

	metadatatest.AssertEqualProcessorPidfilterResourcesKept(t, tel, []metricdata.DataPoint[int64]{
		dp("logs", 2), dp("metrics", 2), dp("traces", 2),
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorPidfilterResourcesDropped(t, tel, []metricdata.DataPoint[int64]{
		dp("logs", 2), dp("metrics", 2), dp("traces", 4),
	}, metricdatatest.IgnoreTimestamp())
}

func dp(signal string, v int64) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.String("signal", signal)), Value: v}
}

func TestPidFileReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.pid")
	require.NoError(t, os.WriteFile(path, []byte("20\n"), 0o644))
	core, logs := observer.New(zap.InfoLevel)
	set := componentSettings()
	set.Logger = zap.New(core)
	p, err := newPidFilter(set, &Config{PidFiles: []string{path}, PidFilesPollInterval: 10 * time.Millisecond, Missing: MissingKeep})
	require.NoError(t, err)
	require.NoError(t, p.start(context.Background(), componenttest.NewNopHost()))
	defer p.shutdown(context.Background())

	pid := func(id string) bool { return p.keepResource(res("service.instance.id", id)) }
	assert.True(t, pid("h:20"))
	assert.False(t, pid("h:30"))

	// The service restarts: the file is replaced.
	tmp := filepath.Join(dir, "new")
	require.NoError(t, os.WriteFile(tmp, []byte(" 30 "), 0o644))
	require.NoError(t, os.Rename(tmp, path))
	require.Eventually(t, func() bool { return pid("h:30") && !pid("h:20") }, 5*time.Second, 5*time.Millisecond)

	// Deleted: nothing is kept, and that is said once.
	require.NoError(t, os.Remove(path))
	require.Eventually(t, func() bool { return !pid("h:30") }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // several polls of the missing file
	assert.Equal(t, 1, logs.FilterMessage("pid file unreadable: its process is not kept until it is readable again").Len())

	// Re-created.
	require.NoError(t, os.WriteFile(path, []byte("40"), 0o644))
	require.Eventually(t, func() bool { return pid("h:40") }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, 3, logs.FilterMessage("pid file read").Len(), "20, 30, 40")
}

func TestPidFileGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	require.NoError(t, os.WriteFile(path, []byte("not a pid"), 0o644))
	p, err := newPidFilter(componentSettings(), &Config{PidFiles: []string{path}, PidFilesPollInterval: time.Second, Missing: MissingKeep})
	require.NoError(t, err)
	assert.False(t, p.keepResource(res("service.instance.id", "h:1")), "an unreadable pid file never keeps everything")
}
