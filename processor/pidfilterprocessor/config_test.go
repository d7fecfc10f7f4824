package pidfilterprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id       component.ID
		expected *Config
		errs     []string
	}{
		{id: component.NewID(metadata.Type), expected: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "full"), expected: &Config{
			Include: []string{"node-1:1234", "*:5678", "4242"}, Exclude: []string{"node-1:99"},
			PidFiles: []string{"/run/haproxy.pid"}, PidFilesPollInterval: 2 * time.Second, Missing: MissingDrop,
		}},
		{id: component.NewIDWithName(metadata.Type, "kubernetes"), expected: &Config{
			Include:              []string{"pod:shop/checkout-7d9f8b6c5d-x2x4z", "pod:batch/*", "container:3f2a9c0b1d4e", "node-1:1234"},
			Exclude:              []string{"pod:shop/debug", "container:containerd://13185af50b1b041b4b2bb6009b4d2dfba3a6eb2ef813277a5757f99f26bb9d6d"},
			PidFilesPollInterval: time.Second, Missing: MissingKeep,
		}},
		{id: component.NewIDWithName(metadata.Type, "invalid_kubernetes"), errs: []string{
			`include: entry "pod:shop": want pod:<namespace>/<pod name> or pod:<namespace>/*`,
			`include: entry "pod:Shop/web": "Shop" is not a namespace name`,
			`include: entry "pod:shop/web_1": "web_1" is not a pod name`,
			`include: entry "container:xyz": "xyz" is not a container id (12 to 64 hex digits)`,
			`exclude: entry "container:abc": "abc" is not a container id`,
		}},
		{id: component.NewIDWithName(metadata.Type, "invalid"), errs: []string{
			`include: entry "host:": no pid`,
			`include: entry ":12": the host before ':' is empty`,
			`include: entry "abc": "abc" is not a process id`,
			`include: entry "-3": "-3" is not a process id`,
			`include: entry "0": "0" is not a process id`,
			`exclude: entry "*:x": "x" is not a process id`,
			`pid_files[0]: empty path`,
			`missing: "sometimes" must be "keep" or "drop"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.errs == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.expected, cfg)
				return
			}
			require.Error(t, err)
			for _, want := range tt.errs {
				assert.Contains(t, err.Error(), want)
			}
			for _, fine := range []string{"ok:7", "/ok.pid", "pod:shop/fine", "kube-system"} {
				assert.NotContains(t, err.Error(), fine)
			}
		})
	}
}
