package httpconn

import (
	"testing"
)

// FuzzConn cuts arbitrary bytes into segments of both directions, some with
// gaps, and checks that nothing panics and every exchange is sane.
func FuzzConn(f *testing.F) {
	f.Add([]byte(getReq+okResp), uint8(7), uint8(3))
	f.Add([]byte("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"+okResp+okResp), uint8(13), uint8(0))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), uint8(5), uint8(1))
	f.Add([]byte("\x16\x03\x01\x00\xa5PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), uint8(2), uint8(9))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nGET / HTTP/1.0\r\n\r\n"), uint8(1), uint8(255))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8, flips uint8) {
		c := NewConn()
		emit := &checker{t: t}
		size := int(cut%64) + 1
		for i, n := 0, 0; len(data) > 0; i++ {
			n = min(size, len(data))
			dir := Direction((int(flips) >> (i % 8)) & 1)
			gap := 0
			if flips&0x80 != 0 && i%5 == 4 {
				gap = int(cut) * 100
			}
			c.Feed(dir, Segment{Data: data[:n], Len: n + gap, Tail: data[:min(n, 16)], Time: uint64(i + 1)}, emit)
			data = data[n:]
		}
		c.Close(1<<40, emit)
	})
}

// checker fails the fuzz run on an exchange that breaks an invariant.
type checker struct {
	t       *testing.T
	started int
	done    int
}

func (c *checker) Started(x *Exchange) {
	c.started++
	if x.Method == "" || x.Status != 0 {
		c.t.Fatalf("bad started exchange %+v", x)
	}
}

func (c *checker) Done(x *Exchange) {
	c.done++
	if c.done > c.started {
		c.t.Fatalf("%d exchanges done, %d started", c.done, c.started)
	}
	if x.Method == "" || x.RequestStart > x.RequestEnd || (x.Status != 0 && (x.Status < 100 || x.Status > 999)) {
		c.t.Fatalf("bad exchange %+v", x)
	}
	if x.RequestBodySize < 0 || x.ResponseBodySize < 0 {
		c.t.Fatalf("negative body size %+v", x)
	}
}
