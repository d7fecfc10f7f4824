package receiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/flows"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tcattach"
)

// NetworkOptions are the settings of flow metrics (network: in the
// configuration), already validated.
type NetworkOptions struct {
	Enabled       bool
	Interfaces    []string // shell patterns; none: all
	AllNamespaces bool     // every network namespace, not only the node's
	Interval      time.Duration
	IdleTimeout   time.Duration
	Backend       tcattach.Backend
	Ports         flows.PortMode
	MaxFlows      int
	KernelFlows   int
	// NetnsDir is where named namespaces are bound; /run/netns when empty.
	NetnsDir string
}

// network is the running network layer.
type network struct {
	kernel *bpf.Flows
	flows  *flows.Network
	owners map[int]*flowOwner // by pid; read and written by the flush only
	reg    metric.Registration
}

// flowOwner is a process flows belong to, described as the receiver
// describes the processes it watches.
type flowOwner struct {
	*process
	checked time.Time
}

// ownerRecheck is how long a process's description is trusted before its
// pid is checked again (it may have been reused).
const ownerRecheck = 30 * time.Second

// startNetwork loads and attaches the flow programs when network.enabled.
// Flows are metrics: without a metrics pipeline there is nothing to do.
func (r *Receiver) startNetwork() error {
	o := r.opts.Network
	if !o.Enabled {
		return nil
	}
	if r.metrics == nil {
		r.logger().Warn("network.enabled: the receiver is in no metrics pipeline; flows are not counted")
		return nil
	}
	k, err := bpf.LoadFlows(bpf.FlowOptions{TableFlows: o.KernelFlows})
	if err != nil {
		return fmt.Errorf("ebpf receiver: network: %w", err)
	}
	n := &network{kernel: k, owners: map[int]*flowOwner{}}
	cfg := flows.Config{
		Interfaces: flows.InterfacesConfig{ProcRoot: r.opts.ProcRoot, NetnsDir: o.NetnsDir, Patterns: o.Interfaces,
			AllNetns: o.AllNamespaces, Backend: o.Backend},
		Interval: o.Interval, Ports: o.Ports, MaxFlows: o.MaxFlows, IdleTimeout: o.IdleTimeout,
		Scope: r.scope, Logger: r.logger(),
	}
	n.flows, err = flows.New(cfg, k, func(pid int) flows.Owner { return r.flowOwner(n, pid) }, r.fillNode, r.sendFlows)
	if err != nil {
		k.Close()
		return fmt.Errorf("ebpf receiver: network: %w", err)
	}
	if n.reg, err = registerNetworkTelemetry(r, n.flows); err != nil {
		k.Close()
		return err
	}
	n.flows.Start()
	r.net = n
	return nil
}

// stopNetwork detaches the flow programs (ours only) and emits what they
// counted last.
func (r *Receiver) stopNetwork(ctx context.Context) error {
	n := r.net
	if n == nil {
		return nil
	}
	r.net = nil
	return errors.Join(n.flows.Shutdown(ctx), n.reg.Unregister(), n.kernel.Close())
}

// flowOwner describes process pid as a flow's resource; nil when it is
// gone.
func (r *Receiver) flowOwner(n *network, pid int) flows.Owner {
	now := time.Now()
	if o, ok := n.owners[pid]; ok && now.Sub(o.checked) < ownerRecheck {
		return o
	}
	p, err := discovery.Describe(r.opts.ProcRoot, pid)
	if err != nil {
		delete(n.owners, pid)
		return nil // an untyped nil: the node's
	}
	if o, ok := n.owners[pid]; ok && o.StartTime == p.StartTime {
		o.checked = now
		return o
	}
	o := &flowOwner{process: &process{Process: p, host: r.hostname, identity: k8s.Identify(r.opts.ProcRoot, pid), pods: r.pods},
		checked: now}
	n.owners[pid] = o
	if len(n.owners) > maxFlowOwners {
		for old, oo := range n.owners {
			if now.Sub(oo.checked) >= ownerRecheck {
				delete(n.owners, old)
			}
		}
	}
	return o
}

