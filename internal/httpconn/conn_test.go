package httpconn

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// step is one syscall: dir, captured bytes, extra uncaptured bytes, tail.
type step struct {
	dir  Direction
	data string
	gap  int
	tail string
}

func in(s string) step  { return step{dir: Inbound, data: s} }
func out(s string) step { return step{dir: Outbound, data: s} }

// run feeds the steps at times 1, 2, 3, ... and closes at the end when close.
func run(steps []step, close bool) ([]Exchange, Stats) {
	c := NewConn()
	h := &recorder{}
	for i, s := range steps {
		c.Feed(s.dir, Segment{Data: []byte(s.data), Len: len(s.data) + s.gap, Tail: []byte(s.tail), Time: uint64(i + 1)}, h)
	}
	if close {
		c.Close(uint64(len(steps)+1), h)
	}
	return h.done, c.Stats()
}

// recorder keeps what a Handler is told, and checks that every exchange
// was started before it was done, with the tag it was given.
type recorder struct {
	started int
	done    []Exchange
	bad     []string
}

func (r *recorder) Started(x *Exchange) {
	r.started++
	x.Tag = r.started
}

func (r *recorder) Done(x *Exchange) {
	if x.Tag != len(r.done)+1 {
		r.bad = append(r.bad, fmt.Sprintf("exchange %d done with tag %v", len(r.done)+1, x.Tag))
	}
	y := *x
	y.Tag = nil
	r.done = append(r.done, y)
}

// split cuts s into pieces of n bytes.
func split(dir Direction, s string, n int) []step {
	var steps []step
	for len(s) > 0 {
		k := min(n, len(s))
		steps = append(steps, step{dir: dir, data: s[:k]})
		s = s[k:]
	}
	return steps
}

