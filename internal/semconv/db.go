package semconv

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
)

// The db.system.name values of the databases the receiver understands.
const (
	PostgreSQL = "postgresql"
	MySQL      = "mysql"
	MariaDB    = "mariadb"
	// OtherSQL is the conventions' fallback for a SQL system the
	// receiver cannot tell (a MySQL-protocol connection whose greeting,
	// which names MySQL or MariaDB, was not seen).
	OtherSQL = "other_sql"
	Redis    = "redis"
)

// DBDurationBounds are the conventions' buckets for database operations,
// in seconds.
var DBDurationBounds = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// DB is one database operation as the conventions describe it. Every
// field is what the wire said, never a guess: a field that cannot be known
// (a statement prepared before the receiver started, a database named in
// a startup message it did not see) is left empty and is then left out.
type DB struct {
	System     string // db.system.name: PostgreSQL, MySQL or Redis
	Operation  string // db.operation.name: "SELECT", "GET"; "" when unknown
	Collection string // db.collection.name: the one table the statement names, else ""
	Namespace  string // db.namespace: the database (Postgres: "db" or "db|schema"; Redis: the db index)
	QueryText  string // db.query.text, every literal replaced by "?"; "" when off or unknown
	Summary    string // db.query.summary: "SELECT orders"; "" when unknown
	// StatusCode is db.response.status_code: the SQLSTATE, the MySQL error
	// number, or the Redis error prefix; "" on success.
	StatusCode string
	// ErrorType is error.type: "" on success.
	ErrorType string
	// Error marks a failed operation (span status Error).
	Error bool
}

// DBClient counts the operations of database clients.
var DBClient = &redmetrics.Family{
	Instruments: []redmetrics.Instrument{{
		Name: "db.client.operation.duration", Unit: "s",
		Description: "Duration of database client operations.", Bounds: DBDurationBounds,
	}},
	Attributes: dbMetricAttributes,
}

// Key slots of DBClient series.
const (
	dbSystem = iota
	dbOperation
	dbCollection
	dbNamespace
	dbStatus
	dbErrorType
	dbServerAddress
)

// Name is the span name: the summary, else the operation and its target,
// else the system.
func (d *DB) Name() string {
	switch {
	case d.Summary != "":
		return d.Summary
	case d.Operation != "" && d.Collection != "":
		return d.Operation + " " + d.Collection
	case d.Operation != "" && d.Namespace != "" && d.System != Redis:
		// Redis's namespace is a database index: never in a span name.
		return d.Operation + " " + d.Namespace
	case d.Operation != "":
		return d.Operation
	}
	return d.System
}

// Fill writes a client span of the operation x: name, status, attributes.
func (d *DB) Fill(span ptrace.Span, x *protocols.Exchange, conn *protocols.ConnInfo) {
	span.SetName(d.Name())
	attrs := span.Attributes()
	attrs.EnsureCapacity(12)
	attrs.PutStr("db.system.name", d.System)
	putNonEmpty(attrs, "db.operation.name", d.Operation)
	putNonEmpty(attrs, "db.collection.name", d.Collection)
	putNonEmpty(attrs, "db.namespace", d.Namespace)
	putNonEmpty(attrs, "db.query.text", d.QueryText)
	putNonEmpty(attrs, "db.query.summary", d.Summary)
	putNonEmpty(attrs, "db.response.status_code", d.StatusCode)
	errType := d.errorType(x)
	putNonEmpty(attrs, "error.type", errType)
	putServer(attrs, conn)
	switch {
	case errType == NoResponse:
		span.Status().SetCode(ptrace.StatusCodeError)
		span.Status().SetMessage("no response: the connection ended first")
	case d.Error:
		span.Status().SetCode(ptrace.StatusCodeError)
	}
}

// errorType is error.type: the operation's, or NoResponse when the
// connection ended before the server answered.
func (d *DB) errorType(x *protocols.Exchange) string {
	if x.ResponseEnd == 0 {
		return NoResponse
	}
	return d.ErrorType
}

// Metric says which db.client.operation.duration series x counts in.
func (d *DB) Metric(x *protocols.Exchange, conn *protocols.ConnInfo) (redmetrics.Key, redmetrics.Observation, bool) {
	k := redmetrics.Key{Family: DBClient}
	k.Str[dbSystem] = d.System
	k.Str[dbOperation] = d.Operation
	k.Str[dbCollection] = d.Collection
	k.Str[dbNamespace] = d.Namespace
	k.Str[dbStatus] = d.StatusCode
	k.Str[dbErrorType] = d.errorType(x)
	k.Str[dbServerAddress] = conn.RemoteIP
	k.Int[0] = int64(conn.Remote.Port())
	return k, redmetrics.Observation{Seconds(x)}, true
}

func dbMetricAttributes(k *redmetrics.Key, attrs pcommon.Map) {
	attrs.PutStr("db.system.name", k.Str[dbSystem])
	putNonEmpty(attrs, "db.operation.name", k.Str[dbOperation])
	putNonEmpty(attrs, "db.collection.name", k.Str[dbCollection])
	putNonEmpty(attrs, "db.namespace", k.Str[dbNamespace])
	putNonEmpty(attrs, "db.response.status_code", k.Str[dbStatus])
	putNonEmpty(attrs, "error.type", k.Str[dbErrorType])
	putNonEmpty(attrs, "server.address", k.Str[dbServerAddress])
	attrs.PutInt("server.port", k.Int[0])
}

// putServer writes the server's and the peer's addresses of a client
// connection: a database client knows its server only by address.
func putServer(attrs pcommon.Map, conn *protocols.ConnInfo) {
	if !conn.Remote.IsValid() {
		return
	}
	attrs.PutStr("server.address", conn.RemoteIP)
	attrs.PutInt("server.port", int64(conn.Remote.Port()))
	attrs.PutStr("network.peer.address", conn.RemoteIP)
	attrs.PutInt("network.peer.port", int64(conn.Remote.Port()))
}

func putNonEmpty(attrs pcommon.Map, key, value string) {
	if value != "" {
		attrs.PutStr(key, value)
	}
}
