package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/kernelcheck"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/spans"
)

// Options are the receiver's settings, already validated.
type Options struct {
	Criteria     discovery.Criteria
	PollInterval time.Duration
	// Registry holds the protocols parsed; Protocols say what their
	// records record (routes, query strings, statement texts).
	Registry        *protocols.Registry
	Protocols       protocols.Options
	MetricsInterval time.Duration
	RingBufferSize  int
	// ProcRoot is where the host's /proc is mounted; tests and containers
	// may change it.
	ProcRoot string
	// Kubernetes watches this node's pods through the API to describe the
	// processes in them; NameFromLabels lets their labels name services.
	Kubernetes, NameFromLabels bool
	// PrintSpans prints every span as a line of text on PrintTo.
	PrintSpans bool
	// PrintTo is where PrintSpans writes; standard output when nil.
	PrintTo io.Writer
	// Propagate puts a traceparent header into the HTTP/1.x requests
	// selected processes send.
	Propagate bool
	// PropagateTCP carries the context of selected processes' requests
	// in a TCP header option, and reads it on the other side.
	PropagateTCP bool
	// Network counts flows on the node's interfaces (receiver/network.go).
	Network NetworkOptions
	// TLS takes the plaintext of TLS connections from the TLS libraries
	// of watched processes, with uprobes (receiver/tls.go).
	TLS bool
	// Sampler chooses the traces that become spans; the kernel applies it
	// to the traces it starts too.
	Sampler sampling.Sampler
	// Hooks chooses the kernel hooks that see reads and writes
	// (receiver/hooks.go).
	Hooks bpf.Hooks
}

const (
	// maxSeries bounds the metric series kept for all processes together.
	maxSeries = 20_000
	// endedQueue bounds the processes discovery found gone that wait for
	// the event loop; a process that does not fit is found again at the
	// next scan.
	endedQueue = 1024
)

// Receiver is one loaded set of kernel programs feeding a traces and/or a
// metrics pipeline.
type Receiver struct {
	opts     Options
	set      component.TelemetrySettings
	scope    string
	hostname string

	traces  consumer.Traces
	metrics consumer.Metrics

	mu      sync.Mutex // guards the lifecycle fields below
	started bool
	stop    context.CancelFunc
	wg      sync.WaitGroup
	tracer  *bpf.Tracer
	reader  *events.Reader

	procs *processes
	pods  *k8s.Watcher // nil without kubernetes.enabled, or without the API
	agg   *redmetrics.Aggregator
	tb    *metadata.TelemetryBuilder
	// ended carries to the event loop the processes discovery found gone
	// without the kernel saying so: the loop is the one owner of a
	// process's end.
	ended chan *process

	// requestsLostAfterLoss counts requests dropped because events of
	// their connection were lost before their response was seen.
	requestsLostAfterLoss atomic.Int64

	net *network // flow metrics; nil unless network.enabled
	// tcpOptReg reports the TCP option counters (tcpoption.go).
	tcpOptReg metric.Registration

	tls atomic.Pointer[tlsTracing] // TLS plaintext (tls.go); nil without it

	parents *parentsTracing // runtimes read to link calls to requests (parents.go)
}

// New returns a receiver that does nothing until Start. scope names the
// instrumentation scope of what it emits.
func New(opts Options, set component.TelemetrySettings, scope string) *Receiver {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.PrintTo == nil {
		opts.PrintTo = os.Stdout
	}
	// host.name is the node's, also for a collector in a pod of its own.
	host := k8s.NodeName(opts.ProcRoot)
	if host == "" {
		host = "localhost"
	}
	return &Receiver{opts: opts, set: set, scope: scope, hostname: host}
}

// SetTraces sets where spans go; nil means spans are not built.
func (r *Receiver) SetTraces(next consumer.Traces) { r.traces = next }

// SetMetrics sets where metrics go; nil means none are aggregated.
func (r *Receiver) SetMetrics(next consumer.Metrics) { r.metrics = next }

