package redis

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestEveryByteSplit feeds a session cut at every byte of each direction
// and checks that where segments end changes nothing but times.
func TestEveryByteSplit(t *testing.T) {
	cmds := cmd("HELLO", "3") + cmd("SET", "k", "v") + cmd("MULTI") + cmd("INCR", "n") + cmd("LPUSH", "k", "x") + cmd("EXEC") +
		cmd("SUBSCRIBE", "a") + "GET k\r\n" + cmd("UNSUBSCRIBE") + cmd("PING")
	replies := "%1\r\n$5\r\nproto\r\n:3\r\n+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n-WRONGTYPE wrong\r\n" +
		push(bulk("subscribe"), bulk("a"), ":1\r\n") + push(bulk("message"), bulk("a"), bulk("m")) +
		"|1\r\n+a\r\n+b\r\n$1\r\nv\r\n" + push(bulk("unsubscribe"), bulk("a"), ":0\r\n") + "$?\r\n;2\r\nPO\r\n;2\r\nNG\r\n;0\r\n"
	want := []op{ok("HELLO", 1, 2), ok("SET", 1, 2), ok("MULTI", 1, 2), ok("INCR", 1, 2), fail("LPUSH", "WRONGTYPE", 1, 2),
		ok("EXEC", 1, 2), ok("SUBSCRIBE", 1, 2), ok("GET", 1, 2), ok("UNSUBSCRIBE", 1, 2), ok("PING", 1, 2)}
	whole := play(newClient(textOptions), []step{out(1, cmds), in(2, replies)})
	equalOps(t, ops(t, whole.done), want)
	for i := 1; i < len(cmds); i++ {
		for _, j := range []int{i % len(replies), (i * 7) % len(replies)} {
			steps := []step{out(1, cmds[:i]), out(1, cmds[i:]), in(2, replies[:j]), in(2, replies[j:])}
			r := play(newClient(textOptions), steps)
			if !reflect.DeepEqual(r.done, whole.done) {
				t.Fatalf("cut at %d and %d:\n%+v\nwant\n%+v", i, j, ops(t, r.done), want)
			}
		}
	}
	// Byte by byte, each byte its own segment and time.
	var steps []step
	for i := range len(cmds) {
		steps = append(steps, out(uint64(1+i), cmds[i:i+1]))
	}
	for i := range len(replies) {
		steps = append(steps, in(uint64(1000+i), replies[i:i+1]))
	}
	r := play(newClient(textOptions), steps)
	if got := ops(t, r.done); len(got) != len(want) {
		t.Fatalf("byte by byte: %d records", len(got))
	}
	for i := range r.done {
		a, b := r.done[i], whole.done[i]
		a.Exchange = b.Exchange // compare all but times
		if !reflect.DeepEqual(a, b) {
			t.Errorf("byte by byte, record %d: %+v, want %+v", i, r.done[i], whole.done[i])
		}
	}
}

func TestGapInBulk(t *testing.T) {
	c := newClient(noTextOptions)
	big := strings.Repeat("x", 100000)
	set := cmd("SET", "k", big)
	get := "$100000\r\n" + big + "\r\n"
	r := play(c, []step{
		moved(Outbound, 1, set, 4096), in(2, "+OK\r\n"),
		// A value written in several syscalls, the middle one lossy.
		out(3, set[:3000]), moved(Outbound, 4, set[3000:90000], 4096), out(5, set[90000:]), in(6, "+OK\r\n"),
		out(7, cmd("GET", "k")), moved(Inbound, 8, get, 4096),
		// The tail alone shows the CRLF: a capture that ends inside the payload.
		out(9, cmd("GET", "k"), cmd("PING")), moved(Inbound, 10, get+"+PONG\r\n", 4096),
		out(11, cmd("GET", "k")), moved(Inbound, 12, get[:50000], 4096), moved(Inbound, 13, get[50000:], 100),
	})
	equalOps(t, ops(t, r.done), []op{ok("SET", 1, 2), ok("SET", 3, 5, 6, 6), ok("GET", 7, 8),
		ok("GET", 9, 10), ok("PING", 9, 10), ok("GET", 11, 11, 12, 13)})
	if s := c.Stats(); s != (Stats{}) {
		t.Errorf("stats %+v", s)
	}
}

