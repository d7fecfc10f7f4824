package ebpfreceiver // import "github.com/otelcol-ebpf/ebpfreceiver"

import (
	"fmt"
	"path"
	"time"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/flows"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tcattach"
	ebpfrcvr "github.com/otelcol-ebpf/ebpfreceiver/receiver"
)

// NetworkConfig turns on flow metrics: the bytes and packets of every TCP
// and UDP flow on the node's interfaces, counted in the kernel by TC
// programs that coexist with Cilium (see README, "Network").
type NetworkConfig struct {
	// Enabled counts flows (network.flow.bytes, network.flow.packets).
	Enabled bool `mapstructure:"enabled"`
	// Interfaces selects interfaces by name, as shell patterns ("eth*",
	// "veth*"); none: every interface. Interfaces that appear later (a
	// pod's veth) are counted as they appear.
	Interfaces []string `mapstructure:"interfaces"`
	// Namespaces is "host", the node's own network namespace, or "all",
	// every network namespace on the node (pods' too), found as they
	// appear.
	Namespaces string `mapstructure:"namespaces"`
	// Interval is how often the kernel's counts are read and the
	// cumulative sums emitted.
	Interval time.Duration `mapstructure:"interval"`
	// TCBackend is how the programs are attached: "tcx" (Linux 6.6+, at
	// the head of the chain), "netlink" (a clsact qdisc and a cls_bpf
	// filter at priority 1) or "auto" (tcx where the kernel has it).
	TCBackend string `mapstructure:"tc_backend"`
	// Ports is which ports flows keep: "listening" (the listening side's,
	// dropping the ephemeral port of the connecting side), "none" (flows
	// per address pair) or "all" (a series per connection).
	Ports string `mapstructure:"ports"`
	// MaxFlows bounds the flow series held; flows beyond are summed into
	// an overflow series per interface and direction, and counted.
	MaxFlows int `mapstructure:"max_flows"`
	// IdleTimeout forgets a flow not seen for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// KernelFlows is how many flows the kernel's table holds in one
	// interval; flows beyond go through a ring buffer, slower but not lost.
	KernelFlows int `mapstructure:"kernel_flows"`
}

func defaultNetworkConfig() NetworkConfig {
	return NetworkConfig{Namespaces: "host", Interval: 10 * time.Second, TCBackend: string(tcattach.Auto),
		Ports: string(flows.PortsListening), MaxFlows: 20_000, IdleTimeout: 5 * time.Minute, KernelFlows: 16384}
}

// validate names every bad value, also when flows are off: a config that
// will not work when turned on is better known now.
func (n NetworkConfig) validate() []error {
	var errs []error
	for _, p := range n.Interfaces {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			errs = append(errs, fmt.Errorf("network.interfaces: %q is not a shell pattern of interface names", p))
		}
	}
	if n.Namespaces != "host" && n.Namespaces != "all" {
		errs = append(errs, fmt.Errorf("network.namespaces: %q must be \"host\" or \"all\"", n.Namespaces))
	}
	if n.Interval <= 0 {
		errs = append(errs, fmt.Errorf("network.interval: %v must be positive", n.Interval))
	}
	switch tcattach.Backend(n.TCBackend) {
	case tcattach.Auto, tcattach.TCX, tcattach.Netlink:
	default:
		errs = append(errs, fmt.Errorf("network.tc_backend: %q must be \"auto\", \"tcx\" or \"netlink\"", n.TCBackend))
	}
	if err := flows.PortMode(n.Ports).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("network.ports: %w", err))
	}
	if n.MaxFlows <= 0 {
		errs = append(errs, fmt.Errorf("network.max_flows: %d must be positive", n.MaxFlows))
	}
	if n.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("network.idle_timeout: %v must be positive", n.IdleTimeout))
	}
	if n.KernelFlows < 64 || n.KernelFlows > 1<<20 {
		errs = append(errs, fmt.Errorf("network.kernel_flows: %d must be between 64 and 1048576", n.KernelFlows))
	}
	return errs
}

func (n NetworkConfig) options() ebpfrcvr.NetworkOptions {
	return ebpfrcvr.NetworkOptions{
		Enabled: n.Enabled, Interfaces: n.Interfaces, AllNamespaces: n.Namespaces == "all",
		Interval: n.Interval, Backend: tcattach.Backend(n.TCBackend), Ports: flows.PortMode(n.Ports),
		MaxFlows: n.MaxFlows, IdleTimeout: n.IdleTimeout, KernelFlows: n.KernelFlows,
	}
}
