// Package http2 turns the bytes a watched process moves on one cleartext
// HTTP/2 connection (h2c, with prior knowledge or after an HTTP/1.1
// upgrade) into exchanges: one record per stream, a gRPC call when the
// stream carries one (content-type application/grpc), else an HTTP
// request and its response.
//
// # Frames and header blocks
//
// Frames are read per direction from their 9-byte headers; payloads are
// counted, not kept, except the header blocks (HEADERS, PUSH_PROMISE and
// CONTINUATION fragments, kept until the block ends, at most 256 KiB a
// block) and the few bytes of SETTINGS, RST_STREAM and GOAWAY. Header
// blocks are decoded in order with the dynamic table of their direction
// (package hpack), whose size follows the SETTINGS_HEADER_TABLE_SIZE the
// other side announced.
//
// # Lost state
//
// HPACK makes every header block depend on all the earlier ones of its
// direction. When a block may have been missed (a gap in a segment over a
// header block or over a frame header, a connection seen from its middle,
// a malformed block), the table of that direction is lost: fields that
// refer to its older entries are unknown, and a record says only what is
// certain. A method, path, status or gRPC status is never reported unless
// it was decoded; a stream whose kind (gRPC or plain HTTP) cannot be told
// is not reported at all (Stats.HeadersUnknown). The table is known in
// full again after a dynamic table size update to 0, or once the entries
// inserted since the loss fill it (see package hpack). A gap over a frame
// header loses the frame boundaries as well: the direction then waits for
// a segment captured whole that is a chain of well-formed frames ending
// exactly at its end (Stats.Resyncs), and streams open across the gap are
// reported without their end if gRPC calls, and not at all if HTTP
// requests (Stats.StreamEndsLost).
//
// # What the kernel must capture
//
// The kernel copies the first 4 KiB of each syscall and its last 16
// bytes. For HTTP/2 that loses any frame that starts past 4 KiB: a 16 KiB
// read holding a DATA frame and then a HEADERS frame loses the HEADERS,
// its table insertions, and with them the fields of later header blocks
// that refer to them (replaying grpc-go's 100 concurrent calls of 64 KiB
// with that capture keeps 3 calls of 101). What this package needs, on a
// connection detected as HTTP/2, for each read or write:
//
//   - walk the frame headers in the kernel from where the previous
//     syscall of the same socket and direction left off, keeping per
//     socket and direction: the bytes of the current frame still to come,
//     whether that frame is one whose payload is copied, and the bytes of
//     a frame header cut between two syscalls (at most 8); the walk is
//     bounded (256 frames a syscall, with bpf_loop);
//   - copy, with their offsets in the syscall's bytes, past the first
//     4 KiB (which are copied anyway): every frame header (9 bytes, and
//     the pad-length byte of a PADDED DATA frame), and the whole payload
//     of HEADERS, PUSH_PROMISE, CONTINUATION, SETTINGS, RST_STREAM and
//     GOAWAY frames, adjacent runs as one, up to 16 KiB of copies a
//     syscall;
//   - flag (and count) a syscall whose walk stopped short (frames over
//     the bound, copies over the budget, a frame length over 16 MiB): the
//     parser sees a gap there, and finds frames again by itself.
//
// The walk must go on through syscalls whose events are lost: their
// bytes still move the frame boundaries. Those copies reach the parser as
// Extents (FeedExtents, and Segment.Extents once the layer has it); the
// bytes between them are DATA payloads and other frames the parser only
// counts. Replayed with that capture, the same 101 calls are all whole.
//
// # Bounds
//
// Per connection, whatever the peer sends: at most 256 open streams (more
// are not tracked, Stats.StreamOverflow), one header block of at most 256
// KiB per direction in progress (a longer block, or a CONTINUATION chain
// that never ends, loses the block: Stats.BlockTooLarge), two HPACK tables
// of at most 64 KiB each (a larger announced table costs only the
// knowledge of its oldest entries), and header values kept up to 8 KiB
// (:path), 1 KiB (:authority) and 256 bytes (traceparent). A Conn copies
// what it keeps and never holds the caller's buffers. It never panics on
// what a peer sends. It is not safe for concurrent use.
package http2 // import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2"

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Limits that bound the state of one connection.
const (
	maxStreams     = 256       // open streams tracked
	maxBlock       = 256 << 10 // bytes of one header block kept
	keepBlock      = 16 << 10  // a block buffer larger than this is freed when done
	maxPath        = 8 << 10   // bytes of :path kept
	maxAuthority   = 1 << 10   // bytes of :authority kept
	maxMethod      = 20        // bytes of :method
	maxTraceparent = 256       // bytes of a traceparent kept
	maxTraceBin    = 128       // bytes of a grpc-trace-bin value read
	maxExtents     = 1024      // extents of one segment used; more are a gap
)

// The directions and roles, named here as the rest of the package uses them.
const (
	Inbound    = protocols.Inbound
	Outbound   = protocols.Outbound
	RoleServer = protocols.RoleServer
	RoleClient = protocols.RoleClient
)

