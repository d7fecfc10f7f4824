package ebpfreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	full.Discovery = DiscoveryConfig{OpenPorts: "8080,8000-9000", ExePath: "^/usr/sbin/(haproxy|nginx)$", Pids: []int{1234}, PollInterval: time.Second}
	full.Protocols = []string{"http1"}
	full.Routes = RoutesConfig{Patterns: []string{"/users/{id}", "/static/*"}, Unmatched: "wildcard", MaxPerService: 50}
	full.HTTP.RecordQuery = true
	full.DB.QueryText = false
	full.Metrics.Interval = 30 * time.Second
	full.RingBufferSize = 16 << 20
	full.PrintSpans = "text"
	full.ContextPropagation = "headers"
	full.ProcRoot = "/host/proc"
	full.Kubernetes.Enabled = true
	full.TLS = false
	full.Hooks = "syscalls"
	full.Sampler = SamplerConfig{Name: "parentbased_traceidratio", Ratio: 0.25}

	tests := []struct {
		id       component.ID
		expected *Config
		errs     []string
	}{
		{id: component.NewID(metadata.Type), expected: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "full"), expected: full},
		{id: component.NewIDWithName(metadata.Type, "invalid"), errs: []string{
			`discovery.open_ports`, `"9000-8000"`, `"abc"`,
			`discovery.exe_path "^(unclosed"`,
			`discovery.pids: 0 is not a process id`, `discovery.pids: -4 is not a process id`,
			`discovery.poll_interval: 0s must be positive`,
			`routes:`, `users/{id}`, `sometimes`,
			`routes.max_per_service: 0 must be positive`,
			`protocols: "gopher" is not a protocol the receiver knows (http1`,
			`protocols: "http1" is listed twice`,
			`metrics.interval: 0s must be positive`,
			`ring_buffer_size: 5000 must be a power of two`,
			`print_spans: "json" must be "text" or empty`,
			`context_propagation: "sidecar" must be "none" or "headers"`,
			`proc_root: "proc" must be an absolute path`,
			`hooks: "kprobes" must be "auto", "syscalls" or "socket"`,
			`sampler: ratio 1.5 is not between 0 and 1`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.expected, cfg)
				return
			}
			require.Error(t, err)
			for _, want := range tt.errs {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	require.NoError(t, confmap.Validate(createDefaultConfig()))
}
