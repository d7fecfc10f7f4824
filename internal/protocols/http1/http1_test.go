package http1

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

type convTest struct {
	name  string
	steps []step
	want  []Exchange
	stats Stats
}

func runConv(t *testing.T, tests []convTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestConn()
			got := play(c, tt.steps)
			require.Equal(t, len(tt.want), len(got), "exchanges: %+v", got)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.stats, c.Stats())
		})
	}
}

func TestBasics(t *testing.T) {
	withTP := func(x Exchange) Exchange { x.Traceparent = tp; return x }
	v10 := func(x Exchange) Exchange { x.Version = "1.0"; return x }
	runConv(t, []convTest{{
		name: "server GET with length",
		steps: script(
			in(1, "GET /users/42?x=1 HTTP/1.1\r\nHost: api.local\r\nUser-Agent: t\r\n\r\n"),
			out(2, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")),
		want: []Exchange{sized(at(host(server("GET", "/users/42?x=1", 200), "api.local"), 1, 1, 2, 2), 0, 5)},
	}, {
		name: "client POST with body and traceparent",
		steps: script(
			out(10, "POST /submit HTTP/1.1\r\nHost: svc:8080\r\nContent-Length: 11\r\ntraceparent: "+tp+"\r\n\r\nhello world"),
			in(20, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")),
		want: []Exchange{withTP(sized(at(host(client("POST", "/submit", 201), "svc:8080"), 10, 10, 20, 20), 11, 0))},
	}, {
		name:  "HTTP/1.0 with length",
		steps: script(in(1, "GET / HTTP/1.0\r\n\r\n"), out(2, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")),
		want:  []Exchange{v10(sized(at(server("GET", "/", 200), 1, 1, 2, 2), 0, 2))},
	}, {
		name: "HTTP/1.0 keep-alive",
		steps: script(
			in(1, "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
			out(2, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"),
			in(3, "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
			out(4, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")),
		want: []Exchange{
			v10(sized(at(server("GET", "/k", 200), 1, 1, 2, 2), 0, 2)),
			v10(sized(at(server("GET", "/k", 200), 3, 3, 4, 4), 0, 2)),
		},
	}, {
		name: "HTTP/1.0 response delimited by close",
		steps: script(
			in(1, "GET /old HTTP/1.0\r\n\r\n"),
			out(2, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc"),
			out(3, "defg"),
			closeAt(9)),
		want: []Exchange{v10(sized(at(server("GET", "/old", 200), 1, 1, 2, 9), 0, 7))},
	}, {
		name: "HTTP/1.1 Connection: close without length",
		steps: script(
			in(1, getA),
			out(2, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"),
			out(3, "0123456789"),
			closeAt(4)),
		want: []Exchange{sized(at(host(server("GET", "/a", 200), "h"), 1, 1, 2, 4), 0, 10)},
	}, {
		name:  "request without response is emitted at close",
		steps: script(in(1, getA), closeAt(5)),
		want:  []Exchange{at(host(server("GET", "/a", 0), "h"), 1, 1, 0, 0)},
	}, {
		name:  "response without request is discarded",
		steps: script(out(1, ok2), in(2, getA), out(3, nf)),
		want:  []Exchange{sized(at(host(server("GET", "/a", 404), "h"), 2, 2, 3, 3), 0, 9)},
		stats: Stats{UnmatchedResponses: 1},
	}, {
		name: "close ends a cut head as partial",
		steps: script(
			in(1, "GET /cut HTTP/1.1\r\nHost: z\r\nAcc"),
			closeAt(2)),
		want: []Exchange{func() Exchange {
			x := at(host(server("GET", "/cut", 0), "z"), 1, 1, 0, 0)
			x.Partial = true
			return x
		}()},
	}, {
		name:  "close ends a cut body",
		steps: script(in(1, getA), out(2, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"), closeAt(3)),
		want:  []Exchange{sized(at(host(server("GET", "/a", 200), "h"), 1, 1, 2, 2), 0, 3)},
	}, {
		name: "a closed Conn starts afresh",
		steps: script(
			in(1, getA), out(2, ok2), closeAt(3),
			out(4, getB), in(5, nf)),
		want: []Exchange{
			sized(at(host(server("GET", "/a", 200), "h"), 1, 1, 2, 2), 0, 2),
			sized(at(host(client("GET", "/b", 404), "h"), 4, 4, 5, 5), 0, 9),
		},
	}, {
		name: "absolute-form target kept as sent",
		steps: script(
			out(1, "GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
			in(2, ok2)),
		want: []Exchange{sized(at(host(client("GET", "http://example.com/x?y=1", 200), "example.com"), 1, 1, 2, 2), 0, 2)},
	}, {
		name: "status line without reason phrase",
		steps: script(
			in(1, getA),
			out(2, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")),
		want: []Exchange{at(host(server("GET", "/a", 200), "h"), 1, 1, 2, 2)},
	}, {
		name: "empty lines before a request are skipped",
		steps: script(
			in(1, "\r\n"),
			in(2, "\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
			out(3, ok2)),
		want: []Exchange{sized(at(host(server("GET", "/a", 200), "h"), 2, 2, 3, 3), 0, 2)},
	}, {
		name:  "timestamps out of order are kept per message",
		steps: script(in(5, getA), out(3, ok2)),
		want:  []Exchange{sized(at(host(server("GET", "/a", 200), "h"), 5, 5, 3, 3), 0, 2)},
	}})
}

func TestKeepAliveAndPipelining(t *testing.T) {
	var keepAlive []step
	var keepAliveWant []Exchange
	for i := range 100 {
		ts := uint64(2*i + 1)
		keepAlive = append(keepAlive,
			in(ts, fmt.Sprintf("GET /item/%d HTTP/1.1\r\nHost: h\r\n\r\n", i)),
			out(ts+1, ok2))
		keepAliveWant = append(keepAliveWant,
			sized(at(host(server("GET", fmt.Sprintf("/item/%d", i), 200), "h"), ts, ts, ts+1, ts+1), 0, 2))
	}
	a := host(server("GET", "/a", 200), "h")
	b := host(server("GET", "/b", 404), "h")
	c := host(server("GET", "/c", 500), "h")
	runConv(t, []convTest{{
		name:  "100 requests on one connection",
		steps: keepAlive,
		want:  keepAliveWant,
	}, {
		name:  "pipelined requests in one segment",
		steps: script(in(1, getA+getB+getC), out(2, ok2), out(3, nf+err500)),
		want:  []Exchange{sized(at(a, 1, 1, 2, 2), 0, 2), sized(at(b, 1, 1, 3, 3), 0, 9), at(c, 1, 1, 3, 3)},
	}, {
		name:  "pipelined requests in several segments",
		steps: script(in(1, getA), in(2, getB), out(3, ok2), in(4, getC), out(5, nf+err500)),
		want:  []Exchange{sized(at(a, 1, 1, 3, 3), 0, 2), sized(at(b, 2, 2, 5, 5), 0, 9), at(c, 4, 4, 5, 5)},
	}, {
		name: "client pipelining",
		steps: script(
			out(1, getA+getB),
			in(2, ok2+nf[:20]), in(3, nf[20:])),
		want: []Exchange{
			sized(at(host(client("GET", "/a", 200), "h"), 1, 1, 2, 2), 0, 2),
			sized(at(host(client("GET", "/b", 404), "h"), 1, 1, 2, 3), 0, 9),
		},
	}})
}

func TestBodies(t *testing.T) {
	a := host(server("GET", "/a", 200), "h")
	b := host(server("GET", "/b", 200), "h")
	runConv(t, []convTest{{
		name: "request body over several segments",
		steps: script(
			in(1, "POST /u HTTP/1.1\r\nContent-Length: 10\r\n\r\n01"),
			in(2, "2345"), in(3, "6789"),
			out(4, "HTTP/1.1 204 No Content\r\n\r\n")),
		want: []Exchange{sized(at(server("POST", "/u", 204), 1, 3, 4, 4), 10, 0)},
	}, {
		name: "chunked response with extension and trailers",
		steps: script(
			in(1, getA),
			out(2, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"),
			out(3, "0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n")),
		want: []Exchange{sized(at(a, 1, 1, 2, 3), 0, 31)},
	}, {
		name: "chunked request",
		steps: script(
			in(1, "PUT /f HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n"),
			in(2, "0\r\n\r\n"),
			out(3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")),
		want: []Exchange{sized(at(server("PUT", "/f", 200), 1, 2, 3, 3), 3, 0)},
	}, {
		name: "Transfer-Encoding wins over Content-Length",
		steps: script(
			in(1, getA),
			out(2, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"),
			in(3, getB), out(4, ok2)),
		want: []Exchange{sized(at(a, 1, 1, 2, 2), 0, 2), sized(at(b, 3, 3, 4, 4), 0, 2)},
	}, {
		name: "a list of equal lengths is one length",
		steps: script(
			in(1, getA),
			out(2, "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc"),
			in(3, getB), out(4, ok2)),
		want: []Exchange{sized(at(a, 1, 1, 2, 2), 0, 3), sized(at(b, 3, 3, 4, 4), 0, 2)},
	}, {
		name: "differing lengths make the response close-delimited",
		steps: script(
			in(1, getA),
			out(2, "HTTP/1.1 200 OK\r\nContent-Length: 12, 13\r\n\r\nabc"),
			closeAt(3)),
		want: []Exchange{sized(at(a, 1, 1, 2, 3), 0, 3)},
	}, {
		name: "HEAD response has no body despite its length",
		steps: script(
			in(1, "HEAD /x HTTP/1.1\r\n\r\n"),
			out(2, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"),
			in(3, "GET /y HTTP/1.1\r\n\r\n"),
			out(4, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz")),
		want: []Exchange{
			at(server("HEAD", "/x", 200), 1, 1, 2, 2),
			sized(at(server("GET", "/y", 200), 3, 3, 4, 4), 0, 1),
		},
	}, {
		name: "204 and 304 have no body despite their length",
		steps: script(
			in(1, getA+getB+getC),
			out(2, "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"+
				"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"+ok2)),
		want: []Exchange{
			at(host(server("GET", "/a", 204), "h"), 1, 1, 2, 2),
			at(host(server("GET", "/b", 304), "h"), 1, 1, 2, 2),
			sized(at(host(server("GET", "/c", 200), "h"), 1, 1, 2, 2), 0, 2),
		},
	}, {
		name: "100 Continue is followed by the final response",
		steps: script(
			in(1, "POST /up HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"),
			out(2, "HTTP/1.1 100 Continue\r\n\r\n"),
			in(3, "data"),
			out(4, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")),
		want: []Exchange{sized(at(server("POST", "/up", 200), 1, 3, 4, 4), 4, 0)},
	}, {
		name: "103 Early Hints and the final response in one segment",
		steps: script(
			in(1, getA),
			out(2, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")),
		want: []Exchange{sized(at(a, 1, 1, 2, 2), 0, 2)},
	}, {
		name: "a later request ends a response that seemed close-delimited",
		steps: script(
			in(1, getA),
			out(2, "HTTP/1.1 200 OK\r\n\r\nbody"),
			in(3, getB), out(4, ok2)),
		want: []Exchange{sized(at(a, 1, 1, 2, 2), 0, 4), sized(at(b, 3, 3, 4, 4), 0, 2)},
	}, {
		name: "without a later request a close-delimited body takes everything",
		steps: script(
			in(1, getA),
			out(2, "HTTP/1.1 200 OK\r\n\r\nbody"),
			out(3, ok2), closeAt(4)),
		want: []Exchange{sized(at(a, 1, 1, 2, 4), 0, int64(4+len(ok2)))},
	}})
}

func TestUpgrades(t *testing.T) {
	runConv(t, []convTest{{
		name: "101 Switching Protocols ends HTTP on the connection",
		steps: script(
			in(1, "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
			out(2, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
			in(3, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
			out(4, "\x81\x05hello"),
			in(5, getB), closeAt(6)),
		want: []Exchange{at(host(server("GET", "/ws", 101), "h"), 1, 1, 2, 2)},
	}, {
		name: "CONNECT opens a tunnel",
		steps: script(
			out(1, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
			in(2, "HTTP/1.1 200 Connection Established\r\n\r\n"),
			out(3, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"),
			in(4, "HTTP/1.1 200 OK\r\n\r\n"), closeAt(5)),
		want: []Exchange{at(host(client("CONNECT", "example.com:443", 200), "example.com:443"), 1, 1, 2, 2)},
	}, {
		name: "a refused CONNECT stays HTTP",
		steps: script(
			in(1, "CONNECT a:443 HTTP/1.1\r\n\r\n"),
			out(2, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"),
			in(3, getA), out(4, ok2)),
		want: []Exchange{
			at(server("CONNECT", "a:443", 407), 1, 1, 2, 2),
			sized(at(host(server("GET", "/a", 200), "h"), 3, 3, 4, 4), 0, 2),
		},
	}})
}

func TestSplits(t *testing.T) {
	post := "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody("hello world", 4)
	big := "GET /big HTTP/1.1\r\nCookie: " + strings.Repeat("a", 20<<10) + "\r\nHost: late.example\r\n\r\n"
	bigN := uint64((len(big) + 4095) / 4096)
	long := "/" + strings.Repeat("a", 9000)
	longReq := "GET " + long + " HTTP/1.1\r\nHost: t\r\n\r\n"
	runConv(t, []convTest{{
		name:  "1-byte segments",
		steps: script(pieces(Inbound, 1, post, 1), pieces(Outbound, 1000, chunked, 1)),
		want: []Exchange{sized(at(host(server("POST", "/p", 200), "h"),
			1, uint64(len(post)), 1000, uint64(1000+len(chunked)-1)), 3, 11)},
	}, {
		name:  "2-byte and 3-byte segments",
		steps: script(pieces(Outbound, 1, post, 2), pieces(Inbound, 1000, chunked, 3)),
		want: []Exchange{sized(at(host(client("POST", "/p", 200), "h"),
			1, uint64((len(post)+1)/2), 1000, uint64(1000+(len(chunked)+2)/3-1)), 3, 11)},
	}, {
		name: "splits inside the blank line",
		steps: script(
			in(1, "GET / HTTP/1.1\r\nHost: a\r\n\r"), in(2, "\n"),
			out(3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r"), out(4, "\n\r\n"),
			in(5, "GET /2 HTTP/1.1\r\n"), in(6, "\r\n"),
			out(7, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r"), out(8, "\n")),
		want: []Exchange{
			at(host(server("GET", "/", 200), "a"), 1, 2, 3, 4),
			at(server("GET", "/2", 200), 5, 6, 7, 8),
		},
	}, {
		name:  "20 KiB head over 4096-byte segments",
		steps: script(pieces(Inbound, 1, big, 4096), out(100, ok2)),
		want:  []Exchange{sized(at(host(server("GET", "/big", 200), "late.example"), 1, bigN, 100, 100), 0, 2)},
	}, {
		name:  "target longer than 8 KiB is cut",
		steps: script(pieces(Inbound, 1, longReq, 4096), out(10, ok2)),
		want:  []Exchange{sized(at(host(server("GET", long[:8192], 200), "t"), 1, 3, 10, 10), 0, 2)},
	}})
}

func TestGaps(t *testing.T) {
	partial := func(x Exchange) Exchange { x.Partial = true; return x }
	gapHead := "GET /gap?q=1 HTTP/1.1\r\nHost: early\r\nCookie: " + strings.Repeat("b", 10000) +
		"\r\ntraceparent: " + tp + "\r\n\r\n"
	postHead := "POST /g HTTP/1.1\r\nContent-Length: 5\r\nX-Pad: " + strings.Repeat("c", 6000) + "\r\n\r\n"
	longTarget := "GET /" + strings.Repeat("t", 6000) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	noTarget := partial(sized(at(server("GET", longTarget[4:4096], 200), 1, 1, 2, 2), 0, 2))
	noTarget.Version = ""
	huge := "GET /huge HTTP/1.1\r\nHost: first\r\nX-Fill: " + strings.Repeat("f", 70000) +
		"\r\ntraceparent: " + tp + "\r\n\r\n"
	hugeN := uint64((len(huge) + 4095) / 4096)
	bigBody := "POST /big HTTP/1.1\r\nContent-Length: 10000\r\n\r\n" + strings.Repeat("d", 10000)

	const chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	inStep := chunkedHead + "2000\r\n" + strings.Repeat("x", 8192) + "\r\n0\r\n\r\n"
	// 20000 bytes in 256-byte chunks. The first 4096 bytes captured hold
	// the head (47 bytes), 15 whole chunks and 99 bytes of the 16th: 3939
	// data bytes. Past the gap the framing is lost and raw bytes count:
	// 20447 in all, instead of 20000.
	lost := chunkedHead + chunkedBody(strings.Repeat("y", 20000), 256)
	require.Equal(t, 20604, len(lost))
	const lostBody = 3939 + (20604 - 4096 - 16) + 16

	a := host(server("GET", "/a", 200), "h")
	b := host(server("GET", "/b", 200), "h")
	runConv(t, []convTest{{
		name:  "gap inside a head",
		steps: script(moved(Inbound, 1, gapHead, 4096), out(2, ok2)),
		want:  []Exchange{partial(sized(at(host(server("GET", "/gap?q=1", 200), "early"), 1, 1, 2, 2), 0, 2))},
	}, {
		name:  "gap inside a head with its length before the gap",
		steps: script(moved(Inbound, 1, postHead, 4096), in(2, "hello"), out(3, ok2)),
		want:  []Exchange{partial(sized(at(server("POST", "/g", 200), 1, 2, 3, 3), 5, 2))},
	}, {
		name:  "gap inside the request target",
		steps: script(moved(Inbound, 1, longTarget, 4096), out(2, ok2)),
		want:  []Exchange{noTarget},
	}, {
		name:  "head larger than 64 KiB",
		steps: script(pieces(Inbound, 1, huge, 4096), out(100, ok2)),
		want:  []Exchange{partial(sized(at(host(server("GET", "/huge", 200), "first"), 1, hugeN, 100, 100), 0, 2))},
		stats: Stats{HeadTooLarge: 1},
	}, {
		name:  "gap inside a body of known length",
		steps: script(moved(Inbound, 1, bigBody[:8000], 4096), in(2, bigBody[8000:]), out(3, ok2)),
		want:  []Exchange{sized(at(server("POST", "/big", 200), 1, 2, 3, 3), 10000, 2)},
	}, {
		name:  "tail that overlaps the data is no gap",
		steps: script(moved(Inbound, 1, getA, len(getA)-5), out(2, ok2)),
		want:  []Exchange{sized(at(a, 1, 1, 2, 2), 0, 2)},
	}, {
		name:  "gap at the start of a message",
		steps: script(step{dir: Inbound, t: 1, len: 500}, in(2, getA), out(3, ok2)),
		want:  []Exchange{sized(at(a, 2, 2, 3, 3), 0, 2)},
	}, {
		name:  "chunked gap inside chunk data keeps step",
		steps: script(in(1, getA), moved(Outbound, 2, inStep, 4096), in(3, getB), out(4, ok2)),
		want:  []Exchange{sized(at(a, 1, 1, 2, 2), 0, 8192), sized(at(b, 3, 3, 4, 4), 0, 2)},
	}, {
		name:  "chunked framing lost, end found in the tail",
		steps: script(in(1, getA), moved(Outbound, 2, lost, 4096), in(3, getB), out(4, ok2)),
		want:  []Exchange{sized(at(a, 1, 1, 2, 2), 0, lostBody), sized(at(b, 3, 3, 4, 4), 0, 2)},
	}, {
		name: "chunked framing lost, tail of only the zero chunk",
		steps: script(in(1, getA),
			step{dir: Outbound, t: 2, data: lost[:4096], len: len(lost), tail: "0\r\n\r\n"},
			in(3, getB), out(4, ok2)),
		want: []Exchange{sized(at(a, 1, 1, 2, 2), 0, lostBody), sized(at(b, 3, 3, 4, 4), 0, 2)},
	}, {
		name: "chunked framing lost, end found in a later segment",
		steps: script(in(1, getA), moved(Outbound, 2, lost[:10000], 4096), out(3, lost[10000:]),
			in(4, getB), out(5, ok2)),
		want: []Exchange{sized(at(a, 1, 1, 2, 3), 0, lostBody), sized(at(b, 4, 4, 5, 5), 0, 2)},
	}, {
		name: "chunked framing lost, end split over two segments",
		steps: script(in(1, getA), moved(Outbound, 2, lost[:10000], 4096),
			out(3, lost[10000:len(lost)-3]), out(4, lost[len(lost)-3:]),
			in(5, getB), out(6, ok2)),
		want: []Exchange{sized(at(a, 1, 1, 2, 4), 0, lostBody), sized(at(b, 5, 5, 6, 6), 0, 2)},
	}, {
		name: "chunked framing lost, next status line ends it",
		steps: script(in(1, getA), moved(Outbound, 2, lost[:10000], 4096),
			in(3, getB), out(4, ok2)),
		want: []Exchange{sized(at(a, 1, 1, 2, 2), 0, 3939+(10000-4096-16)+16), sized(at(b, 3, 3, 4, 4), 0, 2)},
	}, {
		name: "inconsistent lengths are tolerated",
		steps: script(
			step{dir: Inbound, t: 1, data: getA, len: 3},
			step{dir: Outbound, t: 2, data: ok2, len: 1, tail: "0123456789abcdefXYZ"}),
		want: []Exchange{sized(at(a, 1, 1, 2, 2), 0, 2)},
	}})
}

func TestNotHTTP(t *testing.T) {
	tls := "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + strings.Repeat("\x5a", 32)
	runConv(t, []convTest{{
		name:  "binary",
		steps: script(in(1, "\x00\x01\x02\x03\xff\xfe"), out(2, "\x89PNG\r\n\x1a\n")),
		stats: Stats{NotHTTP: 2},
	}, {
		name:  "TLS",
		steps: script(out(1, tls), in(2, "\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03"), closeAt(3)),
		stats: Stats{NotHTTP: 2},
	}, {
		name: "HTTP/2 prior knowledge",
		steps: script(
			in(1, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00"),
			out(2, "\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64")),
		stats: Stats{NotHTTP: 2},
	}, {
		name: "Redis",
		steps: script(
			in(1, "*1\r\n$4\r\nPING\r\n"), out(2, "+PONG\r\n"),
			in(3, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"), out(4, "+OK\r\n")),
		stats: Stats{NotHTTP: 4},
	}, {
		// "N" (no SSL) could begin a method, so it waits for the next
		// bytes the same way, and "NR\x00..." is then one discarded run.
		name: "Postgres",
		steps: script(
			in(1, "\x00\x00\x00\x08\x04\xd2\x16\x2f"), out(2, "N"),
			in(3, "\x00\x00\x00\x25\x00\x03\x00\x00user\x00postgres\x00database\x00db\x00\x00"),
			out(4, "R\x00\x00\x00\x08\x00\x00\x00\x00"), closeAt(5)),
		stats: Stats{NotHTTP: 3},
	}, {
		name: "near misses of a start line",
		steps: script(
			in(1, "get / HTTP/1.1\r\n\r\n"),
			in(2, "ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n\r\n"),
			in(3, "GET / HTTP/1.2\r\n\r\n"),
			in(4, "GET / HTTP/2.0\r\n\r\n"),
			in(5, "GET  / HTTP/1.1\r\n\r\n"),
			in(6, "GET / HTTP/1.1\n\n"),
			in(7, "GET\t/ HTTP/1.1\r\n\r\n"),
			in(8, "GET /a\x01b HTTP/1.1\r\n\r\n"),
			in(9, "GET / HTTP/1.1 \r\n\r\n"),
			out(10, "HTTP/1.1 20 OK\r\n\r\n"),
			out(11, "HTTP/1.1 2000 OK\r\n\r\n"),
			out(12, "HTTP/1.1 099 Low\r\n\r\n"),
			out(13, "HTTP/1.1 200 OK\n\n"),
			out(14, "HTTP/1.1 200 O\x00K\r\n\r\n"),
			out(15, "http/1.1 200 OK\r\n\r\n")),
		stats: Stats{NotHTTP: 15},
	}, {
		name: "valid request after garbage",
		steps: script(
			in(1, "\x16\x03\x01\x02\x00garbage"),
			in(2, getA), out(3, ok2)),
		want:  []Exchange{sized(at(host(server("GET", "/a", 200), "h"), 2, 2, 3, 3), 0, 2)},
		stats: Stats{NotHTTP: 1},
	}, {
		name: "garbage inside a segment drops the rest of it",
		steps: script(
			in(1, getA+"\x00\x01junk "+getB), out(2, ok2),
			in(3, getC), out(4, nf)),
		want: []Exchange{
			sized(at(host(server("GET", "/a", 200), "h"), 1, 1, 2, 2), 0, 2),
			sized(at(host(server("GET", "/c", 404), "h"), 3, 3, 4, 4), 0, 9),
		},
		stats: Stats{NotHTTP: 1},
	}, {
		name: "HTTP after a role is decided must go the right way",
		steps: script(
			in(1, getA), out(2, ok2),
			out(3, getB), in(4, ok2)),
		want:  []Exchange{sized(at(host(server("GET", "/a", 200), "h"), 1, 1, 2, 2), 0, 2)},
		stats: Stats{NotHTTP: 2},
	}})
}

func TestRequestLines(t *testing.T) {
	v10 := func(x Exchange) Exchange { x.Version = "1.0"; return x }
	runConv(t, []convTest{{
		name: "any uppercase token is a method",
		steps: script(
			in(1, "PURGE /cache HTTP/1.1\r\n\r\n"), out(2, ok2),
			in(3, "M-SEARCH * HTTP/1.1\r\n\r\n"), out(4, ok2),
			in(5, "ABCDEFGHIJKLMNOPQRST /20 HTTP/1.0\r\n\r\n"), out(6, ok2)),
		want: []Exchange{
			sized(at(server("PURGE", "/cache", 200), 1, 1, 2, 2), 0, 2),
			sized(at(server("M-SEARCH", "*", 200), 3, 3, 4, 4), 0, 2),
			v10(sized(at(server("ABCDEFGHIJKLMNOPQRST", "/20", 200), 5, 5, 6, 6), 0, 2)),
		},
	}, {
		name: "header names are case-insensitive",
		steps: script(
			in(1, "POST /ci HTTP/1.1\r\nhOsT: MiXeD\r\nCONTENT-length: 3\r\nTRACEPARENT: "+tp+"\r\n\r\nabc"),
			out(2, "HTTP/1.1 200 OK\r\ntransfer-ENCODING: CHUNKED\r\n\r\n1\r\nx\r\n0\r\n\r\n")),
		want: []Exchange{func() Exchange {
			x := sized(at(host(server("POST", "/ci", 200), "MiXeD"), 1, 1, 2, 2), 3, 1)
			x.Traceparent = tp
			return x
		}()},
	}, {
		name: "invalid UTF-8 in a target is replaced",
		steps: script(
			in(1, "GET /caf\xc3\xa9/\xff HTTP/1.1\r\nHost: h\xe2\x82\r\n\r\n"), out(2, ok2)),
		want: []Exchange{sized(at(host(server("GET", "/caf\u00e9/\ufffd", 200), "h\ufffd"), 1, 1, 2, 2), 0, 2)},
	}})
}

func TestPendingLimit(t *testing.T) {
	requests := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "GET /%d HTTP/1.1\r\n\r\n", i)
		}
		return b.String()
	}
	response := func(status int) string {
		return fmt.Sprintf("HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n", status)
	}
	responses := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			b.WriteString(response(200 + i))
		}
		return b.String()
	}
	paired := func(n int, respAt func(i int) uint64) []Exchange {
		var want []Exchange
		for i := range n {
			want = append(want, at(server("GET", fmt.Sprintf("/%d", i), 200+i), 1, 1, respAt(i), respAt(i)))
		}
		return want
	}
	runConv(t, []convTest{{
		name: "requests beyond 64 pending are dropped with their responses",
		steps: script(
			in(1, requests(70)), out(2, responses(0, 70)),
			in(3, "GET /after HTTP/1.1\r\n\r\n"), out(4, response(299))),
		want: append(paired(64, func(int) uint64 { return 2 }),
			at(server("GET", "/after", 299), 3, 3, 4, 4)),
		stats: Stats{PendingOverflow: 6},
	}, {
		name: "a request queued after a drop still gets its own response",
		steps: script(
			in(1, requests(65)), out(2, response(200)),
			in(3, "GET /x HTTP/1.1\r\n\r\n"),
			out(4, responses(1, 65)+response(299))),
		want: append(paired(64, func(i int) uint64 { return 2 + 2*uint64(min(i, 1)) }),
			at(server("GET", "/x", 299), 3, 3, 4, 4)),
		stats: Stats{PendingOverflow: 1},
	}})
}

// TestSplitInvariance feeds whole conversations cut in many ways: the
// exchanges must not depend on where the segments end.
func TestSplitInvariance(t *testing.T) {
	convs := []struct{ req, resp string }{
		{getA + getB + getC, ok2 + nf + err500},
		{"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + getA,
			"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
				chunkedBody(strings.Repeat("z", 300), 7) + ok2},
		{"HEAD / HTTP/1.1\r\n\r\nPUT /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n"},
		{"GET /c HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nclose-delimited body"},
	}
	for i, conv := range convs {
		whole := play(newTestConn(), script(in(1, conv.req), out(2, conv.resp), closeAt(3)))
		require.NotEmpty(t, whole)
		for _, size := range []int{1, 2, 3, 5, 7, 16, 100} {
			steps := script(pieces(Inbound, 1, conv.req, size), pieces(Outbound, 1, conv.resp, size), closeAt(3))
			got := play(newTestConn(), steps)
			assert.Equal(t, untimed(whole), untimed(got), "conversation %d in %d-byte segments", i, size)
		}
	}
}

func untimed(xs []Exchange) []Exchange {
	out := make([]Exchange, len(xs))
	for i, x := range xs {
		x.RequestStart, x.RequestEnd, x.ResponseStart, x.ResponseEnd = 0, 0, 0, 0
		out[i] = x
	}
	return out
}

func TestBoundedMemory(t *testing.T) {
	c := newTestConn()
	emit := func(Exchange) {}
	// A head that never ends, and requests that are never answered.
	c.Feed(Inbound, &Segment{Data: []byte("GET / HTTP/1.1\r\n"), Len: 16, Time: 1}, emitter(emit))
	chunk := []byte(strings.Repeat("X-A: b\r\n", 512))
	for i := range 100 {
		c.Feed(Inbound, &Segment{Data: chunk, Len: len(chunk), Time: uint64(i + 2)}, emitter(emit))
		assert.LessOrEqual(t, len(c.streams[Inbound].buf), maxHead)
	}
	assert.Equal(t, uint64(1), c.Stats().HeadTooLarge)
	c.Feed(Inbound, &Segment{Data: []byte("\r\n\r\n"), Len: 4, Time: 200}, emitter(emit))
	for i := range 200 {
		req := []byte("GET / HTTP/1.1\r\n\r\n")
		c.Feed(Inbound, &Segment{Data: req, Len: len(req), Time: uint64(300 + i)}, emitter(emit))
		assert.LessOrEqual(t, len(c.q)-c.qHead, maxPending)
	}
	assert.Equal(t, uint64(137), c.Stats().PendingOverflow)
	var n int
	c.Close(1000, emitter(func(Exchange) { n++ }))
	assert.Equal(t, 64, n)
	assert.Nil(t, c.streams[Inbound].buf, "a large head buffer is freed")
}

func TestNoAllocations(t *testing.T) {
	c := newTestConn()
	req := []byte("GET /ping HTTP/1.1\r\nHost: h\r\n\r\n")
	resp := []byte(ok2)
	var n int
	emit := func(Exchange) { n++ }
	allocs := testing.AllocsPerRun(1000, func() {
		c.Feed(Inbound, &Segment{Data: req, Len: len(req), Time: 1}, emitter(emit))
		c.Feed(Outbound, &Segment{Data: resp, Len: len(resp), Time: 2}, emitter(emit))
	})
	assert.Zero(t, allocs)
	assert.Equal(t, 1001, n)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = method([]byte("OPTIONS")) }))
}
