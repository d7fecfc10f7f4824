package ebpfreceiver // import "github.com/otelcol-ebpf/ebpfreceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
)

// NewFactory returns the factory of the ebpf receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Discovery:          DiscoveryConfig{PollInterval: 500 * time.Millisecond},
		Routes:             RoutesConfig{Unmatched: "heuristic", MaxPerService: 200},
		DB:                 DBConfig{QueryText: true},
		Metrics:            MetricsConfig{Interval: 10 * time.Second},
		RingBufferSize:     8 << 20,
		ContextPropagation: "none",
		ProcRoot:           "/proc",
		Kubernetes:         KubernetesConfig{ServiceNameFromLabels: true},
		Network:            defaultNetworkConfig(),
		TLS:                true,
		Hooks:              "auto",
		Sampler:            SamplerConfig{Name: "always_on"},
	}
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := shared(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.SetTraces(next)
	return r, nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := shared(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.SetMetrics(next)
	return r, nil
}
