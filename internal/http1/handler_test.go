package http1

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// tagger checks that every exchange is started before it is done, and comes
// back with the tag it was given.
type tagger struct {
	started, done int
	bad           []string
}

func (r *tagger) Started(x *Exchange) {
	r.started++
	x.Tag = r.started
}

func (r *tagger) Done(x *Exchange) {
	r.done++
	if x.Tag != r.done {
		r.bad = append(r.bad, fmt.Sprintf("exchange %d done with tag %v", r.done, x.Tag))
	}
}

func TestStartedBeforeDoneWithTag(t *testing.T) {
	c := NewConn()
	h := &tagger{}
	reqs := "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"
	c.Feed(Inbound, Segment{Data: []byte(reqs), Len: len(reqs), Time: 1}, h)
	assert.Equal(t, 2, h.started, "both pipelined requests start before any response")
	assert.Zero(t, h.done)
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	c.Feed(Outbound, Segment{Data: []byte(resp + resp), Len: 2 * len(resp), Time: 2}, h)
	c.Feed(Inbound, Segment{Data: []byte("GET /3 HTTP/1.1\r\n\r\n"), Len: 19, Time: 3}, h)
	c.Close(4, h)
	assert.Equal(t, 3, h.started)
	assert.Equal(t, 3, h.done, "the unanswered third comes out at Close")
	assert.Empty(t, h.bad)
}
