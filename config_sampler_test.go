package ebpfreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"
)

func TestSamplerValidation(t *testing.T) {
	for _, c := range []struct {
		cfg  SamplerConfig
		want string
	}{
		{SamplerConfig{Name: "sometimes"}, `sampler: unknown sampler "sometimes" (known: [always_on always_off traceidratio parentbased_traceidratio])`},
		{SamplerConfig{Name: "always_on", Ratio: 0.5}, `sampler.ratio: 0.5 applies only to the traceidratio samplers, not "always_on"`},
		{SamplerConfig{Name: "traceidratio", Ratio: -1}, `sampler: ratio -1 is not between 0 and 1`},
	} {
		cfg := createDefaultConfig().(*Config)
		cfg.Sampler = c.cfg
		assert.EqualError(t, cfg.Validate(), c.want)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.Sampler = SamplerConfig{Name: "traceidratio", Ratio: 0.1}
	assert.NoError(t, cfg.Validate())
	opts, err := cfg.options()
	assert.NoError(t, err)
	assert.Equal(t, sampling.ModeRatio, opts.Sampler.Mode)
	ratio := 0.1
	assert.Equal(t, uint64(ratio*(1<<63)), opts.Sampler.Bound)
}
