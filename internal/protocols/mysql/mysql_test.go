package mysql

import (
	"reflect"
	"strings"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/sqlquery"
)

func in(t uint64, data string) step  { return step{dir: Inbound, data: data, t: t} }
func out(t uint64, data string) step { return step{dir: Outbound, data: data, t: t} }
func closeAt(t uint64) step          { return step{close: true, t: t} }

// handshake is a MariaDB greeting, a login to db with caps, and the OK.
func handshake(caps uint32, db string) []step {
	return []step{
		in(1, pkt(0, greetingMDB)),
		out(2, pkt(1, loginPayload(caps, db))),
		in(3, pkt(2, okPayload)),
	}
}

// clean fails t when c lost or dropped anything.
func clean(t *testing.T, c *Conn) {
	t.Helper()
	if st := c.Stats(); st.Dropped+st.Unmatched+st.EndUnseen+st.Unconfirmed+st.NotMySQL != 0 {
		t.Errorf("stats %+v", st)
	}
}

// noText is what tests of framing compare: everything but the text.
var noText = &protocols.Options{}

func TestTextQueryExchange(t *testing.T) {
	steps := append(handshake(capDeprecateEOF, "shop"),
		out(10, query("SELECT id FROM users")),
		in(11, textResult([]string{"1", "2", "3"}, true)),
		out(12, query("SELECT * FROM nope")),
		in(13, pkt(1, errPayload(1146, "42S02", "Table 'shop.nope' doesn't exist"))),
		closeAt(20),
	)
	c := NewConn(noText)
	s := play(c, steps)
	if len(s.records) != 2 || s.started != 2 {
		t.Fatalf("%d records, %d started, want 2 and 2", len(s.records), s.started)
	}
	r := s.records[0]
	want := protocols.Exchange{Role: protocols.RoleClient, RequestStart: 10, RequestEnd: 10, ResponseStart: 11, ResponseEnd: 11, Tid: 7}
	if r.Exchange != want {
		t.Errorf("exchange %+v, want %+v", r.Exchange, want)
	}
	if r.System != MariaDB || r.Namespace != "shop" || r.Error || r.StatusCode != "" || r.QueryText != "" {
		t.Errorf("first record %+v", r.DB)
	}
	e := s.records[1]
	if e.StatusCode != "1146" || e.ErrorType != "1146" || !e.Error || e.SQLState != "42S02" || e.ResponseEnd != 13 {
		t.Errorf("error record %+v %q end %d", e.DB, e.SQLState, e.ResponseEnd)
	}
	if st := c.Stats(); st.Records != 2 || st.Dropped+st.Unmatched+st.NotMySQL+st.EndUnseen != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestEveryByteBoundary feeds a session cut at every byte of each
// direction: the records must not change.
func TestEveryByteBoundary(t *testing.T) {
	req := []string{
		pkt(1, loginPayload(0, "shop")),
		query("SELECT id FROM users"),
		prepare("SELECT name FROM users WHERE id = ?"),
		execute(5),
		query("SELECT * FROM nope"),
		pkt(0, "\x0e"),
		pkt(0, "\x02other"),
		query("UPDATE users SET n = 1"),
	}
	resp := []string{
		pkt(0, greetingMDB),
		pkt(2, okPayload),
		textResult([]string{"1", "22", "333"}, false),
		pkt(1, prepareOK(5, 1, 1)) + pkt(2, colDef) + pkt(3, eofPayload) + pkt(4, colDef) + pkt(5, eofPayload),
		pkt(1, "\x01") + pkt(2, colDef) + pkt(3, eofPayload) + pkt(4, "\x00\x00\x03bob") + pkt(5, eofPayload),
		pkt(1, errPayload(1146, "42S02", "no")),
		pkt(1, okPayload),
		pkt(1, okPayload),
		pkt(1, okPayload),
	}
	// Request i is answered by response i+1 (the greeting comes first).
	build := func(cutReq, cutResp int) []step {
		var steps []step
		ts := uint64(1)
		add := func(dir Direction, s string, cut int) {
			if cut > 0 && cut < len(s) {
				steps = append(steps, step{dir: dir, data: s[:cut], t: ts}, step{dir: dir, data: s[cut:], t: ts + 1})
			} else {
				steps = append(steps, step{dir: dir, data: s, t: ts})
			}
			ts += 2
		}
		add(Inbound, resp[0], cutResp)
		for i, r := range req {
			add(Outbound, r, cutReq)
			add(Inbound, resp[i+1], cutResp)
		}
		return append(steps, closeAt(ts))
	}
	whole := play(NewConn(noText), build(0, 0))
	want := []brief{
		{Sys: MariaDB, Cmd: comQuery, Op: "SELECT", Coll: "users", NS: "shop", Summary: "SELECT users"},
		{Sys: MariaDB, Cmd: comStmtPrepare, Op: "PREPARE", Coll: "users", NS: "shop"},
		{Sys: MariaDB, Cmd: comStmtExecute, Op: "SELECT", Coll: "users", NS: "shop", Summary: "SELECT users"},
		{Sys: MariaDB, Cmd: comQuery, Op: "SELECT", Coll: "nope", NS: "shop", Summary: "SELECT nope", Code: "1146", Err: true, State: "42S02"},
		{Sys: MariaDB, Cmd: comQuery, Op: "UPDATE", Coll: "users", NS: "other", Summary: "UPDATE users"},
	}
	if got := briefs(whole.records); !reflect.DeepEqual(got, want) {
		t.Fatalf("whole:\n%v\nwant\n%v", got, want)
	}
	for cut := 1; cut < 200; cut++ {
		for _, mode := range [][2]int{{cut, 0}, {0, cut}, {cut, cut}} {
			got := play(NewConn(noText), build(mode[0], mode[1]))
			if !reflect.DeepEqual(briefs(got.records), briefs(whole.records)) {
				t.Fatalf("cut %v:\n%v\nwant\n%v", mode, briefs(got.records), briefs(whole.records))
			}
		}
	}
}

// bigResult is a text result set of n rows of width bytes each.
func bigResult(n, width int, deprecate bool, seq0 uint8) (string, uint8) {
	var b strings.Builder
	seq := seq0
	next := func(p string) { b.WriteString(pkt(seq, p)); seq++ }
	next("\x02")
	next(colDef)
	next(colDef)
	if !deprecate {
		next(eofPayload)
	}
	row := lenencStr(strings.Repeat("r", width-3))
	for range n {
		next(row)
	}
	if deprecate {
		next(okEndRows)
	} else {
		next(eofPayload)
	}
	return b.String(), seq
}

// reads cuts s into syscalls of size bytes captured as the kernel does.
func reads(dir Direction, t0 uint64, s string, size, capture int) []step {
	var steps []step
	for i := 0; i < len(s); i += size {
		steps = append(steps, captured(dir, t0, s[i:min(i+size, len(s))], capture))
		t0++
	}
	return steps
}

// TestRowsAcrossGaps reads large result sets in syscalls larger than the
// capture, so that most row headers fall in gaps: the end of the rows is
// still found, and the exchange ends at the last read.
func TestRowsAcrossGaps(t *testing.T) {
	for _, deprecate := range []bool{false, true} {
		var caps uint32
		if deprecate {
			caps = capDeprecateEOF
		}
		for _, width := range []int{3, 40, 700, 5000} {
			for _, size := range []int{1000, 4096, 8192, 16384, 65536, 100000} {
				result, _ := bigResult(3000, width, deprecate, 1)
				steps := handshake(caps, "shop")
				steps = append(steps, out(10, query("SELECT a, b FROM t")))
				rs := reads(Inbound, 100, result, size, 4096)
				steps = append(steps, rs...)
				last := rs[len(rs)-1].t
				steps = append(steps, out(last+1, query("SELECT 1")), in(last+2, textResult([]string{"1"}, deprecate)), closeAt(last+3))
				c := NewConn(noText)
				s := play(c, steps)
				if len(s.records) != 2 {
					t.Fatalf("deprecate %v width %d reads %d: %d records", deprecate, width, size, len(s.records))
				}
				r := s.records[0]
				if r.ResponseStart != 100 || r.ResponseEnd != last || r.Error {
					t.Errorf("deprecate %v width %d reads %d: response %d..%d (want 100..%d) %+v", deprecate, width, size, r.ResponseStart, r.ResponseEnd, last, r.DB)
				}
				if st := c.Stats(); st.EndUnseen+st.Dropped+st.Unmatched != 0 {
					t.Errorf("deprecate %v width %d reads %d: stats %+v", deprecate, width, size, st)
				}
			}
		}
	}
}

// TestEndOfRowsUnseen: the rows end with an OK packet too long for the
// tail, in a syscall with a gap. The response ends, unseen, before the
// next command; the record has no status and is counted.
func TestEndOfRowsUnseen(t *testing.T) {
	result, seq := bigResult(2000, 30, true, 1)
	result = result[:len(result)-len(pkt(seq-1, okEndRows))]
	result += pkt(seq-1, "\xfe\x00\x00\x02\x00\x00\x00\x18Rows: 2000  Warnings: 0")
	steps := append(handshake(capDeprecateEOF, "shop"), out(10, query("SELECT a, b FROM t")))
	rs := reads(Inbound, 100, result, len(result), 4096)
	steps = append(steps, rs...)
	last := rs[len(rs)-1].t
	steps = append(steps, out(last+5, query("SELECT 1")), in(last+6, textResult([]string{"1"}, true)), closeAt(last+7))
	c := NewConn(noText)
	s := play(c, steps)
	if len(s.records) != 2 || s.records[0].ResponseEnd != last || s.records[0].Error || !s.records[0].EndUnseen ||
		s.records[1].ResponseEnd != last+6 || s.records[1].EndUnseen {
		t.Fatalf("records %+v", s.records)
	}
	if st := c.Stats(); st.EndUnseen != 1 || s.reasons[reasonEndUnseen] != 1 {
		t.Errorf("stats %+v reasons %v", st, s.reasons)
	}
}

func TestResponseNeverComes(t *testing.T) {
	steps := append(handshake(0, "shop"),
		out(10, query("SELECT 1")),
		in(11, textResult([]string{"1"}, false)),
		out(12, query("SELECT SLEEP(100)")),
		closeAt(30),
	)
	c := NewConn(noText)
	s := play(c, steps)
	if len(s.records) != 2 {
		t.Fatalf("%d records", len(s.records))
	}
	r := s.records[1]
	if r.RequestStart != 12 || r.ResponseStart != 0 || r.ResponseEnd != 0 || r.Error {
		t.Errorf("record %+v", r)
	}
	if r.End() != 12 {
		t.Errorf("end %d", r.End())
	}
	// A response cut by the close is no response either.
	steps = append(handshake(0, "shop"), out(10, query("SELECT 1")), in(11, pkt(1, "\x01")+pkt(2, colDef)), closeAt(12))
	s = play(NewConn(noText), steps)
	if len(s.records) != 1 || s.records[0].ResponseEnd != 0 || s.records[0].ResponseStart != 0 {
		t.Errorf("cut response: %+v", s.records)
	}
}

// TestSeenFromTheMiddle: the parser starts in the middle of a result set.
// The rows are not paired with anything; the next command's exchange is
// held until the command after it shows the server's side in step.
func TestSeenFromTheMiddle(t *testing.T) {
	result, _ := bigResult(50, 20, false, 1)
	mid := result[37:]
	steps := []step{
		in(1, mid[:200]),
		in(2, mid[200:]),
		out(3, query("SELECT id FROM users")),
		in(4, textResult([]string{"7"}, false)),
	}
	c := NewConn(noText)
	s := play(c, steps)
	if len(s.records) != 0 || s.started != 1 {
		t.Fatalf("before confirmation: %d records, %d started", len(s.records), s.started)
	}
	s2 := play(c, []step{out(5, execute(3)), in(6, pkt(1, okPayload)), closeAt(7)})
	if len(s2.records) != 2 {
		t.Fatalf("after: %d records", len(s2.records))
	}
	if r := s2.records[0]; r.RequestStart != 3 || r.ResponseEnd != 4 || r.Namespace != "" || r.System != semconv.OtherSQL {
		t.Errorf("first %+v", r)
	}
	if r := s2.records[1]; r.Command != comStmtExecute || r.Operation != "" || r.StatementID != 3 || r.QueryText != "" {
		t.Errorf("execute of an unknown statement: %+v", r)
	}
	st := c.Stats()
	if st.Unmatched == 0 || st.UnknownStatement != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestStrayAfterRealignment: bytes with no command after a realigned
// exchange show it may have been paired with another command's response:
// it is dropped, not reported.
func TestStrayAfterRealignment(t *testing.T) {
	steps := []step{
		in(1, "\x01\x02\x03 junk that is no packet start"),
		out(2, query("SELECT a FROM t")),
		in(3, pkt(1, okPayload)),
		in(4, pkt(1, okPayload)), // a second answer: one of them was not ours
		out(5, query("SELECT b FROM t")),
		in(6, pkt(1, okPayload)),
		out(7, query("SELECT c FROM t")),
		in(8, pkt(1, okPayload)),
		closeAt(9),
	}
	c := NewConn(noText)
	s := play(c, steps)
	if len(s.records) != 2 || s.records[0].RequestStart != 5 || s.records[1].RequestStart != 7 {
		t.Fatalf("records %+v", s.records)
	}
	if st := c.Stats(); st.Unconfirmed != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPipelinedCommands(t *testing.T) {
	steps := append(handshake(0, "shop"),
		out(10, query("SELECT 1")+query("SELECT 2")+pkt(0, "\x19\x01\x00\x00\x00")+query("SELECT 3")),
		in(11, textResult([]string{"1"}, false)+pkt(1, okPayload)),
		in(12, pkt(1, errPayload(1064, "42000", "syntax"))),
		closeAt(13),
	)
	c := NewConn(noText)
	s := play(c, steps)
	clean(t, c)
	if len(s.records) != 3 {
		t.Fatalf("%d records", len(s.records))
	}
	for i, want := range []struct {
		end  uint64
		code string
	}{{11, ""}, {11, ""}, {12, "1064"}} {
		if r := s.records[i]; r.ResponseEnd != want.end || r.StatusCode != want.code {
			t.Errorf("record %d: end %d code %q", i, r.ResponseEnd, r.StatusCode)
		}
	}
}

func TestTLSAndCompression(t *testing.T) {
	ssl := pkt(1, loginPayload(capSSL, "")[:32])
	c := NewConn(noText)
	s := play(c, []step{in(1, pkt(0, greetingMDB)), out(2, ssl), out(3, "\x16\x03\x01\x02\x00"), in(4, "\x16\x03\x03\x00\x7a")})
	encrypted := c.Encrypted()
	play(c, []step{closeAt(5)})
	if !encrypted || c.Encrypted() || c.Stats().TLS != 1 || len(s.records) != 0 || s.reasons[reasonTLS] != 1 {
		t.Errorf("TLS: encrypted %v stats %+v", encrypted, c.Stats())
	}
	c = NewConn(noText)
	s = play(c, append(handshake(capCompress, "shop"), out(4, "\x10\x00\x00\x00\x00\x00\x00compressed"), closeAt(5)))
	if c.Stats().Compressed != 1 || len(s.records) != 0 {
		t.Errorf("compressed: stats %+v records %d", c.Stats(), len(s.records))
	}
}

// TestNamespace follows the current database: login, COM_INIT_DB, USE,
// session tracking, a failed USE, a multi-statement text with USE, and
// COM_RESET_CONNECTION.
func TestNamespace(t *testing.T) {
	tracked := "\x00\x00\x00\x02\x40\x00\x00\x00\x08\x01\x06\x05other" // OK naming "other"
	steps := append(handshake(capMultiStatements, "shop"),
		out(10, query("SELECT 1")), in(11, pkt(1, okPayload)),
		out(12, pkt(0, "\x02sales")), in(13, pkt(1, okPayload)),
		out(14, query("SELECT 1")), in(15, pkt(1, okPayload)),
		out(16, query("use `we``ird`")), in(17, pkt(1, okPayload)),
		out(18, query("SELECT 1")), in(19, pkt(1, okPayload)),
		out(20, query("USE nope")), in(21, pkt(1, errPayload(1049, "42000", "Unknown database"))),
		out(22, query("SELECT 1")), in(23, pkt(1, okPayload)),
		out(24, query("CALL p()")), in(25, pkt(1, tracked)),
		out(26, query("SELECT 1")), in(27, pkt(1, okPayload)),
		out(28, query("SELECT 1; USE x; SELECT 2")), in(29, pkt(1, "\x00\x00\x00\x0a\x00\x00\x00")+pkt(2, "\x00\x00\x00\x0a\x00\x00\x00")+pkt(3, okPayload)),
		out(30, query("SELECT 1")), in(31, pkt(1, okPayload)),
		out(32, pkt(0, "\x02shop")), in(33, pkt(1, okPayload)),
		out(34, pkt(0, "\x1f")), in(35, pkt(1, okPayload)),
		out(36, query("SELECT 1")), in(37, pkt(1, okPayload)),
		closeAt(40),
	)
	c := NewConn(noText)
	s := play(c, steps)
	clean(t, c)
	var got []string
	for _, r := range s.records {
		got = append(got, r.Namespace)
	}
	want := []string{"shop", "sales", "sales", "we`ird", "we`ird", "we`ird", "we`ird", "other", "other", "", ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("namespaces %q, want %q", got, want)
	}
}

// TestPreparedStatements: the statement table, COM_STMT_CLOSE, eviction,
// MariaDB's "last prepared" id, and the binary rows of an execution.
func TestPreparedStatements(t *testing.T) {
	steps := append([]step{
		in(1, pkt(0, greetingMDB)),
		out(2, pkt(1, mariaLoginPayload(capDeprecateEOF, mariaCacheMetadata, "shop"))),
		in(3, pkt(2, okPayload)),
	},
		out(10, prepare("SELECT name FROM users WHERE id = ?")),
		in(11, pkt(1, prepareOK(9, 1, 1))+pkt(2, colDef)+pkt(3, colDef)),
		out(12, execute(9)),
		in(13, pkt(1, "\x01\x00")+pkt(2, "\x00\x00\x03bob")+pkt(3, "\x00\x00\x05alice")+pkt(4, okEndRows)),
		out(14, execute(0xffffffff)),
		in(15, pkt(1, okPayload)),
		out(16, pkt(0, "\x19\x09\x00\x00\x00")),
		out(17, execute(9)),
		in(18, pkt(1, errPayload(1243, "HY000", "Unknown prepared statement handler"))),
		closeAt(20),
	)
	c := NewConn(noText)
	s := play(c, steps)
	clean(t, c)
	if len(s.records) != 4 {
		t.Fatalf("%d records", len(s.records))
	}
	p, e1, e2, e3 := s.records[0], s.records[1], s.records[2], s.records[3]
	if p.Operation != "PREPARE" || p.StatementID != 9 || p.ResponseEnd != 11 {
		t.Errorf("prepare %+v", p)
	}
	if e1.Operation != e2.Operation || e1.Collection != e2.Collection || e1.Operation == "" || e1.ResponseEnd != 13 ||
		e2.StatementID != 9 || e1.EndUnseen || e2.EndUnseen {
		t.Errorf("executions %+v %+v", e1.DB, e2.DB)
	}
	if e3.Operation != "" || e3.StatusCode != "1243" {
		t.Errorf("execution after close %+v", e3.DB)
	}
	// Bounds: the oldest statements are forgotten.
	c = NewConn(noText)
	steps = handshake(capDeprecateEOF, "shop")
	ts := uint64(10)
	for id := uint32(1); id <= maxStatements+10; id++ {
		steps = append(steps, out(ts, prepare("SELECT 1")), in(ts+1, pkt(1, prepareOK(id, 0, 0))))
		ts += 2
	}
	steps = append(steps, out(ts, execute(1)), in(ts+1, pkt(1, okPayload)), out(ts+2, execute(maxStatements+10)), in(ts+3, pkt(1, okPayload)))
	s = play(c, steps)
	n := len(s.records)
	if len(c.stmts.m) != maxStatements || s.records[n-2].Operation != "" || s.records[n-1].Operation == "" {
		t.Errorf("table of %d; executions %+v %+v", len(c.stmts.m), s.records[n-2].DB, s.records[n-1].DB)
	}
}

// TestMySQL8Login: a MySQL server, caching_sha2_password's fast path,
// EOF packets deprecated, query attributes.
func TestMySQL8Login(t *testing.T) {
	caps := uint32(capDeprecateEOF | capQueryAttributes | capPluginAuthLenenc)
	steps := []step{
		in(1, pkt(0, greetingMy)),
		out(2, pkt(1, loginPayload(caps, ""))),
		in(3, pkt(2, "\x01\x03")),
		in(4, pkt(3, okPayload)),
		out(5, pkt(0, "\x03\x00\x01SELECT 1")),
		in(6, pkt(1, "\x01")+pkt(2, colDef)+pkt(3, "\x011")+pkt(4, okEndRows)),
		closeAt(7),
	}
	c := NewConn(noText)
	s := play(c, steps)
	clean(t, c)
	if len(s.records) != 1 || s.records[0].System != semconv.MySQL || s.records[0].ResponseEnd != 6 || s.records[0].Operation == "" {
		t.Fatalf("records %+v", s.records)
	}
}

func TestLocalInfileAcrossGaps(t *testing.T) {
	file := strings.Repeat("1\tsome row text\n", 20000)
	var data strings.Builder
	seq := uint8(2)
	for i := 0; i < len(file); i += 16384 {
		data.WriteString(pkt(seq, file[i:min(i+16384, len(file))]))
		seq++
	}
	data.WriteString(pkt(seq, ""))
	steps := append(handshake(0, "shop"),
		out(10, query("LOAD DATA LOCAL INFILE 'x' INTO TABLE t")),
		in(11, pkt(1, "\xfbx")))
	steps = append(steps, reads(Outbound, 12, data.String(), 65536, 4096)...)
	steps = append(steps, in(100, pkt(seq+1, okPayload)), out(101, query("SELECT 1")), in(102, pkt(1, okPayload)), closeAt(103))
	c := NewConn(noText)
	s := play(c, steps)
	if len(s.records) != 2 || s.records[0].ResponseEnd != 100 || s.records[0].Error || s.records[1].ResponseEnd != 102 {
		t.Fatalf("records %+v", s.records)
	}
	if st := c.Stats(); st.Dropped+st.Unmatched+st.NotMySQL != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestLongPackets: logical packets of 16 MiB - 1 and more continue in the
// next packet, both ways.
func TestLongPackets(t *testing.T) {
	big := strings.Repeat("x", maxPayload+100)
	longQuery := "SELECT '" + big + "'"
	payload := "\x03" + longQuery
	req := pkt(0, payload[:maxPayload])[:4] + payload[:maxPayload] + pkt(1, payload[maxPayload:])
	// A row whose one value is longer than a packet: its length takes
	// 8 bytes after 0xfe, and the row continues in a second packet. The
	// response's sequence ids follow the request's two packets.
	n := uint64(len(big))
	rowPayload := "\xfe" + string([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24), 0, 0, 0, 0}) + big
	resp := pkt(2, "\x01") + pkt(3, colDef) + pkt(4, eofPayload) +
		pkt(5, rowPayload[:maxPayload]) + pkt(6, rowPayload[maxPayload:]) + pkt(7, eofPayload)
	steps := append(handshake(0, "shop"), reads(Outbound, 10, req, 1<<20, 1<<30)...)
	steps = append(steps, reads(Inbound, 100, resp, 1<<20, 1<<30)...)
	steps = append(steps, closeAt(1000))
	c := NewConn(noText)
	s := play(c, steps)
	clean(t, c)
	respEnd := 100 + uint64(len(resp)>>20)
	if len(s.records) != 1 || s.records[0].ResponseStart != 100 || s.records[0].ResponseEnd != respEnd ||
		s.records[0].RequestEnd != 10+uint64(len(req)>>20) {
		t.Fatalf("records %+v", s.records)
	}
	if s.reasons[reasonTruncated] != 1 {
		t.Errorf("reasons %v", s.reasons)
	}
}

func TestProgressAndCursor(t *testing.T) {
	steps := append(handshake(0, "shop"),
		out(10, query("ALTER TABLE t ADD c INT")),
		in(11, pkt(1, "\xff\xff\xff\x01\x01\x00\x10\x27\x00\x05stage")),
		in(12, pkt(2, okPayload)),
		out(13, prepare("SELECT a FROM t")),
		in(14, pkt(1, prepareOK(4, 1, 0))+pkt(2, colDef)+pkt(3, eofPayload)),
		out(15, pkt(0, "\x17\x04\x00\x00\x00\x01\x01\x00\x00\x00")), // with a read-only cursor
		in(16, pkt(1, "\x01")+pkt(2, colDef)+pkt(3, "\xfe\x00\x00\x42\x00")),
		out(17, pkt(0, "\x1c\x04\x00\x00\x00\x0a\x00\x00\x00")), // COM_STMT_FETCH
		in(18, pkt(1, "\x00\x00\x01a")+pkt(2, "\xfe\x00\x00\x82\x00")),
		out(19, query("SELECT 1")),
		in(20, pkt(1, okPayload)),
		closeAt(21),
	)
	c := NewConn(noText)
	s := play(c, steps)
	if len(s.records) != 4 {
		t.Fatalf("%d records: %+v", len(s.records), s.records)
	}
	for i, end := range []uint64{12, 14, 16, 20} {
		if s.records[i].ResponseEnd != end || s.records[i].Error {
			t.Errorf("record %d: %+v", i, s.records[i])
		}
	}
	if st := c.Stats(); st.NotMySQL+st.Unmatched+st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestServerRoleReportsNothing(t *testing.T) {
	c := NewConn(noText)
	c.Reset(protocols.RoleServer)
	steps := []step{
		{dir: Outbound, data: pkt(0, greetingMDB), t: 1},
		{dir: Inbound, data: pkt(1, loginPayload(0, "shop")), t: 2},
		{dir: Inbound, data: query("SELECT 1"), t: 3},
		{dir: Outbound, data: pkt(1, okPayload), t: 4},
		closeAt(5),
	}
	if s := play(c, steps); len(s.records) != 0 || s.started != 0 || !reflect.DeepEqual(s.reasons, map[string]int{reasonServerSide: 1}) {
		t.Errorf("server side: %d records, failures %v (want the connection counted once)", len(s.records), s.reasons)
	}
	// Without being told, a greeting the watched process writes shows
	// it is the server.
	c = NewConn(noText)
	if s := play(c, steps); len(s.records) != 0 || s.started != 0 {
		t.Errorf("server side found from content: %d records", len(s.records))
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    string
		port uint16
		want protocols.Verdict
	}{
		{"greeting", pkt(0, greetingMDB), 0, protocols.Response},
		{"mysql8 greeting", pkt(0, greetingMy), 0, protocols.Response},
		{"login", pkt(1, loginPayload(0, "shop")), 0, protocols.Request},
		{"ssl request", pkt(1, loginPayload(capSSL, "")[:32]), 0, protocols.Request},
		{"query", query("SELECT 1"), 0, protocols.Request},
		{"prepare", prepare("INSERT INTO t VALUES (?)"), 0, protocols.Request},
		{"execute", execute(1), 0, protocols.Request},
		{"ping", pkt(0, "\x0e"), 0, protocols.Request},
		{"quit", pkt(0, "\x01"), 0, protocols.Request},
		{"init db", pkt(0, "\x02shop"), 0, protocols.Request},
		{"stmt close", pkt(0, "\x19\x01\x00\x00\x00"), 0, protocols.Request},
		{"stmt reset", pkt(0, "\x1a\x01\x00\x00\x00"), 0, protocols.Request},
		{"reset connection", pkt(0, "\x1f"), 0, protocols.Request},
		{"two commands", pkt(0, "\x19\x01\x00\x00\x00") + query("SELECT 1"), 0, protocols.Request},
		{"long query cut by the capture", pkt(0, "\x03SELECT '"+strings.Repeat("a", 5000)+"'")[:4096], 0, protocols.Request},
		{"ok on 3306", pkt(1, okPayload), 3306, protocols.Response},
		{"ok elsewhere", pkt(1, okPayload), 5432, protocols.No},
		{"err on 3306", pkt(1, errPayload(1146, "42S02", "x")), 3306, protocols.Response},
		{"short", "\x05\x00", 0, protocols.Maybe},
		{"ping with a wrong length", pkt(0, "\x0e\x00"), 0, protocols.No},
		{"query longer than its bytes", query("SELECT 1")[:8], 0, protocols.No},
		{"query of binary", pkt(0, "\x03\x00\x00\x05\x06"), 0, protocols.No},
		{"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 3306, protocols.No},
		{"http response", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 3306, protocols.No},
		{"redis", "*1\r\n$4\r\nPING\r\n", 3306, protocols.No},
		{"redis reply", "+PONG\r\n", 3306, protocols.No},
		{"postgres startup", "\x00\x00\x00\x08\x04\xd2\x16\x2f", 3306, protocols.No},
		{"postgres query", "Q\x00\x00\x00\x0dSELECT 1\x00", 3306, protocols.No},
		{"postgres parse", "P\x00\x00\x00\x16\x00SELECT $1\x00\x00\x01\x00\x00\x00\x17", 3306, protocols.No},
		{"postgres terminate", "X\x00\x00\x00\x04", 3306, protocols.No},
		{"postgres auth ok", "R\x00\x00\x00\x08\x00\x00\x00\x00", 3306, protocols.No},
		{"tls", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 3306, protocols.No},
	} {
		if got := Protocol.Detect([]byte(tc.b), tc.port); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestUpkeepCommands: commands that make no record keep the parser in
// step: COM_CHANGE_USER with its authentication, COM_STATISTICS,
// COM_FIELD_LIST, COM_SET_OPTION, COM_STMT_SEND_LONG_DATA, COM_QUIT.
func TestUpkeepCommands(t *testing.T) {
	steps := append(handshake(0, "shop"),
		out(10, pkt(0, "\x11bob\x00\x14"+strings.Repeat("p", 20)+"sales\x00\x21\x00mysql_native_password\x00")),
		in(11, pkt(1, "\xfemysql_native_password\x00"+strings.Repeat("n", 20)+"\x00")),
		out(12, pkt(2, strings.Repeat("a", 20))),
		in(13, pkt(3, okPayload)),
		out(14, query("SELECT 1")), in(15, pkt(1, okPayload)),
		out(16, pkt(0, "\x09")), in(17, pkt(1, "Uptime: 10  Threads: 1  Questions: 5")),
		out(18, pkt(0, "\x04users\x00")), in(19, pkt(1, colDef)+pkt(2, colDef)+pkt(3, eofPayload)),
		out(20, pkt(0, "\x1b\x00\x00")), in(21, pkt(1, eofPayload)),
		out(22, pkt(0, "\x18\x01\x00\x00\x00\x00\x00blob")),
		out(23, query("SELECT 2")), in(24, pkt(1, okPayload)),
		out(25, pkt(0, "\x01")),
		closeAt(26),
	)
	c := NewConn(noText)
	s := play(c, steps)
	if len(s.records) != 2 || s.records[0].Namespace != "sales" || s.records[0].ResponseEnd != 15 || s.records[1].ResponseEnd != 24 {
		t.Fatalf("records %+v", s.records)
	}
	if st := c.Stats(); st.NotMySQL+st.Dropped+st.Unmatched != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestEOFModeLearned: on a connection seen after its handshake, whether
// EOF packets are sent is learnt from the packets, and a prepared
// statement's definitions end without guessing.
func TestEOFModeLearned(t *testing.T) {
	for _, eof := range []bool{false, true} {
		defs := pkt(2, colDef) + pkt(3, colDef)
		next := uint8(4)
		if eof {
			defs += pkt(4, eofPayload)
			next = 5
		}
		_ = next
		steps := []step{
			out(1, prepare("INSERT INTO t VALUES (?, ?)")),
			in(2, pkt(1, prepareOK(3, 0, 2))+defs),
			out(3, execute(3)),
			in(4, pkt(1, okPayload)),
			out(5, query("SELECT a FROM t")),
			in(6, textResult([]string{"x"}, !eof)),
			closeAt(7),
		}
		c := NewConn(noText)
		s := play(c, steps)
		if len(s.records) != 3 || s.records[0].ResponseEnd != 2 || s.records[1].Operation == "" || s.records[2].ResponseEnd != 6 {
			t.Errorf("eof %v: records %+v", eof, s.records)
		}
		if st := c.Stats(); st.NotMySQL+st.Dropped+st.Unmatched+st.EndUnseen != 0 {
			t.Errorf("eof %v: stats %+v", eof, st)
		}
	}
}

// TestLongCommandAcrossGaps: a statement longer than a packet, written
// in syscalls whose middles are not captured, so the continuation's
// header is never seen. The command is still paired with its answer, and
// the next command with its own.
func TestLongCommandAcrossGaps(t *testing.T) {
	payload := "\x03INSERT INTO blobs VALUES ('" + strings.Repeat("z", maxPayload) + "')"
	req := pkt(0, payload[:maxPayload]) + pkt(1, payload[maxPayload:])
	steps := append(handshake(0, "shop"), reads(Outbound, 10, req, 1<<16, 4096)...)
	last := steps[len(steps)-1].t
	steps = append(steps,
		in(last+1, pkt(2, okPayload)),
		out(last+2, query("SELECT 1")), in(last+3, pkt(1, okPayload)),
		out(last+4, query("SELECT 2")), in(last+5, pkt(1, okPayload)),
		closeAt(last+6))
	c := NewConn(noText)
	s := play(c, steps)
	clean(t, c)
	if len(s.records) != 3 {
		t.Fatalf("%d records: %+v", len(s.records), briefs(s.records))
	}
	if r := s.records[0]; r.RequestStart != 10 || r.ResponseEnd != last+1 || r.Operation == "" || r.Collection != "" {
		t.Errorf("long statement %+v", r)
	}
	if s.records[1].ResponseEnd != last+3 || s.records[2].ResponseEnd != last+5 {
		t.Errorf("after it: %+v", s.records[1:])
	}
}

// TestDialect: statement texts are read as MySQL reads them while the
// server says backslashes escape, and both ways once sql_mode has
// NO_BACKSLASH_ESCAPES.
func TestDialect(t *testing.T) {
	c := NewConn(noText)
	if c.dialect != sqlquery.AnyDialect {
		t.Errorf("dialect before any status: %v", c.dialect)
	}
	play(c, handshake(0, "shop"))
	if c.dialect != sqlquery.MySQL {
		t.Errorf("dialect after the login: %v", c.dialect)
	}
	play(c, []step{out(10, query("SET sql_mode = 'NO_BACKSLASH_ESCAPES'")), in(11, pkt(1, "\x00\x00\x00\x02\x02\x00\x00"))})
	if c.dialect != sqlquery.AnyDialect {
		t.Errorf("dialect with NO_BACKSLASH_ESCAPES: %v", c.dialect)
	}
}
