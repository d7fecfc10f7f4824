package postgres

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// stream frames the messages of one direction.
type stream struct {
	frontend bool // the client's messages
	// untyped: the next message has no type byte (the client's first
	// messages: SSLRequest, StartupMessage, ...).
	untyped bool

	// The head of the message being read: its type and length, and for an
	// untyped message its code.
	hdr  [8]byte
	nhdr int

	in    bool   // inside a message's body
	typ   byte   // its type (0: untyped)
	code  int    // an untyped message's code
	size  int    // its body's length
	left  int    // body bytes still to come
	keep  int    // body bytes to keep
	body  []byte // the kept bytes
	cut   bool   // bytes the kept part needed were not seen
	start uint64 // Time of the segment with the message's first byte
	lastZ bool   // the latest message was a ReadyForQuery, and nothing followed it yet

	// lost: the framing is not known; bytes only pass through win, where
	// a point of certain framing is looked for at a segment's end.
	lost bool
	win  [16]byte
	nwin int

	// The thread and the kernel's context of the current segment, and of
	// the segment the current message began in.
	segTid   uint32
	segCtx   tracecontext.Chosen
	segID    uint64
	claimed  bool // segCtx went to a request
	msgTid   uint32
	msgSegID uint64
}

// reset forgets the direction's state, keeping the room of its buffer.
func (s *stream) reset() {
	frontend, body := s.frontend, s.body[:0]
	if cap(body) > keepBuf {
		body = nil
	}
	*s = stream{frontend: frontend, body: body}
}

// found marks the direction in step: the next byte starts a message.
func (s *stream) found() {
	s.lost, s.nwin = false, 0
	s.in, s.nhdr, s.lastZ = false, 0, false
}

// atBoundary says whether the next byte starts a message.
func (s *stream) atBoundary() bool { return !s.lost && !s.in && s.nhdr == 0 }

// offer notes the thread and the kernel's context of a new segment.
func (s *stream) offer(seg *protocols.Segment) {
	s.segTid, s.segCtx, s.claimed = seg.Tid, seg.Chosen, false
	s.segID++
}

// claim returns the thread and the kernel's context for a request whose
// first message is the current one: the context of the segment the
// message began in, if no request took it before.
func (s *stream) claim() (uint32, tracecontext.Chosen) {
	if s.msgSegID != s.segID || s.claimed {
		return s.msgTid, tracecontext.Chosen{}
	}
	s.claimed = true
	return s.msgTid, s.segCtx
}

// window returns the latest bytes seen while lost.
func (s *stream) window() []byte { return s.win[:s.nwin] }

// see appends b to the window of latest bytes.
func (s *stream) see(b []byte) {
	if len(b) >= len(s.win) {
		s.nwin = copy(s.win[:], b[len(b)-len(s.win):])
		return
	}
	if keep := len(s.win) - len(b); s.nwin > keep {
		copy(s.win[:], s.win[s.nwin-keep:s.nwin])
		s.nwin = keep
	}
	s.nwin += copy(s.win[s.nwin:], b)
}

// consume frames the bytes b of direction s, moved at time ts.
func (c *Conn) consume(s *stream, b []byte, ts uint64) {
	for len(b) > 0 && !c.ignore {
		switch {
		case s.lost:
			s.see(b)
			return
		case !s.in && s.nhdr == 0 && !s.frontend && c.oneByteAnswer() && c.answerByte(b[0]):
			b = b[1:]
		case !s.in:
			b = b[c.head(s, b, ts):]
		default:
			n := min(len(b), s.left)
			if !s.cut && len(s.body) < s.keep {
				s.body = append(s.body, b[:min(n, s.keep-len(s.body))]...)
			}
			s.left -= n
			b = b[n:]
			if s.left == 0 {
				c.finish(s, ts)
			}
		}
	}
}

