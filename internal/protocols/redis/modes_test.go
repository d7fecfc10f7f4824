package redis

import (
	"strings"
	"testing"
)

func TestTransaction(t *testing.T) {
	c := newClient(noTextOptions)
	// The bytes redis-server 7.0 sent for this pipeline.
	r := play(c, []step{
		out(1, cmd("SET", "s", "x"), cmd("MULTI"), cmd("LPUSH", "s", "x"), cmd("SELECT", "3"), cmd("INCR", "n"), cmd("EXEC")),
		in(2, "+OK\r\n+OK\r\n+QUEUED\r\n"),
		in(3, "+QUEUED\r\n+QUEUED\r\n*3\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n+OK\r\n"),
		in(4, ":1\r\n"),
		out(5, cmd("GET", "a")), in(6, "$-1\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{
		ok("SET", 1, 2), ok("MULTI", 1, 2),
		fail("LPUSH", "WRONGTYPE", 1, 2),                         // its result in EXEC's array, its response the +QUEUED
		ok("SELECT", 1, 1, 3, 3), ok("INCR", 1, 1, 3, 3).in("3"), // INCR ran after SELECT
		ok("EXEC", 1, 1, 3, 4),
		ok("GET", 5, 6).in("3"),
	})
}

func TestTransactionAborted(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{
		// A command refused while queueing: EXEC aborts.
		out(1, cmd("MULTI"), cmd("NOSUCH"), cmd("SELECT", "2"), cmd("EXEC"), cmd("PING")),
		in(2, "+OK\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n+QUEUED\r\n",
			"-EXECABORT Transaction discarded because of previous errors.\r\n+PONG\r\n"),
		// A WATCHed key changed: EXEC answers null.
		out(3, cmd("WATCH", "k"), cmd("MULTI"), cmd("INCR", "k"), cmd("EXEC")),
		in(4, "+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n"),
		// DISCARD; a nested MULTI is refused and the transaction goes on.
		out(5, cmd("MULTI"), cmd("MULTI"), cmd("INCR", "k"), cmd("DISCARD")),
		in(6, "+OK\r\n-ERR MULTI calls can not be nested\r\n+QUEUED\r\n+OK\r\n"),
		out(7, cmd("MULTI"), cmd("WATCH", "x"), cmd("GET", "k"), cmd("EXEC")),
		in(8, "+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n*1\r\n$1\r\n1\r\n"),
		// An empty transaction, and EXEC without MULTI.
		out(9, cmd("MULTI"), cmd("EXEC"), cmd("EXEC")),
		in(10, "+OK\r\n*0\r\n-ERR EXEC without MULTI\r\n"),
		out(11, cmd("GET", "k")), in(12, "$1\r\n1\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{
		ok("MULTI", 1, 2), fail("_OTHER", "ERR", 1, 2), ok("SELECT", 1, 2), fail("EXEC", "EXECABORT", 1, 2), ok("PING", 1, 2),
		ok("WATCH", 3, 4), ok("MULTI", 3, 4), ok("INCR", 3, 4), ok("EXEC", 3, 4),
		ok("MULTI", 5, 6), fail("MULTI", "ERR", 5, 6), ok("INCR", 5, 6), ok("DISCARD", 5, 6),
		ok("MULTI", 7, 8), fail("WATCH", "ERR", 7, 8), ok("GET", 7, 8), ok("EXEC", 7, 8),
		ok("MULTI", 9, 10), ok("EXEC", 9, 10), fail("EXEC", "ERR", 9, 10),
		ok("GET", 11, 12), // SELECT 2 never ran
	})
	if s := c.Stats(); s != (Stats{}) {
		t.Errorf("stats %+v", s)
	}
}

func TestTransactionReportedAtExec(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{out(1, cmd("MULTI")), in(2, "+OK\r\n"), out(3, cmd("INCR", "a")), in(4, "+QUEUED\r\n")})
	if len(r.done) != 1 {
		t.Fatalf("%d records before EXEC, want MULTI only", len(r.done))
	}
	r2 := play(c, []step{out(5, cmd("EXEC")), in(6, "*1\r\n:1\r\n"), closeAt(7)})
	equalOps(t, ops(t, r2.done), []op{ok("INCR", 3, 4), ok("EXEC", 5, 6)})
	// A transaction the connection's end cut short.
	c.Reset(RoleClient)
	r3 := play(c, []step{out(1, cmd("MULTI")), in(2, "+OK\r\n"), out(3, cmd("INCR", "a")), in(4, "+QUEUED\r\n"), out(5, cmd("EXEC")), closeAt(6)})
	equalOps(t, ops(t, r3.done), []op{ok("MULTI", 1, 2), ok("INCR", 3, 4), {Name: "EXEC", NS: "0", T: [4]uint64{5, 5, 0, 0}}})
}

