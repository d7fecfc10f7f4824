package correlate

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// SetSampler makes the traces l starts, and those it continues from a
// traceparent, carry the sampler's decision in their flags (the W3C
// sampled bit). The zero sampler samples everything.
func (l *Linker) SetSampler(s sampling.Sampler) { l.sampler = s }

// Settle says that no client span of this node can become server span
// s's parent any more (its client is not a watched process of the node),
// so that its trace, and whether it is sampled, can be known before it is
// resolved.
func (l *Linker) Settle(s *Span) { s.settled = true }

// Sampled reports, before s is resolved, whether its trace will be
// sampled, when that can be known already (sure): when the span at the
// top of its chain of parents was resolved, or is settled. Resolve then
// gives s the flags Sampled saw.
func (l *Linker) Sampled(s *Span) (sampled, sure bool) {
	top := s
	for top.parent != nil && !top.resolved {
		top = top.parent
	}
	if top.resolved {
		return sampling.SampledFlags(top.Flags), true
	}
	if top.server && !top.settled {
		return false, false // its client may still link it into another trace
	}
	_, _, flags := l.rootTrace(top)
	return sampling.SampledFlags(flags), true
}

// rootTrace is the trace, parent and flags of span s that has no parent
// on this node: those of the traceparent it came with, else of the trace
// the kernel started for it (with the kernel's decision, taken by the same
// sampler), else of a new trace, chosen once: Sampled may ask before
// Resolve does.
func (l *Linker) rootTrace(s *Span) (trace pcommon.TraceID, parent pcommon.SpanID, flags byte) {
	if c, ok := tracecontext.Parse(s.traceparent); ok {
		return c.TraceID, c.SpanID, l.sampler.Flags(c.TraceID, true, c.Flags)
	}
	if !s.kernelTrace.IsEmpty() {
		// Calls this request made already went out in this trace.
		return s.kernelTrace, pcommon.SpanID{}, s.kernelFlags
	}
	if s.TraceID.IsEmpty() {
		s.TraceID = tracecontext.NewTraceID()
	}
	return s.TraceID, pcommon.SpanID{}, l.sampler.Flags(s.TraceID, false, 0)
}
