package http1

// lineVerdict is what the bytes of a start line seen so far amount to.
type lineVerdict uint8

const (
	lineMore    lineVerdict = iota // a valid beginning; the line has not ended
	lineBad                        // not a start line
	lineRequest                    // a complete request line
	lineStatus                     // a complete status line
)

// Progress of the request-line check.
const (
	rOff     uint8 = iota // ruled out, or not allowed in this direction
	rMethod               // METHOD
	rTarget               // SP request-target
	rVersion              // SP "HTTP/1.x" CRLF, checked by position
	rDone
)

// Progress of the status-line check.
const (
	sOff     uint8 = iota
	sVersion       // "HTTP/1.x NNN" then SP or CR, checked by position
	sReason        // reason phrase
	sLF            // LF after the CR
	sDone
)

// startLine checks a start line as its bytes arrive, strictly, so that
// bytes of other protocols are turned away early. It keeps its progress:
// a line split over many segments is checked once, not again per segment.
// Until the first bytes tell them apart, it may check for both a request
// line and a status line at once.
type startLine struct {
	pos       int   // bytes checked so far
	req, rsp  uint8 // progress of each check
	methodEnd int   // index of the SP after the method
	targetEnd int   // index of the SP after the request-target
	minor     byte  // '0' or '1' of "HTTP/1.x"
	status    int
}

// init prepares the check for the kinds of line allowed.
func (l *startLine) init(request, status bool) {
	*l = startLine{}
	if request {
		l.req = rMethod
	}
	if status {
		l.rsp = sVersion
	}
}

// scan checks b[l.pos:], where b holds the message from its first byte.
func (l *startLine) scan(b []byte) lineVerdict {
	for l.pos < len(b) {
		switch {
		case l.req == rDone:
			return lineRequest
		case l.rsp == sDone:
			return lineStatus
		case l.req == rOff && l.rsp == sOff:
			return lineBad
		}
		start := l.pos
		if l.bulk(b); l.pos != start {
			continue // the verdict may have changed
		}
		c := b[l.pos]
		if l.req != rOff {
			l.stepRequest(c)
		}
		if l.rsp != sOff {
			l.stepStatus(c)
		}
		l.pos++
	}
	switch {
	case l.req == rDone:
		return lineRequest
	case l.rsp == sDone:
		return lineStatus
	case l.req == rOff && l.rsp == sOff:
		return lineBad
	}
	return lineMore
}

