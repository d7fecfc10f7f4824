// Package http1 turns the bytes a watched process moves on one TCP
// connection into HTTP/1.0 and HTTP/1.1 exchanges: each request paired with
// its response.
//
// The bytes come from the kernel, one Segment per read-like or write-like
// syscall, and they are lossy: a syscall that moved more than the capture
// size leaves a gap of known length after its captured prefix, and only its
// last few bytes (Tail) are seen past the gap. The parser therefore counts
// bytes instead of needing to see them. A gap inside a body of known length
// keeps it in step; a gap inside a head loses some header fields
// (Exchange.Partial); a gap that hides where a message ends makes the parser
// wait for a segment that starts with a start line. Bytes that are not HTTP
// are discarded and counted in Stats. After "101 Switching Protocols"
// nothing is HTTP/1 any more; a request upgraded to h2c is handed to the
// HTTP/2 parser that takes the connection over (Conn.Switched), which
// answers it on stream 1.
//
// A Conn holds bounded state whatever the peer sends: at most 64 requests
// waiting for responses, and at most 64 KiB of an unfinished head per
// direction. It copies what it keeps and never holds the caller's buffers.
// A Conn is not safe for concurrent use.
package http1 // import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http1"

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Limits that bound the state of one connection.
const (
	maxPending     = 64       // requests waiting for a response; more are dropped
	maxHead        = 64 << 10 // bytes of one head buffered; the rest is skipped
	maxTarget      = 8 << 10  // bytes of a request-target kept
	maxMethod      = 20       // bytes of a method
	maxHost        = 1 << 10  // bytes of a Host value kept
	maxTraceparent = 256      // bytes of a traceparent value kept
	keepBuf        = 4 << 10  // a head buffer larger than this is freed when idle
)

// The directions and roles, named here as the rest of the package uses them.
const (
	Inbound    = protocols.Inbound
	Outbound   = protocols.Outbound
	RoleServer = protocols.RoleServer
	RoleClient = protocols.RoleClient
)

// Exchange is one request and its response: the record of the protocol.
type Exchange struct {
	protocols.Exchange
	semconv.HTTP
	// Partial is true when part of a head was not captured, so some header
	// fields may be missing.
	Partial bool

	conn *Conn // its options and the names made for its requests
}

// Stats count what a Conn discarded. They survive Close, so a caller may
// read them after closing.
type Stats struct {
	NotHTTP            uint64 // runs of bytes (normally whole segments) that did not start an HTTP message
	PendingOverflow    uint64 // requests dropped because 64 were already waiting for a response
	HeadTooLarge       uint64 // heads longer than 64 KiB, whose rest was skipped
	UnmatchedResponses uint64 // responses with no request to pair with
}

// The reasons Stats count, in self-telemetry.
const (
	reasonNotHTTP         = "not_http"
	reasonPendingOverflow = "pending_overflow"
	reasonHeadTooLarge    = "head_too_large"
	reasonUnmatched       = "unmatched_response"
)

// Conn tracks one TCP connection of a watched process.
type Conn struct {
	role    protocols.Role
	given   protocols.Role // the role Reset was told, kept across Close
	streams [2]stream      // indexed by Direction
	pendingQueue
	h     protocols.Sink // the caller's, set only during Feed and Close
	tid   uint32         // the thread that moved the segment being fed
	stats Stats
	opts  *protocols.Options
	names semconv.HTTPNames

	// guesses counts the times the parser lost its place in the bytes
	// and went on by a guess; tests compare runs only when it did not.
	guesses uint64

	// The last Target and Host made into strings: a keep-alive connection
	// often repeats them, and reusing the string saves an allocation.
	lastTarget, lastHost string

	// up is an exchange upgraded to h2c, until it is handed over (see
	// upgrade.go); after is the count of the segment's bytes after the
	// run being consumed, to place where HTTP/2 begins.
	up    upgrade
	after int
}

// NewConn returns a Conn ready for its first segment, on a connection
// whose role it decides from the first request line.
func NewConn(opts *protocols.Options) *Conn {
	c := &Conn{opts: opts}
	c.streams[Inbound].dir = Inbound
	c.streams[Outbound].dir = Outbound
	return c
}

