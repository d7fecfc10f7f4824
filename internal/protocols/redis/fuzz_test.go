package redis

import (
	"reflect"
	"testing"
)

// FuzzParser feeds arbitrary commands and replies, cut into segments of
// random sizes with random gaps, tails and closes, and checks that nothing
// panics, that every record is well formed, that state stays bounded, that
// the caller's buffers are not kept, and that without gaps where segments
// end changes nothing but times.
func FuzzParser(f *testing.F) {
	seeds := []struct{ cmds, replies string }{
		{cmd("SET", "k", "v") + cmd("GET", "k") + "PING\r\n", "+OK\r\n$1\r\nv\r\n+PONG\r\n"},
		{cmd("HELLO", "3") + cmd("SUBSCRIBE", "a") + cmd("GET", "k") + cmd("UNSUBSCRIBE"),
			"%1\r\n$5\r\nproto\r\n:3\r\n" + push(bulk("subscribe"), bulk("a"), ":1\r\n") +
				push(bulk("message"), bulk("a"), bulk("m")) + "|1\r\n+a\r\n+b\r\n_\r\n" + push(bulk("unsubscribe"), bulk("a"), ":0\r\n")},
		{cmd("MULTI") + cmd("INCR", "n") + cmd("NOSUCH") + cmd("SELECT", "3") + cmd("EXEC"),
			"+OK\r\n+QUEUED\r\n-ERR unknown\r\n+QUEUED\r\n*2\r\n:1\r\n+OK\r\n"},
		{cmd("SUBSCRIBE", "a", "b") + cmd("PING") + cmd("UNSUBSCRIBE"),
			arr(bulk("subscribe"), bulk("a"), ":1\r\n") + arr(bulk("subscribe"), bulk("b"), ":2\r\n") +
				arr(bulk("message"), bulk("a"), bulk("x")) + arr(bulk("pong"), bulk("")) +
				arr(bulk("unsubscribe"), bulk("a"), ":1\r\n") + arr(bulk("unsubscribe"), bulk("b"), ":0\r\n")},
		{cmd("CLIENT", "REPLY", "SKIP") + cmd("GET", "a") + cmd("CLIENT", "REPLY", "OFF") + cmd("SET", "a", "1") +
			cmd("CLIENT", "REPLY", "ON"), "+OK\r\n"},
		{cmd("MONITOR") + cmd("PING"), "+OK\r\n+PONG\r\n+1.2 [0 127.0.0.1:1] \"PING\"\r\n"},
		{cmd("GET", "a") + cmd("LRANGE", "l", "0", "-1"), "$?\r\n;2\r\nab\r\n;0\r\n*?\r\n:1\r\n%?\r\n+a\r\n,1.5\r\n.\r\n.\r\n"},
		{cmd("SET", "big", string(make([]byte, 300))), "+OK\r\n"},
		{"GET /x HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"},
	}
	for name := range sessions {
		var c, r []byte
		for _, s := range readSession(f, name) {
			if s.dir == Outbound {
				c = append(c, s.data...)
			} else {
				r = append(r, s.data...)
			}
		}
		if len(c) <= maxFuzzLen && len(r) <= maxFuzzLen {
			seeds = append(seeds, struct{ cmds, replies string }{string(c), string(r)})
		}
	}
	for i, s := range seeds {
		f.Add([]byte(s.cmds), []byte(s.replies), []byte{byte(i), 0x5a, 0x13, 0xc7})
	}
	// The cuts are decided by a byte slice rather than an integer: the
	// fuzzer minimizes an integer by trying every smaller value.
	f.Fuzz(func(t *testing.T, cmds, replies, ctl []byte) {
		if len(cmds) > maxFuzzLen || len(replies) > maxFuzzLen || len(ctl) > maxFuzzCtl {
			return // long inputs stall the fuzzer's minimizing; the unit tests have them
		}
		steps := cut(cmds, replies, ctl)
		clean, _ := fuzzPlay(t, steps, false)
		scribbled, _ := fuzzPlay(t, steps, true)
		if !reflect.DeepEqual(clean, scribbled) {
			t.Fatalf("a Conn kept a caller's buffer:\n%+v\n%+v", clean, scribbled)
		}
		// Without gaps, where segments end must not matter.
		whole, wc := fuzzPlay(t, []step{out(1, string(cmds)), in(2, string(replies)), closeAt(3)}, false)
		cutUp, cc := fuzzPlay(t, cutPlain(cmds, replies, ctl), false)
		if !reflect.DeepEqual(untimed(whole), untimed(cutUp)) || wc.Stats() != cc.Stats() {
			t.Fatalf("segment boundaries changed the records:\nwhole %+v %+v\ncut   %+v %+v",
				whole, wc.Stats(), cutUp, cc.Stats())
		}
	})
}

// Bounds on the fuzz inputs; the seeds fit.
const (
	maxFuzzLen = 1024
	maxFuzzCtl = 64
)

// decider makes the choices of cut: from the fuzzer's control bytes
// first, then from splitmix64 seeded by them.
type decider struct {
	ctl []byte
	r   uint64
}

func newDecider(ctl []byte) *decider {
	d := &decider{ctl: ctl}
	for _, b := range ctl {
		d.r = d.r*31 + uint64(b)
	}
	return d
}

