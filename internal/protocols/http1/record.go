package http1

import (
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
)

// Common returns what every protocol's record has (protocols.Record).
func (x *Exchange) Common() *protocols.Exchange { return &x.Exchange }

// Fill writes the exchange's span name, status and attributes.
func (x *Exchange) Fill(span ptrace.Span, conn *protocols.ConnInfo) {
	x.HTTP.Fill(span, &x.Exchange, conn, x.conn.opts, &x.conn.names)
}

// Metric says which HTTP series the exchange counts in.
func (x *Exchange) Metric(conn *protocols.ConnInfo) (redmetrics.Key, redmetrics.Observation, bool) {
	return x.HTTP.Metric(&x.Exchange, conn, x.conn.opts, &x.conn.names)
}
