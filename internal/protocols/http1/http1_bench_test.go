package http1

import (
	"strconv"
	"testing"
)

// BenchmarkKeepAlive is the common case: per iteration one small request
// and one small response with Content-Length, each in one segment, on a
// keep-alive connection.
func BenchmarkKeepAlive(b *testing.B) {
	req := []byte("GET /api/v1/users/42 HTTP/1.1\r\nHost: api.internal:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n" +
		"Content-Length: 27\r\n\r\n{\"id\":42,\"name\":\"somebody\"}")
	benchExchanges(b, func(int) []byte { return req }, resp)
}

// BenchmarkKeepAliveDistinctTargets is the same with a different target
// per request, so the target string cannot be reused.
func BenchmarkKeepAliveDistinctTargets(b *testing.B) {
	reqs := make([][]byte, 1024)
	for i := range reqs {
		reqs[i] = []byte("GET /api/v1/users/" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: api.internal:8080\r\n" +
			"traceparent: " + tp + "\r\n\r\n")
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	benchExchanges(b, func(i int) []byte { return reqs[i%len(reqs)] }, resp)
}

// BenchmarkChunkedResponse has a chunked response of 4 chunks.
func BenchmarkChunkedResponse(b *testing.B) {
	req := []byte("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody(string(make([]byte, 1000)), 256))
	benchExchanges(b, func(int) []byte { return req }, resp)
}

func benchExchanges(b *testing.B, req func(i int) []byte, resp []byte) {
	c := newTestConn()
	var n int
	emit := func(Exchange) { n++ }
	b.ReportAllocs()
	var ts uint64
	for i := 0; b.Loop(); i++ {
		r := req(i)
		ts++
		c.Feed(Inbound, &Segment{Data: r, Len: len(r), Time: ts}, emitter(emit))
		ts++
		c.Feed(Outbound, &Segment{Data: resp, Len: len(resp), Time: ts}, emitter(emit))
	}
	if n != b.N {
		b.Fatalf("%d exchanges for %d iterations", n, b.N)
	}
}
