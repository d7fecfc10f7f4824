package redis

import (
	"strings"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

func TestKeepAlive(t *testing.T) {
	c := newClient(textOptions)
	r := play(c, []step{
		out(1, cmd("SET", "k", "v")), in(2, "+OK\r\n"),
		out(3, cmd("GET", "k")), in(4, "$1\r\nv\r\n"),
		out(5, cmd("get", "missing")), in(6, "$-1\r\n"),
		closeAt(7),
	})
	equalOps(t, ops(t, r.done), []op{ok("SET", 1, 2), ok("GET", 3, 4), ok("GET", 5, 6)})
	if r.started != 3 {
		t.Errorf("%d started", r.started)
	}
	for i, want := range []string{"SET ? ?", "GET ?", "GET ?"} {
		if r.done[i].QueryText != want {
			t.Errorf("record %d: query text %q, want %q", i, r.done[i].QueryText, want)
		}
		if r.done[i].Tag != i+1 {
			t.Errorf("record %d: tag %v", i, r.done[i].Tag)
		}
	}
	if r.failed != nil {
		t.Errorf("failed: %v", r.failed)
	}
}

func TestPipeline(t *testing.T) {
	c := newClient(noTextOptions)
	// Three commands in one write; the replies in two reads, the second
	// reply cut between them.
	r := play(c, []step{
		out(1, cmd("INCR", "a"), cmd("GET", "b"), cmd("PING")),
		in(2, ":1\r\n$5\r\nhel"), in(3, "lo\r\n+PONG\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{ok("INCR", 1, 2), ok("GET", 1, 1, 2, 3), ok("PING", 1, 1, 3, 3)})
	if r.done[0].QueryText != "" {
		t.Errorf("query text %q without the option", r.done[0].QueryText)
	}
}

func TestCommandAcrossWrites(t *testing.T) {
	c := newClient(noTextOptions)
	all := cmd("SET", "key", strings.Repeat("v", 100))
	r := play(c, []step{out(1, all[:10]), out(2, all[10:50]), out(3, all[50:]), in(4, "+OK\r\n")})
	equalOps(t, ops(t, r.done), []op{ok("SET", 1, 3, 4, 4)})
}

func TestErrors(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{
		out(1, cmd("NOSUCH", "x")), in(2, "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n"),
		out(3, cmd("LPUSH", "s", "x")), in(4, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
		out(5, cmd("GET", "k")), in(6, bulkErr("SYNTAX invalid syntax")),
		out(7, cmd("GET", "k")), in(8, "-error without a prefix\r\n"),
		out(9, cmd("GET", "k")), in(10, "-NOAUTH Authentication required.\r\n"),
		out(11, cmd("EVALSHA", "abc", "0")), in(12, bulkErr("NOSCRIPT No matching script. Use EVAL")),
	})
	equalOps(t, ops(t, r.done), []op{
		fail("_OTHER", "ERR", 1, 2),
		fail("LPUSH", "WRONGTYPE", 3, 4),
		fail("GET", "_OTHER", 5, 6), // SYNTAX is not a Redis prefix
		fail("GET", "_OTHER", 7, 8),
		fail("GET", "NOAUTH", 9, 10),
		fail("EVALSHA", "NOSCRIPT", 11, 12),
	})
	if r.done[0].StatusCode != "ERR" || r.done[0].ErrorType != "ERR" || r.done[3].StatusCode != "" || r.done[3].ErrorType != OtherError {
		t.Errorf("status codes %+v %+v", r.done[0].DB, r.done[3].DB)
	}
}

func TestNoReply(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{
		out(1, cmd("GET", "a")), in(2, "$1\r\na\r\n"),
		out(3, cmd("BLPOP", "q", "0")), out(4, cmd("GET", "b")),
		closeAt(9),
	})
	equalOps(t, ops(t, r.done), []op{ok("GET", 1, 2), {Name: "BLPOP", NS: "0", T: [4]uint64{3, 3, 0, 0}},
		{Name: "GET", NS: "0", T: [4]uint64{4, 4, 0, 0}}})
}

func TestBlockingReplyLate(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{
		out(1, cmd("BLPOP", "q", "5")), in(500, arr(bulk("q"), bulk("job"))),
		out(501, cmd("BLPOP", "q", "1")), in(900, "*-1\r\n"),
		out(901, cmd("BLPOP", "q", "1")), in(1300, "_\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{ok("BLPOP", 1, 500), ok("BLPOP", 501, 900), ok("BLPOP", 901, 1300)})
}

func TestSelect(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{
		out(1, cmd("GET", "a")), in(2, "$-1\r\n"),
		out(3, cmd("SELECT", "3")), in(4, "+OK\r\n"),
		out(5, cmd("GET", "a")), in(6, "$-1\r\n"),
		out(7, cmd("SELECT", "99")), in(8, "-ERR DB index is out of range\r\n"),
		out(9, cmd("GET", "a")), in(10, "$-1\r\n"),
		out(11, cmd("SELECT", "x")), in(12, "-ERR value is not an integer or out of range\r\n"),
		out(13, cmd("SELECT", "20")), in(14, "+OK\r\n"),
		out(15, cmd("PING")), in(16, "+PONG\r\n"),
		out(17, cmd("SELECT", "123456789")), in(18, "+OK\r\n"),
		out(19, cmd("PING")), in(20, "+PONG\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{
		ok("GET", 1, 2), ok("SELECT", 3, 4), ok("GET", 5, 6).in("3"),
		fail("SELECT", "ERR", 7, 8).in("3"), ok("GET", 9, 10).in("3"),
		fail("SELECT", "ERR", 11, 12).in("3"), ok("SELECT", 13, 14).in("3"),
		ok("PING", 15, 16).in("20"),
		ok("SELECT", 17, 18).in("20"), ok("PING", 19, 20).in(""), // an index too large to be a namespace
	})
}

func TestInline(t *testing.T) {
	c := newClient(textOptions)
	r := play(c, []step{
		out(1, "PING\r\n"), in(2, "+PONG\r\n"),
		out(3, "set a \"b c\"\r\n", "\r\n", "get a\n"), in(4, "+OK\r\n$3\r\nb c\r\n"),
		out(5, "client   setname  'x y'\r\n"), in(6, "+OK\r\n"),
		out(7, "*0\r\n*-1\r\nPING\r\n"), in(8, "+PONG\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{ok("PING", 1, 2), ok("SET", 3, 4), ok("GET", 3, 4),
		ok("CLIENT SETNAME", 5, 6), ok("PING", 7, 8)})
	for i, want := range []string{"PING", "SET ? ?", "GET ?", "CLIENT SETNAME ?", "PING"} {
		if got := r.done[i].QueryText; got != want {
			t.Errorf("record %d: query text %q, want %q", i, got, want)
		}
	}
}

func TestOperationNames(t *testing.T) {
	c := newClient(textOptions)
	many := append([]string{"MSET"}, strings.Fields(strings.Repeat("k v ", 20))...)
	r := play(c, []step{
		out(1, cmd("config", "get", "maxmemory")), in(2, arr(bulk("maxmemory"), bulk("0"))),
		out(3, cmd("CLIENT", "NOSUCH")), in(4, "-ERR unknown subcommand 'NOSUCH'.\r\n"),
		out(5, cmd("CLIENT")), in(6, "-ERR wrong number of arguments for 'client' command\r\n"),
		out(7, cmd("JSON.GET", "doc")), in(8, "$2\r\n{}\r\n"),
		out(9, cmd(strings.Repeat("X", 40))), in(10, "-ERR unknown command\r\n"),
		out(11, cmd("g\x00t", "k")), in(12, "-ERR unknown command\r\n"),
		out(13, cmd(many...)), in(14, "+OK\r\n"),
		out(15, cmd("Client", "SetInfo", "LIB-NAME", "x")), in(16, "+OK\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{
		ok("CONFIG GET", 1, 2), fail("CLIENT", "ERR", 3, 4), fail("CLIENT", "ERR", 5, 6),
		ok("JSON.GET", 7, 8), fail("_OTHER", "ERR", 9, 10), fail("_OTHER", "ERR", 11, 12),
		ok("MSET", 13, 14), ok("CLIENT SETINFO", 15, 16),
	})
	for i, want := range []string{"CONFIG GET ?", "CLIENT ?", "CLIENT", "JSON.GET ?", "", "",
		"MSET" + strings.Repeat(" ?", maxQueryArgs) + " ...", "CLIENT SETINFO ? ?"} {
		if got := r.done[i].QueryText; got != want {
			t.Errorf("record %d: query text %q, want %q", i, got, want)
		}
	}
}

func TestTraceContext(t *testing.T) {
	c := newClient(noTextOptions)
	chosen := tracecontext.Chosen{Kind: tracecontext.Injected}
	chosen.Identity.SpanID[0] = 7
	r := &recorder{}
	// The context goes to the first command that begins in the segment.
	c.Feed(Outbound, &Segment{Data: []byte(cmd("GET", "a") + cmd("GET", "b")), Time: 1, Tid: 42, Chosen: chosen,
		Len: len(cmd("GET", "a") + cmd("GET", "b"))}, r)
	c.Feed(Inbound, &Segment{Data: []byte("$-1\r\n$-1\r\n"), Len: 10, Time: 2, Tid: 42}, r)
	if len(r.done) != 2 {
		t.Fatalf("%d records", len(r.done))
	}
	if r.done[0].Chosen != chosen || r.done[1].Chosen != (tracecontext.Chosen{}) {
		t.Errorf("chosen %+v %+v", r.done[0].Chosen, r.done[1].Chosen)
	}
	if r.done[0].Tid != 42 || r.done[1].Tid != 42 {
		t.Errorf("tids %d %d", r.done[0].Tid, r.done[1].Tid)
	}
}

func TestNotPaired(t *testing.T) {
	for _, role := range []protocols.Role{protocols.RoleUnknown, RoleServer} {
		c := NewConn(noTextOptions)
		c.Reset(role)
		r := play(c, []step{out(1, cmd("GET", "a")), in(2, "$-1\r\n"), out(3, cmd("GET", "a")), in(4, "$-1\r\n"), closeAt(5)})
		if len(r.done) != 0 || c.Stats().NotPaired != 1 || len(r.failed) != 1 {
			t.Errorf("role %d: %d records, stats %+v, failed %v", role, len(r.done), c.Stats(), r.failed)
		}
	}
}
