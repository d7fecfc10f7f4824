package redis

import (
	"bytes"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Protocol is the Redis serialization protocol (RESP2 and RESP3) in the
// protocol layer.
var Protocol protocols.Protocol = protocol{}

type protocol struct{}

func (protocol) Name() string { return "redis" }

func (protocol) NewParser(opts *protocols.Options) protocols.Parser { return NewConn(opts) }

func (protocol) Families() []*redmetrics.Family {
	return []*redmetrics.Family{semconv.DBClient}
}

// DefaultPort is Redis's port: a hint that an inline command line with an
// unknown name is Redis all the same.
const DefaultPort = 6379

// Detect knows a command (an array of bulk strings, or an inline command
// line) and the first line of a reply. An inline command must be a whole
// line, unless its name is a known command that is not also an HTTP
// method; a line that ends in an HTTP version is HTTP. Its name must be a
// known command, or the server port Redis's.
func (protocol) Detect(b []byte, serverPort uint16) protocols.Verdict {
	switch {
	case len(b) == 0:
		return protocols.Maybe
	case b[0] == '*':
		return detectArray(b)
	case replyType(b[0]):
		_, v := replyLine(b)
		return v
	}
	return detectInline(b, serverPort)
}

// detectArray tells a command (an array whose first element is a bulk
// string) from an array reply.
func detectArray(b []byte) protocols.Verdict {
	n, v := replyLine(b)
	if v != protocols.Response {
		return v
	}
	rest := b[n:]
	switch {
	case len(rest) == 0:
		if bytes.HasPrefix(b, []byte("*-1")) || bytes.HasPrefix(b, []byte("*0\r")) {
			return protocols.Response
		}
		return protocols.Maybe
	case rest[0] == '$':
		if _, v := replyLine(rest); v == protocols.No || v == protocols.Maybe {
			return v
		}
		if b[1] == '-' || b[1] == '?' || len(rest) > 1 && rest[1] == '-' {
			return protocols.Response // a null, or streamed: only servers send them
		}
		return protocols.Request
	case replyType(rest[0]):
		if _, v := replyLine(rest); v == protocols.No || v == protocols.Maybe {
			return v
		}
		return protocols.Response
	}
	return protocols.No
}

// replyLine checks the first line of a RESP value in b: Response with the
// length of the line when it is whole and well formed, Maybe when b ends
// before the line does, No otherwise.
func replyLine(b []byte) (int, protocols.Verdict) {
	t := b[0]
	end := bytes.IndexByte(b, '\n')
	line := b[1:]
	if end >= 0 {
		if end < 2 || b[end-1] != '\r' {
			return 0, protocols.No
		}
		line = b[1 : end-1]
	} else if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	whole := end >= 0
	if !lineOK(t, line, whole) {
		return 0, protocols.No
	}
	if !whole {
		return 0, protocols.Maybe
	}
	return end + 1, protocols.Response
}

// lineOK says whether line (after the type byte t) is, or begins, a well
// formed line of its type.
func lineOK(t byte, line []byte, whole bool) bool {
	switch t {
	case '+', '-':
		if t == '-' && len(line) > 0 && (line[0] < 'A' || line[0] > 'Z') {
			return false
		}
		if whole && len(line) == 0 {
			return t == '+'
		}
		for _, ch := range line {
			if (ch < 0x20 && ch != '\t') || ch == 0x7f {
				return false
			}
		}
		return true
	case '_':
		return len(line) == 0
	case '#':
		return len(line) == 0 && !whole || len(line) == 1 && (line[0] == 't' || line[0] == 'f')
	case ',':
		return numberLine(line, whole, true)
	case ':', '(':
		return numberLine(line, whole, false)
	case '$', '!', '=', '*', '%', '~', '>', '|':
		if len(line) > 0 && line[0] == '?' {
			return len(line) == 1 && (t == '$' || t == '*' || t == '%' || t == '~' || t == '>')
		}
		if len(line) > 0 && line[0] == '-' {
			return (t == '$' || t == '*' || t == '%') && (string(line) == "-1" || string(line) == "-" && !whole)
		}
		return digitsLine(line, whole, maxLength)
	}
	return false
}

// digitsLine says whether line is, or begins, a decimal count.
func digitsLine(line []byte, whole bool, limit int) bool {
	if len(line) > limit || whole && len(line) == 0 {
		return false
	}
	for _, ch := range line {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	return true
}

// numberLine says whether line is, or begins, an integer (or, with
// float, a double: digits, '.', exponent, inf, nan).
func numberLine(line []byte, whole, float bool) bool {
	if len(line) > 0 && (line[0] == '-' || line[0] == '+') {
		line = line[1:]
	}
	if float {
		for _, w := range []string{"inf", "nan"} {
			if len(line) <= len(w) && string(line) == w[:len(line)] {
				return !whole || len(line) == len(w)
			}
		}
	}
	if whole && len(line) == 0 {
		return false
	}
	for _, ch := range line {
		if (ch < '0' || ch > '9') && !(float && (ch == '.' || ch == 'e' || ch == 'E' || ch == '-' || ch == '+')) {
			return false
		}
	}
	return len(line) <= 400
}

// httpLike are Redis command names that are also HTTP (or WebDAV)
// methods: an inline command with one of them needs its whole line.
var httpLike = map[string]bool{"GET": true, "COPY": true, "MOVE": true}

// detectInline tells an inline command ("PING\r\n", "GET key\r\n").
func detectInline(b []byte, serverPort uint16) protocols.Verdict {
	i := 0
	for i < len(b) && i <= maxName && nameByte(b[i]) {
		i++
	}
	if i == len(b) {
		if i <= maxName {
			return protocols.Maybe
		}
		return protocols.No
	}
	if i == 0 || i > maxName || (b[i] != ' ' && b[i] != '\r' && b[i] != '\n' && b[i] != '\t') {
		return protocols.No
	}
	cmd := lookup(b[:i], nil)
	known := cmd != otherCommand
	end := bytes.IndexByte(b, '\n')
	line := b
	if end >= 0 {
		line = b[:end]
	}
	for _, ch := range line {
		if (ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f {
			return protocols.No
		}
	}
	if bytes.Contains(line, []byte(" HTTP/")) {
		return protocols.No
	}
	switch {
	case end < 0 && known && !httpLike[cmd.name]:
		return protocols.Request
	case end < 0 && len(b) < maxInline:
		return protocols.Maybe
	case end >= 0 && (known || serverPort == DefaultPort):
		return protocols.Request
	}
	return protocols.No
}

// nameByte says whether ch may be part of a command name.
func nameByte(ch byte) bool {
	return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
		ch == '-' || ch == '_' || ch == '.'
}