// n returns a choice in [0, k).
func (d *decider) n(k int) int {
	if len(d.ctl) > 0 {
		v := int(d.ctl[0])
		d.ctl = d.ctl[1:]
		if k > 256 && len(d.ctl) > 0 {
			v = v<<8 | int(d.ctl[0])
			d.ctl = d.ctl[1:]
		}
		return v % k
	}
	d.r += 0x9E3779B97F4A7C15
	z := d.r
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return int((z ^ (z >> 31)) % uint64(k))
}

// cut turns the two byte streams into segments the way the kernel would
// report them, interleaved, with now and then a gap, a missing or wrong
// tail, an inconsistent length, a segment in the wrong direction, a clock
// step backwards, a close or a Reset.
func cut(cmds, replies, ctl []byte) []step {
	r := newDecider(ctl)
	var steps []step
	var ts uint64 = 1
	src := [2][]byte{replies, cmds} // by Direction
	for len(src[0])+len(src[1]) > 0 {
		d := Direction(r.n(2))
		if len(src[d]) == 0 {
			d = 1 - d
		}
		var n int
		switch r.n(4) {
		case 0:
			n = 1 + r.n(8)
		case 1:
			n = 1 + r.n(64)
		case 2:
			n = 1 + r.n(4096)
		default:
			n = len(src[d])
		}
		n = min(n, len(src[d]))
		all := src[d][:n]
		src[d] = src[d][n:]
		s := step{dir: d, data: string(all), t: ts}
		if r.n(32) == 0 {
			s.dir = 1 - d
		}
		if r.n(5) == 0 {
			capture := r.n(n + 1)
			s.data, s.len = string(all[:capture]), n
			switch r.n(8) {
			case 0: // no tail
			case 1:
				s.tail = "\r\n+OK\r\n:1\r\n"[:r.n(11)]
			default:
				s.tail = string(all[n-min(16, n):])
			}
		}
		if r.n(64) == 0 {
			s.len = r.n(len(s.data) + 1)
		}
		steps = append(steps, s)
		switch r.n(64) {
		case 0:
			ts -= min(ts, uint64(r.n(5)))
		case 1:
			steps = append(steps, closeAt(ts))
		case 2:
			steps = append(steps, step{close: true, t: ts, tid: resetMark})
		}
		ts += uint64(r.n(3))
	}
	if r.n(2) == 0 {
		steps = append(steps, closeAt(ts))
	}
	return steps
}

// resetMark in a close step's tid asks for a Reset instead.
const resetMark = 1 << 31

// cutPlain cuts the commands and then the replies into segments without
// gaps.
func cutPlain(cmds, replies, ctl []byte) []step {
	r := newDecider(ctl)
	steps := []step{}
	for i, b := range [][]byte{cmds, replies} {
		dir := Outbound
		if i == 1 {
			dir = Inbound
		}
		for len(b) > 0 {
			n := min(len(b), 1+r.n(16))
			steps = append(steps, step{dir: dir, data: string(b[:n]), t: uint64(len(steps) + 1)})
			b = b[n:]
		}
	}
	return append(steps, closeAt(uint64(len(steps)+1)))
}

// fuzzPlay plays steps, checking each record and the bounds on state.
func fuzzPlay(t *testing.T, steps []step, scribbleAfter bool) ([]Record, *Conn) {
	c := newClient(textOptions)
	r := &recorder{}
	checked := 0
	check := func() {
		for ; checked < len(r.done); checked++ {
			if err := checkRecord(&r.done[checked]); err != "" {
				t.Fatalf("%s in %+v", err, r.done[checked])
			}
		}
		if n := len(c.q) - c.qHead; n > maxPending || c.qHead > len(c.q) || c.ans < c.qHead && len(c.q) > 0 {
			t.Fatalf("queue: %d waiting, head %d, answered to %d", n, c.qHead, c.ans)
		}
		for i := range c.streams {
			s := &c.streams[i]
			if s.depth < 0 || s.depth > maxDepth || s.cur.n > maxItem || s.size > maxInline {
				t.Fatalf("stream %d: depth %d, item %d, line %d", i, s.depth, s.cur.n, s.size)
			}
		}
	}
	for _, s := range steps {
		switch {
		case s.close && s.tid == resetMark:
			c.Reset(RoleClient)
		case s.close:
			c.Close(s.t, r)
			if c.qHead != len(c.q) {
				t.Fatalf("%d commands left after Close", len(c.q)-c.qHead)
			}
		default:
			n := s.len
			if n == 0 {
				n = len(s.data)
			}
			data, tail := []byte(s.data), []byte(s.tail)
			c.Feed(s.dir, &Segment{Data: data, Len: n, Tail: tail, Time: s.t}, r)
			if scribbleAfter {
				scribble(data)
				scribble(tail)
			}
		}
		check()
	}
	return r.done, c
}

// untimed drops what depends on where segments end.
func untimed(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		answered := uint64(0)
		if r.ResponseEnd != 0 {
			answered = 1 // whether a reply came does not depend on segments
		}
		r.RequestStart, r.RequestEnd, r.ResponseStart, r.ResponseEnd = 0, 0, answered, answered
		r.Tag = nil
		out[i] = r
	}
	return out
}
