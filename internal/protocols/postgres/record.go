package postgres

import (
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Record is one database operation and the server's answer to it: a
// simple Query (all the statements its text holds), or one Execute of the
// extended protocol with the Parse, Bind and Describe that prepared it.
type Record struct {
	protocols.Exchange
	semconv.DB
	// BatchSize is the number of statements of a Query that held two or
	// more (db.operation.batch.size); 0 for one statement.
	BatchSize int
	// Prepared marks an Execute of a statement prepared earlier on the
	// connection, as opposed to one parsed in the same round trip.
	Prepared bool
}

// Common returns what every protocol's record has (protocols.Record).
func (r *Record) Common() *protocols.Exchange { return &r.Exchange }

// Fill writes the operation's span name, status and attributes.
func (r *Record) Fill(span ptrace.Span, conn *protocols.ConnInfo) {
	r.DB.Fill(span, &r.Exchange, conn)
	if r.BatchSize > 1 {
		span.Attributes().PutInt("db.operation.batch.size", int64(r.BatchSize))
	}
}

// Metric says which db.client.operation.duration series the operation
// counts in.
func (r *Record) Metric(conn *protocols.ConnInfo) (redmetrics.Key, redmetrics.Observation, bool) {
	return r.DB.Metric(&r.Exchange, conn)
}
