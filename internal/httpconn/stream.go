package httpconn

import "bytes"

// state is where a stream is within the message it is reading.
type state uint8

const (
	stIdle       state = iota // between messages
	stHead                    // a head is arriving, buffered in buf
	stBody                    // a Content-Length body: remaining bytes
	stChunkSize               // a chunk-size line, buffered in line
	stChunkData               // remaining bytes of chunk data
	stChunkCRLF               // the line end after chunk data
	stTrailers                // trailer lines up to an empty one
	stChunkLost               // a chunked body whose framing a gap hid: ends at "0\r\n\r\n" at a segment's end
	stUntilClose              // a body that ends when the connection does
	stSkip                    // the rest of this segment is not HTTP
)

// framing is how the body of a message is delimited.
type framing struct {
	kind   framingKind
	length int64
}

type framingKind uint8

const (
	noBody framingKind = iota
	byLength
	byChunks
	byClose
	stopParsing // the connection stops speaking HTTP/1 (upgrade, tunnel)
)

// sink receives the messages a stream reads.
type sink interface {
	// head is called when a message's head was read; partial when a gap or
	// the size bound cut it. It says how the body is framed.
	head(s *stream, h *head, partial bool) framing
	// done is called when the message (head and body) ended.
	done(s *stream)
}

// stream reads the messages of one direction of a connection.
type stream struct {
	request   bool // reads requests (else responses)
	st        state
	buf       []byte // head bytes so far
	line      []byte // chunk-size or trailer line so far
	remaining int64
	start     uint64 // time of the message's first byte
	last      uint64 // time of its latest byte
	bodySize  int64
	stopped   bool
	stats     *Stats
}

const maxLine = 1024

func (s *stream) reset(request bool) {
	*s = stream{request: request, buf: s.buf[:0], line: s.line[:0], stats: s.stats}
}

// feed reads one segment.
func (s *stream) feed(seg Segment, k sink) {
	if s.stopped {
		return
	}
	if s.st == stSkip {
		s.st = stIdle // resynchronise at segment starts only
	}
	data := seg.Data
	gap := int64(seg.Len - len(data))
	for len(data) > 0 && s.st != stSkip && !s.stopped {
		data = data[s.step(data, seg.Time, k):]
	}
	if gap > 0 && !s.stopped {
		s.skipGap(gap, seg.Time, k)
	}
	if s.st == stChunkLost {
		end := seg.Data
		if gap > 0 {
			end = seg.Tail
		}
		if bytes.HasSuffix(end, []byte("0\r\n\r\n")) {
			s.finish(k)
		}
	}
}

// step consumes some bytes of data in the current state and returns how many.
func (s *stream) step(data []byte, t uint64, k sink) int {
	switch s.st {
	case stIdle:
		s.start, s.last, s.bodySize, s.buf = t, t, 0, s.buf[:0]
		return s.headBytes(data, t, k)
	case stHead:
		return s.headBytes(data, t, k)
	case stBody, stChunkData:
		n := int(min(s.remaining, int64(len(data))))
		s.remaining -= int64(n)
		s.bodySize += int64(n)
		s.last = t
		if s.remaining == 0 {
			if s.st == stBody {
				s.finish(k)
			} else {
				s.st = stChunkCRLF
			}
		}
		return n
	case stChunkCRLF:
		return s.chunkCRLF(data, t)
	case stChunkSize, stTrailers:
		return s.lineBytes(data, t, k)
	default: // stUntilClose, stChunkLost
		if s.st == stUntilClose {
			s.bodySize += int64(len(data))
		}
		s.last = t
		return len(data)
	}
}

