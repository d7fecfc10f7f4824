package postgres

import (
	"reflect"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// FuzzParser feeds arbitrary bytes, cut into segments of random sizes in
// both directions with random gaps and tails, closes and losses, and
// checks that nothing panics, that every record is well formed, that the
// state stays within its bounds, that the caller's buffers are not kept
// (scribbling over them changes nothing), and that, without gaps, where
// segments end does not change the records.
func FuzzParser(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add([]byte(s.in), []byte(s.out), []byte{0x5a, 0x13, 0xc7, byte(len(s.in))})
	}
	// The cuts are decided by bytes rather than an integer: minimizing an
	// integer tries every smaller value, which stalls the fuzzer.
	f.Fuzz(func(t *testing.T, reqs, resps, ctl []byte) {
		if len(reqs) > maxFuzzLen || len(resps) > maxFuzzLen || len(ctl) > maxFuzzCtl {
			return // long inputs make minimizing slow; bounds are unit-tested
		}
		steps := cut(reqs, resps, ctl)
		clean, _ := fuzzPlay(t, steps, false)
		scribbled, _ := fuzzPlay(t, steps, true)
		if !reflect.DeepEqual(clean, scribbled) {
			t.Fatalf("a Conn kept a caller's buffer:\n%v\n%v", briefs(clean), briefs(scribbled))
		}
		whole, wc := fuzzPlay(t, []step{out(1, string(reqs)), in(2, string(resps)), closeAt(3)}, false)
		pieces, pc := fuzzPlay(t, cutPlain(reqs, resps, ctl), false)
		if inStep(wc) && inStep(pc) && !reflect.DeepEqual(untimedAll(whole), untimedAll(pieces)) {
			t.Fatalf("segment boundaries changed the records:\nwhole  %v\npieces %v", briefs(whole), briefs(pieces))
		}
	})
}

// Bounds on the fuzz inputs.
const (
	maxFuzzLen = 384
	maxFuzzCtl = 64
)

// inStep says whether a run began at the connection's start and never
// lost its place: only then do segment boundaries not matter.
func inStep(c *Conn) bool {
	st := c.Stats()
	return c.begun && st.NotPostgres+st.StreamLost+st.Unexpected+st.Resynced+st.Encrypted == 0
}

// untimedAll drops the times, which differ between cuttings.
func untimedAll(rs []Record) []Record {
	out := make([]Record, len(rs))
	for i, r := range rs {
		r.Exchange = protocols.Exchange{Role: r.Role, Clipped: r.Clipped}
		out[i] = r
	}
	return out
}

type fuzzSeed struct{ in, out string }

// fuzzSeeds are the recorded sessions, shortened, and hand-made streams.
func fuzzSeeds(f testing.TB) []fuzzSeed {
	var seeds []fuzzSeed
	for _, name := range []string{"pgx-simple", "pgx-extended", "pgx-batch", "psql", "psycopg2"} {
		for _, conn := range readSession(f, name) {
			var dirs [2][]byte
			for _, ch := range conn {
				dirs[ch.dir] = append(dirs[ch.dir], ch.data...)
			}
			seeds = append(seeds, fuzzSeed{
				string(dirs[Outbound][:min(len(dirs[Outbound]), maxFuzzLen)]),
				string(dirs[Inbound][:min(len(dirs[Inbound]), maxFuzzLen)]),
			})
		}
	}
	st := startup("user", "u", "database", "d")
	welcome := authOK + backendKey + ready('I')
	seeds = append(seeds,
		fuzzSeed{sslReq + st + query("SELECT 1; SELECT 2"), "N" + welcome + rowDesc("a") + dataRow("1") +
			complete("SELECT 1") + notice("n") + complete("SELECT 1") + ready('I')},
		fuzzSeed{st + parseMsg("s", "INSERT INTO t VALUES ($1)") + bindMsg("", "s") + execMsg("") + syncMsg +
			bindMsg("", "s") + execMsg("") + flushMsg + syncMsg,
			welcome + parseOK + bindOK + errorResp("23505", "dup") + ready('E') + bindOK + complete("INSERT 0 1") + ready('I')},
		fuzzSeed{st + query("COPY t FROM STDIN") + copyData("1\n") + copyDone + query("COPY t TO STDOUT"),
			welcome + copyInResp(1) + complete("COPY 1") + ready('I') + copyOutResp(1) + copyData("1\n") + copyDone +
				complete("COPY 1") + ready('I')},
		fuzzSeed{bindMsg("", "x") + execMsg("") + syncMsg, dataRow("1") + complete("SELECT 1") + ready('I') + bindOK},
		fuzzSeed{gssReq + st, "G\x16\x03\x03"},
	)
	return seeds
}

// decider makes the choices of cut: from the fuzzer's control bytes, then
// from splitmix64 seeded by them, so that every input is cut the same way
// each time.
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

