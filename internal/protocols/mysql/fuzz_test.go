package mysql

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// fuzzOptions record query text, so that its checks run too.
var fuzzOptions = &protocols.Options{QueryText: true}

// FuzzParser feeds arbitrary client and server bytes, cut into segments
// of random sizes in both directions with gaps, tails and closes, and
// checks that nothing panics, that every record is well formed, that the
// state stays bounded, and that the caller's buffers are not kept.
// Without gaps, where segments end must not change the records, unless
// the parser lost its place (which depends on segment starts by design).
func FuzzParser(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add([]byte(s[0]), []byte(s[1]), []byte{byte(i), 0x31, 0x9c, 0x07})
	}
	f.Fuzz(func(t *testing.T, client, server, ctl []byte) {
		if len(client) > maxFuzzLen || len(server) > maxFuzzLen || len(ctl) > maxFuzzCtl {
			return // minimizing long inputs would stall the fuzzer
		}
		steps := cutLossy(client, server, ctl)
		clean, _ := fuzzPlay(t, steps, false)
		scribbled, _ := fuzzPlay(t, steps, true)
		if !reflect.DeepEqual(clean, scribbled) {
			t.Fatalf("a Conn kept a caller's buffer:\n%+v\n%+v", clean, scribbled)
		}
		whole, wc := fuzzPlay(t, []step{out(1, string(client)), in(2, string(server)), closeAt(3)}, false)
		cutUp, cc := fuzzPlay(t, cutPlain(client, server, ctl), false)
		if steady(wc) && steady(cc) && !reflect.DeepEqual(untimed(whole), untimed(cutUp)) {
			t.Fatalf("segment boundaries changed the records:\nwhole %+v\ncut   %+v", untimed(whole), untimed(cutUp))
		}
	})
}

// Bounds on the fuzz inputs; the seeds fit.
const (
	maxFuzzLen = 512
	maxFuzzCtl = 64
)

// fuzzSeeds are client and server byte streams of whole sessions.
func fuzzSeeds() [][2]string {
	result, _ := bigResult(10, 30, false, 1)
	return [][2]string{
		{pkt(1, loginPayload(0, "shop")) + query("SELECT id FROM users") + query("SELECT 2"),
			pkt(0, greetingMDB) + pkt(2, okPayload) + textResult([]string{"1", "2"}, false) + pkt(1, errPayload(1146, "42S02", "no"))},
		{pkt(1, loginPayload(capDeprecateEOF, "")) + prepare("SELECT name FROM users WHERE id = ?") + execute(1) + pkt(0, "\x19\x01\x00\x00\x00") + pkt(0, "\x0e"),
			pkt(0, greetingMDB) + pkt(2, okPayload) + pkt(1, prepareOK(1, 1, 1)) + pkt(2, colDef) + pkt(3, colDef) +
				pkt(1, "\x01\x00") + pkt(2, "\x00\x00\x03bob") + pkt(3, okEndRows) + pkt(1, okPayload)},
		{query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t") + pkt(2, "1\t2\n") + pkt(3, "") + query("USE other"),
			pkt(1, "\xfbf") + pkt(4, okPayload) + pkt(1, okPayload)},
		{query("SELECT 1; SELECT 2") + pkt(0, "\x02db") + pkt(0, "\x1f"),
			textResult([]string{"1"}, false)[:len(textResult([]string{"1"}, false))-9] + pkt(5, eofMore) + pkt(6, "\x01") + pkt(7, colDef) + pkt(8, eofPayload) + pkt(9, "\x012") + pkt(10, eofPayload) +
				pkt(1, "\x00\x00\x00\x02\x40\x00\x00\x00\x05\x01\x03\x02db") + pkt(1, okPayload)},
		{pkt(1, loginPayload(capSSL, "")[:32]) + "\x16\x03\x01", pkt(0, greetingMDB) + "\x16\x03\x03"},
		{query("SELECT a, b FROM t"), result},
		{pkt(1, loginPayload(capDeprecateEOF|capQueryAttributes, "")) + pkt(0, "\x03\x00\x01SELECT 1"),
			pkt(0, greetingMy) + pkt(2, "\x01\x03") + pkt(3, okPayload) + pkt(1, "\x01") + pkt(2, colDef) + pkt(3, "\x011") + pkt(4, okEndRows)},
		{pkt(0, "\x16SELECT a FROM t") + pkt(0, "\x17\x04\x00\x00\x00\x01\x01\x00\x00\x00") + pkt(0, "\x1c\x04\x00\x00\x00\x0a\x00\x00\x00"),
			pkt(1, prepareOK(4, 1, 0)) + pkt(2, colDef) + pkt(3, eofPayload) + pkt(1, "\x01") + pkt(2, colDef) + pkt(3, "\xfe\x00\x00\x42\x00") +
				pkt(1, "\x00\x00\x01a") + pkt(2, "\xfe\x00\x00\x82\x00")},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"},
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", "N"},
	}
}