func concat(parts ...[]step) []step {
	var all []step
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

const (
	getReq = "GET /users/42?x=1 HTTP/1.1\r\nHost: api:8080\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n"
	okResp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
)

func TestSingleExchanges(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		close bool
		want  Exchange
	}{
		{
			name:  "server GET with Content-Length",
			steps: []step{in(getReq), out(okResp)},
			want: Exchange{Role: RoleServer, Method: "GET", Target: "/users/42?x=1", Version: "1.1", Host: "api:8080",
				Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Status: 200,
				RequestStart: 1, RequestEnd: 1, ResponseStart: 2, ResponseEnd: 2, ResponseBodySize: 5},
		},
		{
			name:  "client POST with body, response chunked",
			steps: []step{out("POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\n"), out("abc"), in("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n"), in("5\r\npedia\r\n0\r\nX-Trailer: y\r\n\r\n")},
			want: Exchange{Role: RoleClient, Method: "POST", Target: "/p", Version: "1.1", Status: 201,
				RequestStart: 1, RequestEnd: 2, ResponseStart: 3, ResponseEnd: 4, RequestBodySize: 3, ResponseBodySize: 9},
		},
		{
			name:  "HEAD response has no body despite Content-Length",
			steps: []step{in("HEAD / HTTP/1.1\r\n\r\n"), out("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")},
			want:  Exchange{Role: RoleServer, Method: "HEAD", Target: "/", Version: "1.1", Status: 200, RequestStart: 1, RequestEnd: 1, ResponseStart: 2, ResponseEnd: 2},
		},
		{
			name:  "204 and 304 have no body",
			steps: []step{in("GET /a HTTP/1.1\r\n\r\n"), out("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")},
			want:  Exchange{Role: RoleServer, Method: "GET", Target: "/a", Version: "1.1", Status: 304, RequestStart: 1, RequestEnd: 1, ResponseStart: 2, ResponseEnd: 2},
		},
		{
			name:  "100 Continue then the final response",
			steps: []step{in("PUT /u HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"), out("HTTP/1.1 100 Continue\r\n\r\n"), in("ok"), out("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")},
			want:  Exchange{Role: RoleServer, Method: "PUT", Target: "/u", Version: "1.1", Status: 200, RequestStart: 1, RequestEnd: 3, RequestBodySize: 2, ResponseStart: 4, ResponseEnd: 4},
		},
		{
			name:  "HTTP/1.0 response until close",
			steps: []step{in("GET /old HTTP/1.0\r\n\r\n"), out("HTTP/1.0 200 OK\r\n\r\nsome"), out(" bytes")},
			close: true,
			want:  Exchange{Role: RoleServer, Method: "GET", Target: "/old", Version: "1.0", Status: 200, RequestStart: 1, RequestEnd: 1, ResponseStart: 2, ResponseEnd: 3, ResponseBodySize: 10},
		},
		{
			name:  "no response before close",
			steps: []step{in("DELETE /x HTTP/1.1\r\n\r\n")},
			close: true,
			want:  Exchange{Role: RoleServer, Method: "DELETE", Target: "/x", Version: "1.1", RequestStart: 1, RequestEnd: 1},
		},
		{
			name:  "unknown method, LF-only lines",
			steps: []step{in("BREW /pot HTTP/1.1\nHost: tea\n\n"), out("HTTP/1.1 418 I'm a teapot\nContent-Length: 0\n\n")},
			want:  Exchange{Role: RoleServer, Method: "BREW", Target: "/pot", Version: "1.1", Host: "tea", Status: 418, RequestStart: 1, RequestEnd: 1, ResponseStart: 2, ResponseEnd: 2},
		},
		{
			name:  "head cut by a gap is partial",
			steps: []step{{dir: Inbound, data: "GET /big HTTP/1.1\r\nX-Long: aaaa", gap: 10000}, out(okResp)},
			want:  Exchange{Role: RoleServer, Method: "GET", Target: "/big", Version: "1.1", Status: 200, RequestStart: 1, RequestEnd: 1, ResponseStart: 2, ResponseEnd: 2, ResponseBodySize: 5, Partial: true},
		},
		{
			name: "Content-Length body with a gap",
			steps: []step{in(getReq), {dir: Outbound, data: "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + strings.Repeat("x", 100), gap: 9000},
				{dir: Outbound, data: strings.Repeat("x", 900)}},
			want: Exchange{Role: RoleServer, Method: "GET", Target: "/users/42?x=1", Version: "1.1", Host: "api:8080",
				Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Status: 200,
				RequestStart: 1, RequestEnd: 1, ResponseStart: 2, ResponseEnd: 3, ResponseBodySize: 10000},
		},
		{
			name:  "chunked body whose framing a gap hid ends at the tail's terminator",
			steps: []step{in("GET /c HTTP/1.1\r\n\r\n"), {dir: Outbound, data: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n" + strings.Repeat("y", 50), gap: 20000, tail: "yyyy\r\n0\r\n\r\n"}},
			want: Exchange{Role: RoleServer, Method: "GET", Target: "/c", Version: "1.1", Status: 200,
				RequestStart: 1, RequestEnd: 1, ResponseStart: 2, ResponseEnd: 2, ResponseBodySize: 0x2000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := run(tt.steps, tt.close)
			require.Len(t, got, 1)
			assert.Equal(t, tt.want, got[0])
		})
	}
}

func TestKeepAliveHundredRequests(t *testing.T) {
	var steps []step
	for i := 0; i < 100; i++ {
		steps = append(steps, in(fmt.Sprintf("GET /r/%d HTTP/1.1\r\nHost: h\r\n\r\n", i)), out(okResp))
	}
	got, _ := run(steps, false)
	require.Len(t, got, 100)
	for i, x := range got {
		assert.Equal(t, fmt.Sprintf("/r/%d", i), x.Target)
		assert.Equal(t, uint64(2*i+1), x.RequestStart)
		assert.Equal(t, uint64(2*i+2), x.ResponseEnd)
	}
}

func TestPipelined(t *testing.T) {
	reqs := "GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbodyGET /3 HTTP/1.1\r\n\r\n"
	resps := okResp + "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n" + "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	got, _ := run([]step{in(reqs), out(resps)}, false)
	require.Len(t, got, 3)
	assert.Equal(t, []string{"/1", "/2", "/3"}, []string{got[0].Target, got[1].Target, got[2].Target})
	assert.Equal(t, []int{200, 500, 404}, []int{got[0].Status, got[1].Status, got[2].Status})
	assert.Equal(t, int64(4), got[1].RequestBodySize)
}

func TestSplitIntoSmallSegments(t *testing.T) {
	req := "POST /split HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	for _, n := range []int{1, 2, 3, 7} {
		got, stats := run(concat(split(Inbound, req, n), split(Outbound, resp, n), split(Inbound, req, n), split(Outbound, resp, n)), false)
		require.Len(t, got, 2, "pieces of %d", n)
		for _, x := range got {
			assert.Equal(t, "/split", x.Target)
			assert.Equal(t, "h", x.Host)
			assert.Equal(t, 200, x.Status)
			assert.Equal(t, int64(3), x.RequestBodySize)
			assert.Equal(t, int64(5), x.ResponseBodySize)
		}
		assert.Equal(t, Stats{}, stats)
	}
}

func TestLargeHeadAcrossSegments(t *testing.T) {
	head := "GET /large HTTP/1.1\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 20) + "Host: late\r\n\r\n"
	got, _ := run(concat(split(Inbound, head, 4096), []step{out(okResp)}), false)
	require.Len(t, got, 1)
	assert.Equal(t, "late", got[0].Host)
	assert.False(t, got[0].Partial)
}

func TestHeadTooLarge(t *testing.T) {
	head := "GET /huge HTTP/1.1\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 80)
	got, stats := run(concat(split(Inbound, head, 4096), []step{out(okResp)}), false)
	require.Len(t, got, 1)
	assert.True(t, got[0].Partial)
	assert.Equal(t, 200, got[0].Status)
	assert.Equal(t, uint64(1), stats.HeadTooLarge)
}

func TestNotHTTP(t *testing.T) {
	for name, junk := range map[string]string{
		"tls":   "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
		"h2":    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"redis": "*1\r\n$4\r\nPING\r\n",
		"lower": "get / HTTP/1.1\r\n\r\n",
		"http2": "GET / HTTP/2.0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, stats := run([]step{in(junk), out("HTTP/1.1 200 OK\r\n\r\n"), in(getReq), out(okResp)}, true)
			require.Len(t, got, 1, "garbage gives nothing; a request in a later segment resyncs")
			assert.Equal(t, "/users/42?x=1", got[0].Target)
			assert.NotZero(t, stats.NotHTTP)
		})
	}
}

