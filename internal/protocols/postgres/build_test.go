package postgres

import (
	"encoding/binary"
	"strings"
)

// Builders of protocol messages for hand-made streams.

func msg(typ byte, body ...string) string {
	b := strings.Join(body, "")
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)+4))
	return string(typ) + string(n[:]) + b
}

func i32(v int) string {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(v))
	return string(n[:])
}

func i16(v int) string { return string([]byte{byte(v >> 8), byte(v)}) }

func untyped(code int, body string) string { return i32(len(body)+8) + i32(code) + body }

func startup(params ...string) string {
	return untyped(protocol30, strings.Join(params, "\x00")+"\x00\x00")
}

var (
	sslReq    = untyped(sslRequest, "")
	gssReq    = untyped(gssencRequest, "")
	syncMsg   = msg('S')
	flushMsg  = msg('H')
	terminate = msg('X')
	copyDone  = msg('c')

	authOK     = msg('R', i32(0))
	backendKey = msg('K', i32(4242), i32(77))
	parseOK    = msg('1')
	bindOK     = msg('2')
	closeOK    = msg('3')
	noData     = msg('n')
	emptyQuery = msg('I')
	suspended  = msg('s')
)

func query(text string) string { return msg('Q', text, "\x00") }

func parseMsg(name, text string) string { return msg('P', name, "\x00", text, "\x00", i16(0)) }

func bindMsg(portal, stmt string) string {
	return msg('B', portal, "\x00", stmt, "\x00", i16(0), i16(1), i32(1), "7", i16(0))
}

func describeMsg(kind byte, name string) string { return msg('D', string(kind), name, "\x00") }

func closeMsg(kind byte, name string) string { return msg('C', string(kind), name, "\x00") }

func execMsg(portal string) string { return msg('E', portal, "\x00", i32(0)) }

func copyData(s string) string { return msg('d', s) }

func ready(status byte) string { return msg('Z', string(status)) }

func paramStatus(k, v string) string { return msg('S', k, "\x00", v, "\x00") }

func rowDesc(cols ...string) string {
	b := i16(len(cols))
	for _, c := range cols {
		b += c + "\x00" + i32(0) + i16(0) + i32(25) + i16(-1) + i32(-1) + i16(0)
	}
	return msg('T', b)
}

func paramDesc(n int) string {
	b := i16(n)
	for range n {
		b += i32(23)
	}
	return msg('t', b)
}

func dataRow(vals ...string) string {
	b := i16(len(vals))
	for _, v := range vals {
		b += i32(len(v)) + v
	}
	return msg('D', b)
}

func complete(tag string) string { return msg('C', tag, "\x00") }

func errorResp(code, text string) string {
	return msg('E', "SERROR\x00VERROR\x00C", code, "\x00M", text, "\x00Fscan.l\x00L1176\x00Rscanner_yyerror\x00\x00")
}

func notice(text string) string {
	return msg('N', "SNOTICE\x00VNOTICE\x0000000\x00M", text, "\x00\x00")
}

func notification(channel, payload string) string {
	return msg('A', i32(4242), channel, "\x00", payload, "\x00")
}

func copyInResp(cols int) string  { return msg('G', "\x00", i16(cols), strings.Repeat(i16(0), cols)) }
func copyOutResp(cols int) string { return msg('H', "\x00", i16(cols), strings.Repeat(i16(0), cols)) }

// login is a client's start and the server's welcome, with database db.
func login(db string) []step {
	return []step{
		out(1, startup("user", "alice", "database", db, "application_name", "t")),
		in(2, authOK+paramStatus("server_version", "15.18")+backendKey+ready('I')),
	}
}