// Start checks the kernel and privileges, loads and attaches the programs,
// and starts reading. Starting a started receiver does nothing.
func (r *Receiver) Start(_ context.Context, _ component.Host) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return nil
	}
	if err := kernelcheck.Check(); err != nil {
		return fmt.Errorf("the ebpf receiver cannot run here: %w", err)
	}
	tracer, err := bpf.Load(bpf.Options{SelfTgid: uint32(os.Getpid()), RingBufferSize: r.opts.RingBufferSize,
		Propagate: r.opts.Propagate, PropagateTCP: r.opts.PropagateTCP, Hooks: r.opts.Hooks,
		SampleMode: uint8(r.opts.Sampler.Mode), SampleBound: r.opts.Sampler.Bound})
	if err != nil {
		return fmt.Errorf("ebpf receiver: %w", err)
	}
	r.logHooks(tracer)
	if tracer.PropagationErr != nil {
		r.logger().Warn("context_propagation: headers is not possible here; spans are linked on this node without it",
			zap.Error(tracer.PropagationErr))
	}
	reader, err := events.NewReader(tracer.Events())
	if err != nil {
		tracer.Close()
		return fmt.Errorf("ebpf receiver: %w", err)
	}
	if err := r.watchConnectPorts(tracer); err != nil {
		reader.Close()
		tracer.Close()
		return err
	}
	tb, err := newTelemetry(r)
	if err != nil {
		reader.Close()
		tracer.Close()
		return err
	}
	r.tracer, r.reader, r.tb = tracer, reader, tb
	r.procs = newProcesses(r.opts.ProcRoot, r.hostname)
	if r.opts.Kubernetes {
		r.pods = r.watchPods()
		r.procs.pods = r.pods
	}
	r.agg = redmetrics.New(maxSeries)
	r.ended = make(chan *process, endedQueue)
	loop := newEventLoop(r)
	if err := r.registerGauges(loop); err != nil {
		tb.Shutdown()
		reader.Close()
		tracer.Close()
		return err
	}
	if err := r.registerTLSGauges(); err != nil {
		tb.Shutdown()
		reader.Close()
		tracer.Close()
		return err
	}
	if err := r.registerTCPOptionGauges(); err != nil {
		tb.Shutdown()
		reader.Close()
		tracer.Close()
		return err
	}
	if err := r.startNetwork(); err != nil {
		tb.Shutdown()
		reader.Close()
		tracer.Close()
		return err
	}
	r.startTLS()
	if err := r.startParents(); err != nil {
		r.stopTLS()
		tb.Shutdown()
		reader.Close()
		tracer.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.started = true
	r.run(ctx, loop)
	return nil
}

func (r *Receiver) watchConnectPorts(t *bpf.Tracer) error {
	var err error
	r.opts.Criteria.Ports.Each(func(port uint16) {
		if err == nil {
			err = t.WatchConnectPort(port)
		}
	})
	return err
}

// run starts the goroutines: discovery, the event loop, the span sender and
// the metrics ticker; and pages out the start-up code.
func (r *Receiver) run(ctx context.Context, loop *eventLoop) {
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.discover(ctx) }()
	go func() { defer r.wg.Done(); loop.run() }()
	if r.traces != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.sendTraces(context.Background(), loop.out) }()
	}
	if r.metrics != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.emitMetrics(ctx) }()
	}
	if r.pods != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.syncPods(ctx) }()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if n, err := pageOutCode(ctx); err != nil {
			r.logger().Debug("start-up code stays resident", zap.Error(err))
		} else if n > 0 {
			r.logger().Debug("paged out start-up code", zap.Int64("mapped_bytes", n))
		}
	}()
}

// Shutdown detaches every program and frees every map; it waits for the
// goroutines to end. Shutting down a stopped receiver does nothing.
func (r *Receiver) Shutdown(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return nil
	}
	r.started = false
	r.stop()
	err := r.reader.Close() // ends the event loop, which closes loop.out
	r.wg.Wait()
	if r.pods != nil {
		r.pods.Shutdown()
		r.pods = nil
	}
	netErr := errors.Join(r.stopNetwork(context.Background()), r.unregisterTCPOptionGauges())
	tlsErr := errors.Join(r.stopTLS(), r.stopParents())
	r.tb.Shutdown()
	return errors.Join(err, netErr, tlsErr, r.tracer.Close())
}

// watchPods starts watching this node's pods through the API. The
// receiver works without it: when the API cannot be reached, processes in
// pods are described from what the node shows, and the log says so once.
func (r *Receiver) watchPods() *k8s.Watcher {
	warn := func(err error) {
		r.logger().Warn("kubernetes.enabled: pods are described from the node only until the API answers", zap.Error(err))
	}
	client, err := k8s.InClusterClient()
	if err != nil {
		warn(err)
		return nil
	}
	w, err := k8s.NewWatcher(client, k8s.Config{NodeName: r.hostname, Logger: r.logger(), ServiceNameFromLabels: r.opts.NameFromLabels})
	if err != nil {
		warn(err)
		return nil
	}
	return w
}

// syncPods waits for the first sync of the pods, which may take seconds:
// start does not wait for it.
func (r *Receiver) syncPods(ctx context.Context) {
	if err := r.pods.Start(ctx); err != nil && ctx.Err() == nil {
		r.logger().Warn("kubernetes.enabled: pods are described from the node only until the API answers", zap.Error(err))
	}
}

// clockOffset is wall-clock time minus the kernel's monotonic clock, which
// bpf_ktime_get_ns reads.
func clockOffset() spans.Clock {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return spans.Clock{Offset: time.Now().UnixNano() - ts.Nano()}
}

func (r *Receiver) logger() *zap.Logger { return r.set.Logger }