func TestResponseWithoutRequestIsDropped(t *testing.T) {
	got, _ := run([]step{out(okResp), out(okResp)}, true)
	assert.Empty(t, got)
}

func TestPendingIsBounded(t *testing.T) {
	var steps []step
	for i := 0; i < MaxPending+10; i++ {
		steps = append(steps, in("GET / HTTP/1.1\r\n\r\n"))
	}
	got, stats := run(steps, true)
	assert.Len(t, got, MaxPending)
	assert.Equal(t, uint64(10), stats.PendingOverflow)
}

func TestUpgradeStopsParsing(t *testing.T) {
	got, _ := run([]step{in("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"), out("HTTP/1.1 101 Switching Protocols\r\n\r\n"), in("GET /not-http-anymore HTTP/1.1\r\n\r\n"), out(okResp)}, true)
	require.Len(t, got, 1)
	assert.Equal(t, 101, got[0].Status)
}

func BenchmarkKeepAlive(b *testing.B) {
	c := NewConn()
	req, resp := []byte("GET /users/42 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n"), []byte(okResp)
	h := &counter{}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Feed(Inbound, Segment{Data: req, Len: len(req), Time: uint64(i)}, h)
		c.Feed(Outbound, Segment{Data: resp, Len: len(resp), Time: uint64(i)}, h)
	}
	if h.n != b.N {
		b.Fatalf("%d exchanges for %d requests", h.n, b.N)
	}
}

type counter struct{ n int }

func (c *counter) Started(*Exchange) {}
func (c *counter) Done(*Exchange)    { c.n++ }

func TestStartedBeforeDone(t *testing.T) {
	c := NewConn()
	h := &recorder{}
	c.Feed(Inbound, Segment{Data: []byte("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"), Len: 38, Time: 1}, h)
	assert.Equal(t, 2, h.started, "both pipelined requests started before any response")
	assert.Empty(t, h.done)
	c.Feed(Outbound, Segment{Data: []byte(okResp + okResp), Len: 2 * len(okResp), Time: 2}, h)
	c.Close(3, h)
	assert.Len(t, h.done, 2)
	assert.Empty(t, h.bad)
}
