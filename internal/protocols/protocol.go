// Package protocols is the protocol layer: the shape every wire protocol
// the receiver understands has, and the registry that picks one per
// connection by what the connection carries.
//
// Each protocol lives in a folder of its own below this one, with three
// parts, as in Pixie's socket tracer:
//
//   - a parser that consumes one connection's bytes in each direction
//     incrementally, with bounded memory, and never panics on what a peer
//     sends;
//   - a stitcher that pairs requests with responses (pipelining, several
//     requests in flight, multiplexed streams, a response that never
//     comes);
//   - a record type for one finished exchange, which fills its own span
//     attributes and says which metric series it counts in.
//
// Nothing outside a protocol's folder knows its wire format: the event
// loop feeds Segments to a Parser and hands the Records it gets to the
// correlation, span and metric steps.
//
// Records embed Exchange and implement Record; see http1.Exchange.
package protocols // import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"

import (
	"net/netip"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/cardinality"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// Direction says which way a segment's bytes moved, from the watched
// process's side.
type Direction uint8

// The directions.
const (
	Inbound  Direction = iota // bytes the watched process read
	Outbound                  // bytes the watched process wrote
)

// Role is the watched process's side of a connection.
type Role uint8

// The roles.
const (
	RoleUnknown Role = iota // not known yet: the parser decides from content
	RoleServer              // the watched process reads requests and answers them
	RoleClient              // the watched process sends requests
)

// Segment is what one syscall moved on a connection. The kernel captures
// a prefix of the bytes (Data), counts all of them (Len), and keeps the
// last few (Tail) when the prefix does not reach them; the bytes between
// are a gap of known length.
type Segment struct {
	Data []byte // captured prefix; aliases the event: copy what is kept
	Len  int    // bytes moved in total (>= len(Data))
	Tail []byte // up to the last 16 bytes moved, when Len > len(Data)
	Time uint64 // kernel monotonic timestamp (ns) of the syscall
	Tid  uint32 // the thread that moved the bytes
	// Chosen is the trace context the kernel chose for the request these
	// bytes begin (context propagation), if any. A parser hands it to the
	// first request that begins in this segment, and to no other.
	Chosen tracecontext.Chosen
	// Extents are more runs of the bytes moved that the kernel captured
	// past Data, in order of their offsets (the frames HTTP/2 needs); they
	// alias the event like Data.
	Extents []Extent
}

// Extent is a run of captured bytes of a segment: Data are the bytes at
// offset Off of the bytes the syscall moved.
type Extent struct {
	Off  int
	Data []byte
}

// Exchange is what every protocol's record has in common: one request and
// its response, as the correlation and span steps see them.
type Exchange struct {
	Role Role
	// Times of the segments with the request's first and last byte, and
	// the response's; zero response times: no response was seen.
	RequestStart, RequestEnd   uint64
	ResponseStart, ResponseEnd uint64
	// Tid is the thread that moved the request's first bytes.
	Tid uint32
	// Chosen is the context the kernel chose for the request (from the
	// segment the request began in), or the zero value.
	Chosen tracecontext.Chosen
	// Traceparent is the W3C traceparent the request carried, "" if none.
	Traceparent string
	// LinkOp and LinkTarget identify a request a proxy forwards as it
	// read it (HTTP: method and target); both "" for protocols whose
	// requests are not matched that way.
	LinkOp, LinkTarget string
	// Clipped marks a request whose first line was not seen whole (lost
	// events, which the kernel counted, or a gap): after a loss it is not
	// counted again.
	Clipped bool
	// Tag is the Sink's own: set in Started, carried to Done.
	Tag any
}

// End is the time of the exchange's last byte: the response's, or the
// request's when no response came.
func (x *Exchange) End() uint64 {
	if x.ResponseEnd != 0 {
		return x.ResponseEnd
	}
	return x.RequestEnd
}

// ConnInfo describes the connection an exchange was seen on.
type ConnInfo struct {
	Local  netip.AddrPort // the watched process's end
	Remote netip.AddrPort // the peer's end
	// LocalIP and RemoteIP are the addresses as text, made once per
	// connection: formatting them for every span would allocate.
	LocalIP, RemoteIP string
	// Service is the watched process's service.name: limits such as the
	// number of distinct HTTP routes are kept per service.
	Service string
	// TLS: the bytes are the plaintext a TLS library moved, not the
	// bytes on the wire (HTTP's url.scheme is then https).
	TLS bool
}

// Record is one finished exchange of some protocol.
type Record interface {
	// Common returns the part every protocol has. (Records embed an
	// Exchange, so the method cannot be named after it.)
	Common() *Exchange
	// Fill writes the span's name, status and attributes; ids, kind and
	// times are written by the caller from Exchange.
	Fill(span ptrace.Span, conn *ConnInfo)
	// Metric says which RED series the exchange counts in, and what it
	// adds to each of the series' instruments. ok is false when the
	// exchange counts in none.
	Metric(conn *ConnInfo) (key redmetrics.Key, obs redmetrics.Observation, ok bool)
}

// Sink receives what a Parser finds. Its methods are called synchronously
// from Feed and Close; the values passed are valid only during the call.
type Sink interface {
	// Started is called when a request's head was read, before its
	// response: the moment to give it an identity others can link to.
	Started(x *Exchange)
	// Done is called when an exchange ended; for one connection in the
	// order the protocol answers requests.
	Done(r Record)
	// Failed counts what the parser could not make sense of, by a short
	// snake_case reason ("not_http", "unknown_message", ...). It is for
	// self-telemetry: nothing a parser cannot parse becomes a span.
	Failed(reason string)
}

// Abandoner is a Sink that wants to know of a request that was Started
// but will never be Done: its parser dropped it (its answer was lost, or
// could not be paired with it for sure). The correlation then forgets it
// as a parent of the process's calls, which it would otherwise keep until
// the process exits. Parsers tell it through Abandon.
type Abandoner interface {
	// Abandoned is called, instead of Done, for an exchange that was
	// Started; x carries the Tag Started gave it.
	Abandoned(x *Exchange)
}

// Abandon tells out, when it is an Abandoner, that x was Started and will
// never be Done. A Sink that is not one needs no word of it.
func Abandon(out Sink, x *Exchange) {
	if a, ok := out.(Abandoner); ok {
		a.Abandoned(x)
	}
}

// Parser is the parser and stitcher of one connection. It is not safe for
// concurrent use, and it holds none of the caller's buffers.
type Parser interface {
	// Reset readies the parser for a new connection (also its first),
	// keeping what saves allocations. role is what the kernel said of the
	// connection (it saw the accept or the connect), or RoleUnknown.
	Reset(role Role)
	// Feed consumes one segment moved in direction dir.
	Feed(dir Direction, seg *Segment, out Sink)
	// Close ends the connection at time ts: a response delimited by the
	// close ends here, and requests still waiting for a response are
	// reported with none.
	Close(ts uint64, out Sink)
}

// Verdict is what a protocol makes of a connection's first bytes.
type Verdict uint8

// The verdicts.
const (
	No       Verdict = iota // not this protocol
	Maybe                   // too few bytes to tell
	Request                 // this protocol, and the bytes are a request (client to server)
	Response                // this protocol, and the bytes come from the server
)

// Protocol is one wire protocol.
type Protocol interface {
	// Name is the protocol's name in configuration and self-telemetry
	// ("http1", "postgresql", ...).
	Name() string
	// Detect looks at the first bytes a connection carried in one
	// direction. serverPort is the port of the connection's server end
	// when the role is known, else 0; ports are a hint only.
	Detect(first []byte, serverPort uint16) Verdict
	// NewParser returns a parser for one connection.
	NewParser(opts *Options) Parser
	// Families lists the metric families the protocol's records count in.
	Families() []*redmetrics.Family
}

// Options say what parsers record; one value is shared by every
// connection, and nothing changes it while they run.
type Options struct {
	// Routes makes http.route values, bounded per service.
	Routes *routes.Limiter
	// RPCMethods bounds the rpc.method values of each service.
	RPCMethods *cardinality.Limit
	// RecordQuery records the query string of HTTP requests in url.query.
	RecordQuery bool
	// QueryText records database statements, their literals replaced by
	// "?", in db.query.text.
	QueryText bool
}