// TestGapLosesCommands: a pipeline larger than the capture hides
// commands; the commands seen before the gap are still paired.
func TestGapLosesCommands(t *testing.T) {
	c := newClient(noTextOptions)
	var pipe, replies strings.Builder
	for i := range 300 {
		pipe.WriteString(cmd("INCR", "counter:"+strconv.Itoa(i)))
		replies.WriteString(":" + strconv.Itoa(i+1) + "\r\n")
	}
	p := pipe.String()
	seen := strings.Count(p[:4096], "INCR\r\n") // whole commands in the capture
	r := play(c, []step{
		moved(Outbound, 1, p, 4096),
		in(2, replies.String()),
		out(3, cmd("GET", "k")), in(4, "$-1\r\n"),
	})
	if len(r.done) != seen-1 && len(r.done) != seen {
		t.Fatalf("%d records, %d commands seen", len(r.done), seen)
	}
	for i, rec := range r.done {
		if rec.Operation != "INCR" || rec.ResponseEnd != 2 {
			t.Fatalf("record %d: %+v", i, rec)
		}
	}
	s := c.Stats()
	if s.Lost != 1 || !c.dead || s.Unreported != 0 {
		t.Errorf("stats %+v, dead %v", s, c.dead)
	}
}

func TestGapLosesReply(t *testing.T) {
	c := newClient(noTextOptions)
	var elems []string
	for i := range 1000 {
		elems = append(elems, bulk("member:"+strconv.Itoa(i)))
	}
	reply := arr(elems...)
	r := play(c, []step{
		out(1, cmd("SMEMBERS", "s"), cmd("GET", "k")),
		moved(Inbound, 2, reply+"$-1\r\n", 4096),
		out(3, cmd("GET", "k")), in(4, "$-1\r\n"),
		closeAt(5),
	})
	if len(r.done) != 0 {
		t.Errorf("records %+v", r.done)
	}
	// SMEMBERS and GET waited; the later GET is read and counted too.
	if s := c.Stats(); s.Lost != 1 || s.Unreported != 3 {
		t.Errorf("stats %+v", s)
	}
	if r.failed[reasonGap] != 1 || r.failed[reasonUnreported] != 3 {
		t.Errorf("failed %v", r.failed)
	}
}

// TestCountsAfterStop: once pairing stopped, each command sent later is
// counted as unreported, pipelined or not, inline or not, until the
// command direction loses its place; replies are not read.
func TestCountsAfterStop(t *testing.T) {
	c := newClient(noTextOptions)
	big := strings.Repeat("x", 10000)
	r := play(c, []step{
		out(1, cmd("GET", "a")), in(2, "$-1\r\n$-1\r\n"), // a reply too many: pairing stops
		out(3, cmd("GET", "b"), cmd("SET", "c", "d")), in(4, "$-1\r\n+OK\r\n"),
		out(5, "PING\r\n"), in(6, "+PONG\r\n"),
		moved(Outbound, 7, cmd("SET", "e", big), 4096), in(8, "+OK\r\n"), // a gap in a bulk string keeps it in step
		moved(Outbound, 9, strings.Repeat(cmd("SET", "e", "f"), 1000), 4096), // a gap over commands loses it
		out(10, cmd("GET", "g")),
	})
	equalOps(t, ops(t, r.done), []op{ok("GET", 1, 2)})
	s := c.Stats()
	seen := 4096 / len(cmd("SET", "e", "f")) // whole commands in the capture
	if s.Unmatched != 1 || s.Lost != 1 || s.Unreported != uint64(4+seen) {
		t.Errorf("stats %+v, want %d unreported", s, 4+seen)
	}
	// A connection stopped with its command direction lost counts nothing more.
	c = newClient(noTextOptions)
	play(c, []step{out(1, "*1\r\n:1\r\n"), out(2, cmd("GET", "a"))})
	if s := c.Stats(); s.Lost != 1 || s.Unreported != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestNotRESP(t *testing.T) {
	for name, steps := range map[string][]step{
		"reply type":    {out(1, cmd("GET", "a")), in(2, "HTTP/1.1 200 OK\r\n\r\n")},
		"bulk crlf":     {out(1, cmd("GET", "a")), in(2, "$1\r\nab\r\n")},
		"line lf":       {out(1, cmd("GET", "a")), in(2, "+OK\n")},
		"length":        {out(1, cmd("GET", "a")), in(2, "$12345678901234567890123456\r\n")},
		"integer":       {out(1, cmd("GET", "a")), in(2, ":12a\r\n")},
		"null":          {out(1, cmd("GET", "a")), in(2, "_x\r\n")},
		"bool":          {out(1, cmd("GET", "a")), in(2, "#x\r\n")},
		"end":           {out(1, cmd("GET", "a")), in(2, ".\r\n")},
		"chunk":         {out(1, cmd("GET", "a")), in(2, "$?\r\n+OK\r\n")},
		"too deep":      {out(1, cmd("GET", "a")), in(2, strings.Repeat("*1\r\n", maxDepth+1)+":1\r\n")},
		"negative":      {out(1, cmd("GET", "a")), in(2, "*-2\r\n")},
		"big":           {out(1, cmd("GET", "a")), in(2, "*99999999999\r\n")},
		"unmatched":     {out(1, cmd("GET", "a")), in(2, "$-1\r\n$-1\r\n")},
		"reply first":   {in(1, "+OK\r\n")},
		"reply middle":  {in(1, "llo\r\n+OK\r\n")},
		"queued":        {out(1, cmd("GET", "a")), in(2, "+QUEUED\r\n"), out(3, cmd("EXEC")), in(4, "*0\r\n")},
		"pubsub answer": {out(1, cmd("SUBSCRIBE", "a")), in(2, "+OK\r\n")},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(noTextOptions)
			r := play(c, steps)
			s := c.Stats()
			if !c.dead || s.Lost+s.Unmatched+s.Ambiguous != 1 {
				t.Errorf("stats %+v, dead %v, records %+v", s, c.dead, r.done)
			}
			// Nothing paired, except a command answered before the bad reply.
			for _, rec := range r.done {
				if rec.ResponseEnd != 2 && name != "queued" {
					t.Errorf("record %+v", rec)
				}
			}
		})
	}
}

