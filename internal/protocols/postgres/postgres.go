// Package postgres turns the bytes a PostgreSQL client moves on one TCP
// connection (frontend/backend protocol version 3) into database
// operations: each simple Query, and each Execute of the extended
// protocol, paired with the server's answer.
//
// # Framing
//
// Every message but the first few a client sends has a type byte and a
// length, so each direction is framed by counting: a message's head and
// the fields the records need (statement text, names, the SQLSTATE of an
// error) are kept, and the rest of a body (DataRow values, COPY data) is
// counted through without being seen. The kernel's capture is lossy: a
// syscall that moved more than it captured leaves a gap of known length.
// A gap inside a message keeps the direction in step; a gap that swallows
// a message boundary loses it. A lost direction is found again only where
// framing is certain:
//
//   - the server's: at the end of a read whose last bytes are a
//     ReadyForQuery ('Z', length 5, status I/T/E) right after the end of
//     another message (a NUL-terminated string or an empty message);
//   - the client's: at a write whose bytes are whole messages that end
//     exactly where the write does, or, in COPY FROM STDIN, after a write
//     that ends with CopyDone.
//
// # Pairing
//
// The server answers a client's messages in the order they were sent, so
// the parser keeps what each message the client sent is owed (ParseComplete
// for a Parse, ReadyForQuery for a Sync, ...), and checks each message of
// the server against it. A message that does not fit, or a loss after which
// the answers owed cannot be counted, stops pairing: requests in flight are
// dropped (counted, never reported with a wrong answer), and pairing
// starts again only at a quiet point: a read that ends with ReadyForQuery
// with nothing else owed, followed by a write of the client. A connection
// seen from its middle (the receiver started late, or events were lost)
// starts the same way. The quiet point relies on the server having nothing
// more to send when it goes quiet: a client that wrote several requests
// ahead of the answers before the receiver saw it, and keeps writing ahead
// of them, could shift the pairing; its answers are still checked against
// what its messages are owed.
//
// # Records
//
// A simple Query is one record, whatever the number of statements its text
// holds (a batch, see analyze); its answer ends with ReadyForQuery. An
// Execute is one record, with the text of the statement its portal was
// bound to: parsed in the same round trip or earlier on the connection
// (kept per name once the server accepted it, see statements); a
// statement prepared before the parser saw the connection has no known
// text, and none is made up. An Execute's request runs from the first
// message of its part of the round trip (Parse or Bind) to the Sync, its
// answer from the first message answering that part to its own
// CommandComplete (or error), so that the Executes of one round trip
// (pgx's batches) each have their own. A round trip that prepares without executing
// (Parse, Describe, Sync) is no operation of the application's and makes
// a record only when it fails: the failure is that of the application's
// statement. ErrorResponse gives db.response.status_code and error.type
// (the SQLSTATE); after an error in the extended protocol the server skips
// to the next Sync, and the Executes it skipped make no record (counted).
// Statement text is sanitized (literals replaced by "?") only when
// Options.QueryText is set.
//
// The Sink hears of an operation (Started) when its Execute or Query was
// written; an operation dropped later (its answer lost, or skipped by the
// server after an error) gets no Done: a record with a guessed outcome
// would be worse than none.
//
// # Bounds
//
// A Conn holds, whatever its peer sends: at most 256 records in flight and
// 2048 answers owed; per direction, one message head and at most 8 KiB of
// statement text (longer texts are clipped: only the operation is kept);
// at most 256 prepared statements and 256 KiB of their analysed text (the
// least recently used are forgotten); 8 recent texts with their analysis;
// 64 named portals. It copies what it keeps and never holds the caller's
// buffers. A Conn is not safe for concurrent use.
package postgres // import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/postgres"

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// Limits that bound the state of one connection.
const (
	maxRecords = 256      // records in flight; more are not recorded (counted)
	maxItems   = 2048     // answers owed; more stop pairing (counted)
	maxText    = 8 << 10  // bytes of statement text kept
	maxName    = 64       // bytes of a statement or portal name kept (NAMEDATALEN)
	maxError   = 512      // bytes of an ErrorResponse kept: the SQLSTATE comes early
	maxPortals = 64       // named portals remembered
	keepBuf    = 16 << 10 // a body buffer larger than this is freed after its message
)

// The directions, named here as the rest of the package uses them.
const (
	Inbound  = protocols.Inbound
	Outbound = protocols.Outbound
)

