package mysql

import (
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Record is one command and the server's response to it.
type Record struct {
	protocols.Exchange
	semconv.DB
	// Command is the command byte: COM_QUERY (0x03), COM_STMT_PREPARE
	// (0x16), COM_STMT_EXECUTE (0x17) or COM_STMT_BULK_EXECUTE (0xfa).
	Command byte
	// StatementID is the prepared statement's id (prepare and execute).
	StatementID uint32
	// SQLState is the SQLSTATE of an error ("42S02"), "" without one. The
	// conventions give MySQL's error number, not its SQLSTATE, an
	// attribute, so it is not written to spans.
	SQLState string
	// EndUnseen says the response's end fell in bytes that were not
	// captured: it ended before the client's next command, and an error
	// it may have ended with is not known.
	EndUnseen bool
}

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
