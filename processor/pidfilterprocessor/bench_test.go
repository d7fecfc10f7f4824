package pidfilterprocessor

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/filterprocessor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor/internal/metadata"
)

// The comparison the README reports: 100 resources x 10 spans per batch,
// 20 ids in the list, half the resources kept. `filter` is configured the
// way users write it today.
const (
	benchResources = 100
	benchSpans     = 10
	benchIDs       = 20
)

func benchIDList() []string {
	var list []string
	for i := 0; i < benchIDs; i++ {
		list = append(list, fmt.Sprintf("node-1:%d", 1000+i))
	}
	return list
}

// benchBatch: even resources are processes 1000..1019 of node-1 (in the
// list), odd ones 1020..1039 (not in it): half are kept.
func benchBatch(resources int) ptrace.Traces {
	td := ptrace.NewTraces()
	for i := 0; i < resources; i++ {
		rs := td.ResourceSpans().AppendEmpty()
		pid := 1000 + (i%2)*benchIDs + (i/2)%benchIDs
		rs.Resource().Attributes().PutStr("service.instance.id", fmt.Sprintf("node-1:%d", pid))
		rs.Resource().Attributes().PutStr("service.name", "svc")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for j := 0; j < benchSpans; j++ {
			spans.AppendEmpty().SetName("GET /")
		}
	}
	return td
}

func pidfilterTraces(b testing.TB, next consumer.Traces) processor.Traces {
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type),
		&Config{Include: benchIDList(), Missing: MissingKeep}, next)
	require.NoError(b, err)
	return p
}

func filterTraces(b testing.TB, next consumer.Traces) processor.Traces {
	f := filterprocessor.NewFactory()
	cfg := f.CreateDefaultConfig().(*filterprocessor.Config)
	cfg.Traces.ResourceConditions = []string{
		fmt.Sprintf(`not ContainsValue(["%s"], resource.attributes["service.instance.id"])`, strings.Join(benchIDList(), `", "`)),
	}
	p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(b, err)
	return p
}

// Both processors drop the same resources: what the benchmark compares is
// the same job.
func TestBenchmarkedProcessorsAgree(t *testing.T) {
	for name, build := range map[string]func(testing.TB, consumer.Traces) processor.Traces{"pidfilter": pidfilterTraces, "filter": filterTraces} {
		sink := new(consumertest.TracesSink)
		p := build(t, sink)
		require.NoError(t, p.ConsumeTraces(context.Background(), benchBatch(benchResources)))
		require.Len(t, sink.AllTraces(), 1, name)
		require.Equal(t, benchResources/2, sink.AllTraces()[0].ResourceSpans().Len(), name)
		require.Equal(t, benchResources/2*benchSpans, sink.SpanCount(), name)
	}
}

func benchmarkProcessor(b *testing.B, build func(testing.TB, consumer.Traces) processor.Traces, resources int) {
	p := build(b, consumertest.NewNop())
	src := benchBatch(resources)
	batch := ptrace.NewTraces()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		src.CopyTo(batch) // both processors mutate the batch: each gets a fresh one
		b.StartTimer()
		if err := p.ConsumeTraces(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkKeepAll times batches whose every resource is in the list:
// nothing is removed, so one batch serves every iteration and the timing is
// the decision alone, free of the copying that dropping forces on the
// benchmark.
func benchmarkKeepAll(b *testing.B, build func(testing.TB, consumer.Traces) processor.Traces) {
	p := build(b, consumertest.NewNop())
	batch := ptrace.NewTraces()
	benchBatch(benchResources).CopyTo(batch)
	for i := 0; i < batch.ResourceSpans().Len(); i++ {
		batch.ResourceSpans().At(i).Resource().Attributes().PutStr("service.instance.id", fmt.Sprintf("node-1:%d", 1000+i%benchIDs))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.ConsumeTraces(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	if n := batch.ResourceSpans().Len(); n != benchResources {
		b.Fatalf("%d resources left, want %d", n, benchResources)
	}
}

// Half dropped: the batch is rebuilt (untimed) before each iteration.
func BenchmarkPidfilterHalfDropped(b *testing.B) {
	benchmarkProcessor(b, pidfilterTraces, benchResources)
}

func BenchmarkFilterOTTLHalfDropped(b *testing.B) {
	benchmarkProcessor(b, filterTraces, benchResources)
}

func BenchmarkPidfilterAllKept(b *testing.B)  { benchmarkKeepAll(b, pidfilterTraces) }
func BenchmarkFilterOTTLAllKept(b *testing.B) { benchmarkKeepAll(b, filterTraces) }

// Allocations per batch do not grow with the number of resources. Every
// resource is kept here, so the batch can be processed again and again
// without being rebuilt.
func TestNoAllocationPerResource(t *testing.T) {
	var all []string
	for pid := 1000; pid < 1000+2*benchIDs; pid++ {
		all = append(all, fmt.Sprintf("NODE-1:%d", pid)) // case differs: the slow path must not allocate either
	}
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type),
		&Config{Include: all, Missing: MissingKeep}, consumertest.NewNop())
	require.NoError(t, err)
	allocs := func(resources int) float64 {
		batch := benchBatch(resources)
		return testing.AllocsPerRun(50, func() { require.NoError(t, p.ConsumeTraces(context.Background(), batch)) })
	}
	small, large := allocs(10), allocs(1000)
	require.Equal(t, small, large, "allocations per batch: %v for 10 resources, %v for 1000", small, large)
}

// The same comparison for pod entries: 20 pods of namespace shop in the
// list; every resource also carries what the ebpf receiver writes for a
// process in a pod.
func benchPodList() []string {
	var list []string
	for i := 0; i < benchIDs; i++ {
		list = append(list, fmt.Sprintf("pod:shop/web-7d9f8b6c5d-%05d", i))
	}
	return list
}

// benchPodBatch: even resources are in pods of the list, odd ones not.
func benchPodBatch(resources int) ptrace.Traces {
	td := benchBatch(resources)
	for i := 0; i < resources; i++ {
		attrs := td.ResourceSpans().At(i).Resource().Attributes()
		n := (i/2)%benchIDs + (i%2)*benchIDs
		attrs.PutStr("k8s.namespace.name", "shop")
		attrs.PutStr("k8s.pod.name", fmt.Sprintf("web-7d9f8b6c5d-%05d", n))
		attrs.PutStr("k8s.pod.uid", fmt.Sprintf("44b22a8a-7e4d-40f3-8f75-%012d", n))
		attrs.PutStr("container.id", fmt.Sprintf("%064d", n))
		attrs.PutStr("k8s.container.name", "server")
		attrs.PutStr("k8s.deployment.name", "web")
	}
	return td
}

func pidfilterPodTraces(b testing.TB, next consumer.Traces) processor.Traces {
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type),
		&Config{Include: benchPodList(), Missing: MissingKeep}, next)
	require.NoError(b, err)
	return p
}

