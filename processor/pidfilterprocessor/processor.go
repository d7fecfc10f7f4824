package pidfilterprocessor // import "github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor"

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor/internal/metadata"
)

// pidFile is the last state seen of one pid file.
type pidFile struct {
	path string
	pid  int64  // 0 when unreadable
	err  string // why it is unreadable, to log each change once
}

type pidFilter struct {
	cfg     *Config
	logger  *zap.Logger
	tb      *metadata.TelemetryBuilder
	include []entry
	exclude []entry
	files   []pidFile
	current atomic.Pointer[matcher]

	stop chan struct{}
	wg   sync.WaitGroup
}

func newPidFilter(set component.TelemetrySettings, cfg *Config) (*pidFilter, error) {
	include, err := parseEntries(cfg.Include)
	if err != nil {
		return nil, err
	}
	exclude, err := parseEntries(cfg.Exclude)
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set)
	if err != nil {
		return nil, fmt.Errorf("creating the pidfilter telemetry: %w", err)
	}
	p := &pidFilter{cfg: cfg, logger: set.Logger, tb: tb, include: include, exclude: exclude}
	for _, path := range cfg.PidFiles {
		p.files = append(p.files, pidFile{path: path})
	}
	p.readPidFiles()
	return p, nil
}

// readPidFiles reads every pid file, logs each change of state once, and
// swaps in a matcher built from what they hold now.
func (p *pidFilter) readPidFiles() {
	for i := range p.files {
		f := &p.files[i]
		pid, err := readPid(f.path)
		errText := ""
		if err != nil {
			errText = err.Error()
		}
		if pid == f.pid && errText == f.err {
			continue
		}
		switch {
		case err != nil:
			p.logger.Warn("pid file unreadable: its process is not kept until it is readable again",
				zap.String("pid_file", f.path), zap.Error(err))
		default:
			p.logger.Info("pid file read", zap.String("pid_file", f.path), zap.Int64("pid", pid))
		}
		f.pid, f.err = pid, errText
	}
	p.current.Store(p.buildMatcher())
}

func (p *pidFilter) buildMatcher() *matcher {
	include := append([]entry(nil), p.include...)
	for _, f := range p.files {
		if f.pid > 0 {
			include = append(include, entry{kind: kindProcess, pid: f.pid})
		}
	}
	m := &matcher{
		filtering: len(p.cfg.Include) > 0 || len(p.cfg.PidFiles) > 0,
		include:   newSet(include),
		exclude:   newSet(p.exclude),
		keepAnon:  p.cfg.Missing == MissingKeep,
	}
	for _, list := range [][]entry{include, p.exclude} {
		for _, e := range list {
			m.pods = m.pods || e.kind == kindPod
			m.containers = m.containers || e.kind == kindContainer
		}
	}
	return m
}

func readPid(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	pid, ok := parsePid(s)
	if !ok {
		return 0, fmt.Errorf("%s holds %q, not a pid", path, s)
	}
	return pid, nil
}

func (p *pidFilter) start(context.Context, component.Host) error {
	if len(p.files) == 0 {
		return nil
	}
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(p.cfg.PidFilesPollInterval)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				p.readPidFiles()
			}
		}
	}()
	return nil
}

func (p *pidFilter) shutdown(context.Context) error {
	if p.stop != nil {
		close(p.stop)
		p.wg.Wait()
		p.stop = nil
	}
	p.tb.Shutdown()
	return nil
}

// Attribute sets of the telemetry, built once so counting allocates nothing.
var (
	signalTraces  = metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", "traces")))
	signalMetrics = metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", "metrics")))
	signalLogs    = metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", "logs")))
)

func (p *pidFilter) count(ctx context.Context, kept, dropped int, signal metric.AddOption) {
	p.tb.ProcessorPidfilterResourcesKept.Add(ctx, int64(kept), signal)
	p.tb.ProcessorPidfilterResourcesDropped.Add(ctx, int64(dropped), signal)
}

func (p *pidFilter) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	m := p.current.Load()
	rss := td.ResourceSpans()
	before := rss.Len()
	rss.RemoveIf(func(rs ptrace.ResourceSpans) bool { return !m.keep(rs.Resource().Attributes()) })
	p.count(ctx, rss.Len(), before-rss.Len(), signalTraces)
	if rss.Len() == 0 {
		return td, processorhelper.ErrSkipProcessingData
	}
	return td, nil
}

func (p *pidFilter) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	m := p.current.Load()
	rms := md.ResourceMetrics()
	before := rms.Len()
	rms.RemoveIf(func(rm pmetric.ResourceMetrics) bool { return !m.keep(rm.Resource().Attributes()) })
	p.count(ctx, rms.Len(), before-rms.Len(), signalMetrics)
	if rms.Len() == 0 {
		return md, processorhelper.ErrSkipProcessingData
	}
	return md, nil
}

func (p *pidFilter) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	m := p.current.Load()
	rls := ld.ResourceLogs()
	before := rls.Len()
	rls.RemoveIf(func(rl plog.ResourceLogs) bool { return !m.keep(rl.Resource().Attributes()) })
	p.count(ctx, rls.Len(), before-rls.Len(), signalLogs)
	if rls.Len() == 0 {
		return ld, processorhelper.ErrSkipProcessingData
	}
	return ld, nil
}

// keepResource is the decision for one resource, for tests and benchmarks.
func (p *pidFilter) keepResource(attrs pcommon.Map) bool { return p.current.Load().keep(attrs) }
