package ebpfreceiver // import "github.com/otelcol-ebpf/ebpfreceiver"

import (
	"fmt"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"
)

// SamplerConfig chooses which traces become spans, with the SDK's samplers
// (OTEL_TRACES_SAMPLER) and their meanings. RED metrics count every
// request whatever is sampled.
type SamplerConfig struct {
	// Name is always_on (the default), always_off, traceidratio or
	// parentbased_traceidratio.
	Name string `mapstructure:"name"`
	// Ratio is the share of traces the traceidratio samplers keep, from 0
	// to 1.
	Ratio float64 `mapstructure:"ratio"`
}

func (s SamplerConfig) validate() []error {
	_, err := sampling.New(s.Name, s.Ratio)
	if err != nil {
		return []error{fmt.Errorf("sampler: %w", err)}
	}
	if s.Ratio != 0 && s.Name != sampling.TraceIDRatio && s.Name != sampling.ParentBasedTraceIDRatio {
		return []error{fmt.Errorf("sampler.ratio: %v applies only to the traceidratio samplers, not %q", s.Ratio, s.Name)}
	}
	return nil
}

// sampler is the validated configuration's sampler.
func (s SamplerConfig) sampler() sampling.Sampler {
	smp, _ := sampling.New(s.Name, s.Ratio)
	return smp
}
