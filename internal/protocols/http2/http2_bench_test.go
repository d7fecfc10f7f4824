package http2

import (
	"fmt"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// countSink counts records.
type countSink struct{ n int }

func (s *countSink) Started(*protocols.Exchange) {}
func (s *countSink) Done(protocols.Record)       { s.n++ }
func (s *countSink) Failed(string)               {}

// benchConn is a server's connection after its first calls, when the
// peers' HPACK tables hold what the next calls repeat.
func benchConn(b *testing.B, streams int) (c *Conn, req, resp []byte) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	c = newTestConn(RoleServer)
	steps := []step{in(1, cw.take()), out(2, sw.take())}
	batch := func(first uint32) (string, string) {
		for i := range streams {
			id := first + uint32(2*i)
			cw.headers(id, false, grpcRequest("/pkg.Svc/Get")...).data(id, true, grpcMessage(40))
		}
		for i := range streams {
			id := first + uint32(2*i)
			sw.headers(id, false, grpcResponse...).data(id, false, grpcMessage(60)).headers(id, true, grpcOK...)
		}
		return cw.take(), sw.take()
	}
	r1, s1 := batch(1)
	steps = append(steps, in(3, r1), out(4, s1))
	play(c, steps)
	// The next batch refers to the tables only: the same bytes make the
	// same calls again, on the same stream ids.
	r2, s2 := batch(uint32(2*streams + 1))
	return c, []byte(r2), []byte(s2)
}

func benchCalls(b *testing.B, streams int) {
	c, req, resp := benchConn(b, streams)
	s := &countSink{}
	b.ReportAllocs()
	var ts uint64 = 10
	for b.Loop() {
		ts++
		c.Feed(Inbound, &Segment{Data: req, Len: len(req), Time: ts}, s)
		ts++
		c.Feed(Outbound, &Segment{Data: resp, Len: len(resp), Time: ts}, s)
	}
	if s.n != b.N*streams {
		b.Fatalf("%d records for %d iterations of %d calls", s.n, b.N, streams)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*streams), "ns/rpc")
}

// BenchmarkUnary is a unary gRPC call on a keep-alive connection: its
// request (HEADERS, DATA) in one read, its response (HEADERS, DATA,
// trailers) in one write.
func BenchmarkUnary(b *testing.B) { benchCalls(b, 1) }

// BenchmarkConcurrent10 is 10 unary calls in flight at once: their
// requests in one read, their responses in one write.
func BenchmarkConcurrent10(b *testing.B) { benchCalls(b, 10) }

// BenchmarkFirstCall is a new connection's first call, whose header blocks
// fill the tables (Reset keeps the buffers).
func BenchmarkFirstCall(b *testing.B) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	req, resp := unary(cw, sw, 1, "/pkg.Svc/Get", "0")
	reqAll, respAll := []byte(cw.take()+req), []byte(sw.take()+resp)
	c := newTestConn(RoleServer)
	s := &countSink{}
	b.ReportAllocs()
	for b.Loop() {
		c.Reset(RoleServer)
		c.Feed(Inbound, &Segment{Data: reqAll, Len: len(reqAll), Time: 1}, s)
		c.Feed(Outbound, &Segment{Data: respAll, Len: len(respAll), Time: 2}, s)
	}
	if s.n != b.N {
		b.Fatal(fmt.Sprint(s.n, b.N))
	}
}
