package postgres

import (
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

func TestDetect(t *testing.T) {
	const (
		no       = protocols.No
		maybe    = protocols.Maybe
		request  = protocols.Request
		response = protocols.Response
	)
	st := startup("user", "alice", "database", "shop")
	tests := []struct {
		name string
		b    string
		port uint16
		want protocols.Verdict
	}{
		{"startup", st, 0, request},
		{"startup cut short", st[:20], 0, request},
		{"startup's length only", st[:4], 0, maybe},
		{"startup without user", startup("database", "shop"), 0, no},
		{"SSLRequest", sslReq, 0, request},
		{"GSSENCRequest", gssReq, 0, request},
		{"CancelRequest", untyped(cancelRequest, i32(4242)+i32(77)), 0, request},
		{"SSLRequest of a bad length", i32(9) + i32(sslRequest) + "x", 0, no},
		{"unknown code", untyped(1234, ""), 0, no},
		{"query", query("SELECT 1"), 0, request},
		{"query cut short", query("SELECT * FROM t")[:9], 0, request},
		{"query head only", query("SELECT 1")[:3], 0, maybe},
		{"query with a control byte", query("SELECT \x01"), 0, no},
		{"extended round trip", parseMsg("", "SELECT $1") + bindMsg("", "") + execMsg("") + syncMsg, 0, request},
		{"bind execute sync", bindMsg("", "stmtcache_1") + execMsg("") + syncMsg, 0, request},
		{"terminate", terminate, 0, request},
		{"sync of a bad length", msg('S', "x"), 0, no},
		{"ready for query", ready('I'), 0, response},
		{"ready for query, bad status", ready('X'), 0, no},
		{"auth ok and more", authOK + paramStatus("a", "b") + backendKey + ready('I'), 0, response},
		{"auth md5", msg('R', i32(5), "salt"), 0, response},
		{"auth, unknown code", msg('R', i32(99)), 0, no},
		{"answer to a query", rowDesc("a") + dataRow("1") + complete("SELECT 1") + ready('I'), 0, response},
		{"error", errorResp("28P01", "password authentication failed"), 0, response},
		{"error with a bad field", msg('E', "SERROR\x00!xy\x00\x00"), 0, no},
		{"parse complete", parseOK + bindOK, 0, response},
		{"copy data: either side's", copyData("x"), 0, no},
		{"SSL answer on 5432", "N", 5432, response},
		{"SSL answer elsewhere", "S", 0, maybe},
		{"nothing", "", 0, maybe},
		{"HTTP request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, no},
		{"HTTP PATCH", "PATCH /a HTTP/1.1\r\n\r\n", 0, no},
		{"HTTP POST", "POST /a HTTP/1.1\r\n\r\n", 0, no},
		{"HTTP response", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 5432, no},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, no},
		{"Redis RESP", "*1\r\n$4\r\nPING\r\n", 0, no},
		{"Redis inline", "PING\r\n", 0, no},
		{"Redis reply", "+PONG\r\n", 0, no},
		{"MySQL greeting", "\x4a\x00\x00\x00\x0a8.0.36\x00\x0b\x00\x00\x00", 0, no},
		{"MySQL greeting of length 78", "\x4e\x00\x00\x00\x0a5.5.5-10.11.6-MariaDB\x00", 3306, no},
		{"MySQL query", "\x21\x00\x00\x00\x03SELECT * FROM t WHERE id = 1", 0, no},
		{"MySQL query of length 80", "\x50\x00\x00\x00\x03" + "SELECT 1" + string(make([]byte, 72)), 0, no},
		{"MySQL OK", "\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00", 0, no},
		{"TLS client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0, no},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Protocol.Detect([]byte(tc.b), tc.port); got != tc.want {
				t.Errorf("Detect(%q) = %v, want %v", tc.b, got, tc.want)
			}
		})
	}
}

func TestProtocol(t *testing.T) {
	if Protocol.Name() != "postgresql" {
		t.Errorf("name %q", Protocol.Name())
	}
	if fs := Protocol.Families(); len(fs) != 1 {
		t.Errorf("families %v", fs)
	}
	if _, ok := Protocol.NewParser(&protocols.Options{}).(*Conn); !ok {
		t.Error("NewParser is not a *Conn")
	}
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"SELECT 1", []string{"SELECT 1"}},
		{"SELECT 1;", []string{"SELECT 1"}},
		{" ; ;SELECT 1;; SELECT 2 ;", []string{"SELECT 1", " SELECT 2 "}},
		{"SELECT ';'; SELECT 'it''s;'", []string{"SELECT ';'", " SELECT 'it''s;'"}},
		{`SELECT E'\';', 1; SELECT 2`, []string{`SELECT E'\';', 1`, " SELECT 2"}},
		{`SELECT 'a\'; SELECT 2`, []string{`SELECT 'a\'`, " SELECT 2"}},
		{`SELECT "a;b" FROM "t;"; SELECT 2`, []string{`SELECT "a;b" FROM "t;"`, " SELECT 2"}},
		{"SELECT $$a;b$$; SELECT $x$ ; $$ ; $x$; SELECT $1", []string{"SELECT $$a;b$$", " SELECT $x$ ; $$ ; $x$", " SELECT $1"}},
		{"SELECT a$b; SELECT 2", []string{"SELECT a$b", " SELECT 2"}},
		{"SELECT 1 -- ; comment\n; SELECT /* ; /* ; */ ; */ 2", []string{"SELECT 1 -- ; comment\n", " SELECT /* ; /* ; */ ; */ 2"}},
		{"-- only a comment;\n", nil},
		{"/* a */ ; /* b */", nil},
		{"SELECT 'unterminated; SELECT 2", []string{"SELECT 'unterminated; SELECT 2"}},
	}
	for _, tc := range tests {
		var got []string
		for _, sp := range splitStatements([]byte(tc.text), nil) {
			got = append(got, tc.text[sp[0]:sp[1]])
		}
		if len(got)+len(tc.want) > 0 && !equalStrings(got, tc.want) {
			t.Errorf("split %q:\n got %q\nwant %q", tc.text, got, tc.want)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStatementsAreBounded(t *testing.T) {
	var ss statements
	an := &analysis{operation: "SELECT", text: string(make([]byte, 4000))}
	name := func(i int) []byte { return []byte{byte(i), byte(i >> 8), 'x'} }
	for i := range 1000 {
		ss.put(name(i), an)
		if len(ss.m) > maxStatements || ss.bytes > maxStatementBytes {
			t.Fatalf("after %d: %d statements, %d bytes", i, len(ss.m), ss.bytes)
		}
	}
	// The most recently used survive.
	if ss.get(name(999)) == nil {
		t.Error("the last statement was forgotten")
	}
	if ss.get(name(0)) != nil {
		t.Error("the first statement was kept")
	}
}
