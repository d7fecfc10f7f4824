// Package mysql turns the bytes a watched MySQL or MariaDB client moves on
// one TCP connection into database operations: each command paired with
// the server's response, as client records of the database semantic
// conventions.
//
// The client/server protocol frames everything in packets of a 3-byte
// length and a sequence id, so the parser counts bytes rather than needing
// to see them: a gap (bytes a syscall moved past the kernel's capture)
// inside a packet keeps it in step. A gap that may hide packet headers
// loses the framing of that direction until it can be found again: the
// client's side at a segment that starts with a command packet; the
// server's side inside rows by a chain of headers with consecutive
// sequence ids, by an end-of-result packet in a syscall's last bytes, or
// at the start of the response to the client's next command (a client
// reads a whole response before it sends another command). A response
// whose end was not seen is reported with the status it had so far and
// counted ("response_end_unseen"); a command whose response may have been
// missed is dropped and counted, never paired with a response that may
// not be its own. Exchanges paired after such a loss are held until the
// next command shows the server's side in step, and dropped if bytes
// without a command turn up first.
//
// Records: COM_QUERY, COM_STMT_PREPARE (db.operation.name "PREPARE"),
// COM_STMT_EXECUTE and MariaDB's COM_STMT_BULK_EXECUTE (with the prepared
// statement's text, when its COM_STMT_PREPARE was seen). The other
// commands (COM_PING, COM_INIT_DB, COM_QUIT, COM_STMT_CLOSE and
// COM_STMT_RESET, COM_RESET_CONNECTION, ...) are the protocol's upkeep and
// no operation of the application: they are parsed to stay in step and to
// follow the connection's database, and are not reported. db.namespace is
// the database named in the handshake, by a successful COM_INIT_DB or
// `USE`, or by the server's session-state tracking; "" when it was not
// seen, and again after a text of several statements that may hold a USE
// or after COM_RESET_CONNECTION. db.system.name is "mariadb" when the
// server's greeting names MariaDB in its version, "mysql" for any other
// greeting, and "other_sql" for a connection whose greeting was not seen:
// both speak this protocol, and which one it is cannot be told. Statement texts go through
// sqlquery as MySQL reads them, or both ways while the server's status
// says NO_BACKSLASH_ESCAPES or was not seen; a text cut by the capture
// gives its leading operation only. An ERR packet gives
// db.response.status_code and error.type (the error number) and
// Record.SQLState, which no attribute carries.
//
// TLS (the client's SSLRequest) and compression end the parsing of a
// connection, counted. Memory per connection is bounded: at most 16
// commands in flight, 8 KiB of a statement's text and 1 KiB of any other
// packet kept while it arrives, at most 256 prepared statements with
// 64 KiB of their text, and the last 8 statement texts of up to 1 KiB
// (so that a repeated text is analysed once). A Conn copies what it keeps
// and never holds the caller's buffers; it is not safe for concurrent
// use.
package mysql // import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/mysql"

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/sqlquery"
)

// MariaDB is db.system.name for MariaDB servers.
const MariaDB = semconv.MariaDB

// Limits that bound the state of one connection.
const (
	maxPending    = 16       // commands waiting for a response
	maxQuery      = 8 << 10  // bytes of a statement's text kept
	maxPacketKeep = 1 << 10  // bytes of other packets kept
	maxRowKeep    = 64       // bytes of a row kept: enough to tell the end of rows
	maxStatements = 256      // prepared statements remembered
	maxStmtBytes  = 64 << 10 // bytes of their text
	maxNamespace  = 256      // bytes of a database name
	keepBuf       = 4 << 10  // a buffer larger than this is freed after use
)

// The directions and roles, named here as the rest of the package uses them.
type Direction = protocols.Direction

const (
	Inbound  = protocols.Inbound  // from the server, to the watched client
	Outbound = protocols.Outbound // from the watched client, to the server
)

// phase is where a connection is in its life.
type phase uint8

const (
	phaseStart     phase = iota // nothing seen yet: a greeting or a command may come
	phaseHandshake              // the server's greeting seen; the client's answer comes
	phaseAuth                   // authenticating, until the server's OK or ERR
	phaseCommand                // commands and their responses
	phaseOff                    // TLS, compression, replication, or not a client: nothing more is read
)

// eofMode is how result sets end: the client's CLIENT_DEPRECATE_EOF, or
// what the packets showed when the handshake was not seen.
type eofMode uint8

const (
	eofUnknown   eofMode = iota
	eofPackets           // EOF packets after metadata and rows
	eofDeprecate         // no EOF after metadata; rows end with an OK packet
)

