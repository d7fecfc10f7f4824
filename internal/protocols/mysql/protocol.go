package mysql

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Protocol is the MySQL and MariaDB client/server protocol in the protocol
// layer. Its records are client operations: the watched process is the
// database's client.
var Protocol protocols.Protocol = protocol{}

type protocol struct{}

func (protocol) Name() string { return "mysql" }

func (protocol) NewParser(opts *protocols.Options) protocols.Parser { return NewConn(opts) }

func (protocol) Families() []*redmetrics.Family {
	return []*redmetrics.Family{semconv.DBClient}
}

// defaultPort is MySQL's registered port: a hint for bytes that are
// plausible but not conclusive.
const defaultPort = 3306

// captureSize is the most the kernel captures of one syscall: a first
// segment of this length may be the prefix of a longer packet.
const captureSize = 4096

// Detect knows the server's greeting (protocol 10, a printable version),
// the client's handshake response, and a command packet of a connection
// seen after its handshake. Packets must be framed exactly by their
// length: HTTP, Redis and PostgreSQL bytes read as a MySQL header give a
// sequence id or a length that does not fit.
func (protocol) Detect(b []byte, serverPort uint16) protocols.Verdict {
	if len(b) < 5 {
		if len(b) >= 4 && b[3] > 1 {
			return protocols.No
		}
		return protocols.Maybe
	}
	size := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	whole := len(b) == size+4
	if b[3] == 0 && b[4] == 10 && whole {
		if _, ok := parseGreeting(b[4:]); ok {
			return protocols.Response
		}
	}
	if b[3] == 1 && size >= 32 && whole {
		if _, ok := parseLogin(b[4:], true); ok {
			return protocols.Request
		}
	}
	if commandAt(b, len(b)) {
		return protocols.Request
	}
	if serverPort == defaultPort && answerAt(b) {
		return protocols.Response
	}
	return protocols.No
}

// commandAt says whether d, the first bytes of a syscall that moved
// moved bytes, starts with a command packet: sequence id 0, a command
// whose payload length fits it, text where text belongs, and the packet
// inside the syscall (or, for a long statement, past the capture).
func commandAt(d []byte, moved int) bool {
	if len(d) < 5 || d[3] != 0 {
		return false
	}
	size := int(d[0]) | int(d[1])<<8 | int(d[2])<<16
	info := &commands[d[4]]
	if !info.known || !info.fits(size) || info.off {
		return false
	}
	end := 4 + size
	if end > len(d) && (!info.text || len(d) < captureSize || end > moved && moved < captureSize) {
		return false
	}
	if end > moved && moved > len(d) {
		return false
	}
	payload := d[4:min(end, len(d))]
	switch {
	case info.text && !sqlText(payload[1:], d[4] == comQuery):
		return false
	case d[4] == comStmtExecute:
		// Cursor flags, then an iteration count that is always 1.
		if payload[5] > 0x0f || payload[6] != 1 || payload[7] != 0 || payload[8] != 0 || payload[9] != 0 {
			return false
		}
	}
	if end < len(d) {
		// More packets in the same syscall: the next one must start
		// like a command too (a client that writes two at once).
		next := d[end:]
		return len(next) < 5 || (next[3] == 0 && commands[next[4]].known)
	}
	return true
}

// sqlText says b starts like statement text (or a database name): no
// control bytes other than blanks in its first bytes. attrs allows the
// query-attribute prefix of MySQL 8 clients (no attributes, one set).
func sqlText(b []byte, attrs bool) bool {
	if attrs && len(b) >= 3 && b[0] == 0 && b[1] == 1 {
		b = b[2:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b[:min(len(b), 64)] {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return false
		}
	}
	return true
}

// answerAt says whether b is one whole OK or ERR packet that answers a
// command (sequence id 1).
func answerAt(b []byte) bool {
	size := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	if b[3] != 1 || len(b) != size+4 {
		return false
	}
	p := b[4:]
	switch p[0] {
	case 0x00:
		ok, valid := parseOK(p)
		return valid && size <= 1024 && ok.status&^0x7fff == 0
	case 0xff:
		e, valid := parseErr(p)
		return valid && e.sqlState != nil && e.code >= 1000 && printable(e.sqlState)
	}
	return false
}
