package receiver

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/correlate"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"
)

// loopSampling is what the event loop keeps for the sampler (Options.
// Sampler). A span whose trace is known to be unsampled when its exchange
// ends costs no pdata: its identity is only settled, for the spans that
// link to it. One whose trace is known only later (a server span whose
// client may still be found) is built, and dropped from the batch once
// resolved.
type loopSampling struct {
	on        bool              // a sampler other than always_on
	unsampled []*correlate.Span // identities of spans not built, to settle
	drop      map[pcommon.SpanID]struct{}
	count     int64 // spans not emitted, for self-telemetry
}

// unsampled reports whether the span of id is known already to belong to
// an unsampled trace, and then keeps its identity to settle.
func (l *eventLoop) unsampled(id *correlate.Span) bool {
	if !l.sampling.on {
		return false
	}
	sampled, sure := l.linker.Sampled(id)
	if !sure || sampled {
		return false
	}
	l.sampling.unsampled = append(l.sampling.unsampled, id)
	l.sampling.count++
	return true
}

// settleUnsampled resolves the identities of the spans not built: their
// decision is made, and resolving them lets their ancestors go.
func (l *eventLoop) settleUnsampled() {
	for i, id := range l.sampling.unsampled {
		l.linker.Resolve(id)
		l.sampling.unsampled[i] = nil
	}
	l.sampling.unsampled = l.sampling.unsampled[:0]
}

// sampledOut notes, once a built span's trace is resolved, whether the
// sampler drops it; dropOut then takes it out of the batch.
func (l *eventLoop) sampledOut(u unresolved) bool {
	if !l.sampling.on || sampling.SampledFlags(u.id.Flags) {
		return false
	}
	if l.sampling.drop == nil {
		l.sampling.drop = map[pcommon.SpanID]struct{}{}
	}
	l.sampling.drop[u.span.SpanID()] = struct{}{}
	l.sampling.count++
	return true
}

// dropOut removes the batch's spans of unsampled traces.
func (l *eventLoop) dropOut() {
	if len(l.sampling.drop) == 0 {
		return
	}
	l.batch.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(s ptrace.Span) bool {
				_, drop := l.sampling.drop[s.SpanID()]
				return drop
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	l.batchSpans -= len(l.sampling.drop)
	clear(l.sampling.drop)
}
