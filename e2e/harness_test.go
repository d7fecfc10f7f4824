package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
)

// requireRoot skips where eBPF programs cannot be loaded, except in CI,
// where a skip would hide that nothing was tested.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("end-to-end tests load eBPF programs and must run as root in CI")
	}
	t.Skip("end-to-end tests load eBPF programs: run them as root")
}

// harness is a traces and a metrics receiver sharing one id, as in a
// collector with both pipelines, feeding sinks.
type harness struct {
	traces  *consumertest.TracesSink
	metrics *consumertest.MetricsSink
	logs    *observer.ObservedLogs
	tel     *componenttest.Telemetry // the receiver's own telemetry
	comps   []component.Component
}

func startReceiver(t *testing.T, configure func(*ebpfreceiver.Config)) *harness {
	t.Helper()
	requireRoot(t)
	f := ebpfreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*ebpfreceiver.Config)
	cfg.Metrics.Interval = 200 * time.Millisecond
	cfg.Discovery.PollInterval = 100 * time.Millisecond
	configure(cfg)
	require.NoError(t, cfg.Validate())

	core, logs := observer.New(zap.InfoLevel)
	tel := componenttestTelemetry(t)
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	h := &harness{traces: new(consumertest.TracesSink), metrics: new(consumertest.MetricsSink), logs: logs, tel: tel}
	tr, err := f.CreateTraces(context.Background(), set, cfg, h.traces)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, h.metrics)
	require.NoError(t, err)
	h.comps = []component.Component{tr, mr}
	for _, c := range h.comps {
		require.NoError(t, c.Start(context.Background(), nil))
	}
	t.Cleanup(func() { h.stop(t) })
	return h
}

func componenttestTelemetry(t *testing.T) *componenttest.Telemetry {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	return tel
}

func (h *harness) stop(t *testing.T) {
	for _, c := range h.comps {
		require.NoError(t, c.Shutdown(context.Background()))
	}
	h.comps = nil
}

// waitInstrumented waits for the log line that says pid is watched.
func (h *harness) waitInstrumented(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, e := range h.logs.FilterMessage("instrumenting process").All() {
			if e.ContextMap()["process.pid"] == int64(pid) {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "pid %d was never instrumented", pid)
}

// span is a flattened span with its resource, for assertions.
type span struct {
	ptrace.Span
	res pcommon.Map
}

// str is the attribute key as a string, "" when the span has none.
func (s span) str(key string) string {
	if v, ok := s.Attributes().Get(key); ok {
		return v.AsString()
	}
	return ""
}

func (s span) int(key string) int64 {
	if v, ok := s.Attributes().Get(key); ok {
		return v.Int()
	}
	return 0
}

func (s span) resStr(key string) string {
	if v, ok := s.res.Get(key); ok {
		return v.AsString()
	}
	return ""
}

// spansOf returns the spans of process pid of the given kind.
func (h *harness) spansOf(pid int, kind ptrace.SpanKind) []span {
	return h.spansWhere("process.pid", int64(pid), kind)
}

// spansWhere returns the spans of the given kind whose resource has
// attribute key with value want.
func (h *harness) spansWhere(key string, want any, kind ptrace.SpanKind) []span {
	var out []span
	for _, td := range h.traces.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			if v, _ := rs.Resource().Attributes().Get(key); v.AsRaw() != want {
				continue
			}
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					if ss.At(k).Kind() == kind {
						out = append(out, span{ss.At(k), rs.Resource().Attributes()})
					}
				}
			}
		}
	}
	return out
}

// waitSpans waits until process pid has n spans of kind, then checks that no
// more come, and returns them.
func (h *harness) waitSpans(t *testing.T, pid int, kind ptrace.SpanKind, n int) []span {
	t.Helper()
	require.Eventually(t, func() bool { return len(h.spansOf(pid, kind)) >= n },
		15*time.Second, 50*time.Millisecond, "pid %d: waiting for %d %v spans", pid, n, kind)
	time.Sleep(500 * time.Millisecond) // time enough for extra spans to show up
	got := h.spansOf(pid, kind)
	require.Len(t, got, n, "pid %d: %v spans", pid, kind)
	return got
}

// requestCount is the count of the newest http.{side}.request.duration
// points of process pid, summed over series.
func (h *harness) requestCount(pid int, metric string) uint64 {
	all := h.metrics.AllMetrics()
	for i := len(all) - 1; i >= 0; i-- {
		if n, ok := countIn(all[i], pid, metric); ok {
			return n
		}
	}
	return 0
}

func countIn(md pmetric.Metrics, pid int, metric string) (uint64, bool) {
	var total uint64
	found := false
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		if p, _ := rm.Resource().Attributes().Get("process.pid"); p.Int() != int64(pid) {
			continue
		}
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() != metric {
					continue
				}
				found = true
				dps := ms.At(k).Histogram().DataPoints()
				for d := 0; d < dps.Len(); d++ {
					total += dps.At(d).Count()
				}
			}
		}
	}
	return total, found
}

// waitRequestCount waits until the metric counts n requests for pid.
func (h *harness) waitRequestCount(t *testing.T, pid int, metric string, n uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return h.requestCount(pid, metric) == n },
		10*time.Second, 50*time.Millisecond, "pid %d: %s never counted %d (last %d)", pid, metric, n, h.requestCount(pid, metric))
}

// ourProgramNames are the names the kernel keeps of the receiver's
// programs (cut to 15 bytes).
var ourProgramNames = map[string]bool{"on_sys_enter": true, "on_sys_exit": true, "on_process_exit": true,
	"track_clients": true, "insert_tracepar": true}

// ourProgramIDs lists the eBPF programs loaded in the kernel that bear the
// receiver's names: another loader on the machine does not count.
func ourProgramIDs(t *testing.T) map[ebpf.ProgramID]bool {
	t.Helper()
	ids := map[ebpf.ProgramID]bool{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return ids
		}
		id = next
		p, err := ebpf.NewProgramFromID(next)
		if err != nil {
			continue // gone meanwhile
		}
		if info, err := p.Info(); err == nil && ourProgramNames[info.Name] {
			ids[next] = true
		}
		p.Close()
	}
}

// selfMetric sums the points of the receiver's own metric name whose
// attribute key (if any) has value; -1 when the metric is not there.
func (h *harness) selfMetric(t *testing.T, name, key, value string) int64 {
	t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return -1
	}
	var total int64
	add := func(v int64, attrs attribute.Set) {
		if key == "" {
			total += v
		} else if got, ok := attrs.Value(attribute.Key(key)); ok && got.AsString() == value {
			total += v
		}
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			add(p.Value, p.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			add(p.Value, p.Attributes)
		}
	}
	return total
}
