package redis

import (
	"bytes"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// scanState is where a scanner is in the value it reads.
type scanState uint8

const (
	sType   scanState = iota // the next byte is a type byte
	sLine                    // the rest of a line after its type byte
	sBulk                    // a bulk payload, then its CRLF
	sInline                  // an inline command, up to its LF
	sLost                    // lost its place: reads nothing more
)

// level is an aggregate being read.
type level struct {
	typ  byte
	left int64 // elements left; -1 for a streamed aggregate, which ends with '.'
	idx  int64 // index of the next element
}

// item is the first bytes of a scalar: a line's text, or a bulk string's
// payload.
type item struct {
	b    [maxItem]byte
	n    int   // bytes kept
	size int64 // bytes in all
}

func (it *item) reset() { it.n, it.size = 0, 0 }

// add keeps the first bytes of d and counts all of them.
func (it *item) add(d []byte) {
	if it.n < len(it.b) {
		it.n += copy(it.b[it.n:], d)
	}
	it.size += int64(len(d))
}

func (it *item) addByte(ch byte) {
	if it.n < len(it.b) {
		it.b[it.n] = ch
		it.n++
	}
	it.size++
}

// bytes returns the kept bytes.
func (it *item) bytes() []byte { return it.b[:it.n] }

// whole reports whether the kept bytes are the whole scalar.
func (it *item) whole() bool { return int64(it.n) == it.size }

// is reports whether the scalar is s, ignoring ASCII case.
func (it *item) is(s string) bool {
	return it.whole() && equalFold(it.bytes(), s)
}

// equalFold reports whether b is s, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x >= 'a' && x <= 'z' {
			x -= 'a' - 'A'
		}
		if y >= 'a' && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// validInteger reports whether the scalar is a signed decimal integer, of
// any size.
func (it *item) validInteger() bool {
	b := it.bytes()
	if !it.whole() || len(b) == 0 {
		return false
	}
	if b[0] == '-' || b[0] == '+' {
		b = b[1:]
	}
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	return len(b) > 0
}