func TestTransactionAmbiguous(t *testing.T) {
	for name, steps := range map[string][]step{
		"subscribe inside": {out(1, cmd("MULTI"), cmd("SUBSCRIBE", "a"), cmd("EXEC"), cmd("PING")),
			in(2, "+OK\r\n+QUEUED\r\n*1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n")},
		"client reply inside": {out(1, cmd("MULTI"), cmd("CLIENT", "REPLY", "OFF"), cmd("PING"), cmd("EXEC"))},
		"exec refused":        {out(1, cmd("MULTI"), cmd("GET", "a"), cmd("EXEC")), in(2, "+OK\r\n+QUEUED\r\n-NOPERM no\r\n")},
		"results missing": {out(1, cmd("MULTI"), cmd("GET", "a"), cmd("GET", "b"), cmd("EXEC")),
			in(2, "+OK\r\n+QUEUED\r\n+QUEUED\r\n*1\r\n$-1\r\n")},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(noTextOptions)
			r := play(c, steps)
			if c.Stats().Ambiguous != 1 || !c.dead {
				t.Errorf("stats %+v, dead %v", c.Stats(), c.dead)
			}
			for _, rec := range r.done {
				if rec.Operation != "MULTI" {
					t.Errorf("reported %s", rec.Operation)
				}
			}
		})
	}
}

