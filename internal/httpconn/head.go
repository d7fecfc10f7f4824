package httpconn

import (
	"bytes"
)

// head is what is kept of a request or response head.
type head struct {
	method, target, version string // requests
	status                  int    // responses
	host, traceparent       string // requests
	contentLength           int64  // -1: none
	chunked                 bool
	connClose               bool
}

type verdict uint8

const (
	needMore verdict = iota
	valid
	invalid
)

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// targetByte reports whether c may appear in a request-target.
func targetByte(c byte) bool { return c > ' ' && c != 0x7f }

// checkRequestLine judges whether b starts with a request line, as far as
// b goes: "METHOD SP target SP HTTP/1.x CRLF".
func checkRequestLine(b []byte) verdict {
	i := 0
	for i < len(b) && isUpper(b[i]) {
		i++
	}
	if i > maxMethod {
		return invalid
	}
	if i == len(b) {
		return needMore
	}
	if i == 0 || b[i] != ' ' {
		return invalid
	}
	i++
	start := i
	for i < len(b) && targetByte(b[i]) {
		i++
	}
	if i == len(b) {
		return needMore
	}
	if i == start || b[i] != ' ' {
		return invalid
	}
	return checkVersionEOL(b[i+1:])
}

// checkVersionEOL judges "HTTP/1.x" followed by CRLF (or LF).
func checkVersionEOL(b []byte) verdict {
	const proto = "HTTP/1."
	if v := checkPrefix(b, proto); v != valid {
		return v
	}
	b = b[len(proto):]
	if len(b) == 0 {
		return needMore
	}
	if b[0] != '0' && b[0] != '1' {
		return invalid
	}
	if len(b) == 1 {
		return needMore
	}
	if b[1] == '\n' {
		return valid
	}
	if b[1] != '\r' {
		return invalid
	}
	if len(b) == 2 {
		return needMore
	}
	if b[2] != '\n' {
		return invalid
	}
	return valid
}

// checkStatusLine judges "HTTP/1.x SP 3DIGIT" followed by SP, CR or LF.
func checkStatusLine(b []byte) verdict {
	const proto = "HTTP/1."
	if v := checkPrefix(b, proto); v != valid {
		return v
	}
	b = b[len(proto):]
	for i, want := range []func(byte) bool{
		func(c byte) bool { return c == '0' || c == '1' },
		func(c byte) bool { return c == ' ' },
		isDigit, isDigit, isDigit,
		func(c byte) bool { return c == ' ' || c == '\r' || c == '\n' },
	} {
		if i == len(b) {
			return needMore
		}
		if !want(b[i]) {
			return invalid
		}
	}
	return valid
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func checkPrefix(b []byte, prefix string) verdict {
	n := min(len(b), len(prefix))
	if string(b[:n]) != prefix[:n] {
		return invalid
	}
	if n < len(prefix) {
		return needMore
	}
	return valid
}

// headEnd returns the length of the head at the start of b (through the
// blank line), or -1 when b does not hold all of it.
func headEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
	return -1
}

// parseHead reads a head whose first line was already judged valid. b may
// be cut short (a partial head): whatever complete lines it has are read.
func parseHead(b []byte, request bool) head {
	h := head{contentLength: -1}
	line, rest := nextLine(b)
	if request {
		parseRequestLine(line, &h)
	} else {
		// The status line was judged valid: b holds "HTTP/1.x NNN" at least.
		h.status = int(b[9]-'0')*100 + int(b[10]-'0')*10 + int(b[11]-'0')
		h.version = versionOf(b[5:8])
		// HTTP/1.0 closes after the response unless the server says otherwise.
		h.connClose = h.version == "1.0"
	}
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		parseField(line, &h, request)
	}
	return h
}

func parseRequestLine(line []byte, h *head) {
	sp := bytes.IndexByte(line, ' ')
	h.method = internMethod(line[:sp])
	rest := line[sp+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	target := rest[:sp2]
	if len(target) > MaxTarget {
		target = target[:MaxTarget]
	}
	h.target = string(target)
	h.version = versionOf(rest[sp2+1+5 : sp2+1+8])
}

func versionOf(v []byte) string {
	if string(v) == "1.0" {
		return "1.0"
	}
	return "1.1"
}

// nextLine splits off the first line of b, without its CRLF or LF. A last
// line without an end (a cut head) is returned whole.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil // an incomplete line says nothing reliable
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

func parseField(line []byte, h *head, request bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return
	}
	name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
	switch {
	case bytes.EqualFold(name, []byte("content-length")):
		if n, ok := parseLength(value); ok {
			h.contentLength = n
		}
	case bytes.EqualFold(name, []byte("transfer-encoding")):
		h.chunked = hasToken(value, "chunked")
	case bytes.EqualFold(name, []byte("connection")):
		if hasToken(value, "close") {
			h.connClose = true
		} else if hasToken(value, "keep-alive") && !request {
			h.connClose = false
		}
	case request && bytes.EqualFold(name, []byte("host")):
		h.host = string(value)
	case request && bytes.EqualFold(name, []byte("traceparent")):
		h.traceparent = string(value)
	}
}

func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasToken reports whether a comma-separated header value holds token,
// case-insensitively.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(item), []byte(token)) {
			return true
		}
	}
	return false
}

// internMethod returns the well-known methods without allocating.
func internMethod(m []byte) string {
	switch string(m) {
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
	}
	return string(m)
}