// maxFlowOwners bounds the descriptions kept before old ones are dropped.
const maxFlowOwners = 4096

// fillNode is the resource of flows no process on the node owns.
func (r *Receiver) fillNode(attrs pcommon.Map) {
	attrs.PutStr("host.name", r.hostname)
	attrs.PutStr("os.type", "linux")
}

// sendFlows hands an interval's flow metrics to the metrics pipeline.
func (r *Receiver) sendFlows(ctx context.Context, md pmetric.Metrics) {
	n := int64(md.DataPointCount())
	if err := r.metrics.ConsumeMetrics(ctx, md); err != nil {
		r.tb.ReceiverEbpfDatapoints.Add(ctx, n, refusal(err))
		r.logger().Debug("the next consumer refused flow metrics", zap.Error(err))
		return
	}
	r.tb.ReceiverEbpfDatapoints.Add(ctx, n, outcomeSent)
}

// registerNetworkTelemetry reports on the network layer: interfaces
// counted or not, series held, what the flow limit summed, and what the
// kernel could not put in its table.
func registerNetworkTelemetry(r *Receiver, n *flows.Network) (metric.Registration, error) {
	m := metadata.Meter(r.set)
	ifaces, err1 := m.Int64ObservableGauge("otelcol_receiver_ebpf_network_interfaces",
		metric.WithDescription("Interfaces whose flows are counted (state attached), or not: refused by the rules of coexistence with other TC programs (state refused, the log says what to change), or failed."),
		metric.WithUnit("{interface}"))
	series, err2 := m.Int64ObservableGauge("otelcol_receiver_ebpf_network_flow_series",
		metric.WithDescription("Flow series held (network.max_flows bounds them)."), metric.WithUnit("{series}"))
	overflowed, err3 := m.Int64ObservableCounter("otelcol_receiver_ebpf_network_flows_overflowed",
		metric.WithDescription("Flow observations summed into an overflow series (otel.metric.overflow) because network.max_flows series were held: their bytes count, their detail is dropped."),
		metric.WithUnit("{flow}"))
	packets, err4 := m.Int64ObservableCounter("otelcol_receiver_ebpf_network_kernel_packets",
		metric.WithDescription("Packets the kernel could not put in its flow table (network.kernel_flows were there), by outcome: spilled (sent through the spill ring buffer and counted) or lost (the ring was full too: counted nowhere else; their bytes are in otelcol_receiver_ebpf_network_kernel_bytes_lost)."),
		metric.WithUnit("{packet}"))
	bytesLost, err5 := m.Int64ObservableCounter("otelcol_receiver_ebpf_network_kernel_bytes_lost",
		metric.WithDescription("Bytes of the packets the kernel lost (otelcol_receiver_ebpf_network_kernel_packets with outcome lost)."),
		metric.WithUnit("By"))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, fmt.Errorf("registering the network self-telemetry: %w", err)
	}
	attached, refused, failed := attr("state", "attached"), attr("state", "refused"), attr("state", "failed")
	spilled, lost := attr("outcome", "spilled"), attr("outcome", "lost")
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		c := n.Interfaces()
		o.ObserveInt64(ifaces, int64(c.Attached), attached)
		o.ObserveInt64(ifaces, int64(c.Refused), refused)
		o.ObserveInt64(ifaces, int64(c.Failed), failed)
		st, err := n.Stats()
		o.ObserveInt64(series, int64(st.Series))
		o.ObserveInt64(overflowed, int64(st.Overflowed))
		o.ObserveInt64(packets, int64(st.Kernel.Spilled), spilled)
		o.ObserveInt64(packets, int64(st.Kernel.LostPackets), lost)
		o.ObserveInt64(bytesLost, int64(st.Kernel.LostBytes))
		return err
	}, ifaces, series, overflowed, packets, bytesLost)
	if err != nil {
		return nil, fmt.Errorf("registering the network self-telemetry: %w", err)
	}
	return reg, nil
}