func filterPodTraces(b testing.TB, next consumer.Traces) processor.Traces {
	f := filterprocessor.NewFactory()
	cfg := f.CreateDefaultConfig().(*filterprocessor.Config)
	var pods []string
	for _, e := range benchPodList() {
		pods = append(pods, strings.TrimPrefix(e, "pod:"))
	}
	cfg.Traces.ResourceConditions = []string{fmt.Sprintf(
		`not ContainsValue(["%s"], Concat([resource.attributes["k8s.namespace.name"], resource.attributes["k8s.pod.name"]], "/"))`,
		strings.Join(pods, `", "`))}
	p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(b, err)
	return p
}

func TestBenchmarkedPodProcessorsAgree(t *testing.T) {
	for name, build := range map[string]func(testing.TB, consumer.Traces) processor.Traces{"pidfilter": pidfilterPodTraces, "filter": filterPodTraces} {
		sink := new(consumertest.TracesSink)
		p := build(t, sink)
		require.NoError(t, p.ConsumeTraces(context.Background(), benchPodBatch(benchResources)))
		require.Len(t, sink.AllTraces(), 1, name)
		require.Equal(t, benchResources/2, sink.AllTraces()[0].ResourceSpans().Len(), name)
	}
}

// benchmarkPodsKeepAll: every resource is in a listed pod; the decision
// alone is timed.
func benchmarkPodsKeepAll(b *testing.B, build func(testing.TB, consumer.Traces) processor.Traces) {
	p := build(b, consumertest.NewNop())
	batch := benchPodBatch(benchResources)
	for i := 0; i < batch.ResourceSpans().Len(); i++ {
		batch.ResourceSpans().At(i).Resource().Attributes().PutStr("k8s.pod.name", fmt.Sprintf("web-7d9f8b6c5d-%05d", i%benchIDs))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.ConsumeTraces(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	if n := batch.ResourceSpans().Len(); n != benchResources {
		b.Fatalf("%d resources left, want %d", n, benchResources)
	}
}

func BenchmarkPidfilterPodsAllKept(b *testing.B)  { benchmarkPodsKeepAll(b, pidfilterPodTraces) }
func BenchmarkFilterOTTLPodsAllKept(b *testing.B) { benchmarkPodsKeepAll(b, filterPodTraces) }

func TestNoAllocationPerResourceWithPods(t *testing.T) {
	p := pidfilterPodTraces(t, consumertest.NewNop())
	allocs := func(resources int) float64 {
		batch := benchPodBatch(resources)
		for i := 0; i < batch.ResourceSpans().Len(); i++ { // every resource kept
			batch.ResourceSpans().At(i).Resource().Attributes().PutStr("k8s.pod.name", fmt.Sprintf("web-7d9f8b6c5d-%05d", i%benchIDs))
		}
		return testing.AllocsPerRun(50, func() { require.NoError(t, p.ConsumeTraces(context.Background(), batch)) })
	}
	small, large := allocs(10), allocs(1000)
	require.Equal(t, small, large, "allocations per batch: %v for 10 resources, %v for 1000", small, large)
}
