package receiver

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
)

// registerTCPOptionGauges reports, with context_propagation: tcp, what
// became of the contexts carried in TCP header options, as the kernel
// counted them.
func (r *Receiver) registerTCPOptionGauges() error {
	if !r.opts.PropagateTCP || r.tracer.PropagationErr != nil {
		return nil
	}
	m := metadata.Meter(r.set)
	opts, err := m.Int64ObservableCounter("otelcol_receiver_ebpf_propagation_tcp_options",
		metric.WithDescription("With context_propagation: tcp, request contexts carried in TCP header options, by outcome: "+
			"sent (written into the segment of a request's first byte), no_room (the header had no room left: SACK blocks), "+
			"misplaced (the request's first byte did not begin a segment), busy (the connection's previous request still waited for its segment), "+
			"received, and matched (a read began where a received context's segment began: the server span is its child)."),
		metric.WithUnit("{option}"))
	if err != nil {
		return fmt.Errorf("registering self-telemetry: %w", err)
	}
	outcomes := map[string]metric.MeasurementOption{}
	for _, o := range []string{"sent", "no_room", "misplaced", "busy", "received", "matched"} {
		outcomes[o] = attr("outcome", o)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		c, err := r.tracer.TCPOptionCounters()
		if err != nil {
			return err
		}
		for name, v := range map[string]uint64{"sent": c.Sent, "no_room": c.NoRoom, "misplaced": c.Misplaced,
			"busy": c.Busy, "received": c.Received, "matched": c.Matched} {
			o.ObserveInt64(opts, int64(v), outcomes[name])
		}
		return nil
	}, opts)
	if err != nil {
		return fmt.Errorf("registering self-telemetry: %w", err)
	}
	r.tcpOptReg = reg
	return nil
}

// unregisterTCPOptionGauges undoes registerTCPOptionGauges.
func (r *Receiver) unregisterTCPOptionGauges() error {
	if r.tcpOptReg == nil {
		return nil
	}
	err := r.tcpOptReg.Unregister()
	r.tcpOptReg = nil
	return err
}
