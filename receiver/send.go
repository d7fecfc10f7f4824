package receiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// sendTraces hands batches to the traces pipeline until the event loop
// closes the queue.
func (r *Receiver) sendTraces(ctx context.Context, queue <-chan ptrace.Traces) {
	for td := range queue {
		n := int64(td.SpanCount())
		if err := r.traces.ConsumeTraces(ctx, td); err != nil {
			// The batch is dropped: a receiver of kernel events cannot ask
			// its source to send again, and waiting would grow memory.
			r.tb.ReceiverEbpfSpans.Add(ctx, n, refusal(err))
			r.logger().Debug("the next consumer refused spans", zap.Int64("spans", n), zap.Error(err))
			continue
		}
		r.tb.ReceiverEbpfSpans.Add(ctx, n, outcomeSent)
	}
}

// emitMetrics sends the cumulative histograms every interval, and once more
// at shutdown so nothing seen is lost.
func (r *Receiver) emitMetrics(ctx context.Context) {
	tick := time.NewTicker(r.opts.MetricsInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.collect(context.Background())
			return
		case <-tick.C:
			r.collect(ctx)
		}
	}
}

func (r *Receiver) collect(ctx context.Context) {
	md := r.agg.Collect(r.scope, pcommon.NewTimestampFromTime(time.Now()))
	if md.DataPointCount() == 0 {
		return
	}
	n := int64(md.DataPointCount())
	if err := r.metrics.ConsumeMetrics(ctx, md); err != nil {
		r.tb.ReceiverEbpfDatapoints.Add(ctx, n, refusal(err))
		r.logger().Debug("the next consumer refused metrics", zap.Error(err))
		return
	}
	r.tb.ReceiverEbpfDatapoints.Add(ctx, n, outcomeSent)
}
