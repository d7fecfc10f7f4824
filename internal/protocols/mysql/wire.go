package mysql

import (
	"bytes"
	"encoding/binary"
)

// Capability flags (the protocol's CLIENT_*).
const (
	capMySQL            = 1 << 0 // CLIENT_LONG_PASSWORD; MariaDB clears it to announce extended capabilities
	capConnectWithDB    = 1 << 3
	capCompress         = 1 << 5
	capProtocol41       = 1 << 9
	capSSL              = 1 << 11
	capSecureConnection = 1 << 15
	capPluginAuth       = 1 << 19
	capPluginAuthLenenc = 1 << 21
	capDeprecateEOF     = 1 << 24
	capOptionalMetadata = 1 << 25
	capZstd             = 1 << 26
	capQueryAttributes  = 1 << 27
)

// mariaCacheMetadata is MariaDB's MARIADB_CLIENT_CACHE_METADATA, in the
// extended capabilities: column counts then carry a metadata flag.
const mariaCacheMetadata = 1 << 4

// Server status flags.
const (
	statusMoreResults   = 0x0008
	statusCursorExists  = 0x0040
	statusNoBackslash   = 0x0200 // sql_mode has NO_BACKSLASH_ESCAPES
	statusSessionChange = 0x4000
)

// sessionTrackSchema is the session-state change that names the new
// current database.
const sessionTrackSchema = 1

