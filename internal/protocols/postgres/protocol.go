package postgres

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Protocol is the PostgreSQL frontend/backend protocol (version 3) in the
// protocol layer. Its records are client operations: the watched process
// is the database's client.
var Protocol protocols.Protocol = protocol{}

type protocol struct{}

func (protocol) Name() string { return "postgresql" }

func (protocol) NewParser(opts *protocols.Options) protocols.Parser { return NewConn(opts) }

func (protocol) Families() []*redmetrics.Family {
	return []*redmetrics.Family{semconv.DBClient}
}

// defaultPort is PostgreSQL's registered port: a hint for bytes too few to
// tell by themselves.
const defaultPort = 5432

// Detect knows what a client sends first (StartupMessage, SSLRequest,
// GSSENCRequest, CancelRequest) and, on a connection seen after its
// start, typed messages of either side. Every message must be framed
// exactly by its length, with a type that side sends and a body of the
// shape that type has: text of other protocols read as a length gives a
// number far too large ("GET " or "HTTP" are over a billion), and binary
// headers of MySQL give one that does not fit the bytes.
//
// The server's one-byte answer to SSLRequest ('N' or 'S') is too little to
// go by; it counts only on PostgreSQL's port.
func (protocol) Detect(b []byte, serverPort uint16) protocols.Verdict {
	if len(b) == 0 {
		return protocols.Maybe
	}
	if len(b) == 1 && (b[0] == 'N' || b[0] == 'S' || b[0] == 'G') {
		if serverPort == defaultPort {
			return protocols.Response
		}
		return protocols.Maybe
	}
	start, startMaybe := detectFrames(b, true, true)
	if start {
		return protocols.Request
	}
	front, frontMaybe := detectFrames(b, true, false)
	back, backMaybe := detectFrames(b, false, false)
	switch {
	case front && back:
		return protocols.No // CopyData or CopyDone: either side's
	case front:
		return protocols.Request
	case back:
		return protocols.Response
	case startMaybe || frontMaybe || backMaybe:
		return protocols.Maybe
	}
	return protocols.No
}