func TestPubSubRESP2(t *testing.T) {
	c := newClient(noTextOptions)
	sub := func(kind, ch string, n string) string { return arr(bulk(kind), bulk(ch), ":"+n+"\r\n") }
	msg := arr(bulk("message"), bulk("a"), bulk("hello"))
	r := play(c, []step{
		out(1, cmd("SUBSCRIBE", "a", "b")), in(2, sub("subscribe", "a", "1")), in(3, sub("subscribe", "b", "2"), msg),
		in(4, msg, arr(bulk("pmessage"), bulk("p*"), bulk("pa"), bulk("x"))), // a pmessage before its PSUBSCRIBE was answered cannot be, but is not a reply either
		out(5, cmd("PSUBSCRIBE", "p*")), in(6, msg, sub("psubscribe", "p*", "3")),
		out(7, cmd("PING")), in(8, msg, arr(bulk("pong"), bulk(""))),
		out(9, cmd("GET", "k")), in(10, "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"),
		out(11, cmd("UNSUBSCRIBE")), in(12, sub("unsubscribe", "a", "2"), msg), in(13, sub("unsubscribe", "b", "1")),
		out(14, cmd("PUNSUBSCRIBE")), in(15, sub("punsubscribe", "p*", "0")),
		// No longer subscribed: an array that looks like a message is a reply.
		out(16, cmd("LRANGE", "l", "0", "-1")), in(17, msg),
		out(18, cmd("UNSUBSCRIBE")), in(19, arr(bulk("unsubscribe"), "$-1\r\n", ":0\r\n")),
		out(20, cmd("PING")), in(21, "+PONG\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{
		ok("SUBSCRIBE", 1, 1, 2, 3), ok("PSUBSCRIBE", 5, 6), ok("PING", 7, 8), fail("GET", "ERR", 9, 10),
		ok("UNSUBSCRIBE", 11, 11, 12, 13), ok("PUNSUBSCRIBE", 14, 15), ok("LRANGE", 16, 17),
		ok("UNSUBSCRIBE", 18, 19), ok("PING", 20, 21),
	})
	if s := c.Stats(); s.OutOfBand != 6 || s.Unmatched+s.Ambiguous+s.Lost != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestShardPubSub(t *testing.T) {
	c := newClient(noTextOptions)
	// The bytes redis-server 7.0 sent: shard channels count apart.
	r := play(c, []step{
		out(1, cmd("SSUBSCRIBE", "a"), cmd("SUBSCRIBE", "b"), cmd("SUNSUBSCRIBE"), cmd("PING"), cmd("UNSUBSCRIBE"), cmd("PING")),
		in(2, "*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:1\r\n",
			"*3\r\n$12\r\nsunsubscribe\r\n$1\r\na\r\n:0\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n",
			"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n+PONG\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{ok("SSUBSCRIBE", 1, 2), ok("SUBSCRIBE", 1, 2), ok("SUNSUBSCRIBE", 1, 2),
		ok("PING", 1, 2), ok("UNSUBSCRIBE", 1, 2), ok("PING", 1, 2)})
}

func TestRESP3(t *testing.T) {
	c := newClient(noTextOptions)
	hello := "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:17\r\n" +
		"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
	inval := push(bulk("invalidate"), arr(bulk("k")))
	r := play(c, []step{
		out(1, cmd("HELLO", "3")), in(2, hello),
		out(3, cmd("SUBSCRIBE", "a")), in(4, push(bulk("subscribe"), bulk("a"), ":1\r\n")),
		out(5, cmd("GET", "a")), in(6, push(bulk("message"), bulk("a"), bulk("m")), "$1\r\nb\r\n"),
		out(7, cmd("HGETALL", "h")), in(8, "%2\r\n+f\r\n:1\r\n+g\r\n,3.5\r\n"),
		out(9, cmd("SMEMBERS", "s")), in(10, "~2\r\n#t\r\n(12345678901234567890\r\n"),
		out(11, cmd("GET", "v")), in(12, "|1\r\n+key-popularity\r\n*2\r\n:1\r\n,0.5\r\n", "=7\r\ntxt:abc\r\n"),
		out(13, cmd("GET", "n")), in(14, inval, "_\r\n"),
		out(15, cmd("LRANGE", "l", "0", "-1")), in(16, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n"), // an array is a reply in RESP3
		out(17, cmd("UNSUBSCRIBE")), in(18, push(bulk("unsubscribe"), bulk("a"), ":0\r\n")),
		out(19, cmd("GET", "x")), in(20, "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n%1\r\n+k\r\n~1\r\n,-inf\r\n"), // attribute inside an aggregate
	})
	equalOps(t, ops(t, r.done), []op{
		ok("HELLO", 1, 2), ok("SUBSCRIBE", 3, 4), ok("GET", 5, 6), ok("HGETALL", 7, 8), ok("SMEMBERS", 9, 10),
		ok("GET", 11, 12), ok("GET", 13, 14), ok("LRANGE", 15, 16), ok("UNSUBSCRIBE", 17, 18), ok("GET", 19, 20),
	})
	if s := c.Stats(); s.OutOfBand != 2 || c.proto != 3 {
		t.Errorf("stats %+v, proto %d", s, c.proto)
	}
}

func TestStreamed(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{
		out(1, cmd("GET", "a")), in(2, "$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;0\r\n"),
		out(3, cmd("LRANGE", "l", "0", "-1")), in(4, "*?\r\n:1\r\n%?\r\n+a\r\n:1\r\n.\r\n.\r\n"),
		out(5, cmd("GET", "b")), in(6, "$1\r\nb\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{ok("GET", 1, 2), ok("LRANGE", 3, 4), ok("GET", 5, 6)})
}

func TestHelloRefused(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{
		out(1, cmd("HELLO", "3")), in(2, "-NOPROTO unsupported protocol version\r\n"),
		out(3, cmd("HELLO")), in(4, arr(bulk("proto"), ":2\r\n")),
		out(5, cmd("SUBSCRIBE", "a")), in(6, arr(bulk("subscribe"), bulk("a"), ":1\r\n")),
		in(7, arr(bulk("message"), bulk("a"), bulk("x"))),
	})
	equalOps(t, ops(t, r.done), []op{fail("HELLO", "NOPROTO", 1, 2), ok("HELLO", 3, 4), ok("SUBSCRIBE", 5, 6)})
	if c.proto != 2 || c.Stats().OutOfBand != 1 {
		t.Errorf("proto %d, stats %+v", c.proto, c.Stats())
	}
}

func TestClientReply(t *testing.T) {
	c := newClient(noTextOptions)
	// The bytes redis-server 7.0 sent for each of these.
	r := play(c, []step{
		out(1, cmd("CLIENT", "REPLY", "OFF"), cmd("SET", "a", "1"), cmd("CLIENT", "REPLY", "ON"), cmd("GET", "a")),
		in(2, "+OK\r\n$1\r\n1\r\n"),
		out(3, cmd("CLIENT", "REPLY", "SKIP"), cmd("CLIENT", "REPLY", "ON"), cmd("PING")), in(4, "+OK\r\n+PONG\r\n"),
		out(5, cmd("CLIENT", "REPLY", "SKIP"), cmd("RESET"), cmd("PING")), in(6, "+PONG\r\n"),
		out(7, cmd("CLIENT", "REPLY", "OFF"), cmd("PING"), cmd("RESET"), cmd("PING")), in(8, "+RESET\r\n+PONG\r\n"),
		out(9, cmd("CLIENT", "REPLY", "SKIP"), cmd("NOSUCH"), cmd("PING")), in(10, "+PONG\r\n"),
		out(11, cmd("CLIENT", "REPLY", "SKIP"), cmd("CLIENT", "REPLY", "SKIP"), cmd("PING", "a"), cmd("PING", "b")), in(12, "$1\r\nb\r\n"),
		out(13, cmd("CLIENT", "REPLY", "SKIP"), cmd("CLIENT", "REPLY", "OFF"), cmd("PING", "a"), cmd("CLIENT", "REPLY", "ON"), cmd("PING", "b")),
		in(14, "+OK\r\n$1\r\nb\r\n"),
		// The reply of the command after SKIP is written later: still skipped.
		out(15, cmd("CLIENT", "REPLY", "SKIP")), out(16, cmd("GET", "a")), out(17, cmd("GET", "a")), in(18, "$1\r\n1\r\n"),
		// Suppressed commands pending at the end are not reported.
		out(19, cmd("CLIENT", "REPLY", "OFF"), cmd("SET", "b", "2")), closeAt(20),
	})
	equalOps(t, ops(t, r.done), []op{
		ok("CLIENT REPLY", 1, 2), ok("GET", 1, 2),
		ok("CLIENT REPLY", 3, 4), ok("PING", 3, 4),
		ok("PING", 5, 6).in(""), // whether the skipped RESET ran is not known
		ok("RESET", 7, 8).in(""), ok("PING", 7, 8),
		ok("PING", 9, 10),
		ok("PING", 11, 12),
		ok("CLIENT REPLY", 13, 14), ok("PING", 13, 14),
		ok("GET", 17, 18),
	})
	if s := c.Stats(); s.Suppressed != 19 || s.Ambiguous != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestClientReplyAmbiguous(t *testing.T) {
	for name, steps := range map[string][]step{
		// SKIP refused, or the reply of the command after the one it skips?
		"error after skip": {out(1, cmd("CLIENT", "REPLY", "SKIP"), cmd("GET", "a"), cmd("LPUSH", "a", "x")),
			in(2, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")},
		// OFF refused: its own error.
		"off refused":      {out(1, cmd("CLIENT", "REPLY", "OFF")), in(2, "-NOPERM this user has no permissions\r\n")},
		"subscribed":       {out(1, cmd("SUBSCRIBE", "a"), cmd("CLIENT", "REPLY", "OFF"))},
		"suppressed multi": {out(1, cmd("CLIENT", "REPLY", "OFF"), cmd("MULTI"))},
		// A skipped RESET may have switched RESP3 back to RESP2.
		"skipped reset": {out(1, cmd("HELLO", "3"), cmd("CLIENT", "REPLY", "SKIP"), cmd("RESET"), cmd("PING")),
			in(2, "%1\r\n$5\r\nproto\r\n:3\r\n"), in(3, "+PONG\r\n")},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(noTextOptions)
			r := play(c, steps)
			if len(r.done) > 1 || c.Stats().Ambiguous != 1 || !c.dead {
				t.Errorf("%d records, stats %+v", len(r.done), c.Stats())
			}
		})
	}
}

func TestMonitor(t *testing.T) {
	c := newClient(noTextOptions)
	// The bytes redis-server 7.0 sent.
	r := play(c, []step{
		out(1, cmd("MONITOR")), in(2, "+OK\r\n"),
		out(3, cmd("PING")), in(4, "+PONG\r\n+1796291769.238939 [0 127.0.0.1:55498] \"PING\"\r\n"),
		in(5, "+1796291769.238999 [0 127.0.0.1:55400] \"SET\" \"a\" \""+strings.Repeat("x", 100)+"\"\r\n"),
		out(6, cmd("RESET")), in(7, "+RESET\r\n"),
		out(8, cmd("PING")), in(9, "+PONG\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{ok("MONITOR", 1, 2), ok("PING", 3, 4), ok("RESET", 6, 7), ok("PING", 8, 9)})
	if c.Stats().OutOfBand != 2 || c.monitor {
		t.Errorf("stats %+v", c.Stats())
	}
}

func TestReset(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{
		out(1, cmd("HELLO", "3"), cmd("SELECT", "4"), cmd("SUBSCRIBE", "a"), cmd("MULTI")),
		in(2, "%1\r\n$5\r\nproto\r\n:3\r\n+OK\r\n", push(bulk("subscribe"), bulk("a"), ":1\r\n"), "+OK\r\n"),
		out(3, cmd("INCR", "a"), cmd("RESET"), cmd("GET", "a")), in(4, "+QUEUED\r\n+RESET\r\n$-1\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{ok("HELLO", 1, 2), ok("SELECT", 1, 2), ok("SUBSCRIBE", 1, 2).in("4"),
		ok("MULTI", 1, 2).in("4"), ok("INCR", 3, 4).in("4"), ok("RESET", 3, 4).in("4"), ok("GET", 3, 4)})
	if c.proto != 2 || c.subscribed() || c.inTx {
		t.Errorf("not reset: proto %d, subscribed %v, tx %v", c.proto, c.subscribed(), c.inTx)
	}
}
