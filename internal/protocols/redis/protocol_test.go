package redis

import (
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http1"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

func TestDetect(t *testing.T) {
	const (
		no   = protocols.No
		may  = protocols.Maybe
		req  = protocols.Request
		resp = protocols.Response
	)
	for _, c := range []struct {
		in   string
		port uint16
		want protocols.Verdict
	}{
		{"", 0, may},
		{"*", 0, may},
		{"*2", 0, may},
		{"*2\r", 0, may},
		{"*2\r\n", 0, may},
		{"*2\r\n$", 0, may},
		{"*2\r\n$3\r\nGET\r\n", 0, req},
		{"*1\r\n$4\r\nPING\r\n", 0, req},
		{"*2\r\n:1\r\n", 0, resp},
		{"*2\r\n$-1\r\n", 0, resp},
		{"*-1\r\n", 0, resp},
		{"*0\r\n", 0, resp},
		{"*3\r\n$9\r\nsubscribe\r\n", 0, req}, // an array of bulk strings: a command is likelier
		{"*x\r\n", 0, no},
		{"*\x00\x00\x01", 0, no}, // a MySQL packet 42 bytes long
		{"+OK\r\n", 0, resp},
		{"+PONG", 0, may},
		{"-ERR unknown command\r\n", 0, resp},
		{"-err\r\n", 0, no},
		{":1000\r\n", 0, resp},
		{":-1\r\n", 0, resp},
		{":1x\r\n", 0, no},
		{"$5\r\nhello\r\n", 0, resp},
		{"$-1\r\n", 0, resp},
		{"$5\n", 0, no},
		{"_\r\n", 0, resp},
		{"_\x00\x00\x00", 0, no}, // a MySQL greeting 95 bytes long
		{"#t\r\n", 0, resp},
		{"#x\r\n", 0, no},
		{",3.14\r\n", 0, resp},
		{",-inf\r\n", 0, resp},
		{"(3492890328409238509324850943850943825024385\r\n", 0, resp},
		{"!21\r\nSYNTAX invalid syntax\r\n", 0, resp},
		{"=15\r\ntxt:Some string\r\n", 0, resp},
		{"%7\r\n$6\r\nserver\r\n", 0, resp},
		{"~2\r\n", 0, resp},
		{">3\r\n$7\r\nmessage\r\n", 0, resp},
		{"|1\r\n", 0, resp},
		{"$?\r\n", 0, resp},
		{"|\x00\x00\x00\x0a5.5", 0, no}, // a MySQL greeting 124 bytes long
		{"~\x00\x00\x00\x0a8.0", 0, no},
		// Inline commands.
		{"PING\r\n", 0, req},
		{"PING", 0, may},
		{"ping\n", 0, req},
		{"SET k v", 0, req}, // a known command, and no HTTP method
		{"SET k v\r\n", 0, req},
		{"GET key\r\n", 0, req},
		{"GET key", 0, may}, // "GET key HTTP/1.1" would be HTTP
		{"GET /x HTTP/1.1\r\nHost: h\r\n\r\n", 0, no},
		{"GET /x HTTP/1.1\r\n", 6379, no},
		{"GET /x HTTP/1.", 0, no},
		{"MOVE k 1\r\n", 0, req},
		{"MOVE /x HTTP/1.1\r\n", 0, no},
		{"FOO bar\r\n", 0, no},
		{"FOO bar\r\n", 6379, req},
		{"POST /x HTTP/1.1\r\n", 6379, no},
		{"HTTP/1.1 200 OK\r\n", 0, no},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, no},
		{"\x16\x03\x01\x02\x00", 0, no},
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", 0, no}, // PostgreSQL SSLRequest
		{"\x00\x00\x00\x54\x00\x03\x00\x00user\x00", 0, no},
		{"R\x00\x00\x00\x08\x00\x00\x00\x00", 0, no},          // PostgreSQL AuthenticationOk
		{"J\x00\x00\x00\x0a5.5.5-10.11.6-MariaDB\x00", 0, no}, // a MySQL greeting
		{"SSH-2.0-OpenSSH_9.2\r\n", 0, no},
	} {
		if got := Protocol.Detect([]byte(c.in), c.port); got != c.want {
			t.Errorf("Detect(%q, %d) = %d, want %d", c.in, c.port, got, c.want)
		}
	}
}

// TestDetectExclusive checks that HTTP/1 and Redis never both claim the
// same bytes.
func TestDetectExclusive(t *testing.T) {
	for _, in := range []string{
		"GET key\r\n", "GET key", "GET /x HTTP/1.1\r\n", "GET /", "SET k v\r\n", "*1\r\n$4\r\nPING\r\n",
		"HTTP/1.1 200 OK\r\n", "+OK\r\n", "PING\r\n", "DELETE /x HTTP/1.1\r\n", "MOVE k 1\r\n",
	} {
		r := Protocol.Detect([]byte(in), 0)
		h := http1.Protocol.Detect([]byte(in), 0)
		if (r == protocols.Request || r == protocols.Response) && (h == protocols.Request || h == protocols.Response) {
			t.Errorf("%q: both Redis (%d) and HTTP (%d)", in, r, h)
		}
	}
}

func TestProtocol(t *testing.T) {
	if Protocol.Name() != "redis" {
		t.Errorf("name %q", Protocol.Name())
	}
	if f := Protocol.Families(); len(f) != 1 || f[0] != semconv.DBClient {
		t.Errorf("families %v", f)
	}
	p := Protocol.NewParser(noTextOptions)
	p.Reset(RoleClient)
	r := &recorder{}
	p.Feed(Outbound, &Segment{Data: []byte("PING\r\n"), Len: 6, Time: 1}, r)
	p.Feed(Inbound, &Segment{Data: []byte("+PONG\r\n"), Len: 7, Time: 2}, r)
	if len(r.done) != 1 {
		t.Fatalf("%d records", len(r.done))
	}
}
