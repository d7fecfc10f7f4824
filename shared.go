package ebpfreceiver // import "github.com/otelcol-ebpf/ebpfreceiver"

import (
	"context"
	"os"
	"regexp"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/cardinality"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/known"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
	ebpfrcvr "github.com/otelcol-ebpf/ebpfreceiver/receiver"
)

// A traces and a metrics receiver with the same id share one loaded set of
// kernel programs: the kernel sees each syscall once.
var (
	sharedMu  sync.Mutex
	receivers = map[component.ID]*sharedReceiver{}
)

// sharedReceiver is started by the first pipeline that starts it, and shut
// down (and forgotten) by the first that shuts it down.
type sharedReceiver struct {
	*ebpfrcvr.Receiver
	id component.ID
}

func shared(set receiver.Settings, cfg *Config) (*sharedReceiver, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if r, ok := receivers[set.ID]; ok {
		return r, nil
	}
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	r := &sharedReceiver{Receiver: ebpfrcvr.New(opts, set.TelemetrySettings, metadata.ScopeName), id: set.ID}
	receivers[set.ID] = r
	return r, nil
}

func (r *sharedReceiver) Shutdown(ctx context.Context) error {
	sharedMu.Lock()
	if receivers[r.id] == r {
		delete(receivers, r.id)
	}
	sharedMu.Unlock()
	return r.Receiver.Shutdown(ctx)
}

// options turns a validated Config into the running receiver's options.
func (cfg *Config) options() (ebpfrcvr.Options, error) {
	ports, err := discovery.ParsePorts(cfg.Discovery.OpenPorts)
	if err != nil {
		return ebpfrcvr.Options{}, err
	}
	var exe *regexp.Regexp
	if cfg.Discovery.ExePath != "" {
		if exe, err = regexp.Compile(cfg.Discovery.ExePath); err != nil {
			return ebpfrcvr.Options{}, err
		}
	}
	headers, tcp, _ := propagationModes(cfg.ContextPropagation)
	router, err := routes.New(cfg.Routes.Patterns, cfg.Routes.Unmatched)
	if err != nil {
		return ebpfrcvr.Options{}, err
	}
	return ebpfrcvr.Options{
		Criteria:     discovery.Criteria{Ports: ports, Exe: exe, Pids: cfg.Discovery.Pids, Exclude: os.Getpid()},
		PollInterval: cfg.Discovery.PollInterval,
		Registry:     known.Registry(cfg.Protocols),
		Protocols: protocols.Options{
			Routes:      routes.NewLimiter(router, cfg.Routes.MaxPerService),
			RPCMethods:  cardinality.New(http2.DefaultMaxMethods),
			RecordQuery: cfg.HTTP.RecordQuery,
			QueryText:   cfg.DB.QueryText,
		},
		MetricsInterval: cfg.Metrics.Interval,
		ProcRoot:        cfg.ProcRoot,
		Kubernetes:      cfg.Kubernetes.Enabled,
		NameFromLabels:  cfg.Kubernetes.ServiceNameFromLabels,
		RingBufferSize:  cfg.RingBufferSize,
		PrintSpans:      cfg.PrintSpans == "text",
		Propagate:       headers,
		PropagateTCP:    tcp,
		Network:         cfg.Network.options(),
		TLS:             cfg.TLS,
		Hooks:           hookModes[cfg.Hooks],
		Sampler:         cfg.Sampler.sampler(),
	}, nil
}
