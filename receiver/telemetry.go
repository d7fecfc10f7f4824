package receiver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/metadata"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// Attribute sets of the self-telemetry, built once so counting allocates
// nothing.
func attr(kv ...string) metric.MeasurementOption {
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	return metric.WithAttributeSet(attribute.NewSet(attrs...))
}

var (
	outcomeSent    = attr("outcome", "sent")
	outcomeDropped = attr("outcome", "dropped")
	// outcomeUnsampled: spans the sampler left out (metrics count them).
	outcomeUnsampled = attr("outcome", "unsampled")

	outcomeInjected = attr("outcome", "injected")
	outcomeKept     = attr("outcome", "kept")
	outcomeUnread   = attr("outcome", "not_continued", "reason", "unread_traceparent")

	reasonRingData       = attr("reason", "ring_full_data")
	reasonRingControl    = attr("reason", "ring_full_control")
	reasonInflightFull   = attr("reason", "inflight_full")
	reasonRequestLost    = attr("reason", "request_event_lost")
	reasonResponseLost   = attr("reason", "response_event_lost")
	mapSelectedProcesses = attr("map", "selected_pids")
	limitRoutes          = attr("limit", "routes")
	limitSeries          = attr("limit", "series")
	limitMethods         = attr("limit", "rpc_methods")
)

// Why the next consumer refused data.
const (
	refusedMemory    = "memory_limit"
	refusedQueue     = "queue_full"
	refusedPermanent = "permanent"
	refusedOther     = "other"
)

var refusals = map[string]metric.MeasurementOption{}

func init() {
	for _, r := range []string{refusedMemory, refusedQueue, refusedPermanent, refusedOther} {
		refusals[r] = attr("outcome", "refused", "reason", r)
	}
}

// refusal names why the next consumer refused data. The memory limiter's
// error is not exported by the collector: it is known by its message.
func refusal(err error) metric.MeasurementOption {
	switch {
	case errors.Is(err, exporterhelper.ErrQueueIsFull):
		return refusals[refusedQueue]
	case strings.Contains(err.Error(), "refused due to high memory usage"):
		return refusals[refusedMemory]
	case consumererror.IsPermanent(err):
		return refusals[refusedPermanent]
	}
	return refusals[refusedOther]
}

type failureKey struct{ protocol, reason string }

// loopCounts are counted by the event loop without synchronisation and
// published now and then, so the hot path pays no atomic per event.
type loopCounts struct {
	events   int64
	requests int64
	failures map[failureKey]int64 // by protocol and reason
	// What became of the traceparent of requests, with propagation on.
	injected, kept int64
	notInjected    map[uint8]int64 // by reason, as the kernel numbers them
	// Requests whose traceparent only user space could read (kernelCaller).
	unreadTraceparent int64
}

func newLoopCounts() loopCounts {
	return loopCounts{failures: map[failureKey]int64{}, notInjected: map[uint8]int64{}}
}

func (c *loopCounts) parseFailed(p protocols.Protocol, reason string) {
	name := "unknown"
	if p != nil {
		name = p.Name()
	}
	c.failures[failureKey{name, reason}]++
}

// published holds the attribute sets made for counts with open-ended
// attributes, so that each is made once.
type published struct {
	failures    map[failureKey]metric.MeasurementOption
	notInjected map[uint8]metric.MeasurementOption
	unknown     uint64 // connections of unknown protocols published so far
	undetected  uint64 // segments no protocol knew, published so far
}

func newPublished() published {
	return published{failures: map[failureKey]metric.MeasurementOption{}, notInjected: map[uint8]metric.MeasurementOption{}}
}

func (p *published) failure(k failureKey) metric.MeasurementOption {
	if o, ok := p.failures[k]; ok {
		return o
	}
	o := attr("protocol", k.protocol, "reason", k.reason)
	p.failures[k] = o
	return o
}

func (p *published) notInjectedReason(reason uint8) metric.MeasurementOption {
	if o, ok := p.notInjected[reason]; ok {
		return o
	}
	name, ok := bpf.NotInjectedReasons[reason]
	if !ok {
		name = fmt.Sprintf("reason_%d", reason)
	}
	o := attr("outcome", "not_injected", "reason", name)
	p.notInjected[reason] = o
	return o
}

// publish adds the loop's counts to the self-telemetry and zeroes them.
func (l *eventLoop) publish(ctx context.Context) {
	r, c, p := l.r, &l.counts, &l.published
	tb := r.tb
	if c.events > 0 {
		tb.ReceiverEbpfEventsRead.Add(ctx, c.events)
	}
	if c.requests > 0 {
		tb.ReceiverEbpfRequests.Add(ctx, c.requests)
	}
	if n := l.sampling.count; n > 0 {
		tb.ReceiverEbpfSpans.Add(ctx, n, outcomeUnsampled)
		l.sampling.count = 0
	}
	for k, n := range c.failures {
		tb.ReceiverEbpfParseFailures.Add(ctx, n, p.failure(k))
	}
	st := l.conns.Stats()
	if st.Unknown > p.unknown {
		tb.ReceiverEbpfParseFailures.Add(ctx, int64(st.Unknown-p.unknown), p.failure(failureKey{"unknown", "unknown_protocol"}))
		p.unknown = st.Unknown
	}
	if st.Undetected > p.undetected {
		tb.ReceiverEbpfParseFailures.Add(ctx, int64(st.Undetected-p.undetected), p.failure(failureKey{"unknown", "undetected_bytes"}))
		p.undetected = st.Undetected
	}
	l.publishTLS(ctx, st)
	if c.injected > 0 {
		tb.ReceiverEbpfPropagationRequests.Add(ctx, c.injected, outcomeInjected)
	}
	if c.kept > 0 {
		tb.ReceiverEbpfPropagationRequests.Add(ctx, c.kept, outcomeKept)
	}
	for reason, n := range c.notInjected {
		tb.ReceiverEbpfPropagationRequests.Add(ctx, n, p.notInjectedReason(reason))
	}
	if c.unreadTraceparent > 0 {
		tb.ReceiverEbpfPropagationRequests.Add(ctx, c.unreadTraceparent, outcomeUnread)
	}

	l.publishParents(ctx)

	clear(c.failures)
	clear(c.notInjected)
	c.events, c.requests, c.injected, c.kept, c.unreadTraceparent = 0, 0, 0, 0, 0
}

// registerGauges reports what is read rather than counted: the kernel's
// loss counters, map sizes, processes, connections and limits.
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
		tb.RegisterReceiverEbpfCardinalityLimitedCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(r.opts.Protocols.Routes.Overflowed()), limitRoutes)
			o.Observe(int64(r.opts.Protocols.RPCMethods.Overflowed()), limitMethods)
			o.Observe(int64(r.agg.Overflow()), limitSeries)
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
