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

	"github.com/otelcol-ebpf/ebpfreceiver/internal/flows"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tcattach"
)

func TestNetworkConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "network.yaml"))
	require.NoError(t, err)
	load := func(name string) *Config {
		cfg := NewFactory().CreateDefaultConfig()
		id := component.NewID(metadata.Type)
		if name != "" {
			id = component.NewIDWithName(metadata.Type, name)
		}
		sub, err := cm.Sub(id.String())
		require.NoError(t, err)
		require.NoError(t, sub.Unmarshal(cfg))
		return cfg.(*Config)
	}

	def := load("")
	require.NoError(t, def.Validate())
	assert.Equal(t, NetworkConfig{Namespaces: "host", Interval: 10 * time.Second, TCBackend: "auto", Ports: "listening",
		MaxFlows: 20000, IdleTimeout: 5 * time.Minute, KernelFlows: 16384}, def.Network, "off by default")

	full := load("network")
	require.NoError(t, full.Validate())
	assert.Equal(t, NetworkConfig{Enabled: true, Interfaces: []string{"eth*", "veth*"}, Namespaces: "all",
		Interval: 30 * time.Second, TCBackend: "netlink", Ports: "none", MaxFlows: 5000, IdleTimeout: time.Minute,
		KernelFlows: 4096}, full.Network)
	opts, err := full.options()
	require.NoError(t, err)
	assert.True(t, opts.Network.Enabled)
	assert.True(t, opts.Network.AllNamespaces)
	assert.Equal(t, tcattach.Netlink, opts.Network.Backend)
	assert.Equal(t, flows.PortsNone, opts.Network.Ports)
	assert.Equal(t, 4096, opts.Network.KernelFlows)

	err = confmap.Validate(load("network_invalid"))
	require.Error(t, err)
	for _, want := range []string{
		`network.interfaces: "eth[" is not a shell pattern`,
		`network.interfaces: "" is not a shell pattern`,
		`network.namespaces: "pods" must be "host" or "all"`,
		`network.interval: 0s must be positive`,
		`network.tc_backend: "xdp" must be "auto", "tcx" or "netlink"`,
		`network.ports: "some" must be listening, none or all`,
		`network.max_flows: 0 must be positive`,
		`network.idle_timeout: -1s must be positive`,
		`network.kernel_flows: 10 must be between 64 and 1048576`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestPropagationModes(t *testing.T) {
	for _, tt := range []struct {
		in               string
		headers, tcp, ok bool
	}{
		{"none", false, false, true},
		{"headers", true, false, true},
		{"tcp", false, true, true},
		{"headers,tcp", true, true, true},
		{"tcp, headers", true, true, true},
		{"tcp,tcp", false, false, false},
		{"none,tcp", false, false, false},
		{"", false, false, false},
		{"sidecar", false, false, false},
	} {
		h, tcp, ok := propagationModes(tt.in)
		assert.Equal(t, []bool{tt.headers, tt.tcp, tt.ok}, []bool{h, tcp, ok}, tt.in)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.ContextPropagation = "headers,tcp"
	require.NoError(t, cfg.Validate())
	opts, err := cfg.options()
	require.NoError(t, err)
	assert.True(t, opts.Propagate)
	assert.True(t, opts.PropagateTCP)
	cfg.ContextPropagation = "tcp,quic"
	assert.ErrorContains(t, cfg.Validate(), `context_propagation: "tcp,quic" must be "none" or "headers", or "tcp" or "headers,tcp"`)
}
