package http1

import (
	"bytes"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// state is where a stream is within the message it carries.
type state uint8

const (
	stIdle       state = iota // between messages: the next byte starts one
	stHead                    // start line and header fields arriving
	stHeadSkip                // the rest of a head that was not captured or kept
	stLength                  // body of known length
	stChunked                 // chunked body, in step with its framing
	stChunkLost               // chunked body whose framing a gap hid: wait for its end
	stUntilClose              // response body that ends when the connection closes
	stTunnel                  // the connection switched protocols: nothing is HTTP any more
)

// frame is how the body of a message is delimited.
type frame uint8

const (
	frameNone frame = iota
	frameLength
	frameChunked
	frameClose
	frameTunnel // no body, and the connection stops being HTTP after the message
)

// stream parses the messages of one direction.
type stream struct {
	dir   protocols.Direction
	st    state
	line  startLine
	buf   []byte // the head so far, when it did not arrive in one segment
	scan  int    // where to resume looking for the end of the head in buf
	frame frame
	start uint64 // Time of the segment with the message's first byte
	last  uint64 // Time of the latest segment with bytes of the message
	left  int64  // body bytes left (length) or chunk data bytes left (chunked)
	body  int64  // body bytes counted so far
	cs    chunkState
	hex   uint8 // hex digits of the chunk size read so far

	// win holds the latest bytes of a byte run, to find a delimiter that
	// straddles two segments while skipping.
	win [8]byte
	wl  int

	resp    bool   // the message is a response
	partial bool   // part of its head was not seen
	tracked bool   // the message belongs to a pending exchange
	seq     uint64 // that exchange

	tid uint32 // the thread that moved the message's first bytes
	// chosen is what the kernel chose for the request the current segment
	// begins (or goes on with), until that request's head takes it.
	chosen tracecontext.Chosen
}

// offer keeps the kernel's context of seg for the request it begins: the
// one that starts in it, or the one whose head it goes on with (a Go server
// may read a request's first byte alone; the kernel recognises the request
// in the next read). Bytes in the middle of a body cannot begin a request.
func (s *stream) offer(seg *protocols.Segment) {
	if seg.Chosen.Kind != tracecontext.NotChosen && (s.st == stIdle || s.st == stHead) {
		s.chosen = seg.Chosen
	}
}

// unclaimed drops a context no request took in its segment: it belongs to
// no later one.
func (s *stream) unclaimed() {
	if s.st == stIdle {
		s.chosen = tracecontext.Chosen{}
	}
}

// reset forgets the message in progress, keeping a small buffer for reuse.
func (s *stream) reset() {
	dir, buf := s.dir, s.buf[:0]
	if cap(buf) > keepBuf {
		buf = nil
	}
	*s = stream{dir: dir, buf: buf}
}

// abandon drops a message that turned out not to be one.
func (s *stream) abandon() {
	s.st = stIdle
	s.chosen = tracecontext.Chosen{}
	s.buf = s.buf[:0]
	s.tracked = false
}

// remember keeps the last bytes of the run ending with d.
func (s *stream) remember(d []byte) {
	const keep = 6
	if len(d) >= keep {
		s.wl = copy(s.win[:], d[len(d)-keep:])
		return
	}
	var all [16]byte
	n := copy(all[:], s.win[:s.wl])
	n += copy(all[n:], d)
	s.wl = copy(s.win[:], all[max(0, n-keep):n])
}

// findAcross looks for pat in the run made of the remembered bytes w and
// then d, and returns the index in d just after the first match, or -1.
func findAcross(w, d, pat []byte) int {
	if len(w) > 0 && len(d) > 0 {
		var both [16]byte
		n := copy(both[:], w)
		m := copy(both[n:], d[:min(len(d), len(pat)-1)])
		if i := bytes.Index(both[:n+m], pat); i >= 0 && i+len(pat) > n {
			return i + len(pat) - n
		}
	}
	if i := bytes.Index(d, pat); i >= 0 {
		return i + len(pat)
	}
	return -1
}

var (
	crlfcrlf   = []byte("\r\n\r\n")
	lastChunk  = []byte("\n0\r\n\r\n") // the zero chunk after a previous chunk's CRLF
	zeroChunk  = []byte("0\r\n\r\n")
	headMarker = len(crlfcrlf)
)

// consume runs captured bytes, contiguous with what the stream saw last,
// through the stream's states.
func (c *Conn) consume(s *stream, d []byte, ts uint64) {
	for len(d) > 0 {
		switch s.st {
		case stIdle:
			d = c.begin(s, d, ts)
		case stHead:
			d = c.head(s, d, ts)
		case stHeadSkip:
			d = c.headSkip(s, d, ts)
		case stLength:
			d = c.length(s, d, ts)
		case stChunked:
			d = c.chunked(s, d, ts)
		case stChunkLost:
			d = c.chunkLost(s, d, ts)
		case stUntilClose:
			s.body += int64(len(d))
			s.last = ts
			d = nil
		default: // stTunnel
			c.switchAt(len(d))
			d = nil
		}
	}
	c.switchAt(0)
}

// resync ends a message whose end the stream could not see, when a segment
// starts with a start line of the kind the stream carries. Only messages
// whose framing is already in doubt are ended so; a body of known length is
// never cut.
func (c *Conn) resync(s *stream, d []byte) {
	switch s.st {
	case stHeadSkip, stChunkLost:
	case stUntilClose:
		// A response delimited by close cannot be followed by another
		// one, unless a later request shows it was not close-delimited.
		if !c.hasUnanswered() {
			return
		}
	default:
		return
	}
	var l startLine
	l.init(c.accepts(s.dir))
	if v := l.scan(d[:min(len(d), maxHead)]); v == lineRequest || v == lineStatus {
		c.guesses++
		c.msgDone(s, s.last)
	}
}

// begin starts a message at d, after any empty lines between messages.
func (c *Conn) begin(s *stream, d []byte, ts uint64) []byte {
	i := 0
	for i < len(d) && (d[i] == '\r' || d[i] == '\n') {
		i++
	}
	if i == len(d) {
		return nil
	}
	s.st = stHead
	s.tid = c.tid
	s.line.init(c.accepts(s.dir))
	s.buf = s.buf[:0]
	s.scan = 0
	s.start, s.last = ts, ts
	s.body, s.left = 0, 0
	s.partial, s.tracked, s.resp = false, false, false
	return d[i:]
}

// head takes bytes of a head. A head that arrives whole in one segment is
// parsed where it lies; otherwise it is copied into the stream's buffer.
func (c *Conn) head(s *stream, d []byte, ts uint64) []byte {
	s.last = ts
	if len(s.buf) == 0 {
		fast := d[:min(len(d), maxHead)]
		switch c.scanLine(s, fast) {
		case lineBad:
			return c.notHTTP(s)
		case lineRequest, lineStatus:
			// Finding the blank line and reading the fields is one pass.
			var f fields
			if n := f.parse(fast[s.line.pos:]); n >= 0 {
				e := s.line.pos + n
				c.headDone(s, fast[:e], &f, ts, false)
				return d[e:]
			}
		}
	}
	return c.bufferHead(s, d, ts)
}

// bufferHead appends d to the buffered head, up to maxHead bytes.
func (c *Conn) bufferHead(s *stream, d []byte, ts uint64) []byte {
	old := len(s.buf)
	take := min(len(d), maxHead-old)
	s.buf = append(s.buf, d[:take]...)
	switch c.scanLine(s, s.buf) {
	case lineBad:
		return c.notHTTP(s)
	case lineRequest, lineStatus:
		from := max(s.scan, s.line.pos-2)
		if e := headEnd(s.buf, from); e >= 0 {
			s.buf = s.buf[:e]
			c.headDone(s, s.buf, nil, ts, false)
			return d[max(0, e-old):]
		}
		s.scan = max(from, len(s.buf)-headMarker+1)
	}
	if len(s.buf) < maxHead {
		return d[take:]
	}
	// The head is too large to keep: what was kept is parsed, and the
	// rest of the head is skipped as if it had not been captured.
	c.fail(&c.stats.HeadTooLarge, reasonHeadTooLarge)
	if !c.partialHead(s, ts) {
		return c.notHTTP(s)
	}
	s.remember(s.buf)
	return d[take:]
}

// headEnd returns the index just after the "\r\n\r\n" that ends a head,
// searching b from index from, or -1.
func headEnd(b []byte, from int) int {
	from = max(from, 0)
	if from >= len(b) {
		return -1
	}
	if i := bytes.Index(b[from:], crlfcrlf); i >= 0 {
		return from + i + headMarker
	}
	return -1
}

// scanLine checks the start line so far; a request line decides the role
// of a connection that has none yet.
func (c *Conn) scanLine(s *stream, b []byte) lineVerdict {
	v := s.line.scan(b)
	if v == lineRequest && c.role == 0 {
		c.decideRole(s.dir)
	}
	return v
}

// notHTTP discards a message that did not start like one.
func (c *Conn) notHTTP(s *stream) []byte {
	c.fail(&c.stats.NotHTTP, reasonNotHTTP)
	s.abandon()
	return nil
}

// partialHead ends a head that will not be seen whole, when enough of its
// start line was seen to tell what it is. The stream then skips the rest.
func (c *Conn) partialHead(s *stream, ts uint64) bool {
	if !s.line.usable(len(s.buf)) {
		s.abandon()
		return false
	}
	if s.line.isRequest() && c.role == 0 {
		c.decideRole(s.dir)
	}
	c.headDone(s, s.buf, nil, ts, true)
	s.wl = 0
	return true
}

// headDone handles a complete head, or as much of one as will be seen
// (partial): it records the exchange and decides how the body is framed.
// f holds the head's fields when the caller has read them already.
func (c *Conn) headDone(s *stream, head []byte, f *fields, ts uint64, partial bool) {
	if f == nil {
		f = new(fields) // does not escape: stays on the stack
		f.parse(head[min(s.line.pos, len(head)):])
	}
	s.partial = partial
	if s.line.isRequest() {
		c.requestHead(s, head, f)
	} else {
		c.responseHead(s, f)
	}
	if partial {
		c.guesses++
		s.st = stHeadSkip
		return
	}
	c.enterBody(s, ts)
}

// headSkip looks for the end of a head whose middle was not kept.
func (c *Conn) headSkip(s *stream, d []byte, ts uint64) []byte {
	s.last = ts
	if i := findAcross(s.win[:s.wl], d, crlfcrlf); i >= 0 {
		s.wl = 0
		c.enterBody(s, ts)
		return d[i:]
	}
	s.remember(d)
	return nil
}

// enterBody moves past a head, to its body or straight to the next message.
func (c *Conn) enterBody(s *stream, ts uint64) {
	switch s.frame {
	case frameLength:
		s.st = stLength
	case frameChunked:
		s.st, s.cs, s.left, s.hex = stChunked, csSize, 0, 0
	case frameClose:
		s.st = stUntilClose
	case frameTunnel:
		c.msgDone(s, ts)
		c.tunnel()
	default:
		c.msgDone(s, ts)
	}
}

// tunnel stops parsing: after 101 Switching Protocols or a successful
// CONNECT the bytes belong to another protocol until the connection closes.
func (c *Conn) tunnel() {
	for i := range c.streams {
		s := &c.streams[i]
		if s.st != stIdle && s.st != stTunnel {
			c.msgDone(s, s.last)
		}
		s.st = stTunnel
	}
}

// length takes bytes of a body of known length.
func (c *Conn) length(s *stream, d []byte, ts uint64) []byte {
	s.last = ts
	n := min(int64(len(d)), s.left)
	s.left -= n
	s.body += n
	if s.left == 0 {
		c.msgDone(s, ts)
	}
	return d[n:]
}

// chunkLost looks for the zero chunk that ends a chunked body whose framing
// was lost; every byte until then is counted as body.
func (c *Conn) chunkLost(s *stream, d []byte, ts uint64) []byte {
	s.last = ts
	i := findAcross(s.win[:s.wl], d, lastChunk)
	if i < 0 && s.wl == 0 && bytes.HasPrefix(d, zeroChunk) {
		// Nothing before d is known, so it may start with the zero chunk.
		i = len(zeroChunk)
	}
	if i >= 0 {
		s.body += int64(i)
		s.wl = 0
		c.msgDone(s, ts)
		return d[i:]
	}
	s.body += int64(len(d))
	s.remember(d)
	return nil
}

// skip accounts for n bytes that moved but were not captured. It reports
// whether the stream still knows where it is, so that the bytes after the
// gap may be parsed; a stream that lost track is left idle (the bytes after
// the gap are the middle of an unknown message), or in a state that only
// looks for a delimiter.
func (c *Conn) skip(s *stream, n int, ts uint64) bool {
	gap := int64(n)
	switch s.st {
	case stIdle:
		c.guesses++
		return false
	case stHead:
		c.partialHead(s, ts)
		return false
	case stHeadSkip, stChunkLost:
		s.last = ts
		if s.st == stChunkLost {
			s.body += gap
		}
		s.wl = 0
		return false
	case stLength:
		s.last = ts
		if gap < s.left {
			s.left -= gap
			s.body += gap
			return true
		}
		inStep := gap == s.left
		if !inStep {
			c.guesses++
		}
		s.body += s.left
		s.left = 0
		c.msgDone(s, ts)
		return inStep
	case stChunked:
		s.last = ts
		if s.cs == csData && gap <= s.left {
			s.left -= gap
			s.body += gap
			if s.left == 0 {
				s.cs = csDataCR
			}
			return true
		}
		c.guesses++
		s.st = stChunkLost
		s.body += gap
		s.wl = 0
		return false
	case stUntilClose:
		s.last = ts
		s.body += gap
		return true
	}
	return true // stTunnel
}

// msgDone ends the stream's message with its last byte at time end.
func (c *Conn) msgDone(s *stream, end uint64) {
	end = max(end, s.start)
	if s.tracked {
		if p := c.entry(s.seq); p != nil {
			if s.resp {
				p.respDone = true
				p.x.ResponseEnd = end
				p.x.ResponseBodySize = s.body
			} else {
				p.reqDone = true
				p.x.RequestEnd = end
				p.x.RequestBodySize = s.body
			}
		}
	}
	s.st = stIdle
	s.tracked = false
	s.body, s.left = 0, 0
	s.wl = 0
	// A large buffer served one large head; most connections never need
	// it again, so it is not kept.
	if cap(s.buf) > keepBuf {
		s.buf = nil
	} else {
		s.buf = s.buf[:0]
	}
	c.flush()
}