// headBytes reads head bytes. A head that arrives whole in one segment is
// parsed in place; only heads split across segments are copied.
func (s *stream) headBytes(data []byte, t uint64, k sink) int {
	s.last = t
	if s.st == stIdle {
		if end := headEnd(data); end >= 0 && s.check(data) == valid {
			s.parsed(data[:end], false, k)
			return end
		}
	}
	old := len(s.buf)
	take := min(len(data), MaxHead-old)
	s.buf = append(s.buf, data[:take]...)
	s.st = stHead
	switch s.check(s.buf) {
	case invalid:
		s.stats.NotHTTP++
		s.st = stSkip
		return len(data)
	case needMore:
		return take
	}
	if end := headEnd(s.buf[max(0, old-3):]); end >= 0 {
		end += max(0, old-3)
		s.parsed(s.buf[:end], false, k)
		return end - old
	}
	if len(s.buf) >= MaxHead {
		s.stats.HeadTooLarge++
		s.parsed(s.buf, true, k)
		return len(data)
	}
	return take
}

func (s *stream) check(b []byte) verdict {
	if s.request {
		return checkRequestLine(b)
	}
	return checkStatusLine(b)
}

// parsed hands a head to the sink and frames the body.
func (s *stream) parsed(b []byte, partial bool, k sink) {
	h := parseHead(b, s.request)
	f := k.head(s, &h, partial)
	s.buf = s.buf[:0]
	if partial {
		// Where a cut head ends is unknown, so is its body: the message ends
		// here and the rest of the segment is skipped.
		s.finish(k)
		s.st = stSkip
		s.stopped = f.kind == stopParsing
		return
	}
	switch f.kind {
	case byLength:
		if f.length == 0 {
			s.finish(k)
			return
		}
		s.st, s.remaining = stBody, f.length
	case byChunks:
		s.st, s.line = stChunkSize, s.line[:0]
	case byClose:
		s.st = stUntilClose
	case stopParsing:
		s.stopped = true
		s.finish(k)
	default:
		s.finish(k)
	}
}

func (s *stream) finish(k sink) {
	s.st = stIdle
	k.done(s)
}

// chunkCRLF reads the line end after chunk data: "\r\n", or a bare "\n".
func (s *stream) chunkCRLF(data []byte, t uint64) int {
	s.last = t
	i := 0
	if data[0] == '\r' {
		i = 1
		if len(data) == 1 {
			return 1
		}
	}
	if data[i] != '\n' {
		s.st = stChunkLost
		return 0
	}
	s.st, s.line = stChunkSize, s.line[:0]
	return i + 1
}

// lineBytes reads a chunk-size or trailer line, which may arrive in pieces.
func (s *stream) lineBytes(data []byte, t uint64, k sink) int {
	s.last = t
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		if len(s.line)+len(data) > maxLine {
			s.st = stChunkLost
		} else {
			s.line = append(s.line, data...)
		}
		return len(data)
	}
	line := data[:i]
	if len(s.line) > 0 {
		s.line = append(s.line, line...)
		line = s.line
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if s.st == stTrailers {
		if len(line) == 0 {
			s.finish(k)
		}
	} else if size, ok := parseChunkSize(line); !ok {
		s.st = stChunkLost
	} else if size == 0 {
		s.st = stTrailers
	} else {
		s.st, s.remaining = stChunkData, size
	}
	s.line = s.line[:0]
	return i + 1
}

// parseChunkSize reads the hex size of a chunk-size line, ignoring chunk
// extensions.
func parseChunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// skipGap accounts for bytes that moved but were not captured.
func (s *stream) skipGap(gap int64, t uint64, k sink) {
	switch s.st {
	case stHead:
		if s.check(s.buf) == valid {
			s.parsed(s.buf, true, k)
		} else {
			s.st = stSkip
		}
	case stBody:
		s.last = t
		n := min(gap, s.remaining)
		s.remaining -= n
		s.bodySize += n
		if s.remaining == 0 {
			s.finish(k)
		}
	case stChunkData:
		s.last = t
		if gap <= s.remaining {
			s.remaining -= gap
			s.bodySize += gap
			if s.remaining == 0 {
				s.st = stChunkCRLF
			}
		} else {
			s.bodySize += s.remaining
			s.st = stChunkLost
		}
	case stChunkSize, stChunkCRLF, stTrailers:
		s.last = t
		s.st = stChunkLost
	case stUntilClose:
		s.last = t
		s.bodySize += gap
	case stChunkLost:
		s.last = t
	}
}