// Stats count what a Conn could not report. They survive Close.
type Stats struct {
	Records          uint64 // records emitted
	Unmatched        uint64 // server packets with no command to answer
	Dropped          uint64 // commands dropped: their response may have been missed, or too many in flight
	EndUnseen        uint64 // responses whose end was not seen, reported without it
	Unconfirmed      uint64 // exchanges paired after a loss and dropped when stray bytes showed the pairing wrong
	Resyncs          uint64 // times a direction found its packets again after losing them
	UnknownStatement uint64 // executions of statements prepared before the parser saw the connection
	TLS              uint64 // connections that switched to TLS
	Compressed       uint64 // connections that switched to the compressed protocol
	NotMySQL         uint64 // packets that made no sense where they came
}

// The reasons Stats count, in self-telemetry.
const (
	reasonUnmatched        = "unmatched_response"
	reasonDropped          = "response_lost"
	reasonPendingOverflow  = "pending_overflow"
	reasonEndUnseen        = "response_end_unseen"
	reasonUnconfirmed      = "unconfirmed_pairing"
	reasonUnknownStatement = "unknown_statement"
	reasonTruncated        = "query_text_truncated"
	reasonTLS              = "tls"
	reasonCompressed       = "compressed"
	reasonReplication      = "replication"
	reasonNotMySQL         = "not_mysql"
	reasonServerSide       = "server_side"
)

// Conn is the parser and stitcher of one connection.
type Conn struct {
	opts  *protocols.Options
	h     protocols.Sink // the caller's, set only during Feed and Close
	seg   *protocols.Segment
	given protocols.Role // the role Reset was told
	// untold: the server's side, as Reset was told, not yet counted in
	// the Sink.
	untold bool

	phase     phase
	rd        [2]reader // indexed by Direction
	caps      uint32    // the client's capabilities (in the handshake response)
	capsKnown bool
	server    uint32 // the server's capabilities (in its greeting), 0 if not seen
	// mariaServerCaps are the MariaDB server's extended capabilities.
	mariaServerCaps uint32
	cacheMeta       bool // MariaDB's metadata caching was agreed: column counts carry a flag
	eof             eofMode
	system          string
	encrypted       bool

	// dialect is how statement texts are read: MySQL's while the server
	// says backslashes escape in strings, both readings until it said.
	dialect sqlquery.Dialect

	namespace string // the current database, "" when not known
	authDB    string // the database the client asked for at login or change of user

	pendingQueue
	infile    bool  // the client sends a LOCAL INFILE's contents
	infileSeq uint8 // the sequence id of its last packet
	// aligned says the server's side was realigned at a command: the
	// exchanges paired since are held until confirmed.
	aligned bool
	// absorb says an EOF with sequence id absorbSeq may still come for a
	// response that ended when it was not known whether EOFs are sent.
	absorb    bool
	absorbSeq uint8
	// chosenUsed says the segment's chosen trace context went to a request.
	chosenUsed bool

	stmts   stmtTable
	queries queryCache
	stats   Stats
}

// NewConn returns a Conn ready for its first segment.
func NewConn(opts *protocols.Options) *Conn {
	if opts == nil {
		opts = &protocols.Options{}
	}
	c := &Conn{opts: opts}
	c.Reset(protocols.RoleUnknown)
	return c
}

// Reset readies a Conn for another connection, as if it were new, except
// that it keeps the room of its buffers and its cache of statement texts
// (the same application makes the same statements on its next connection).
func (c *Conn) Reset(role protocols.Role) {
	c.closeState()
	c.stats = Stats{}
	c.given = role
	c.untold = role == protocols.RoleServer
	if role == protocols.RoleServer {
		c.phase = phaseOff
	}
}

// closeState forgets the connection's state, keeping buffers.
func (c *Conn) closeState() {
	c.phase = phaseStart
	c.rd[Inbound].reset()
	c.rd[Outbound].reset()
	c.caps, c.capsKnown, c.server, c.mariaServerCaps, c.cacheMeta = 0, false, 0, 0, false
	c.absorb = false
	c.eof = eofUnknown
	c.system = semconv.OtherSQL
	c.dialect = sqlquery.AnyDialect
	c.encrypted = false
	c.namespace, c.authDB = "", ""
	c.clearQueue()
	c.infile, c.infileSeq = false, 0
	c.aligned = false
	c.stmts.clear()
}

// Stats returns what the connection could not report so far.
func (c *Conn) Stats() Stats { return c.stats }

// Encrypted says the connection switched to TLS: nothing after the switch
// is readable here.
func (c *Conn) Encrypted() bool { return c.encrypted }

// fail counts what was left out, here and in the caller's self-telemetry.
func (c *Conn) fail(n *uint64, reason string) {
	if n != nil {
		*n++
	}
	if c.h != nil {
		c.h.Failed(reason)
	}
}

