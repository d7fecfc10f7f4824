package redis

import (
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
)

// Common returns what every protocol's record has (protocols.Record).
func (r *Record) Common() *protocols.Exchange { return &r.Exchange }

// Fill writes the operation's span name, status and attributes.
func (r *Record) Fill(span ptrace.Span, conn *protocols.ConnInfo) {
	r.DB.Fill(span, &r.Exchange, conn)
}

// Metric says which db.client.operation.duration series the operation
// counts in.
func (r *Record) Metric(conn *protocols.ConnInfo) (redmetrics.Key, redmetrics.Observation, bool) {
	return r.DB.Metric(&r.Exchange, conn)
}

var _ protocols.Record = (*Record)(nil)
