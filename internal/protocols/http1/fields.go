package http1

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// fields are the header fields that matter here, as slices of the head.
type fields struct {
	host, traceparent []byte
	hasHost, hasTP    bool
	length            int64 // Content-Length; -1 when absent
	badLength         bool  // Content-Length present but unusable
	te, chunked       bool  // Transfer-Encoding present; chunked is its final coding
	// An h2c upgrade (RFC 7540 3.2): Upgrade names h2c; HTTP2-Settings as
	// sent (base64url), read on requests.
	upgradeH2C    bool
	h2Settings    []byte
	hasH2Settings bool
}

// parse reads the header section b (the head after its start line's
// CRLF) and returns the length of the section up to and including the
// blank line that ends it, or -1 when b holds no such line. The blank line
// is the first "\r\n\r\n", counting the start line's CRLF, as headEnd
// finds it. Fields are read from every complete line, so a partial head
// gives what it has; a last line cut short is left out, since a cut
// Content-Length would be a wrong one. Lines without a colon, or ending in
// a bare LF, are tolerated rather than rejected: this observes traffic, it
// does not police it.
func (f *fields) parse(b []byte) int {
	*f = fields{length: -1}
	off := 0
	prevCR := true // the start line ended with CRLF
	for {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return -1
		}
		line := b[off : off+i]
		off += i + 1
		cr := len(line) > 0 && line[len(line)-1] == '\r'
		if cr {
			line = line[:len(line)-1]
		}
		if len(line) == 0 && cr && prevCR {
			return off
		}
		prevCR = cr
		if len(line) > 0 {
			f.line(line)
		}
	}
}

// line reads one header line, skipping quickly those whose name cannot
// be one of the few read here.
func (f *fields) line(line []byte) {
	switch line[0] | 0x20 { // ASCII lower case
	case 'h', 't', 'c', 'u':
	default:
		return
	}
	if colon := bytes.IndexByte(line, ':'); colon > 0 {
		f.field(line[:colon], trimOWS(line[colon+1:]))
	}
}

// field records one header field; names are compared case-insensitively.
func (f *fields) field(name, value []byte) {
	switch len(name) {
	case len("host"):
		if !f.hasHost && equalFold(name, "host") {
			f.host, f.hasHost = value, true
		}
	case len("traceparent"):
		if !f.hasTP && equalFold(name, "traceparent") {
			f.traceparent, f.hasTP = value, true
		}
	case len("upgrade"):
		if equalFold(name, "upgrade") && hasToken(value, "h2c") {
			f.upgradeH2C = true
		}
	case len("content-length"): // and len("http2-settings")
		if equalFold(name, "content-length") {
			f.addLength(value)
		} else if !f.hasH2Settings && equalFold(name, "http2-settings") {
			f.h2Settings, f.hasH2Settings = value, true
		}
	case len("transfer-encoding"):
		if equalFold(name, "transfer-encoding") {
			// With several codings or fields, the last coding decides.
			f.te = true
			f.chunked = lastToken(value, "chunked")
		}
	}
}

// addLength records a Content-Length value. A list of equal values (sent
// by some proxies) is one value; differing values make it unusable.
func (f *fields) addLength(v []byte) {
	for {
		part := v
		i := bytes.IndexByte(v, ',')
		if i >= 0 {
			part, v = v[:i], v[i+1:]
		}
		n, ok := parseDecimal(trimOWS(part))
		if !ok || (f.length >= 0 && f.length != n) {
			f.badLength = true
			return
		}
		f.length = n
		if i < 0 {
			return
		}
	}
}

// parseDecimal parses 1 to 18 digits: enough for any real length, and
// never an overflow.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// lastToken says whether the last comma-separated token of v is tok.
func lastToken(v []byte, tok string) bool {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return equalFold(trimOWS(v), tok)
}

// hasToken says whether one of the comma-separated tokens of v is tok.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		part := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if equalFold(trimOWS(part), tok) {
			return true
		}
	}
	return false
}

// trimOWS trims the optional white space around a field value.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with lower, a lower-case ASCII string, ignoring
// the case of ASCII letters in b.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// method returns the method as a string; the common ones are constants,
// so the hot path does not allocate them.
func method(b []byte) string {
	switch string(b) { // compiled without converting b
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	case "QUERY":
		return "QUERY"
	case "PROPFIND":
		return "PROPFIND"
	}
	return string(b)
}

// version returns "1.0" or "1.1" for the minor version digit.
func version(minor byte) string {
	switch minor {
	case '0':
		return "1.0"
	case '1':
		return "1.1"
	}
	return ""
}

// text copies at most limit bytes of b into a valid UTF-8 string: spans
// carry these values, and exporters reject invalid UTF-8. A cut that falls
// inside a character drops the character.
func text(b []byte, limit int) string {
	if len(b) > limit {
		b = cutRune(b[:limit])
	}
	if utf8.Valid(b) {
		return string(b)
	}
	// Each invalid byte becomes a 3-byte U+FFFD: cut again to stay
	// within the limit.
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if len(s) > limit {
		s = string(cutRune([]byte(s[:limit])))
	}
	return s
}

// cutRune drops an incomplete UTF-8 sequence at the end of b.
func cutRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// cached returns b as a string, reusing *last when they are equal.
func cached(last *string, b []byte, limit int) string {
	if len(b) > limit {
		b = b[:limit]
	}
	if string(b) == *last { // compiled without converting b
		return *last
	}
	*last = text(b, limit)
	return *last
}
