package receiver

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/http1"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
)

// Attribute sets of the self-telemetry, built once so counting allocates
// nothing.
func attr(key, value string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String(key, value)))
}

var (
	outcomeSent    = attr("outcome", "sent")
	outcomeRefused = attr("outcome", "refused")
	outcomeDropped = attr("outcome", "dropped")

	outcomeInjected    = attr("outcome", "injected")
	outcomeKept        = attr("outcome", "kept")
	outcomeNotInjected = attr("outcome", "not_injected")

	reasonNotHTTP        = attr("reason", "not_http")
	reasonPending        = attr("reason", "pending_overflow")
	reasonHeadTooLarge   = attr("reason", "head_too_large")
	reasonUnmatched      = attr("reason", "unmatched_response")
	reasonRingData       = attr("reason", "ring_full_data")
	reasonRingControl    = attr("reason", "ring_full_control")
	reasonInflightFull   = attr("reason", "inflight_full")
	reasonRequestLost    = attr("reason", "request_event_lost")
	reasonResponseLost   = attr("reason", "response_event_lost")
	mapSelectedProcesses = attr("map", "selected_pids")
)

// loopCounts are counted by the event loop without synchronisation and
// published now and then, so the hot path pays no atomic per event.
type loopCounts struct {
	events   int64
	requests int64
	parse    http1.Stats
	// What became of the traceparent of requests, with propagation on.
	injected, kept, notInjected int64
}

func (r *Receiver) publish(ctx context.Context, c *loopCounts) {
	tb := r.tb
	if c.events > 0 {
		tb.ReceiverEbpfEventsRead.Add(ctx, c.events)
	}
	if c.requests > 0 {
		tb.ReceiverEbpfRequests.Add(ctx, c.requests)
	}
	for _, f := range []struct {
		n   uint64
		opt metric.MeasurementOption
	}{
		{c.parse.NotHTTP, reasonNotHTTP}, {c.parse.PendingOverflow, reasonPending},
		{c.parse.HeadTooLarge, reasonHeadTooLarge}, {c.parse.UnmatchedResponses, reasonUnmatched},
	} {
		if f.n > 0 {
			tb.ReceiverEbpfParseFailures.Add(ctx, int64(f.n), f.opt)
		}
	}
	for _, f := range []struct {
		n   int64
		opt metric.MeasurementOption
	}{{c.injected, outcomeInjected}, {c.kept, outcomeKept}, {c.notInjected, outcomeNotInjected}} {
		if f.n > 0 {
			tb.ReceiverEbpfPropagationRequests.Add(ctx, f.n, f.opt)
		}
	}
	*c = loopCounts{}
}

// registerGauges reports what is read rather than counted: the kernel's
// loss counters, map sizes, processes and connections.
func (r *Receiver) registerGauges(loop *eventLoop) error {
	tb := r.tb
	maps := r.tracer.TrackingMaps()
	mapAttrs := make([]metric.MeasurementOption, len(maps))
	for i, m := range maps {
		mapAttrs[i] = attr("map", m.Name)
	}
	errs := []error{
		tb.RegisterReceiverEbpfProcessesCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(r.procs.count()))
			return nil
		}),
		tb.RegisterReceiverEbpfConnectionsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(loop.connCount.Load())
			return nil
		}),
		tb.RegisterReceiverEbpfEventsLostCallback(func(_ context.Context, o metric.Int64Observer) error {
			c, err := r.tracer.Counters()
			if err != nil {
				return err
			}
			o.Observe(int64(c.LostData), reasonRingData)
			o.Observe(int64(c.LostControl), reasonRingControl)
			o.Observe(int64(c.LostArgs), reasonInflightFull)
			return nil
		}),
		tb.RegisterReceiverEbpfRequestsLostCallback(func(_ context.Context, o metric.Int64Observer) error {
			c, err := r.tracer.Counters()
			if err != nil {
				return err
			}
			o.Observe(int64(c.LostRequests), reasonRequestLost)
			o.Observe(r.requestsLostAfterLoss.Load(), reasonResponseLost)
			return nil
		}),
		tb.RegisterReceiverEbpfMapEntriesCallback(func(_ context.Context, o metric.Int64Observer) error {
			for i, m := range maps {
				n, err := m.Entries()
				if err != nil {
					return err
				}
				o.Observe(int64(n), mapAttrs[i])
			}
			sel, err := r.tracer.Selected()
			if err != nil {
				return err
			}
			o.Observe(int64(len(sel)), mapSelectedProcesses)
			return nil
		}),
		tb.RegisterReceiverEbpfMapCapacityCallback(func(_ context.Context, o metric.Int64Observer) error {
			for i, m := range maps {
				o.Observe(int64(m.Capacity()), mapAttrs[i])
			}
			o.Observe(int64(r.tracer.PidCapacity()), mapSelectedProcesses)
			return nil
		}),
	}
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("registering self-telemetry: %w", err)
		}
	}
	return nil
}

func newTelemetry(r *Receiver) (*metadata.TelemetryBuilder, error) {
	tb, err := metadata.NewTelemetryBuilder(r.set)
	if err != nil {
		return nil, fmt.Errorf("creating the receiver's self-telemetry: %w", err)
	}
	return tb, nil
}
