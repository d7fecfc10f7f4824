package redis

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// Limits that bound the state of one connection.
const (
	maxPending   = 256       // commands waiting for a reply; more are dropped
	maxDepth     = 32        // aggregates nested in a reply
	maxItem      = 32        // bytes kept of a scalar
	maxInline    = 64 << 10  // bytes of an inline command (Redis's own limit)
	maxCount     = 1 << 32   // elements of one aggregate
	maxBulk      = 1 << 40   // bytes of one bulk string
	maxDB        = 1<<16 - 1 // the largest database index made a namespace
	maxQueryArgs = 32        // "?" written in db.query.text; more are "..."
	keepQueue    = 16        // a queue with more room is freed when idle
)

// The directions and roles, named here as the rest of the package uses them.
const (
	Inbound    = protocols.Inbound
	Outbound   = protocols.Outbound
	RoleServer = protocols.RoleServer
	RoleClient = protocols.RoleClient
)

// Stats count what a Conn could not report. They survive Close, so a
// caller may read them after closing.
type Stats struct {
	NotPaired  uint64 // connections not paired: seen from the middle, or on the server's side
	Lost       uint64 // times a direction lost its place (a gap, bytes that are not RESP, nesting too deep)
	Unreported uint64 // commands never reported, because pairing stopped
	Suppressed uint64 // commands whose replies the server suppressed (CLIENT REPLY)
	Overflow   uint64 // commands dropped because 256 were waiting
	Unmatched  uint64 // replies with no command to pair with: pairing stopped
	Ambiguous  uint64 // states in which pairing could not stay exact: pairing stopped
	OutOfBand  uint64 // pushes, pub/sub messages and MONITOR lines: not replies, not errors
}

// The reasons Stats count, in self-telemetry.
const (
	reasonMidStream  = "mid_stream"
	reasonServerSide = "server_side"
	reasonGap        = "gap"
	reasonBadCommand = "not_a_command"
	reasonBadReply   = "not_a_reply"
	reasonBadLength  = "bad_length"
	reasonBadLine    = "bad_line"
	reasonTooDeep    = "too_deep"
	reasonUnreported = "unreported_command"
	reasonSuppressed = "reply_suppressed"
	reasonOverflow   = "pending_overflow"
	reasonUnmatched  = "unmatched_reply"
	reasonAmbiguous  = "ambiguous_state"
)

// replyMode is whether the server replies, as CLIENT REPLY set it.
type replyMode uint8

const (
	replyOn   replyMode = iota
	replyOff            // CLIENT REPLY OFF: no reply until CLIENT REPLY ON
	replySkip           // CLIENT REPLY SKIP: no reply to the next command
)

// Conn tracks one TCP connection of a Redis client.
type Conn struct {
	opts    *protocols.Options
	given   protocols.Role
	streams [2]scanner // indexed by Direction
	h       protocols.Sink
	tid     uint32              // the thread that moved the segment being fed
	chosen  tracecontext.Chosen // the segment's context, until a command takes it
	stats   Stats
	why     string // why the connection is not paired, counted at its first segment

	queue

	// The connection as the commands sent so far leave it, if each one
	// succeeds: whether replies come, whether a transaction is open.
	qReply replyMode
	qTx    bool

	// The connection as the replies read so far leave it.
	proto        int // 2 or 3
	db           int64
	dbKnown      bool
	dbName       string
	inTx         bool
	monitor      bool
	ch, pat, sh  int64 // channels, patterns and shard channels subscribed
	execOn       bool  // reading the array EXEC answered
	execCur      int   // index in q of the next command whose result it holds
	execEnd      int   // index in q of EXEC
	execMismatch bool  // EXEC's array did not have one result per queued command

	cmdLost bool // the command direction lost its place: no new commands are queued
	dead    bool // nothing more is paired
	// counting is set when pairing stopped with the command direction in
	// step: the commands that follow are still read, to be counted as
	// unreported, until that direction loses its place too.
	counting bool

	texts    [8]queryText
	textNext int
}

// queryText is a db.query.text made for a command and its number of
// arguments: a connection often repeats them.
type queryText struct {
	cmd  *command
	args int64
	text string
}

// NewConn returns a Conn for a connection whose role is not known yet;
// call Reset with the role before its first segment.
func NewConn(opts *protocols.Options) *Conn {
	c := &Conn{opts: opts}
	c.Reset(protocols.RoleUnknown)
	return c
}

