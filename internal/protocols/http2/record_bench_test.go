package http2

import (
	"net/netip"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// spanSink builds each record's span attributes and metric key, as the
// receiver does, into one reused span.
type spanSink struct {
	n    int
	span ptrace.Span
	conn *protocols.ConnInfo
}

func (s *spanSink) Started(*protocols.Exchange) {}
func (s *spanSink) Failed(string)               {}
func (s *spanSink) Done(r protocols.Record) {
	s.n++
	s.span.Attributes().Clear()
	r.Fill(s.span, s.conn)
	r.Metric(s.conn)
}

// BenchmarkUnaryWithSpan is BenchmarkUnary with what the record costs
// besides: its span's name, status and attributes, and its metric key.
func BenchmarkUnaryWithSpan(b *testing.B) {
	c, req, resp := benchConn(b, 1)
	local, remote := netip.MustParseAddrPort("10.0.0.1:50051"), netip.MustParseAddrPort("10.0.0.2:40000")
	s := &spanSink{span: ptrace.NewSpan(), conn: &protocols.ConnInfo{Local: local, Remote: remote,
		LocalIP: "10.0.0.1", RemoteIP: "10.0.0.2", Service: "svc"}}
	b.ReportAllocs()
	var ts uint64 = 10
	for b.Loop() {
		ts++
		c.Feed(Inbound, &Segment{Data: req, Len: len(req), Time: ts}, s)
		ts++
		c.Feed(Outbound, &Segment{Data: resp, Len: len(resp), Time: ts}, s)
	}
	if s.n != b.N {
		b.Fatalf("%d records for %d calls", s.n, b.N)
	}
}