// head reads a message's type and length from b, and returns how many
// bytes of b it took.
func (c *Conn) head(s *stream, b []byte, ts uint64) int {
	if s.nhdr == 0 {
		s.start = ts
		s.msgTid, s.msgSegID = s.segTid, s.segID
		s.lastZ = false
	}
	need := 5
	if s.untyped {
		need = 8
	}
	n := copy(s.hdr[s.nhdr:need], b)
	s.nhdr += n
	if s.nhdr < need {
		return n
	}
	s.nhdr = 0
	if s.untyped {
		s.typ, s.size, s.code = 0, be32(s.hdr[:])-8, be32(s.hdr[4:])
		if size, ok := untypedFrame(s.hdr[:8]); !ok || size == 0 {
			c.lose(s)
			return n
		}
	} else {
		s.typ, s.size = s.hdr[0], be32(s.hdr[1:])-4
		sizeOK := backendSizeOK
		if s.frontend {
			sizeOK = frontendSizeOK
		}
		if !sizeOK(s.typ, s.size+4) {
			c.lose(s)
			return n
		}
	}
	s.in, s.left, s.cut = true, s.size, false
	s.keep = min(s.size, keepFor(s.frontend, s.typ))
	s.body = s.body[:0]
	if s.left == 0 {
		c.finish(s, ts)
	}
	return n
}

// keepFor is how many body bytes of a message of type typ are kept: what
// the records need, and no more.
func keepFor(frontend bool, typ byte) int {
	if frontend {
		switch typ {
		case 0: // untyped: the startup parameters
			return maxStartup
		case 'Q':
			return maxText + 1
		case 'P':
			return maxName + 1 + maxText + 1
		case 'B':
			return 2 * (maxName + 1)
		case 'E', 'D', 'C':
			return 1 + maxName + 1
		}
		return 0
	}
	switch typ {
	case 'E':
		return maxError
	case 'Z':
		return 1
	}
	return 0
}

// finish hands on a message whose last byte was consumed.
func (c *Conn) finish(s *stream, ts uint64) {
	s.in = false
	cut := s.cut || s.keep < s.size
	if s.frontend {
		c.frontendMessage(s, cut, ts)
	} else {
		c.backendMessage(s, cut, ts)
	}
	if cap(s.body) > keepBuf {
		s.body = nil
	}
}

// skip steps over n bytes of direction s that were moved but not seen.
// It keeps the direction in step when they lie inside one message's body.
func (c *Conn) skip(s *stream, n int, ts uint64) {
	switch {
	case s.lost:
		s.nwin = 0 // the window holds only bytes that follow each other
	case s.in && s.nhdr == 0 && n <= s.left:
		if len(s.body) < s.keep {
			s.cut = true // the kept part has a hole: keep no more
		}
		s.left -= n
		if s.left == 0 {
			c.finish(s, ts)
		}
	default:
		c.lose(s)
	}
}

// lose gives up the framing of direction s.
func (c *Conn) lose(s *stream) {
	s.lost, s.nwin = true, 0
	s.in, s.nhdr, s.lastZ = false, 0, false
	c.fail(&c.stats.StreamLost, reasonStreamLost)
	if s.frontend && !c.copyIn {
		// What the lost bytes asked for cannot be known.
		c.stopPairing(false)
	}
}

// readyAt says whether the bytes that end a read, w, end with a
// ReadyForQuery that follows the end of another message, so that the next
// read starts a message; and whether the message before it says the
// operation that ends there succeeded: a CommandComplete (or a
// ParameterStatus, which follows a successful SET) ends with text and a
// NUL, an empty message (EmptyQueryResponse, PortalSuspended, NoData,
// ParseComplete ...) is its five bytes, while an ErrorResponse or a
// NoticeResponse ends with two NULs.
func readyAt(w []byte) (found, ok bool) {
	n := len(w)
	if n < 8 {
		return false, false
	}
	z := w[n-6:]
	if z[0] != 'Z' || z[1] != 0 || z[2] != 0 || z[3] != 0 || z[4] != 5 ||
		z[5] != 'I' && z[5] != 'T' && z[5] != 'E' {
		return false, false
	}
	if n >= 11 && w[n-10] == 0 && w[n-9] == 0 && w[n-8] == 0 && w[n-7] == 4 {
		switch w[n-11] {
		case 'I', 's', 'n', '1', '2', '3':
			return true, true
		}
	}
	if w[n-7] != 0 {
		return false, false
	}
	return true, w[n-8] != 0 && textByte(w[n-8])
}

// copyDoneAt says whether the bytes that end a write, w, end with
// CopyDone.
func copyDoneAt(w []byte) bool {
	n := len(w)
	return n >= 5 && w[n-5] == 'c' && w[n-4] == 0 && w[n-3] == 0 && w[n-2] == 0 && w[n-1] == 4
}
