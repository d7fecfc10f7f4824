package postgres

import (
	"strconv"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// nopSink counts records and keeps nothing.
type nopSink struct{ n int }

func (*nopSink) Started(*protocols.Exchange) {}
func (s *nopSink) Done(protocols.Record)     { s.n++ }
func (*nopSink) Failed(string)               {}

// benchLoop feeds one request and its answer per iteration, each in one
// segment, on a connection past its start, and reports per operation.
func benchLoop(b *testing.B, opts *protocols.Options, setup []step, req func(i int) []byte, answer []byte) {
	c := NewConn(opts)
	c.Reset(protocols.RoleClient)
	s := &nopSink{}
	playOn(c, setup)
	var seg Segment
	ts := uint64(100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := req(i)
		ts++
		seg = Segment{Data: r, Len: len(r), Time: ts}
		c.Feed(Outbound, &seg, s)
		ts++
		seg = Segment{Data: answer, Len: len(answer), Time: ts}
		c.Feed(Inbound, &seg, s)
	}
	if s.n != b.N {
		b.Fatalf("%d records for %d operations", s.n, b.N)
	}
}

// BenchmarkPreparedExecute is pgx's steady state: Bind, Execute, Sync of a
// statement prepared earlier on a keep-alive connection, and its answer of
// one row.
func BenchmarkPreparedExecute(b *testing.B) {
	setup := append(login("shop"),
		out(3, parseMsg("stmtcache_0271cee4bc0f087f5402", "SELECT name, email FROM users WHERE id = $1")+
			describeMsg('S', "stmtcache_0271cee4bc0f087f5402")+syncMsg),
		in(4, parseOK+paramDesc(1)+rowDesc("name", "email")+ready('I')))
	req := []byte(bindMsg("", "stmtcache_0271cee4bc0f087f5402") + execMsg("") + syncMsg)
	answer := []byte(bindOK + dataRow("user7", "u7@example.com") + complete("SELECT 1") + ready('I'))
	benchLoop(b, withText, setup, func(int) []byte { return req }, answer)
}

// BenchmarkSimpleQuery is a simple Query whose text the connection sent
// before (its analysis is cached), with db.query.text on.
func BenchmarkSimpleQuery(b *testing.B) {
	req := []byte(query("SELECT name, email FROM users WHERE id = 7"))
	answer := []byte(rowDesc("name", "email") + dataRow("user7", "u7@example.com") + complete("SELECT 1") + ready('I'))
	benchLoop(b, withText, login("shop"), func(int) []byte { return req }, answer)
}

// BenchmarkSimpleQueryDistinct has a new text each time (literals
// interpolated by the client): each is sanitized and analysed.
func BenchmarkSimpleQueryDistinct(b *testing.B) {
	reqs := make([][]byte, 1024)
	for i := range reqs {
		reqs[i] = []byte(query("SELECT name, email FROM users WHERE id = " + strconv.Itoa(i)))
	}
	answer := []byte(rowDesc("name", "email") + dataRow("user7", "u7@example.com") + complete("SELECT 1") + ready('I'))
	benchLoop(b, withText, login("shop"), func(i int) []byte { return reqs[i%len(reqs)] }, answer)
}

// BenchmarkLargeResult is a query answered with 1000 rows over 40 reads
// that the kernel captured whole: the rows are counted through.
func BenchmarkLargeResult(b *testing.B) {
	req := []byte(query("SELECT id, label FROM items"))
	var rows []byte
	rows = append(rows, rowDesc("id", "label")...)
	for i := range 1000 {
		rows = append(rows, dataRow(strconv.Itoa(i), "label of the item")...)
	}
	rows = append(rows, complete("SELECT 1000")+ready('I')...)
	c := NewConn(withText)
	c.Reset(protocols.RoleClient)
	s := &nopSink{}
	playOn(c, login("shop"))
	step := len(rows)/40 + 1
	b.ReportAllocs()
	b.SetBytes(int64(len(rows)))
	ts := uint64(100)
	for b.Loop() {
		ts++
		c.Feed(Outbound, &Segment{Data: req, Len: len(req), Time: ts}, s)
		for off := 0; off < len(rows); off += step {
			part := rows[off:min(off+step, len(rows))]
			c.Feed(Inbound, &Segment{Data: part, Len: len(part), Time: ts}, s)
		}
	}
}