func TestBadCommand(t *testing.T) {
	for name, data := range map[string]string{
		"not bulk":   "*1\r\n:1\r\n",
		"nested":     "*1\r\n*1\r\n$1\r\na\r\n",
		"bad length": "*1\r\n$-1\r\n",
		"long line":  strings.Repeat("x", maxInline+1),
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(noTextOptions)
			r := play(c, []step{out(1, cmd("PING")), out(2, data), in(3, "+PONG\r\n-ERR Protocol error\r\n")})
			equalOps(t, ops(t, r.done), []op{ok("PING", 1, 3)})
			if s := c.Stats(); !c.dead || s.Lost != 1 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestOverflow(t *testing.T) {
	c := newClient(noTextOptions)
	var pipe, replies strings.Builder
	for range maxPending + 44 {
		pipe.WriteString("PING\r\n")
		replies.WriteString("+PONG\r\n")
	}
	r := play(c, []step{out(1, pipe.String()), in(2, replies.String()), out(3, cmd("GET", "k")), in(4, "$-1\r\n")})
	got := ops(t, r.done)
	if len(got) != maxPending+1 || got[maxPending] != ok("GET", 3, 4) {
		t.Fatalf("%d records, last %+v", len(got), got[len(got)-1])
	}
	if s := c.Stats(); s.Overflow != 44 || c.dead {
		t.Errorf("stats %+v", s)
	}
	// A command that changes later replies cannot be dropped: pairing
	// ends after the commands queued.
	c = newClient(noTextOptions)
	r = play(c, []step{out(1, pipe.String(), cmd("SUBSCRIBE", "a")), in(2, replies.String())})
	if len(r.done) != maxPending || !c.dead {
		t.Errorf("%d records, dead %v, stats %+v", len(r.done), c.dead, c.Stats())
	}
}

func TestClose(t *testing.T) {
	c := newClient(noTextOptions)
	r := play(c, []step{
		out(1, cmd("SUBSCRIBE", "a", "b")), in(2, arr(bulk("subscribe"), bulk("a"), ":1\r\n")),
		closeAt(3),
		// Fed on after a close (events were lost): the middle of a stream.
		out(4, cmd("GET", "a")), in(5, "$-1\r\n"),
	})
	equalOps(t, ops(t, r.done), []op{{Name: "SUBSCRIBE", NS: "0", T: [4]uint64{1, 1, 0, 0}}})
	if s := c.Stats(); s.NotPaired != 1 || r.failed[reasonMidStream] != 1 {
		t.Errorf("stats %+v, failed %v", s, r.failed)
	}
	// Reset readies it for a new connection.
	c.Reset(RoleClient)
	r = play(c, []step{out(6, cmd("GET", "a")), in(7, "$-1\r\n")})
	equalOps(t, ops(t, r.done), []op{ok("GET", 6, 7)})
}