// Reset readies a Conn for another connection, keeping its queue's room
// and its query texts. role is the watched process's side, if known: only
// a client's connection seen from its start is paired.
func (c *Conn) Reset(role protocols.Role) {
	c.stats = Stats{}
	c.given = role
	c.restart()
}

// restart forgets the connection, keeping Stats and what saves
// allocations.
func (c *Conn) restart() {
	c.queue.reset()
	c.qReply, c.qTx = replyOn, false
	c.proto = 2
	c.setDB(0)
	c.inTx, c.monitor = false, false
	c.ch, c.pat, c.sh = 0, 0, 0
	c.execOn, c.execMismatch = false, false
	c.cmdLost, c.dead, c.counting = false, false, false
	c.streams[Outbound].reset(true)
	c.streams[Inbound].reset(false)
	c.why = ""
	switch c.given {
	case RoleClient:
	case RoleServer:
		c.dead, c.why = true, reasonServerSide
	default:
		c.dead, c.why = true, reasonMidStream
	}
}

// Stats returns what the connection could not report so far.
func (c *Conn) Stats() Stats { return c.stats }

// fail counts what was not reported, here and in the caller's
// self-telemetry.
func (c *Conn) fail(n *uint64, reason string) {
	*n++
	if c.h != nil {
		c.h.Failed(reason)
	}
}

// Feed consumes one segment; h is told synchronously of each command it
// starts and each operation it completes, in command order. h must not
// call back into c.
func (c *Conn) Feed(dir protocols.Direction, seg *protocols.Segment, h protocols.Sink) {
	if dir > Outbound {
		return
	}
	c.h = h
	defer func() { c.h = nil }()
	if c.why != "" {
		c.fail(&c.stats.NotPaired, c.why)
		c.why = ""
	}
	if c.dead && (dir != Outbound || !c.counting) {
		return
	}
	c.tid, c.chosen = seg.Tid, seg.Chosen
	s := &c.streams[dir]
	data, gap, tail := split(seg)
	if len(data) == 0 && gap == 0 {
		// A tail that covers the whole syscall is its data.
		data, tail = tail, nil
	}
	c.scan(s, data, seg.Time)
	if gap > 0 && !c.skip(s, gap, seg.Time) {
		return
	}
	c.scan(s, tail, seg.Time)
	c.chosen = tracecontext.Chosen{} // no later command may take it
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

// takeChosen hands the segment's context to the command that begins in it,
// and to no other.
func (c *Conn) takeChosen() tracecontext.Chosen {
	ch := c.chosen
	c.chosen = tracecontext.Chosen{}
	return ch
}

// Close ends the connection at time ts: commands still waiting for a
// reply are reported without one. What is fed after it, until Reset, is
// counted, not paired: a caller that lost events closes the connection and
// feeds on, in the middle of its stream. Stats are kept.
func (c *Conn) Close(ts uint64, h protocols.Sink) {
	c.h = h
	defer func() { c.h = nil }()
	if !c.dead {
		c.closeQueue()
	}
	// Bytes fed after a close without a Reset are those of a connection
	// that lost events (the caller closes it and feeds on): they are the
	// middle of a stream.
	c.given = protocols.RoleUnknown
	c.restart()
	if cap(c.q) > keepQueue {
		c.q = nil // a deep pipeline was the exception: do not keep its room
	}
}

// lose gives up on a direction whose place in the bytes is lost.
func (c *Conn) lose(s *scanner, reason string) {
	s.st = sLost
	c.fail(&c.stats.Lost, reason)
	if s.cmds {
		c.cmdLost = true
		c.stopIfDrained()
		return
	}
	c.stop()
}

// stop ends pairing on the connection: commands waiting for replies are
// counted, not reported.
func (c *Conn) stop() {
	if c.dead {
		return
	}
	c.dead = true
	for i := c.qHead; i < len(c.q); i++ {
		c.fail(&c.stats.Unreported, reasonUnreported)
	}
	c.queue.reset()
	c.execOn = false
	c.streams[Inbound].st = sLost
	c.counting = !c.cmdLost
	if !c.counting {
		c.streams[Outbound].st = sLost
	}
}

// ambiguous stops pairing where it could not stay exact.
func (c *Conn) ambiguous() {
	c.fail(&c.stats.Ambiguous, reasonAmbiguous)
	c.stop()
}

// stopIfDrained stops a connection whose command direction was lost once
// every command seen before was answered: later replies answer commands
// that were not seen.
func (c *Conn) stopIfDrained() {
	if c.cmdLost && c.qHead == len(c.q) {
		c.stop()
	}
}