// Stats count what a Conn could not make into records. They survive
// Close, so a caller may read them after closing.
type Stats struct {
	NotPostgres       uint64 // client writes that could not be framed where framing was being looked for
	StreamLost        uint64 // times a direction lost its framing (a gap over a message boundary, a bad header)
	Unexpected        uint64 // server messages that did not fit what the client's messages were owed
	ResponseLost      uint64 // operations dropped because their answers were lost
	PendingOverflow   uint64 // operations not recorded because maxRecords were in flight
	QueueOverflow     uint64 // times maxItems answers were owed
	Unmatched         uint64 // server messages with nothing owed
	StatementUnknown  uint64 // Executes of statements prepared before the parser saw them
	SkippedAfterError uint64 // Executes the server skipped after an earlier error
	SplitMismatch     uint64 // Queries whose statements the server counted otherwise
	Encrypted         uint64 // connections that switched to TLS or GSS encryption
	ServerRole        uint64 // connections where the watched process is the server
	Resynced          uint64 // times pairing started again at a quiet point
}

// The reasons Stats count, in self-telemetry.
const (
	reasonNotPostgres  = "not_postgres"
	reasonStreamLost   = "stream_lost"
	reasonUnexpected   = "unexpected_message"
	reasonResponseLost = "response_lost"
	reasonPending      = "pending_overflow"
	reasonQueue        = "queue_overflow"
	reasonUnmatched    = "unmatched_response"
	reasonUnknownStmt  = "statement_unknown"
	reasonSkipped      = "skipped_after_error"
	reasonSplit        = "statement_split_mismatch"
	reasonEncrypted    = "encrypted"
	reasonServerRole   = "server_role"
)

// Conn tracks one TCP connection of a PostgreSQL client.
type Conn struct {
	opts  *protocols.Options
	h     protocols.Sink // the caller's, set only during Feed and Close
	stats Stats

	client stream // the client's messages (Outbound)
	server stream // the server's messages (Inbound)

	// namespace is db.namespace: the database the StartupMessage named
	// (its user when it named none); "" when the startup was not seen.
	namespace string

	fresh   bool // nothing fed since Reset: the first write tells a start from a middle
	begun   bool // the connection's start was seen
	ignore  bool // nothing more is parsed: TLS, GSS encryption, or the server's side
	untold  bool // the server's side, not yet counted in the Sink
	copyIn  bool // the client sends COPY data: its Sync and Flush are ignored
	discard bool // after an error, the server discards the client's messages until Sync

	pairing
	stmts   statements
	texts   textCache
	portals portals
}

// NewConn returns a Conn ready for its first segment.
func NewConn(opts *protocols.Options) *Conn {
	if opts == nil {
		opts = &protocols.Options{}
	}
	c := &Conn{opts: opts}
	c.client.frontend = true
	c.Reset(protocols.RoleClient)
	return c
}

// Reset readies the Conn for a new connection, keeping the room of its
// buffers and the analyses of recent texts. role is the watched process's
// side: the parser records clients only, and ignores a server's
// connections (counted).
func (c *Conn) Reset(role protocols.Role) {
	c.stats = Stats{}
	c.namespace = ""
	c.restart()
	c.fresh = true
	c.ignore = role == protocols.RoleServer
	c.untold = c.ignore
	if c.ignore {
		c.stats.ServerRole++
	}
}

// restart forgets what the connection was in the middle of, as at a
// connection seen from its middle: nothing owed is known, neither
// direction's framing, nor the statements prepared so far.
func (c *Conn) restart() {
	c.client.reset()
	c.server.reset()
	c.client.lost, c.server.lost = true, true
	c.fresh, c.begun, c.ignore, c.untold, c.copyIn, c.discard = false, false, false, false, false, false
	c.pairing.reset()
	c.stmts.forget()
	c.portals.forget()
}

// Stats returns what the connection could not record so far.
func (c *Conn) Stats() Stats { return c.stats }

// fail counts what was not recorded, here and in the caller's
// self-telemetry.
func (c *Conn) fail(n *uint64, reason string) {
	*n++
	if c.h != nil {
		c.h.Failed(reason)
	}
}

