package http1

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzConn feeds arbitrary bytes, cut into segments of random sizes in both
// directions with random gaps and tails, and checks that nothing panics,
// that every exchange is well formed, that state stays bounded, and that
// the caller's buffers are not kept (scribbling over them changes nothing).
func FuzzConn(f *testing.F) {
	seeds := []struct{ in, out string }{
		{getA + getB, ok2 + nf},
		{getA + getB + getC, ok2 + nf + err500},
		{"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
			"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"},
		{"GET /c HTTP/1.1\r\nHost: h\r\ntraceparent: " + tp + "\r\n\r\n",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(strings.Repeat("c", 200), 64)},
		{"PUT /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n",
			"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"},
		{"GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nuntil close"},
		{"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x85abcde", "HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello"},
		{h2cRequest + "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", h2c101 + serverFrames},
		{"CONNECT a:443 HTTP/1.1\r\n\r\n\x16\x03\x01", "HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03"},
		{"GET /big HTTP/1.1\r\nCookie: " + strings.Repeat("k", 300) + "\r\n\r\n", ok2},
		{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + getA, "\x16\x03\x03\x00\x7a" + ok2},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04", "\x00\x00\x06\x04\x00\x00"},
		{"*1\r\n$4\r\nPING\r\n", "+PONG\r\n"},
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", "N"},
	}
	for i, s := range seeds {
		f.Add([]byte(s.in), []byte(s.out), []byte{byte(i), 0x5a, 0x13, 0xc7})
	}
	// The cuts are decided by a byte slice rather than an integer: the
	// fuzzer minimizes an integer by trying every smaller value, which
	// stalls it for minutes on a random 64-bit seed.
	f.Fuzz(func(t *testing.T, reqs, resps, ctl []byte) {
		if len(reqs) > maxFuzzLen || len(resps) > maxFuzzLen || len(ctl) > maxFuzzCtl {
			// The fuzzer minimizes each new input in time quadratic in
			// its length, and stops fuzzing meanwhile: long inputs would
			// take most of the run. The 64-request limit and heads over
			// 64 KiB are left to the unit tests.
			return
		}
		steps := cut(reqs, resps, ctl)
		clean, _ := fuzzPlay(t, steps, false)
		scribbled, _ := fuzzPlay(t, steps, true)
		if !reflect.DeepEqual(clean, scribbled) {
			t.Fatalf("a Conn kept a caller's buffer:\n%+v\n%+v", clean, scribbled)
		}

		// Without gaps, where segments end must not matter: each direction
		// fed whole and fed in pieces must give the same exchanges, unless
		// bytes were not HTTP or the parser had to guess (both depend on
		// where segments start, by design).
		whole, wc := fuzzPlay(t, []step{in(1, string(reqs)), out(2, string(resps)), closeAt(3)}, false)
		cutUp, cc := fuzzPlay(t, cutPlain(reqs, resps, ctl), false)
		if wc.stats.NotHTTP+cc.stats.NotHTTP+wc.guesses+cc.guesses == 0 &&
			!reflect.DeepEqual(untimed(whole), untimed(cutUp)) {
			t.Fatalf("segment boundaries changed the exchanges:\nwhole %+v\ncut   %+v", whole, cutUp)
		}
	})
}

// Bounds on the fuzz inputs; the seeds fit.
const (
	maxFuzzLen = 512
	maxFuzzCtl = 64
)

// decider makes the choices of cut: from the fuzzer's control bytes
// first, then from splitmix64 seeded by them, so that every input is cut
// the same way each time.
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
// report them, with now and then a gap, a missing or wrong tail, an
// inconsistent length, a segment in the wrong direction, a clock step
// backwards or a close.
func cut(in, out, ctl []byte) []step {
	r := newDecider(ctl)
	var steps []step
	var ts uint64 = 1
	src := [2][]byte{in, out}
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
				s.tail = "\r\n0\r\n\r\n"[:r.n(8)]
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
		}
		ts += uint64(r.n(3))
	}
	if r.n(2) == 0 {
		steps = append(steps, closeAt(ts))
	}
	return steps
}

// fuzzPlay plays steps, checking each exchange and the bounds on state.
// It checks with plain comparisons: the fuzzer runs it many thousands of
// times, and minimizing an input runs it again for each candidate.
func fuzzPlay(t *testing.T, steps []step, scribbleAfter bool) ([]Exchange, *Conn) {
	c := newTestConn()
	var got []Exchange
	emit := func(x Exchange) {
		if err := checkExchange(x); err != "" {
			t.Fatalf("%s in %+v", err, x)
		}
		got = append(got, x)
	}
	for _, s := range steps {
		if s.close {
			c.Close(s.t, emitter(emit))
			if c.qHead != len(c.q) {
				t.Fatalf("%d requests left after Close", len(c.q)-c.qHead)
			}
			continue
		}
		n := s.len
		if n == 0 {
			n = len(s.data)
		}
		data, tail := []byte(s.data), []byte(s.tail)
		c.Feed(s.dir, &Segment{Data: data, Len: n, Tail: tail, Time: s.t}, emitter(emit))
		if scribbleAfter {
			scribble(data)
			scribble(tail)
		}
		for i := range c.streams {
			if len(c.streams[i].buf) > maxHead || c.streams[i].wl > len(c.streams[i].win) {
				t.Fatalf("stream %d holds %d head bytes, %d window bytes", i, len(c.streams[i].buf), c.streams[i].wl)
			}
		}
		if n := len(c.q) - c.qHead; n > maxPending {
			t.Fatalf("%d requests pending", n)
		}
	}
	return got, c
}

// cutPlain cuts in and then out into segments without gaps.
func cutPlain(in, out, ctl []byte) []step {
	r := newDecider(ctl)
	steps := []step{}
	for d, b := range [][]byte{in, out} {
		for len(b) > 0 {
			n := min(len(b), 1+r.n(16))
			steps = append(steps, step{dir: Direction(d), data: string(b[:n]), t: uint64(len(steps) + 1)})
			b = b[n:]
		}
	}
	return append(steps, closeAt(uint64(len(steps)+1)))
}

// checkExchange returns what is wrong with x, or "".
func checkExchange(x Exchange) string {
	switch {
	case x.Role != RoleServer && x.Role != RoleClient:
		return "bad role"
	case x.Method == "" || len(x.Method) > maxMethod:
		return "bad method"
	case x.Target == "" || len(x.Target) > maxTarget:
		return "bad target length"
	case len(x.Host) > maxHost || len(x.Traceparent) > maxTraceparent:
		return "value too long"
	case !utf8.ValidString(x.Method + x.Target + x.Host + x.Traceparent):
		return "invalid UTF-8"
	case x.Version != "1.0" && x.Version != "1.1" && x.Version != "":
		return "bad version"
	case x.Version == "" && !x.Partial:
		return "version missing from a whole head"
	case x.Status != 0 && x.Status != 101 && (x.Status < 200 || x.Status > 999):
		return "bad status"
	case x.RequestStart > x.RequestEnd:
		return "request ends before it starts"
	case x.Status == 0 && (x.ResponseStart != 0 || x.ResponseEnd != 0 || x.ResponseBodySize != 0):
		return "response times without a response"
	case x.ResponseStart > x.ResponseEnd:
		return "response ends before it starts"
	case x.RequestBodySize < 0 || x.ResponseBodySize < 0:
		return "negative body size"
	}
	return ""
}
