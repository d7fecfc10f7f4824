package http1

import "github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"

// pending is a request waiting for its response, or for its end.
type pending struct {
	x        Exchange
	seq      uint64
	reqDone  bool // the request's last byte was seen
	answered bool // its final response head was seen
	respDone bool // that response's last byte was seen
	head     bool // a HEAD request: the response has no body
	connect  bool // a CONNECT request: a 2xx response opens a tunnel
	// h2c is set on a request that asked to go on in HTTP/2 (Upgrade: h2c,
	// with HTTP2-Settings decoded into h2Settings); handOver once a 101
	// response agreed: the exchange then goes to the HTTP/2 parser.
	h2c, handOver bool
	h2Settings    []byte

	// dropped counts the requests dropped after this one (the queue was
	// full): their responses follow this one's and are discarded.
	dropped uint32
}

// pendingQueue holds requests in the order they were sent, which is the
// order responses come in. It reuses its backing array.
type pendingQueue struct {
	q             []pending
	qHead         int    // q[qHead:] are pending
	nextSeq       uint64 // sequence number of the next request
	skipResponses uint32 // responses to come that answer dropped requests
}

// push queues a request, or drops it when maxPending are pending.
func (c *Conn) push(x Exchange, head, connect bool) *pending {
	n := len(c.q) - c.qHead
	if n >= maxPending {
		c.fail(&c.stats.PendingOverflow, reasonPendingOverflow)
		// Remember where the dropped request sits in the order, so that
		// its response is not paired with a later request.
		if last := &c.q[len(c.q)-1]; !last.answered {
			last.dropped++
		} else {
			c.skipResponses++
		}
		return nil
	}
	if len(c.q) == cap(c.q) && c.qHead > 0 {
		copy(c.q, c.q[c.qHead:])
		clear(c.q[n:])
		c.q, c.qHead = c.q[:n], 0
	}
	if c.q == nil {
		c.q = make([]pending, 0, 4)
	}
	c.q = append(c.q, pending{x: x, seq: c.nextSeq, head: head, connect: connect})
	c.nextSeq++
	return &c.q[len(c.q)-1]
}

// entry returns the pending request with sequence number seq, or nil.
func (c *Conn) entry(seq uint64) *pending {
	if c.qHead == len(c.q) {
		return nil
	}
	front := c.q[c.qHead].seq
	if seq < front || seq-front >= uint64(len(c.q)-c.qHead) {
		return nil
	}
	return &c.q[c.qHead+int(seq-front)]
}

// answer pairs a final response with the oldest request not yet answered.
// It returns nil when the response answers no request seen here.
func (c *Conn) answer() *pending {
	if c.skipResponses > 0 {
		c.skipResponses--
		return nil
	}
	for i := c.qHead; i < len(c.q); i++ {
		if p := &c.q[i]; !p.answered {
			p.answered = true
			c.skipResponses += p.dropped
			p.dropped = 0
			return p
		}
	}
	c.fail(&c.stats.UnmatchedResponses, reasonUnmatched)
	return nil
}

// hasUnanswered says whether some request still waits for a response head.
func (c *Conn) hasUnanswered() bool {
	for i := c.qHead; i < len(c.q); i++ {
		if !c.q[i].answered {
			return true
		}
	}
	return c.skipResponses > 0
}

// flush emits the exchanges at the front of the queue that are complete.
func (c *Conn) flush() {
	for c.qHead < len(c.q) && c.q[c.qHead].reqDone && c.q[c.qHead].respDone {
		c.popFront()
	}
	if c.qHead == len(c.q) {
		c.q, c.qHead = c.q[:0], 0
	}
}

// popFront emits the oldest exchange and forgets it. The handler gets a
// pointer into the queue: a pointer to a copy would escape to the heap.
func (c *Conn) popFront() {
	p := &c.q[c.qHead]
	c.qHead++
	switch {
	case p.handOver:
		c.keepUpgrade(p)
	case c.h != nil:
		c.h.Done(&p.x)
	}
	*p = pending{} // let go of its strings
}

// requestHead records a request from its head.
func (c *Conn) requestHead(s *stream, head []byte, f *fields) {
	l := &s.line
	s.resp = false
	s.frame, s.left = frameNone, 0
	switch {
	case f.te:
		// A request's coding other than chunked leaves its length unknown;
		// the server rejects it, so no body is assumed.
		if f.chunked {
			s.frame = frameChunked
		}
	case f.length > 0 && !f.badLength:
		s.frame, s.left = frameLength, f.length
	}
	targetEnd := l.targetEnd
	if l.req != rVersion && l.req != rDone {
		targetEnd = min(l.pos, len(head)) // cut inside the target
	}
	ver := ""
	if l.req == rDone {
		ver = version(l.minor)
	}
	m := method(head[:l.methodEnd])
	x := Exchange{conn: c, Partial: s.partial}
	x.Role = c.role
	x.Tid, x.Chosen = s.tid, s.chosen
	s.chosen = tracecontext.Chosen{}
	x.Method = m
	x.Target = cached(&c.lastTarget, head[l.methodEnd+1:targetEnd], maxTarget)
	x.Version = ver
	x.Clipped = ver == "" // the request line was cut
	x.Scheme = "http"
	x.RequestStart = s.start
	x.LinkOp, x.LinkTarget = x.Method, x.Target
	if f.hasHost {
		x.Host = cached(&c.lastHost, f.host, maxHost)
	}
	if f.hasTP {
		x.Traceparent = text(f.traceparent, maxTraceparent)
	}
	p := c.push(x, m == "HEAD", m == "CONNECT")
	s.tracked = p != nil
	if p != nil {
		askH2C(p, f)
		s.seq = p.seq
		if c.h != nil {
			c.h.Started(&p.x.Exchange)
		}
	}
}

// responseHead pairs a response with its request from its head, and
// decides how its body is framed, which may depend on the request.
func (c *Conn) responseHead(s *stream, f *fields) {
	s.resp = true
	s.tracked = false
	status := s.line.status
	var p *pending
	if status >= 200 || status == 101 {
		// 1xx responses other than 101 are interim: the final one follows.
		p = c.answer()
	}
	head, connect := false, false
	if p != nil {
		s.tracked, s.seq = true, p.seq
		p.x.Status = status
		p.x.ResponseStart = s.start
		p.x.Partial = p.x.Partial || s.partial
		head, connect = p.head, p.connect
		p.handOver = status == 101 && p.h2c && f.upgradeH2C
	}
	s.frame, s.left = responseFrame(status, f, head, connect)
}

// responseFrame decides how a response body is delimited (RFC 9112 6.3).
func responseFrame(status int, f *fields, head, connect bool) (frame, int64) {
	switch {
	case status == 101, connect && status/100 == 2:
		return frameTunnel, 0
	case head, status < 200, status == 204, status == 304:
		return frameNone, 0
	case f.te && f.chunked:
		return frameChunked, 0
	case f.te, f.badLength, f.length < 0:
		return frameClose, 0
	case f.length == 0:
		return frameNone, 0
	}
	return frameLength, f.length
}
