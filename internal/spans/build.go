// Package spans turns the records of any protocol into OpenTelemetry
// spans: the part every span has (ids, kind, times) is written here, the
// rest by the record (internal/semconv holds the conventions).
package spans // import "github.com/otelcol-ebpf/ebpfreceiver/internal/spans"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// Clock converts kernel monotonic timestamps to wall-clock time.
type Clock struct {
	// Offset is wall-clock ns minus monotonic ns, measured once at start.
	Offset int64
}

// Time converts a kernel timestamp.
func (c Clock) Time(mono uint64) pcommon.Timestamp {
	return pcommon.Timestamp(int64(mono) + c.Offset)
}

// Builder fills spans from records.
type Builder struct {
	Clock Clock
}

// Fill writes record r, seen on conn, into span with identity id.
func (b *Builder) Fill(span ptrace.Span, r protocols.Record, conn *protocols.ConnInfo, id *tracecontext.Identity) {
	x := r.Common()
	span.SetTraceID(id.TraceID)
	span.SetSpanID(id.SpanID)
	span.SetParentSpanID(id.ParentID)
	span.SetFlags(uint32(id.Flags))
	span.SetStartTimestamp(b.Clock.Time(x.RequestStart))
	span.SetEndTimestamp(b.Clock.Time(x.End()))
	if x.Role == protocols.RoleServer {
		span.SetKind(ptrace.SpanKindServer)
	} else {
		span.SetKind(ptrace.SpanKindClient)
	}
	r.Fill(span, conn)
}