// cut turns the two byte streams into segments as the kernel would report
// them, now and then with a gap and its tail (or a wrong one), an
// inconsistent length, a segment in the wrong direction, or a close.
func cut(in, out, ctl []byte) []step {
	r := newDecider(ctl)
	var steps []step
	var ts uint64 = 1
	src := [2][]byte{in, out}
	dirOf := [2]Direction{Outbound, Inbound}
	for len(src[0])+len(src[1]) > 0 {
		i := r.n(2)
		if len(src[i]) == 0 {
			i = 1 - i
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
			n = len(src[i])
		}
		n = min(n, len(src[i]))
		all := src[i][:n]
		src[i] = src[i][n:]
		s := step{dir: dirOf[i], data: string(all), t: ts}
		if r.n(32) == 0 {
			s.dir = 1 - s.dir
		}
		if r.n(5) == 0 {
			capture := r.n(n + 1)
			s.data, s.len = string(all[:capture]), n
			switch r.n(8) {
			case 0: // no tail
			case 1:
				s.tail = "\x00Z\x00\x00\x00\x05I"[:r.n(8)]
			default:
				s.tail = string(all[n-min(16, n):])
			}
		}
		if r.n(64) == 0 {
			s.len = r.n(len(s.data) + 1)
		}
		steps = append(steps, s)
		if r.n(64) == 0 {
			steps = append(steps, closeAt(ts))
		}
		ts += uint64(r.n(3))
	}
	if r.n(2) == 0 {
		steps = append(steps, closeAt(ts))
	}
	return steps
}

// cutPlain cuts in and then out into segments without gaps.
func cutPlain(in, out, ctl []byte) []step {
	r := newDecider(ctl)
	var steps []step
	for i, b := range [][]byte{in, out} {
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

// fuzzPlay plays steps, checking each record and the bounds on state. It
// checks with plain comparisons: the fuzzer runs it very often.
func fuzzPlay(t *testing.T, steps []step, scribbleAfter bool) ([]Record, *Conn) {
	c := NewConn(withText)
	c.Reset(protocols.RoleClient)
	s := &sink{}
	for _, st := range steps {
		if st.close {
			c.Close(st.t, s)
			if c.recHead != len(c.recs) {
				t.Fatalf("%d records left after Close", len(c.recs)-c.recHead)
			}
			continue
		}
		n := st.len
		if n == 0 {
			n = len(st.data)
		}
		data, tail := []byte(st.data), []byte(st.tail)
		c.Feed(st.dir, &Segment{Data: data, Len: n, Tail: tail, Time: st.t}, s)
		if scribbleAfter {
			for i := range data {
				data[i] = 0xa5
			}
			for i := range tail {
				tail[i] = 0x5a
			}
		}
		if msg := checkBounds(c); msg != "" {
			t.Fatal(msg)
		}
	}
	for i := range s.done {
		if msg := checkRecord(&s.done[i]); msg != "" {
			t.Fatalf("%s in %+v", msg, s.done[i])
		}
	}
	if len(s.done) > len(s.started) {
		t.Fatalf("%d records done, %d started", len(s.done), len(s.started))
	}
	return s.done, c
}

// checkBounds returns what is wrong with the state of c, or "".
func checkBounds(c *Conn) string {
	switch {
	case c.owed() > maxItems:
		return "too many answers owed"
	case len(c.recs)-c.recHead > maxRecords:
		return "too many records in flight"
	case len(c.stmts.m) > maxStatements || c.stmts.bytes > maxStatementBytes:
		return "too many statements"
	case len(c.portals.named) > maxPortals:
		return "too many portals"
	case len(c.client.body) > keepFor(true, 0) || len(c.server.body) > maxError:
		return "a body buffer grew past its bound"
	case c.client.nwin > len(c.client.win) || c.server.nwin > len(c.server.win):
		return "window overflow"
	}
	return ""
}

// checkRecord returns what is wrong with r, or "".
func checkRecord(r *Record) string {
	switch {
	case r.Role != protocols.RoleClient || r.System != "postgresql":
		return "bad role or system"
	case r.RequestStart == 0 || r.RequestStart > r.RequestEnd:
		return "bad request times"
	case r.ResponseEnd != 0 && (r.ResponseStart == 0 || r.ResponseStart > r.ResponseEnd):
		return "bad response times"
	case r.ResponseStart != 0 && r.ResponseStart < r.RequestStart:
		return "response before request"
	case r.StatusCode != "" && !sqlstate([]byte(r.StatusCode)):
		return "status code is no SQLSTATE"
	case r.Error != (r.ErrorType != ""):
		return "error flag and error.type disagree"
	case r.StatusCode != "" && r.ErrorType != r.StatusCode:
		return "error.type is not the status code"
	case r.BatchSize == 1 || r.BatchSize < 0:
		return "batch of one"
	case r.Clipped && (r.QueryText != "" || r.Collection != "" || r.Summary != ""):
		return "clipped text described"
	case len(r.Namespace) > maxStartup:
		return "namespace too long"
	}
	return ""
}