// Feed consumes one segment moved in direction dir.
func (c *Conn) Feed(dir Direction, seg *protocols.Segment, h protocols.Sink) {
	if dir > Outbound {
		return
	}
	if c.phase == phaseOff {
		if c.untold && h != nil {
			// Counted in the caller's self-telemetry once, at its first
			// bytes: Reset has no Sink to tell.
			h.Failed(reasonServerSide)
			c.untold = false
		}
		return
	}
	c.h, c.seg, c.chosenUsed = h, seg, false
	defer func() { c.h, c.seg = nil, nil }()
	data, gap, tail := split(seg)
	if len(data) == 0 && gap == 0 {
		// A tail that covers the whole syscall is its data.
		data, tail = tail, nil
	}
	r := &c.rd[dir]
	if dir == Inbound && r.lost {
		if e := c.responder(); e != nil && e.rs == rsLost {
			e.rec.ResponseEnd = max(e.rec.ResponseEnd, seg.Time) // its bytes, as far as known
		}
	}
	if r.lost && len(data) > 0 {
		data = c.resync(dir, data, gap == 0 && len(tail) == 0)
	}
	if len(data) > 0 && !r.lost {
		r.packets(c, dir, data, seg.Time)
	}
	if c.phase == phaseOff {
		return
	}
	if gap > 0 {
		wasLost := r.lost
		if !r.skip(c, dir, gap, seg.Time) {
			if !wasLost {
				c.lost(dir)
			}
			if dir == Inbound && r.lost {
				c.tailEnd(tail, seg.Time)
			}
			return
		}
	}
	if len(tail) > 0 && !r.lost {
		r.packets(c, dir, tail, seg.Time)
	}
	if dir == Inbound && r.lost && gap == 0 {
		// The segment ended without its packets found: its last bytes
		// may still end the result.
		c.tailEnd(data[max(0, len(data)-16):], seg.Time)
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

// Close ends the connection at time ts: commands still waiting for their
// response are reported without one, or dropped when their response may
// have passed unseen; then the Conn is reset for a new connection (its
// Stats are kept).
func (c *Conn) Close(ts uint64, h protocols.Sink) {
	c.h = h
	defer func() { c.h = nil }()
	c.closeQueue(ts)
	stats := c.stats
	c.closeState()
	c.stats = stats
	if c.given == protocols.RoleServer {
		c.phase = phaseOff
	}
}

// off stops reading the connection: what follows is not readable here.
func (c *Conn) off(n *uint64, reason string) {
	c.fail(n, reason)
	c.phase = phaseOff
	c.dropAll()
}

// header checks a packet's header before its payload comes, and says how
// many payload bytes to keep. A header that cannot start the packet
// expected here is rejected at once, before its length swallows the
// bytes after it.
func (c *Conn) header(dir Direction, seq uint8, size int) (keep int, ok bool) {
	if dir == Outbound {
		return c.clientHeader(seq, size)
	}
	switch c.phase {
	case phaseStart:
		if seq != 0 || size > maxPacketKeep {
			c.stray()
			return 0, false
		}
	case phaseCommand:
		if c.absorb && seq == c.absorbSeq {
			break
		}
		e := c.responder()
		switch {
		case e == nil:
			c.stray()
			return 0, false
		case e.kind == kindBarrier || e.rs == rsLost:
			c.rd[Inbound].lose()
			c.serverLost()
			return 0, false
		case seq != e.seq && !(e.rs == rsInfile && c.rd[Outbound].lost):
			c.desync(e)
			return 0, false
		case e.rs == rsRows:
			return min(size, maxRowKeep), true
		}
	}
	return min(size, maxPacketKeep), true
}

// clientHeader checks the header of a packet the client wrote.
func (c *Conn) clientHeader(seq uint8, size int) (keep int, ok bool) {
	switch {
	case c.phase == phaseAuth:
		return 0, true
	case c.phase == phaseCommand && c.infile && seq != 0:
		return 0, true
	case seq == 0:
		return min(size, maxQuery+1), true
	case c.phase == phaseCommand:
		if e := c.responder(); e == nil || e.kind != kindAuth {
			c.notMySQL(Outbound)
			return 0, false
		}
	}
	return min(size, maxPacketKeep), true
}

// packet handles a packet of direction dir; false stops the reading of
// the segment it came in.
func (c *Conn) packet(dir Direction, p *packet) bool {
	if c.phase == phaseOff {
		return false
	}
	if dir == Outbound {
		return c.clientPacket(p)
	}
	return c.serverPacket(p)
}

// lost reacts to a direction that lost its packets in a gap.
func (c *Conn) lost(dir Direction) {
	if dir == Outbound {
		c.clientLost()
		return
	}
	c.serverLost()
}