// integer parses the scalar as a decimal integer.
func (it *item) integer() (int64, bool) {
	if !it.whole() || it.n == 0 || it.n > 19 {
		return 0, false
	}
	b := it.bytes()
	neg := b[0] == '-'
	if neg || b[0] == '+' {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var v int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		v = v*10 + int64(ch-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// scanner frames the RESP values of one direction, incrementally: a value
// may arrive in many segments, and a segment may hold many values. It
// keeps the first bytes of the few scalars the stitcher reads and counts
// the rest without keeping it.
type scanner struct {
	st     scanState
	cmds   bool // carries commands: arrays of bulk strings, or inline commands
	typ    byte // type of the value being read
	chunks bool // inside a streamed string: the next values are ';' chunks
	cr     bool // the last byte of the line so far was '\r'
	left   int64
	depth  int
	stack  [maxDepth]level
	cur    item // the scalar being read

	// The message (top-level value, with any attribute before it) being
	// read.
	busy   bool
	start  uint64 // Time of the segment with its first byte
	tid    uint32
	chosen tracecontext.Chosen
	top    byte  // type of the top-level value, 0 until its type byte
	n      int64 // elements of a top-level aggregate (-1: null); inline: words
	val    item  // a top-level scalar
	args   [3]item
	argTyp [3]byte // types of the first three elements; 0 for an aggregate

	// An inline command's words.
	quote  byte // the quote that opened the current word, or 0
	esc    bool // the previous byte was a backslash inside double quotes
	inWord bool
	size   int // bytes of the line so far
}

// reset forgets everything, for a new connection.
func (s *scanner) reset(cmds bool) { *s = scanner{cmds: cmds} }

// begin starts a message at the current segment.
func (s *scanner) begin(ts uint64, tid uint32) {
	s.busy = true
	s.start, s.tid = ts, tid
	s.chosen = tracecontext.Chosen{}
	s.top, s.n = 0, 0
	s.argTyp = [3]byte{}
	for i := range s.args {
		s.args[i].reset()
	}
	s.val.reset()
}

// Reply types, by their first byte (RESP2 and RESP3).
func replyType(b byte) bool {
	switch b {
	case '+', '-', ':', '$', '*', '_', ',', '#', '!', '=', '(', '%', '~', '>', '|':
		return true
	}
	return false
}

// maxLength is the longest line that holds a length or an integer.
const maxLength = 24

// numeric says whether the line of a value of type t holds a number that
// must be short.
func numeric(t byte) bool {
	switch t {
	case '+', '-', ',', '(':
		return false
	}
	return true
}

// scan runs bytes contiguous with what s saw last through its states.
func (c *Conn) scan(s *scanner, d []byte, ts uint64) {
	for len(d) > 0 {
		switch s.st {
		case sType:
			d = c.typeByte(s, d, ts)
		case sLine:
			d = c.line(s, d, ts)
		case sBulk:
			d = c.bulk(s, d, ts)
		case sInline:
			d = c.inline(s, d, ts)
		default: // sLost
			return
		}
	}
}

// typeByte reads the byte that starts a value.
func (c *Conn) typeByte(s *scanner, d []byte, ts uint64) []byte {
	b := d[0]
	if !s.busy {
		s.begin(ts, c.tid)
		if s.cmds {
			s.chosen = c.takeChosen()
			if b != '*' {
				s.st, s.quote, s.esc, s.inWord, s.size = sInline, 0, false, false, 0
				return d
			}
		}
	}
	switch {
	case s.cmds:
		// A command is an array of bulk strings; Redis closes the
		// connection on anything else.
		if (s.depth == 0) != (b == '*') || (s.depth == 1 && b != '$') {
			c.lose(s, reasonBadCommand)
			return nil
		}
	case s.chunks:
		if b != ';' {
			c.lose(s, reasonBadReply)
			return nil
		}
	case b == '.':
		if s.depth == 0 || s.stack[s.depth-1].left != -1 {
			c.lose(s, reasonBadReply)
			return nil
		}
	case !replyType(b):
		c.lose(s, reasonBadReply)
		return nil
	}
	if s.depth == 0 && b != '|' && s.top == 0 {
		s.top = b
		if !s.cmds {
			c.replyBegins(s)
		}
	}
	s.typ = b
	s.cur.reset()
	s.cr = false
	s.st = sLine
	return d[1:]
}

// line reads the rest of a line, up to its CRLF.
func (c *Conn) line(s *scanner, d []byte, ts uint64) []byte {
	i := bytes.IndexByte(d, '\n')
	part := d
	if i >= 0 {
		part = d[:i]
	}
	s.cur.add(part)
	if len(part) > 0 {
		s.cr = part[len(part)-1] == '\r'
	}
	if numeric(s.typ) && s.cur.size > maxLength+1 {
		c.lose(s, reasonBadLength)
		return nil
	}
	if i < 0 {
		return nil
	}
	if !s.cr {
		c.lose(s, reasonBadLine)
		return nil
	}
	s.cur.size--
	s.cur.n = int(min(int64(s.cur.n), s.cur.size))
	c.lineDone(s, ts)
	return d[i+1:]
}

// lineDone acts on a value's line: a scalar ends, a bulk string's payload
// or an aggregate's elements begin.
func (c *Conn) lineDone(s *scanner, ts uint64) {
	switch s.typ {
	case '+', '-', ',', '(':
		c.valueDone(s, s.typ, true, ts)
	case ':':
		if !s.cur.validInteger() {
			c.lose(s, reasonBadLength)
			return
		}
		c.valueDone(s, s.typ, true, ts)
	case '_', '#':
		if (s.typ == '_' && s.cur.size != 0) || (s.typ == '#' && !s.cur.is("t") && !s.cur.is("f")) {
			c.lose(s, reasonBadReply)
			return
		}
		c.valueDone(s, s.typ, true, ts)
	case '.':
		if s.cur.size != 0 {
			c.lose(s, reasonBadReply)
			return
		}
		// The streamed aggregate ends: it is the value done.
		s.depth--
		c.valueDone(s, s.stack[s.depth].typ, false, ts)
	case '$', '!', '=', ';':
		c.bulkLength(s, ts)
	default: // '*', '%', '~', '>', '|'
		c.aggregate(s, ts)
	}
}

// bulkLength starts a bulk string's payload.
func (c *Conn) bulkLength(s *scanner, ts uint64) {
	if s.typ == '$' && s.cur.is("?") && !s.cmds {
		s.chunks = true // a streamed string: ';' chunks follow
		s.st = sType
		return
	}
	n, ok := s.cur.integer()
	switch {
	case !ok:
		c.lose(s, reasonBadLength)
	case n == -1 && s.typ == '$' && !s.cmds:
		c.valueDone(s, '$', true, ts) // RESP2 null bulk string
	case n == 0 && s.typ == ';':
		s.chunks = false // the last chunk: the streamed string ends
		c.valueDone(s, '$', true, ts)
	case n < 0 || n > maxBulk:
		c.lose(s, reasonBadLength)
	default:
		s.cur.reset()
		s.left = n + 2
		s.st = sBulk
	}
}

// aggregate starts an array, map, set, push or attribute.
func (c *Conn) aggregate(s *scanner, ts uint64) {
	streamed := s.cur.is("?") && !s.cmds
	n, ok := s.cur.integer()
	switch {
	case streamed:
		n = -1
	case !ok || n > maxCount:
		c.lose(s, reasonBadLength)
		return
	case s.cmds && n <= 0:
		// Redis ignores an empty or negative array: no command, no reply.
		s.n = 0
		c.valueDone(s, '*', false, ts)
		return
	case n == -1 && (s.typ == '*' || s.typ == '%'):
		if s.depth == 0 {
			s.n = -1
		}
		c.valueDone(s, s.typ, false, ts) // RESP2 null array
		return
	case n < 0:
		c.lose(s, reasonBadLength)
		return
	case n == 0:
		c.valueDone(s, s.typ, false, ts)
		return
	}
	if s.depth == 0 && s.typ != '|' && !streamed {
		s.n = n
	}
	if n > 0 && (s.typ == '%' || s.typ == '|') {
		n *= 2 // key and value
	}
	if s.depth == len(s.stack) || (s.cmds && s.depth > 0) {
		c.lose(s, reasonTooDeep)
		return
	}
	s.stack[s.depth] = level{typ: s.typ, left: n}
	s.depth++
	s.st = sType
}

// bulk reads a bulk string's payload and its CRLF.
func (c *Conn) bulk(s *scanner, d []byte, ts uint64) []byte {
	n := min(int64(len(d)), s.left)
	if payload := min(n, s.left-2); payload > 0 {
		s.cur.add(d[:payload])
	}
	// The two bytes after the payload must be CRLF.
	for i := max(0, s.left-2); i < n; i++ {
		want := byte('\r')
		if s.left-i == 1 {
			want = '\n'
		}
		if d[i] != want {
			c.lose(s, reasonBadLine)
			return nil
		}
	}
	s.left -= n
	if s.left == 0 {
		c.bulkDone(s, ts)
	}
	return d[n:]
}

// bulkDone ends a bulk string, or one chunk of a streamed one.
func (c *Conn) bulkDone(s *scanner, ts uint64) {
	if s.chunks {
		s.st = sType
		return
	}
	c.valueDone(s, s.typ, true, ts)
}

// valueDone ends a value of type typ (a scalar whose bytes are in s.cur,
// or an aggregate), and the aggregates it completes.
func (c *Conn) valueDone(s *scanner, typ byte, scalar bool, ts uint64) {
	s.st = sType
	for {
		if s.depth == 0 {
			if typ == '|' {
				return // an attribute before the reply: the reply follows
			}
			if scalar {
				s.val = s.cur
			}
			c.messageDone(s, ts)
			return
		}
		l := &s.stack[s.depth-1]
		if typ == '|' {
			return // an attribute is not an element of its aggregate
		}
		if s.depth == 1 && l.typ != '|' {
			if l.idx < int64(len(s.args)) {
				s.argTyp[l.idx] = 0
				if scalar {
					s.args[l.idx] = s.cur
					s.argTyp[l.idx] = typ
				}
			}
			if !s.cmds {
				c.element(s, typ, scalar)
			}
		}
		l.idx++
		if l.left > 0 {
			l.left--
		}
		if l.left != 0 {
			return
		}
		typ, scalar = l.typ, false
		s.depth--
	}
}

// messageDone ends a message: a command or a reply.
func (c *Conn) messageDone(s *scanner, ts uint64) {
	s.busy = false
	s.st = sType
	if s.cmds {
		c.command(s, ts)
	} else {
		c.reply(s, ts)
	}
}

// inline reads an inline command: words separated by blanks, some quoted,
// up to a LF.
func (c *Conn) inline(s *scanner, d []byte, ts uint64) []byte {
	i := bytes.IndexByte(d, '\n')
	line := d
	if i >= 0 {
		line = d[:i]
	}
	s.size += len(line)
	if s.size > maxInline {
		// Redis refuses the line and closes the connection.
		c.lose(s, reasonBadCommand)
		return nil
	}
	for _, ch := range line {
		s.inlineByte(ch)
	}
	if i < 0 {
		return nil
	}
	if s.inWord {
		s.inWord = false
		s.n++
	}
	c.messageDone(s, ts)
	return d[i+1:]
}

// inlineByte splits an inline command into words as Redis does, keeping
// the first bytes of the first three.
func (s *scanner) inlineByte(ch byte) {
	if s.quote != 0 {
		switch {
		case s.esc:
			s.esc = false
		case ch == '\\' && s.quote == '"':
			s.esc = true
			return
		case ch == s.quote:
			s.quote = 0
			return
		}
		s.keep(ch)
		return
	}
	switch ch {
	case ' ', '\t', '\r', '\v', '\f':
		if s.inWord {
			s.inWord = false
			s.n++
		}
		return
	}
	s.inWord = true
	if ch == '"' || ch == '\'' {
		s.quote = ch
		return
	}
	s.keep(ch)
}

// keep adds a byte to the current word of an inline command.
func (s *scanner) keep(ch byte) {
	if s.n < int64(len(s.args)) {
		s.args[s.n].addByte(ch)
		s.argTyp[s.n] = '$'
	}
}

// skip steps over n bytes that moved but were not captured. It reports
// whether the scanner still knows where it is: only a bulk payload of
// known length can be stepped over.
func (c *Conn) skip(s *scanner, n int, ts uint64) bool {
	if s.st != sBulk || int64(n) > s.left {
		if s.st != sLost {
			c.lose(s, reasonGap)
		}
		return false
	}
	s.cur.size += min(int64(n), max(0, s.left-2))
	s.left -= int64(n)
	if s.left == 0 {
		c.bulkDone(s, ts)
	}
	return true
}