// Feed consumes one segment; the Sink is told synchronously of each
// operation that starts and each that ends, in request order.
func (c *Conn) Feed(dir protocols.Direction, seg *protocols.Segment, h protocols.Sink) {
	if dir > Outbound {
		return
	}
	if c.ignore {
		if c.untold && h != nil {
			// Counted in the caller's self-telemetry once, at its first
			// bytes: Reset has no Sink to tell.
			h.Failed(reasonServerRole)
			c.untold = false
		}
		return
	}
	c.h = h
	defer func() { c.h = nil }()
	if dir == Outbound {
		c.write(seg)
	} else {
		c.read(seg)
	}
}

// write consumes what the client wrote.
func (c *Conn) write(seg *protocols.Segment) {
	s := &c.client
	data, gap, tail := split(seg)
	if len(data) == 0 && gap == 0 {
		data, tail = tail, nil
	}
	if len(data) == 0 {
		return
	}
	if c.fresh || s.lost {
		c.findFront(data, seg.Len)
	}
	if c.armed && !c.open && !s.lost && s.atBoundary() {
		// A write that starts a message after a quiet read starts
		// pairing again.
		c.open = true
		c.stats.Resynced++
	}
	c.armed = false
	s.offer(seg)
	c.consume(s, data, seg.Time)
	if gap > 0 {
		c.skip(s, gap, seg.Time)
	}
	c.consume(s, tail, seg.Time)
	if s.lost && c.copyIn && copyDoneAt(s.window()) {
		// The client's COPY data ended with the write: the next one
		// starts a message.
		s.found()
		c.copyIn = false
	}
}

// findFront looks for certain framing at the start of a client's write
// when there is none: at the connection's start (a startup-family
// message), or at a write of whole messages.
func (c *Conn) findFront(data []byte, total int) {
	s := &c.client
	if c.fresh {
		c.fresh = false
		if strictFrames(data, total, true, true) || untypedPrefix(data, total) {
			// The connection's start: both directions and pairing begin
			// with it.
			s.found()
			c.server.found()
			s.untyped = true
			c.open, c.begun = true, true
			return
		}
	}
	switch {
	case strictFrames(data, total, true, s.untyped):
		s.found()
	case !c.copyIn:
		// (COPY data is written in chunks that need not end with a
		// message; its end is looked for otherwise.)
		c.fail(&c.stats.NotPostgres, reasonNotPostgres)
	}
}

// untypedPrefix says whether data, a whole write, is the beginning of a
// startup-family message whose rest follows in later writes.
func untypedPrefix(data []byte, total int) bool {
	n, ok := untypedFrame(data)
	return ok && len(data) == total && (n == 0 || n > len(data))
}

// read consumes what the client read.
func (c *Conn) read(seg *protocols.Segment) {
	s := &c.server
	data, gap, tail := split(seg)
	if len(data) == 0 && gap == 0 {
		data, tail = tail, nil
	}
	if len(data) == 0 && gap == 0 {
		return
	}
	c.fresh = false
	c.armed = false // the server was not quiet after all
	s.offer(seg)
	c.consume(s, data, seg.Time)
	if gap > 0 {
		c.skip(s, gap, seg.Time)
	}
	c.consume(s, tail, seg.Time)
	switch {
	case s.lost:
		if found, ok := readyAt(s.window()); found {
			s.found()
			c.readyFound(ok, seg.Time)
		}
	case s.atBoundary() && s.lastZ && c.front() == nil:
		c.armed = true
	}
}

// split cuts a segment into the captured bytes, the count of bytes moved
// but not seen, and the tail bytes after those. A tail that overlaps the
// captured bytes is trimmed, so that the three parts follow each other.
func split(seg *protocols.Segment) (data []byte, gap int, tail []byte) {
	data = seg.Data
	after := seg.Len - len(data)
	if after <= 0 {
		return data, 0, nil
	}
	tail = seg.Tail
	if len(tail) > after {
		tail = tail[len(tail)-after:]
	}
	return data, after - len(tail), tail
}

// Close ends the connection at time ts: operations still waiting for
// their answer are reported without one. The Conn then goes on as on a
// connection seen from its middle (the caller also closes after losing
// events of a connection that goes on), keeping its namespace; Reset
// readies it for another connection.
func (c *Conn) Close(ts uint64, h protocols.Sink) {
	if c.ignore {
		return
	}
	c.h = h
	defer func() { c.h = nil }()
	c.closePending()
	ns := c.namespace
	c.restart()
	c.namespace = ns
}
