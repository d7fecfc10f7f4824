package mysql

import (
	"strconv"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// countSink counts records without keeping them.
type countSink struct{ n int }

func (s *countSink) Started(*protocols.Exchange) {}
func (s *countSink) Done(protocols.Record)       { s.n++ }
func (s *countSink) Failed(string)               {}

// BenchmarkPreparedExecute is a statement executed again and again on a
// keep-alive connection: per iteration one COM_STMT_EXECUTE and a
// one-row binary result set, each in one segment.
func BenchmarkPreparedExecute(b *testing.B) {
	setup := append([]step{
		in(1, pkt(0, greetingMDB)),
		out(2, pkt(1, mariaLoginPayload(capDeprecateEOF, mariaCacheMetadata, "shop"))),
		in(3, pkt(2, okPayload)),
	},
		out(10, prepare("SELECT name, email FROM users WHERE id = ?")),
		in(11, pkt(1, prepareOK(7, 2, 1))+pkt(2, colDef)+pkt(3, colDef)+pkt(4, colDef)))
	req := []byte(pkt(0, "\x17\x07\x00\x00\x00\x00\x01\x00\x00\x00\x00\x01\x08\x00\x2a\x00\x00\x00\x00\x00\x00\x00"))
	resp := []byte(pkt(1, "\x02\x00") + pkt(2, "\x00\x00\x05alice\x11alice@example.com") + pkt(3, okEndRows))
	bench(b, setup, req, resp)
}

// BenchmarkSimpleQuery is the same text query again and again: per
// iteration one COM_QUERY and a one-row text result set.
func BenchmarkSimpleQuery(b *testing.B) {
	req := []byte(query("SELECT id, name FROM users WHERE id = 42"))
	resp := []byte(textResult([]string{"42"}, false))
	bench(b, handshake(0, "shop"), req, resp)
}

func bench(b *testing.B, setup []step, req, resp []byte) {
	c := NewConn(&protocols.Options{QueryText: true})
	play(c, setup)
	s := &countSink{}
	ts := uint64(100)
	reqSeg := &protocols.Segment{Data: req, Len: len(req)}
	respSeg := &protocols.Segment{Data: resp, Len: len(resp)}
	b.ReportAllocs()
	for b.Loop() {
		ts++
		reqSeg.Time = ts
		c.Feed(Outbound, reqSeg, s)
		ts++
		respSeg.Time = ts
		c.Feed(Inbound, respSeg, s)
	}
	if s.n != b.N {
		b.Fatalf("%d records for %d iterations", s.n, b.N)
	}
}

// BenchmarkDistinctQueries sends a different text each time (the literal
// changes), so no text is analysed twice: the cost of Sanitize and
// Analyze, and of the strings they make.
func BenchmarkDistinctQueries(b *testing.B) {
	reqs := make([][]byte, 1024)
	for i := range reqs {
		reqs[i] = []byte(query("SELECT id, name FROM users WHERE id = " + strconv.Itoa(i)))
	}
	resp := []byte(textResult([]string{"42"}, false))
	c := NewConn(&protocols.Options{QueryText: true})
	play(c, handshake(0, "shop"))
	s := &countSink{}
	var seg protocols.Segment
	b.ReportAllocs()
	ts := uint64(100)
	for i := 0; b.Loop(); i++ {
		req := reqs[i%len(reqs)]
		ts++
		seg = protocols.Segment{Data: req, Len: len(req), Time: ts}
		c.Feed(Outbound, &seg, s)
		ts++
		seg = protocols.Segment{Data: resp, Len: len(resp), Time: ts}
		c.Feed(Inbound, &seg, s)
	}
	if s.n != b.N {
		b.Fatalf("%d records for %d iterations", s.n, b.N)
	}
}
