package postgres

import (
	"bytes"
	"encoding/binary"
)

// Codes of the messages that have no type byte: the first a client sends
// (protocol 3.0 Startup), and the requests it may send before it.
const (
	protocol30     = 196608   // 3.0: major 3 in the high 16 bits
	sslRequest     = 80877103 // 1234.5679
	gssencRequest  = 80877104 // 1234.5680
	cancelRequest  = 80877102 // 1234.5678
	maxStartup     = 10000    // the server's own limit on a startup packet
	maxMessageSize = 1 << 30  // the server rejects longer messages
	// maxDetectSize bounds the length a message may claim in bytes offered
	// to Detect or to a resynchronising check: a real first message is
	// far shorter, and text of other protocols read as a length is far
	// longer ("ATCH" is 1.09e9).
	maxDetectSize = 1 << 24
)

// be32 reads a big-endian int32 as an int.
func be32(b []byte) int { return int(int32(binary.BigEndian.Uint32(b))) }

// be16 reads a big-endian int16 as an int.
func be16(b []byte) int { return int(int16(binary.BigEndian.Uint16(b))) }

// frontendSizeOK says whether a frontend message of type typ may have the
// length size (which counts the length field itself, not the type byte).
func frontendSizeOK(typ byte, size int) bool {
	if size > maxMessageSize {
		return false
	}
	switch typ {
	case 'S', 'H', 'X', 'c': // Sync, Flush, Terminate, CopyDone
		return size == 4
	case 'Q', 'f': // Query, CopyFail: a string
		return size >= 5
	case 'P': // Parse: name, text, parameter count
		return size >= 8
	case 'B': // Bind: portal, statement, three counts
		return size >= 12
	case 'E': // Execute: portal, row limit
		return size >= 9
	case 'D', 'C': // Describe, Close: kind, name
		return size >= 6
	case 'F': // FunctionCall: oid, format count, argument count, result format
		return size >= 14
	case 'd', 'p': // CopyData, password and SASL messages
		return size >= 4
	}
	return false
}

// backendSizeOK says whether a backend message of type typ may have the
// length size.
func backendSizeOK(typ byte, size int) bool {
	if size > maxMessageSize {
		return false
	}
	switch typ {
	case 'I', '1', '2', '3', 'n', 's', 'c': // empty messages
		return size == 4
	case 'Z': // ReadyForQuery: status byte
		return size == 5
	case 'K': // BackendKeyData: pid, key
		return size == 12
	case 'R': // Authentication*: code
		return size >= 8
	case 'S': // ParameterStatus: two strings
		return size >= 6
	case 'C', 'E', 'N': // CommandComplete, ErrorResponse, NoticeResponse
		return size >= 5
	case 'T', 'D', 't': // RowDescription, DataRow, ParameterDescription: a count
		return size >= 6
	case 'G', 'H', 'W': // Copy*Response: format, count
		return size >= 7
	case 'A': // NotificationResponse: pid, channel, payload
		return size >= 10
	case 'V': // FunctionCallResponse: length
		return size >= 8
	case 'v': // NegotiateProtocolVersion
		return size >= 12
	case 'd': // CopyData
		return size >= 4
	}
	return false
}

// textByte says whether c may appear in SQL text or a name: anything but
// control bytes other than blanks. UTF-8 sequences pass.
func textByte(c byte) bool {
	return c >= 0x20 && c != 0x7f || c == '\t' || c == '\n' || c == '\r'
}

// cstring checks that b starts with a C string of text bytes. It returns
// the string's length, whether it ended (its NUL was seen), and whether
// every byte seen was text.
func cstring(b []byte) (n int, ended, ok bool) {
	for i, c := range b {
		if c == 0 {
			return i, true, true
		}
		if !textByte(c) {
			return i, false, false
		}
	}
	return len(b), false, true
}