// decider makes the choices of a cut: from the fuzzer's control bytes
// first, then from splitmix64 seeded by them, so that an input is cut
// the same way each time.
type decider struct {
	ctl []byte
	r   uint64
}

func newDecider(ctl []byte) *decider {
	d := &decider{ctl: ctl}
	for _, b := range ctl {
		d.r = d.r*131 + uint64(b)
	}
	return d
}

// n returns a choice in [0, k).
func (d *decider) n(k int) int {
	if len(d.ctl) > 0 {
		v := int(d.ctl[0])
		d.ctl = d.ctl[1:]
		return v % k
	}
	d.r += 0x9E3779B97F4A7C15
	z := d.r
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return int((z ^ (z >> 31)) % uint64(k))
}

// cutLossy turns the two streams into segments as the kernel would
// report them, now and then with a gap, a missing or wrong tail, a
// segment in the wrong direction, a clock step backwards or a close.
func cutLossy(client, server, ctl []byte) []step {
	r := newDecider(ctl)
	var steps []step
	ts := uint64(1)
	src := [2][]byte{Outbound: client, Inbound: server}
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
			switch r.n(6) {
			case 0: // no tail
			case 1:
				s.tail = "\x05\x00\x00\x07\xfe\x00\x00\x02\x00"[:r.n(10)]
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
			ts = max(1, ts-min(ts, uint64(r.n(5))))
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

// cutPlain cuts the client's bytes and then the server's into segments
// without gaps.
func cutPlain(client, server, ctl []byte) []step {
	r := newDecider(ctl)
	var steps []step
	for _, part := range []struct {
		dir Direction
		b   []byte
	}{{Outbound, client}, {Inbound, server}} {
		b := part.b
		for len(b) > 0 {
			n := min(len(b), 1+r.n(16))
			steps = append(steps, step{dir: part.dir, data: string(b[:n]), t: uint64(len(steps) + 1)})
			b = b[n:]
		}
	}
	return append(steps, closeAt(uint64(len(steps)+1)))
}

// steady says a run never lost its place: its records do not depend on
// where segments started.
func steady(c *Conn) bool {
	st := c.Stats()
	return st.Resyncs+st.NotMySQL+st.Unmatched+st.Dropped+st.EndUnseen+st.Unconfirmed+st.TLS+st.Compressed == 0
}

// untimed drops what depends on segmentation: the times and threads.
func untimed(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Exchange = protocols.Exchange{Role: r.Role}
		out[i] = r
	}
	return out
}

// fuzzPlay plays steps, checking each record and the bounds on state,
// with plain comparisons: the fuzzer runs it very often.
func fuzzPlay(t *testing.T, steps []step, scribbleAfter bool) ([]Record, *Conn) {
	c := NewConn(fuzzOptions)
	s := &checkSink{t: t}
	for _, st := range steps {
		if st.close {
			c.Close(st.t, s)
			if c.qHead != len(c.q) {
				t.Fatalf("%d commands left after Close", len(c.q)-c.qHead)
			}
			continue
		}
		n := st.len
		if n == 0 {
			n = len(st.data)
		}
		data, tail := []byte(st.data), []byte(st.tail)
		c.Feed(st.dir, &protocols.Segment{Data: data, Len: n, Tail: tail, Time: st.t}, s)
		if scribbleAfter {
			scribble(data)
			scribble(tail)
		}
		checkBounds(t, c)
	}
	return s.records, c
}

func checkBounds(t *testing.T, c *Conn) {
	for i := range c.rd {
		if len(c.rd[i].buf) > maxQuery+1 {
			t.Fatalf("reader %d holds %d bytes", i, len(c.rd[i].buf))
		}
	}
	if n := len(c.q) - c.qHead; n > maxPending {
		t.Fatalf("%d commands pending", n)
	}
	if len(c.stmts.m) > maxStatements || c.stmts.bytes > maxStmtBytes || len(c.stmts.order) > 2*maxStatements+1 {
		t.Fatalf("statement table of %d, %d bytes, order %d", len(c.stmts.m), c.stmts.bytes, len(c.stmts.order))
	}
}

// checkSink checks every record as it comes.
type checkSink struct {
	t       *testing.T
	records []Record
	started int
}

func (s *checkSink) Started(x *protocols.Exchange) {
	s.started++
	if x.Role != protocols.RoleClient {
		s.t.Fatalf("started with role %v", x.Role)
	}
}

func (s *checkSink) Failed(reason string) {
	if reason == "" || strings.ToLower(reason) != reason {
		s.t.Fatalf("bad reason %q", reason)
	}
}

func (s *checkSink) Done(r protocols.Record) {
	rec := *(r.(*Record))
	if err := checkRecord(&rec); err != "" {
		s.t.Fatalf("%s in %+v", err, rec)
	}
	if len(s.records) >= s.started {
		s.t.Fatalf("more records (%d) than started requests (%d)", len(s.records)+1, s.started)
	}
	s.records = append(s.records, rec)
}

// checkRecord returns what is wrong with r, or "".
func checkRecord(r *Record) string {
	d := &r.DB
	switch {
	case r.Role != protocols.RoleClient:
		return "bad role"
	case r.Command != comQuery && r.Command != comStmtPrepare && r.Command != comStmtExecute && r.Command != comStmtBulkExecute:
		return "bad command"
	case d.System != semconv.MySQL && d.System != MariaDB && d.System != semconv.OtherSQL:
		return "bad system"
	case r.RequestStart > r.RequestEnd:
		return "request ends before it starts"
	case r.ResponseEnd != 0 && r.ResponseStart > r.ResponseEnd:
		return "response ends before it starts"
	case r.ResponseEnd == 0 && (r.ResponseStart != 0 || d.Error):
		return "response fields without a response"
	case d.Error != (d.StatusCode != ""), d.StatusCode != d.ErrorType:
		return "error fields disagree"
	case r.Command == comStmtPrepare && d.Operation != "PREPARE":
		return "prepare without its operation"
	case len(d.Namespace) > maxNamespace || len(d.QueryText) > 4*maxQuery:
		return "value too long"
	case !utf8.ValidString(d.Operation + d.Collection + d.Namespace + d.QueryText + d.Summary + r.SQLState):
		return "invalid UTF-8"
	}
	if d.StatusCode != "" {
		if n, err := strconv.Atoi(d.StatusCode); err != nil || n < 0 || n > 0xfffe {
			return "bad status code"
		}
	}
	return ""
}

// TestFuzzSeedsFit keeps the seeds within the fuzz bounds: a seed over
// them would be skipped without a word.
func TestFuzzSeedsFit(t *testing.T) {
	for i, s := range fuzzSeeds() {
		if len(s[0]) > maxFuzzLen || len(s[1]) > maxFuzzLen {
			t.Errorf("seed %d: %d and %d bytes", i, len(s[0]), len(s[1]))
		}
	}
}