// lenenc reads a length-encoded integer at the start of b; n is the bytes
// it took, 0 when b is too short or does not start one.
func lenenc(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch b[0] {
	case 0xfb, 0xff:
		return 0, 0
	case 0xfc:
		if len(b) < 3 {
			return 0, 0
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3
	case 0xfd:
		if len(b) < 4 {
			return 0, 0
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4
	case 0xfe:
		if len(b) < 9 {
			return 0, 0
		}
		return binary.LittleEndian.Uint64(b[1:]), 9
	}
	return uint64(b[0]), 1
}

// lenencString reads a length-encoded string; ok is false when b is too
// short for it.
func lenencString(b []byte) (s []byte, n int, ok bool) {
	l, k := lenenc(b)
	if k == 0 || uint64(len(b)-k) < l {
		return nil, 0, false
	}
	return b[k : k+int(l)], k + int(l), true
}

// okPacket is what an OK packet (header 0x00, or 0xfe at the end of rows)
// says.
type okPacket struct {
	status    uint16
	schema    []byte // the new current database from session tracking, if any
	schemaSet bool
}

// parseOK reads an OK packet's payload. It needs the status flags; the
// session state is read when it is whole.
func parseOK(b []byte) (ok okPacket, valid bool) {
	if len(b) < 1 {
		return ok, false
	}
	i := 1
	for range 2 { // affected rows, last insert id
		_, n := lenenc(b[i:])
		if n == 0 {
			return ok, false
		}
		i += n
	}
	if len(b) < i+4 {
		return ok, false
	}
	ok.status = binary.LittleEndian.Uint16(b[i:])
	i += 4 // status, warnings
	if ok.status&statusSessionChange == 0 {
		return ok, true
	}
	// The flag is only set for clients that track the session: info and
	// state changes are length-encoded strings.
	_, n, good := lenencString(b[i:])
	if !good {
		return ok, true
	}
	state, _, good := lenencString(b[i+n:])
	if !good {
		return ok, true
	}
	ok.schema, ok.schemaSet = trackedSchema(state)
	return ok, true
}

// trackedSchema finds the last schema change in session-state changes.
func trackedSchema(state []byte) (schema []byte, ok bool) {
	for len(state) > 0 {
		typ := state[0]
		data, n, good := lenencString(state[1:])
		if !good {
			return schema, ok
		}
		if typ == sessionTrackSchema {
			if name, _, good := lenencString(data); good {
				schema, ok = name, true
			}
		}
		state = state[1+n:]
	}
	return schema, ok
}

// eofStatus reads the status flags of an EOF packet (0xfe, warnings,
// status).
func eofStatus(b []byte) (uint16, bool) {
	if len(b) != 5 || b[0] != 0xfe {
		return 0, false
	}
	return binary.LittleEndian.Uint16(b[3:]), true
}

// errPacket is what an ERR packet says.
type errPacket struct {
	code     uint16
	sqlState []byte // 5 characters, or nil
}

// progressCode is the error number of MariaDB's progress reports: ERR
// packets that do not end a response.
const progressCode = 0xffff

// parseErr reads an ERR packet's payload (0xff, code, "#" and SQLSTATE).
func parseErr(b []byte) (e errPacket, ok bool) {
	if len(b) < 3 || b[0] != 0xff {
		return e, false
	}
	e.code = binary.LittleEndian.Uint16(b[1:])
	if len(b) >= 9 && b[3] == '#' {
		e.sqlState = b[4:9]
	}
	return e, true
}

// greeting is what the server's initial handshake says.
type greeting struct {
	version   []byte
	caps      uint32
	mariaCaps uint32 // MariaDB's extended capabilities, 0 when not announced
}

// parseGreeting reads a protocol 10 initial handshake.
func parseGreeting(b []byte) (g greeting, ok bool) {
	if len(b) < 2 || b[0] != 10 {
		return g, false
	}
	end := bytes.IndexByte(b[1:], 0)
	if end <= 0 || end > 64 || !printable(b[1:1+end]) {
		return g, false
	}
	g.version = b[1 : 1+end]
	i := 1 + end + 1 + 4 + 8 + 1 // version, NUL, thread id, scramble, filler
	if len(b) < i+2 {
		return g, true // a pre-4.1 server: capabilities unknown
	}
	g.caps = uint32(binary.LittleEndian.Uint16(b[i:]))
	i += 2 + 1 + 2 // capabilities, charset, status
	if len(b) < i+2 {
		return g, true
	}
	g.caps |= uint32(binary.LittleEndian.Uint16(b[i:])) << 16
	i += 2 + 1 + 6 // upper capabilities, scramble length, filler
	if len(b) >= i+4 && g.caps&capMySQL == 0 {
		g.mariaCaps = binary.LittleEndian.Uint32(b[i:])
	}
	return g, true
}

// login is what the client's handshake response says.
type login struct {
	caps      uint32
	mariaCaps uint32
	sslOnly   bool   // an SSLRequest: TLS follows
	db        []byte // the database asked for, nil if none
}

// parseLogin reads a protocol 4.1 handshake response.
func parseLogin(b []byte, whole bool) (l login, ok bool) {
	if len(b) < 32 {
		return l, false
	}
	l.caps = binary.LittleEndian.Uint32(b)
	if l.caps&capProtocol41 == 0 {
		return l, false
	}
	for _, f := range b[9:28] { // filler: zeros
		if f != 0 {
			return l, false
		}
	}
	if l.caps&capMySQL == 0 {
		l.mariaCaps = binary.LittleEndian.Uint32(b[28:])
	}
	if len(b) == 32 && whole {
		l.sslOnly = l.caps&capSSL != 0
		return l, l.sslOnly
	}
	if l.caps&capConnectWithDB == 0 {
		return l, true
	}
	rest := b[32:]
	user := bytes.IndexByte(rest, 0)
	if user < 0 {
		return l, true // cut before the database
	}
	rest = rest[user+1:]
	var n int
	switch {
	case l.caps&capPluginAuthLenenc != 0:
		_, n, ok = lenencString(rest)
	case l.caps&capSecureConnection != 0:
		ok = len(rest) > 0 && len(rest) > int(rest[0])
		if ok {
			n = 1 + int(rest[0])
		}
	default:
		n = bytes.IndexByte(rest, 0) + 1
		ok = n > 0
	}
	if !ok {
		return l, true
	}
	rest = rest[n:]
	if db := bytes.IndexByte(rest, 0); db >= 0 {
		l.db = rest[:db]
	}
	return l, true
}

// changeUserDB reads the database of a COM_CHANGE_USER payload.
func changeUserDB(b []byte, caps uint32) (db []byte, ok bool) {
	rest := b[1:]
	user := bytes.IndexByte(rest, 0)
	if user < 0 {
		return nil, false
	}
	rest = rest[user+1:]
	var n int
	if caps&capSecureConnection != 0 {
		if len(rest) == 0 || len(rest) <= int(rest[0]) {
			return nil, false
		}
		n = 1 + int(rest[0])
	} else {
		n = bytes.IndexByte(rest, 0) + 1
		if n == 0 {
			return nil, false
		}
	}
	rest = rest[n:]
	end := bytes.IndexByte(rest, 0)
	if end < 0 {
		return nil, false
	}
	return rest[:end], true
}

// printable says b is printable ASCII.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