// plausibleFrontend checks the visible body of a frontend message whose
// length says size; body may be cut short (it is then checked as far as
// it goes).
func plausibleFrontend(typ byte, size int, body []byte) bool {
	whole := len(body) == size-4
	switch typ {
	case 'Q', 'f':
		n, ended, ok := cstring(body)
		return ok && (!ended || n == size-5) && (ended || !whole)
	case 'P':
		n, ended, ok := cstring(body)
		if !ok || !ended && whole || n > 1024 {
			return false
		}
		if !ended {
			return true
		}
		_, _, ok = cstring(body[n+1:])
		return ok
	case 'B', 'E':
		n, ended, ok := cstring(body)
		if !ok || n > 1024 || !ended && whole {
			return false
		}
		if typ == 'E' && ended && whole {
			return n == size-9
		}
		return true
	case 'D', 'C':
		if len(body) > 0 && body[0] != 'S' && body[0] != 'P' {
			return false
		}
		if len(body) > 1 {
			n, ended, ok := cstring(body[1:])
			return ok && (!ended || n == size-6) && (ended || !whole)
		}
		return true
	}
	return true
}

// errorFieldType says whether c is an ErrorResponse/NoticeResponse field
// type a server sends.
func errorFieldType(c byte) bool {
	return bytes.IndexByte([]byte("SVCMDHPpqWstcdnFLR"), c) >= 0
}

// plausibleBackend checks the visible body of a backend message whose
// length says size.
func plausibleBackend(typ byte, size int, body []byte) bool {
	whole := len(body) == size-4
	switch typ {
	case 'Z':
		return len(body) == 0 || body[0] == 'I' || body[0] == 'T' || body[0] == 'E'
	case 'R':
		if len(body) < 4 {
			return true
		}
		switch be32(body) {
		case 0, 2, 3, 6, 7, 9: // Ok, KerberosV5, Cleartext, SCM, GSS, SSPI
			return size == 8
		case 5: // MD5: salt
			return size == 12
		case 8, 10, 11, 12: // GSSContinue, SASL, SASLContinue, SASLFinal
			return true
		}
		return false
	case 'E', 'N':
		return errorFields(body, whole)
	case 'S', 'C':
		n, ended, ok := cstring(body)
		if !ok || !ended && whole {
			return false
		}
		if typ == 'C' {
			return commandTag(body[:n]) && (!ended || n == size-5)
		}
		if !ended {
			return true
		}
		m, ended2, ok := cstring(body[n+1:])
		return ok && (!ended2 || n+1+m+1 == size-4)
	case 'G', 'H', 'W':
		if len(body) >= 1 && body[0] > 1 {
			return false
		}
		return len(body) < 3 || size == 4+3+2*be16(body[1:])
	case 't':
		return len(body) < 2 || size == 4+2+4*be16(body)
	case 'T', 'D':
		// At most 1664 columns; each needs some bytes.
		if len(body) < 2 {
			return true
		}
		n := be16(body)
		return n >= 0 && n <= 1664 && (typ == 'D' && size >= 6+4*n || typ == 'T' && size >= 6+19*n)
	case 'V':
		return len(body) < 4 || be32(body) == -1 && size == 8 || be32(body) >= 0 && size == 8+be32(body)
	}
	return true
}

// errorFields checks the fields of an ErrorResponse or NoticeResponse:
// each a known type byte and a string, the last followed by a NUL.
func errorFields(b []byte, whole bool) bool {
	fields := 0
	for len(b) > 0 {
		if b[0] == 0 {
			return len(b) == 1 && fields > 0
		}
		if !errorFieldType(b[0]) {
			return false
		}
		n, ended, ok := cstring(b[1:])
		if !ok {
			return false
		}
		if !ended {
			return !whole
		}
		fields++
		b = b[1+n+1:]
	}
	return !whole
}

// commandTag says whether b may be (the start of) a CommandComplete tag:
// upper-case words and numbers ("INSERT 0 1", "CREATE TABLE").
func commandTag(b []byte) bool {
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ') {
			return false
		}
	}
	return true
}

// errorCode returns the SQLSTATE (field 'C') of an ErrorResponse body, or
// nil when the field is not in it.
func errorCode(b []byte) []byte {
	for len(b) > 1 && b[0] != 0 {
		n := bytes.IndexByte(b[1:], 0)
		if n < 0 {
			return nil
		}
		if b[0] == 'C' {
			return b[1 : 1+n]
		}
		b = b[1+n+1:]
	}
	return nil
}

