package http1

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// tagger checks that every exchange is started before it is done, and comes
// back with the tag it was given.
type tagger struct {
	started, done int
	bad           []string
}

func (r *tagger) Failed(string) {}

func (r *tagger) Started(x *protocols.Exchange) {
	r.started++
	x.Tag = r.started
}

func (r *tagger) Done(rec protocols.Record) {
	x := rec.Common()
	r.done++
	if x.Tag != r.done {
		r.bad = append(r.bad, fmt.Sprintf("exchange %d done with tag %v", r.done, x.Tag))
	}
}

func TestStartedBeforeDoneWithTag(t *testing.T) {
	c := newTestConn()
	h := &tagger{}
	reqs := "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"
	c.Feed(Inbound, &Segment{Data: []byte(reqs), Len: len(reqs), Time: 1}, h)
	assert.Equal(t, 2, h.started, "both pipelined requests start before any response")
	assert.Zero(t, h.done)
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	c.Feed(Outbound, &Segment{Data: []byte(resp + resp), Len: 2 * len(resp), Time: 2}, h)
	c.Feed(Inbound, &Segment{Data: []byte("GET /3 HTTP/1.1\r\n\r\n"), Len: 19, Time: 3}, h)
	c.Close(4, h)
	assert.Equal(t, 3, h.started)
	assert.Equal(t, 3, h.done, "the unanswered third comes out at Close")
	assert.Empty(t, h.bad)
}

// collector keeps the common part of every exchange it is given.
type collector struct{ done []protocols.Exchange }

func (c *collector) Started(*protocols.Exchange) {}
func (c *collector) Failed(string)               {}
func (c *collector) Done(r protocols.Record)     { c.done = append(c.done, *r.Common()) }

func chosen(b byte) tracecontext.Chosen {
	var ch tracecontext.Chosen
	ch.Kind, ch.SpanID = tracecontext.Served, [8]byte{b}
	return ch
}

// The kernel's context goes with the request whose first bytes it saw,
// whatever segment completes the head, and to no other request.
func TestChosenContextGoesWithItsRequest(t *testing.T) {
	feed := func(c *Conn, h protocols.Sink, dir protocols.Direction, tid uint32, ch tracecontext.Chosen, data string) {
		c.Feed(dir, &Segment{Data: []byte(data), Len: len(data), Time: 1, Tid: tid, Chosen: ch}, h)
	}
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

	t.Run("head completed by the next read", func(t *testing.T) {
		c, h := newTestConn(), &collector{}
		feed(c, h, Inbound, 7, chosen(1), "GET /a HTTP/1.1\r\n")
		feed(c, h, Inbound, 8, tracecontext.Chosen{}, "Host: h\r\n\r\n")
		feed(c, h, Outbound, 8, tracecontext.Chosen{}, resp)
		require.Len(t, h.done, 1)
		assert.Equal(t, chosen(1), h.done[0].Chosen)
		assert.Equal(t, uint32(7), h.done[0].Tid, "the thread that read its first bytes")
	})
	t.Run("first byte read alone", func(t *testing.T) {
		c, h := newTestConn(), &collector{}
		feed(c, h, Inbound, 7, tracecontext.Chosen{}, "G")
		feed(c, h, Inbound, 7, chosen(2), "ET /a HTTP/1.1\r\n\r\n")
		feed(c, h, Outbound, 7, tracecontext.Chosen{}, resp)
		require.Len(t, h.done, 1)
		assert.Equal(t, chosen(2), h.done[0].Chosen)
	})
	t.Run("pipelined requests", func(t *testing.T) {
		c, h := newTestConn(), &collector{}
		feed(c, h, Inbound, 7, chosen(3), "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
		feed(c, h, Outbound, 7, tracecontext.Chosen{}, resp+resp)
		require.Len(t, h.done, 2)
		assert.Equal(t, chosen(3), h.done[0].Chosen)
		assert.Equal(t, tracecontext.Chosen{}, h.done[1].Chosen, "the second request was not the one the kernel saw")
	})
	t.Run("a context no request took is not kept for the next", func(t *testing.T) {
		c, h := newTestConn(), &collector{}
		feed(c, h, Inbound, 7, chosen(4), "\r\n")
		feed(c, h, Inbound, 7, tracecontext.Chosen{}, "GET /a HTTP/1.1\r\n\r\n")
		feed(c, h, Outbound, 7, tracecontext.Chosen{}, resp)
		require.Len(t, h.done, 1)
		assert.Equal(t, tracecontext.Chosen{}, h.done[0].Chosen)
	})
	t.Run("bytes in a body begin no request", func(t *testing.T) {
		c, h := newTestConn(), &collector{}
		feed(c, h, Inbound, 7, tracecontext.Chosen{}, "POST /a HTTP/1.1\r\nContent-Length: 20\r\n\r\n")
		feed(c, h, Inbound, 7, chosen(5), "GET /x HTTP/1.1\r\n\r\n!")
		feed(c, h, Inbound, 7, tracecontext.Chosen{}, "GET /b HTTP/1.1\r\n\r\n")
		feed(c, h, Outbound, 7, tracecontext.Chosen{}, resp+resp)
		require.Len(t, h.done, 2)
		assert.Equal(t, tracecontext.Chosen{}, h.done[0].Chosen)
		assert.Equal(t, tracecontext.Chosen{}, h.done[1].Chosen)
	})
}