// bulk skips, without stepping byte by byte, the runs of bytes that need
// no more than a table lookup: most of a line once its kind is known. It
// stops before any byte that changes the phase.
func (l *startLine) bulk(b []byte) {
	switch {
	case l.rsp == sOff && l.req == rMethod && l.pos > 0:
		for l.pos < len(b) && l.pos < maxMethod && methodByte[b[l.pos]] {
			l.pos++
		}
	case l.rsp == sOff && l.req == rTarget:
		for l.pos < len(b) && targetByte[b[l.pos]] {
			l.pos++
		}
	case l.rsp == sOff && l.req == rVersion && l.pos == l.targetEnd+1:
		// The whole " HTTP/1.x\r\n" tail at once, when it is all there.
		if v := b[l.pos:]; len(v) >= 10 && string(v[:7]) == "HTTP/1." &&
			(v[7] == '0' || v[7] == '1') && v[8] == '\r' && v[9] == '\n' {
			l.minor, l.req, l.pos = v[7], rDone, l.pos+10
		}
	case l.req == rOff && l.rsp == sVersion && l.pos == 0:
		// "HTTP/1.x NNN" at once, when it is all there.
		if len(b) >= 13 && string(b[:7]) == "HTTP/1." && (b[7] == '0' || b[7] == '1') && b[8] == ' ' &&
			'1' <= b[9] && b[9] <= '9' && isDigit(b[10]) && isDigit(b[11]) {
			l.minor = b[7]
			l.status = int(b[9]-'0')*100 + int(b[10]-'0')*10 + int(b[11]-'0')
			l.pos = 12 // b[12] is stepped: SP or CR
		}
	case l.req == rOff && l.rsp == sReason:
		for l.pos < len(b) && reasonByte[b[l.pos]] {
			l.pos++
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// stepRequest checks byte c at l.pos against
// METHOD SP request-target SP HTTP/1.x CRLF.
func (l *startLine) stepRequest(c byte) {
	switch l.req {
	case rMethod:
		switch {
		case c == ' ' && l.pos > 0:
			l.methodEnd, l.req = l.pos, rTarget
		case l.pos >= maxMethod:
			l.req = rOff
		case 'A' <= c && c <= 'Z', l.pos > 0 && (c == '-' || c == '_'):
		default:
			l.req = rOff
		}
	case rTarget:
		switch {
		case targetByte[c]:
		case c == ' ' && l.pos > l.methodEnd+1:
			l.targetEnd, l.req = l.pos, rVersion
		default:
			l.req = rOff
		}
	case rVersion:
		if l.version(l.pos-l.targetEnd-1, c, "\r\n") {
			l.req = rDone
		}
	}
}

// version checks byte c at index k of "HTTP/1.x" followed by end; it
// reports whether c was the last byte of end, and turns the request check
// off on a mismatch.
func (l *startLine) version(k int, c byte, end string) bool {
	const prefix = "HTTP/1."
	ok := false
	switch {
	case k < len(prefix):
		ok = c == prefix[k]
	case k == len(prefix):
		ok = c == '0' || c == '1'
		l.minor = c
	default:
		k -= len(prefix) + 1
		ok = k < len(end) && c == end[k]
		if ok && k == len(end)-1 {
			return true
		}
	}
	if !ok {
		l.req = rOff
	}
	return false
}

// stepStatus checks byte c at l.pos against HTTP/1.x SP NNN [SP reason] CRLF.
// The reason phrase may be missing altogether, as some servers send it.
func (l *startLine) stepStatus(c byte) {
	switch l.rsp {
	case sVersion:
		k := l.pos
		ok := false
		switch {
		case k < 7:
			ok = c == "HTTP/1."[k]
		case k == 7:
			ok = c == '0' || c == '1'
			l.minor = c
		case k == 8:
			ok = c == ' '
		case k == 9:
			ok = '1' <= c && c <= '9'
			l.status = int(c - '0')
		case k == 10, k == 11:
			ok = '0' <= c && c <= '9'
			l.status = l.status*10 + int(c-'0')
		case c == ' ':
			ok, l.rsp = true, sReason
		case c == '\r':
			ok, l.rsp = true, sLF
		}
		if !ok {
			l.rsp = sOff
		}
	case sReason:
		switch {
		case c == '\r':
			l.rsp = sLF
		case c < ' ' && c != '\t', c == 0x7f:
			l.rsp = sOff
		}
	case sLF:
		l.rsp = sDone
		if c != '\n' {
			l.rsp = sOff
		}
	}
}

// isRequest says whether the line is (or begins) a request line.
func (l *startLine) isRequest() bool { return l.req != rOff }

// usable says whether a line cut after n bytes still tells enough to
// record its message: a request line up to a piece of its target, or a
// status line up to its code.
func (l *startLine) usable(n int) bool {
	switch {
	case l.req == rDone, l.rsp == sDone:
		return true
	case l.req == rTarget:
		return min(n, l.pos) > l.methodEnd+1
	case l.req == rVersion:
		return true
	case l.rsp == sReason, l.rsp == sLF:
		return true
	}
	return false
}

// methodByte marks the bytes of a method after its first (a letter).
var methodByte = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	t['-'], t['_'] = true, true
	return t
}()

// reasonByte marks the bytes of a reason phrase: HTAB, SP, VCHAR and
// obs-text, but not the CR that ends it.
var reasonByte = func() (t [256]bool) {
	for c := 0x20; c < 0x100; c++ {
		t[c] = c != 0x7f
	}
	t['\t'] = true
	return t
}()

// targetByte marks the bytes a request-target may hold: no spaces, no
// controls. Bytes above 0x7f are let through (some clients send raw UTF-8).
var targetByte = func() (t [256]bool) {
	for c := 0x21; c < 0x100; c++ {
		t[c] = c != 0x7f
	}
	return t
}()
