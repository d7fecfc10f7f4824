package http1

import (
	"strconv"
	"strings"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

// Names the tests use for the protocol layer's types.
type (
	Segment   = protocols.Segment
	Direction = protocols.Direction
)

// testOptions are what the tests' connections record.
var testOptions = func() *protocols.Options {
	router, err := routes.New(nil, routes.Heuristic)
	if err != nil {
		panic(err)
	}
	return &protocols.Options{Routes: routes.NewLimiter(router, 1000)}
}()

func newTestConn() *Conn { return NewConn(testOptions) }

// step is one segment fed to a Conn, or a close.
type step struct {
	dir   Direction
	data  string
	len   int // bytes moved; 0 means len(data)
	tail  string
	t     uint64
	close bool
}

func in(t uint64, data string) step  { return step{dir: Inbound, data: data, t: t} }
func out(t uint64, data string) step { return step{dir: Outbound, data: data, t: t} }
func closeAt(t uint64) step          { return step{close: true, t: t} }

// moved is a syscall that moved all but captured only its first capture
// bytes, with the kernel's tail of its last 16 bytes.
func moved(dir Direction, t uint64, all string, capture int) step {
	return step{dir: dir, t: t, data: all[:capture], len: len(all), tail: all[len(all)-min(16, len(all)):]}
}

// pieces splits all into segments of size bytes, the first at time t0 and
// each next one a nanosecond later.
func pieces(dir Direction, t0 uint64, all string, size int) []step {
	var steps []step
	for i := 0; i < len(all); i += size {
		steps = append(steps, step{dir: dir, t: t0, data: all[i:min(i+size, len(all))]})
		t0++
	}
	return steps
}

// script flattens steps and slices of steps.
func script(parts ...any) []step {
	var steps []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			steps = append(steps, p)
		case []step:
			steps = append(steps, p...)
		}
	}
	return steps
}

// play feeds steps to c and returns what it emitted.
func play(c *Conn, steps []step) []Exchange {
	var got []Exchange
	emit := func(x Exchange) { got = append(got, x) }
	for _, s := range steps {
		if s.close {
			c.Close(s.t, emitter(emit))
			continue
		}
		n := s.len
		if n == 0 {
			n = len(s.data)
		}
		// Fresh copies that are scribbled over after the call: a Conn
		// that kept a reference to them would see garbage later.
		data, tail := []byte(s.data), []byte(s.tail)
		c.Feed(s.dir, &Segment{Data: data, Len: n, Tail: tail, Time: s.t}, emitter(emit))
		scribble(data)
		scribble(tail)
	}
	return got
}

func scribble(b []byte) {
	for i := range b {
		b[i] = 0xA5
	}
}

// Messages used by many tests.
const (
	getA   = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
	getB   = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
	getC   = "GET /c HTTP/1.1\r\nHost: h\r\n\r\n"
	ok2    = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	nf     = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"
	err500 = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
)

// server and client build expected exchanges.
func server(method, target string, status int) Exchange {
	return exchange(RoleServer, method, target, status)
}

func client(method, target string, status int) Exchange {
	return exchange(RoleClient, method, target, status)
}

func exchange(role protocols.Role, method, target string, status int) Exchange {
	var x Exchange
	x.Role, x.Method, x.Target, x.Version, x.Status = role, method, target, "1.1", status
	return x
}

// comparable is what tests compare of an exchange: what the wire said,
// without the values derived from it for correlation and spans.
func comparable(x Exchange) Exchange {
	x.conn = nil
	x.LinkOp, x.LinkTarget, x.Scheme, x.Clipped = "", "", "", false
	return x
}

// at sets the four times and returns x.
func at(x Exchange, reqStart, reqEnd, respStart, respEnd uint64) Exchange {
	x.RequestStart, x.RequestEnd, x.ResponseStart, x.ResponseEnd = reqStart, reqEnd, respStart, respEnd
	return x
}

// sized sets the body sizes and returns x.
func sized(x Exchange, req, resp int64) Exchange {
	x.RequestBodySize, x.ResponseBodySize = req, resp
	return x
}

func host(x Exchange, h string) Exchange { x.Host = h; return x }

// chunkedBody encodes data as chunks of at most size bytes.
func chunkedBody(data string, size int) string {
	var b strings.Builder
	for i := 0; i < len(data); i += size {
		part := data[i:min(i+size, len(data))]
		b.WriteString(strconv.FormatInt(int64(len(part)), 16))
		b.WriteString("\r\n")
		b.WriteString(part)
		b.WriteString("\r\n")
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// emitter is a Sink that only wants the completed exchanges.
type emitter func(Exchange)

func (e emitter) Started(*protocols.Exchange) {}
func (e emitter) Done(r protocols.Record)     { e(comparable(*r.(*Exchange))) }
func (e emitter) Failed(string)               {}