// Stats count what a Conn could not make sense of. They survive Close.
type Stats struct {
	NoPreface       uint64 // connections whose client side did not begin with the preface (seen from their middle)
	FramingLost     uint64 // gaps over a frame header: frame boundaries lost
	Resyncs         uint64 // frame boundaries found again after a loss
	TablesLost      uint64 // header blocks missed or malformed: a direction's HPACK table lost
	BadFrames       uint64 // frames of a known type with a length the type forbids, or on the wrong stream
	BlockTooLarge   uint64 // header blocks over 256 KiB, or CONTINUATION chains that never end
	StreamOverflow  uint64 // streams not tracked because 256 were open
	HeadersUnknown  uint64 // streams not reported: their kind could not be decoded
	MethodUnknown   uint64 // streams reported without their method or path (fields lost)
	StreamEndsLost  uint64 // streams whose end a loss hid: reported (gRPC) or dropped (HTTP) at Close
	ValueTooLong    uint64 // header values longer than what is kept, treated as unknown
	PushIgnored     uint64 // server pushes, not reported
	UnmatchedFrames uint64 // response header blocks on streams with no request seen
}

// The reasons Stats count, in self-telemetry.
const (
	reasonNoPreface      = "no_preface"
	reasonFramingLost    = "framing_lost"
	reasonTableLost      = "hpack_table_lost"
	reasonBadFrame       = "bad_frame"
	reasonBlockTooLarge  = "header_block_too_large"
	reasonStreamOverflow = "stream_overflow"
	reasonHeadersUnknown = "headers_unknown"
	reasonMethodUnknown  = "method_unknown"
	reasonStreamEndLost  = "stream_end_lost"
	reasonValueTooLong   = "header_value_too_long"
	reasonPush           = "push_ignored"
	reasonUnmatched      = "unmatched_response"
)

// Conn tracks one HTTP/2 connection of a watched process.
type Conn struct {
	role  protocols.Role
	given protocols.Role // the role Reset was told, kept across Close
	sides [2]side        // indexed by Direction
	streams
	h       protocols.Sink // the caller's, set only during Feed and Close
	stats   Stats
	opts    *protocols.Options
	methods *semconv.RPCMethods
	names   semconv.HTTPNames

	pieces []Extent // scratch: the known parts of the segment at hand

	// The last strings made of a :path and an :authority: a connection
	// repeats them, and reusing the string saves an allocation.
	lastPath, lastAuthority string
}

// NewConn returns a Conn ready for its first segment. methods bounds the
// rpc.method values of its calls (nil: unbounded).
func NewConn(opts *protocols.Options, methods *semconv.RPCMethods) *Conn {
	c := &Conn{opts: opts, methods: methods}
	c.Reset(protocols.RoleUnknown)
	return c
}

// Reset readies a Conn for another connection, as if it were new, except
// that it keeps the room of its buffers. role is the watched process's
// side, if known.
func (c *Conn) Reset(role protocols.Role) {
	c.stats = Stats{}
	c.role, c.given = role, role
	c.names.Forget()
	c.restart()
}

// restart readies the parser for a connection's first bytes, keeping its
// role and Stats.
func (c *Conn) restart() {
	c.role = c.given
	for d := range c.sides {
		c.sides[d].reset(protocols.Direction(d))
	}
	c.streams.reset()
}

// Stats returns what the connection could not make sense of so far.
func (c *Conn) Stats() Stats { return c.stats }

// fail counts what was lost, here and in the caller's self-telemetry.
func (c *Conn) fail(n *uint64, reason string) {
	*n++
	if c.h != nil {
		c.h.Failed(reason)
	}
}

// Feed consumes one segment; h is told synchronously of each stream that
// starts and each one that ends. h must not call back into c. Besides its
// captured prefix (Data) and Tail, the segment's Extents are runs of its
// bytes the kernel captured at known offsets (see the package doc on what
// the kernel must capture).
func (c *Conn) Feed(dir protocols.Direction, seg *protocols.Segment, h protocols.Sink) {
	c.feed(dir, seg, seg.Extents, h)
}

// FeedExtents is Feed with the extents given beside the segment.
func (c *Conn) FeedExtents(dir protocols.Direction, seg *protocols.Segment, ext []Extent, h protocols.Sink) {
	c.feed(dir, seg, ext, h)
}

func (c *Conn) feed(dir protocols.Direction, seg *protocols.Segment, ext []Extent, h protocols.Sink) {
	if dir > Outbound {
		return
	}
	c.h = h
	defer func() { c.h = nil }()
	s := &c.sides[dir]
	s.enter(seg)
	c.pieces = known(c.pieces[:0], seg, ext)
	if s.st == stStart {
		c.begin(s)
	}
	if s.st == stLost && !c.resync(s, seg) {
		return
	}
	pos := 0
	for _, p := range c.pieces {
		if p.Off > pos {
			c.gap(s, p.Off-pos)
		}
		c.consume(s, p.Data)
		pos = p.Off + len(p.Data)
	}
	if seg.Len > pos {
		c.gap(s, seg.Len-pos)
	}
	clear(c.pieces) // let the caller's buffers go
}

// Close ends the connection: streams still open are reported without the
// rest of their response (HTTP/2 responses are never delimited by the
// close, so ts is not needed), and the Conn is reset for a new connection
// (its Stats are kept).
func (c *Conn) Close(_ uint64, h protocols.Sink) {
	c.h = h
	defer func() { c.h = nil }()
	c.closeStreams()
	c.restart()
}

// clientSide returns the side that carries the client's frames, or nil
// while the role is not known.
func (c *Conn) clientSide() *side {
	switch c.role {
	case RoleServer:
		return &c.sides[Inbound]
	case RoleClient:
		return &c.sides[Outbound]
	}
	return nil
}

// decideRole fixes the role from the direction that carried the client's
// preface (client true) or the server's first SETTINGS.
func (c *Conn) decideRole(dir protocols.Direction, client bool) {
	if c.role != protocols.RoleUnknown {
		return
	}
	if (dir == Inbound) == client {
		c.role = RoleServer
	} else {
		c.role = RoleClient
	}
}