// Reset readies a Conn for another connection, as if it were new, except
// that it keeps what saves allocations: the room of its buffers and the
// last target and Host, which the next connection often repeats. role is
// the watched process's side, if known.
func (c *Conn) Reset(role protocols.Role) {
	c.stats = Stats{}
	c.guesses = 0
	c.role, c.given = role, role
	c.names.Forget()
	c.up = upgrade{}
}

// Stats returns what the connection discarded so far.
func (c *Conn) Stats() Stats { return c.stats }

// fail counts what was discarded, here and in the caller's self-telemetry.
func (c *Conn) fail(n *uint64, reason string) {
	*n++
	if c.h != nil {
		c.h.Failed(reason)
	}
}

// Feed consumes one segment; h is told synchronously of each request it
// starts and each exchange it completes, in request order. h must not call
// back into c.
func (c *Conn) Feed(dir protocols.Direction, seg *protocols.Segment, h protocols.Sink) {
	if dir > Outbound {
		return
	}
	c.h, c.tid = h, seg.Tid
	defer func() { c.h = nil }()
	c.releaseUpgrade() // an upgrade the latest Feed found, and nobody took
	s := &c.streams[dir]
	s.offer(seg)
	defer s.unclaimed()
	data, gap, tail := split(seg)
	if len(data) == 0 && gap == 0 {
		// A tail that covers the whole syscall is its data.
		data, tail = tail, nil
	}
	if len(data) > 0 {
		c.resync(s, data)
		c.after = seg.Len - len(data)
		c.consume(s, data, seg.Time)
	}
	if gap > 0 && !c.skip(s, gap, seg.Time) && s.st == stIdle {
		// A message starts somewhere in the gap: the tail is its middle.
		return
	}
	c.after = 0
	c.consume(s, tail, seg.Time)
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

// Close ends the connection at time ts: a response delimited by the close
// ends here, requests still waiting for a response are emitted with Status
// 0, and then the Conn is reset for a new connection (its Stats are kept).
func (c *Conn) Close(ts uint64, h protocols.Sink) {
	c.h = h
	defer func() { c.h = nil }()
	// The request side goes first: a request cut inside its head is queued
	// before the response side finishes what it can pair with it.
	first := Inbound
	if c.role == RoleClient {
		first = Outbound
	}
	c.closeStream(&c.streams[first], ts)
	c.closeStream(&c.streams[1-first], ts)
	for c.qHead < len(c.q) {
		c.popFront()
	}
	c.releaseUpgrade()
	c.role = c.given
	c.streams[Inbound].reset()
	c.streams[Outbound].reset()
	c.skipResponses = 0
	c.q, c.qHead = c.q[:0], 0
	if cap(c.q) > 8 {
		c.q = nil // a deep pipeline was the exception: do not keep its room
	}
}

// closeStream ends the message a stream was in the middle of.
func (c *Conn) closeStream(s *stream, ts uint64) {
	switch s.st {
	case stHead:
		if c.partialHead(s, s.last) {
			c.msgDone(s, s.last)
		}
	case stHeadSkip, stLength, stChunked, stChunkLost:
		c.msgDone(s, s.last)
	case stUntilClose:
		c.msgDone(s, max(ts, s.last))
	}
}

// accepts says which start lines may begin a message in direction dir.
func (c *Conn) accepts(dir protocols.Direction) (request, status bool) {
	switch c.role {
	case RoleServer:
		return dir == Inbound, dir == Outbound
	case RoleClient:
		return dir == Outbound, dir == Inbound
	}
	return true, true
}

// decideRole fixes the role once a request line was seen in direction dir.
// A head still arriving the other way can then only be a response.
func (c *Conn) decideRole(dir protocols.Direction) {
	c.role = RoleServer
	if dir == Outbound {
		c.role = RoleClient
	}
	o := &c.streams[1-dir]
	if o.st == stHead {
		o.line.req = rOff
		if o.line.rsp == sOff {
			o.abandon()
		}
	}
}