// sqlstate says whether b is a SQLSTATE: five digits or upper-case letters.
func sqlstate(b []byte) bool {
	if len(b) != 5 {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// startupParam returns the value of parameter key in the body of a
// StartupMessage (after its protocol code), or nil.
func startupParam(b []byte, key string) []byte {
	for len(b) > 0 && b[0] != 0 {
		k := bytes.IndexByte(b, 0)
		if k < 0 {
			return nil
		}
		v := bytes.IndexByte(b[k+1:], 0)
		if v < 0 {
			return nil
		}
		if string(b[:k]) == key {
			return b[k+1 : k+1+v]
		}
		b = b[k+1+v+1:]
	}
	return nil
}

// plausibleStartup checks the parameters of a StartupMessage (after its
// code): pairs of text strings, the last followed by a NUL, "user" among
// them when all are seen.
func plausibleStartup(b []byte, whole bool) bool {
	user := false
	for len(b) > 0 {
		if b[0] == 0 {
			return len(b) == 1 && user
		}
		k, ended, ok := cstring(b)
		if !ok || !ended {
			return ok && !whole
		}
		user = user || string(b[:k]) == "user"
		v, ended, ok := cstring(b[k+1:])
		if !ok || !ended {
			return ok && !whole
		}
		b = b[k+1+v+1:]
	}
	return !whole
}

// untypedFrame checks that b begins with a message without a type byte:
// a StartupMessage, SSLRequest, GSSENCRequest or CancelRequest. It returns
// the message's length (which may pass the end of b) and whether it is
// plausible; ok with n == 0 means more bytes are needed to tell.
func untypedFrame(b []byte) (n int, ok bool) {
	if len(b) < 8 {
		return 0, len(b) < 4 || be32(b) >= 8 && be32(b) <= maxStartup
	}
	size, code := be32(b), be32(b[4:])
	switch code {
	case sslRequest, gssencRequest:
		return 8, size == 8
	case cancelRequest:
		return 16, size == 16
	case protocol30:
		if size < 9 || size > maxStartup {
			return 0, false
		}
		return size, plausibleStartup(b[8:min(len(b), size)], len(b) >= size)
	}
	return 0, false
}

// typedFrame checks that b begins with a typed message that the frontend
// (or the backend, when !frontend) sends. It returns the message's length
// with its type byte (which may pass the end of b) and whether it is
// plausible; ok with n == 0 means its header is cut short.
func typedFrame(b []byte, frontend bool) (n int, ok bool) {
	sizeOK, plausible := backendSizeOK, plausibleBackend
	if frontend {
		sizeOK, plausible = frontendSizeOK, plausibleFrontend
	}
	typ := b[0]
	if len(b) < 5 {
		// A known type, and a length no longer than maxDetectSize so far.
		known := sizeOK(typ, 4) || sizeOK(typ, 5) || sizeOK(typ, 12) || sizeOK(typ, 16)
		return 0, known && (len(b) < 2 || b[1] == 0)
	}
	size := be32(b[1:])
	if size > maxDetectSize || !sizeOK(typ, size) {
		return 0, false
	}
	return size + 1, plausible(typ, size, b[5:min(len(b), size+1)])
}

// frame checks the message at the start of b: untyped (a startup-family
// message) or typed.
func frame(b []byte, frontend, untyped bool) (n int, ok bool) {
	if untyped {
		return untypedFrame(b)
	}
	return typedFrame(b, frontend)
}

// detectFrames walks the messages at the start of b, first bytes of a
// direction whose length is not known, and says whether they are plausible
// messages of that direction: yes, no, or too few bytes to tell (maybe).
// The last message may run past b.
func detectFrames(b []byte, frontend, untyped bool) (yes, maybe bool) {
	pos := 0
	for pos < len(b) {
		n, ok := frame(b[pos:], frontend, untyped && pos == 0)
		switch {
		case !ok:
			return false, false
		case n == 0:
			return pos > 0, pos == 0
		case pos+n >= len(b):
			return true, false
		}
		pos += n
	}
	return pos > 0, pos == 0
}

// strictFrames says whether b, the captured prefix of total bytes that
// one syscall moved, is plausible whole messages of one direction: each
// header seen, each message where the previous one ended, and the last one
// ending exactly at total (it may run past b, through bytes not captured).
func strictFrames(b []byte, total int, frontend, untyped bool) bool {
	pos := 0
	for pos < len(b) {
		n, ok := frame(b[pos:], frontend, untyped && pos == 0)
		if !ok || n == 0 {
			return false
		}
		if pos+n > len(b) {
			return pos+n == total
		}
		pos += n
	}
	return pos > 0 && pos == total
}
