package httpconn

// exchange is a request waiting for, or receiving, its response.
type exchange struct {
	x       Exchange
	reqDone bool // the request's body ended
}

// Conn pairs the requests and responses of one TCP connection.
type Conn struct {
	role    Role
	in, out stream // what the process read, what it wrote
	pending []*exchange
	reading *exchange // the request whose body is arriving
	interim bool      // the response being read is 1xx
	stopped bool
	stats   Stats
	handler Handler
	free    []*exchange
}

// NewConn returns the state of a new connection.
func NewConn() *Conn {
	c := &Conn{}
	c.in = stream{request: true, stats: &c.stats}
	c.out = stream{request: true, stats: &c.stats}
	return c
}

// Stats are what this connection could not use so far.
func (c *Conn) Stats() Stats { return c.stats }

// Feed reads one segment moved in direction dir and tells h of the
// exchanges it starts and completes.
func (c *Conn) Feed(dir Direction, seg Segment, h Handler) {
	if c.stopped {
		return
	}
	if seg.Len < len(seg.Data) {
		seg.Len = len(seg.Data)
	}
	c.handler = h
	if dir == Inbound {
		c.in.feed(seg, (*inSink)(c))
	} else {
		c.out.feed(seg, (*outSink)(c))
	}
	c.handler = nil
}

// Close ends the connection at ts: a response delimited by the close ends
// with its last byte, and requests still unanswered are emitted without a
// status. The Conn is then as new.
func (c *Conn) Close(ts uint64, h Handler) {
	c.handler = h
	if c.role != 0 {
		rs := c.responseStream()
		if rs.st == stUntilClose && len(c.pending) > 0 {
			c.responseDone(rs)
		}
	}
	for _, p := range c.pending {
		if !p.reqDone {
			p.x.RequestEnd = c.requestStream().last
		}
		c.handler.Done(&p.x)
	}
	stats := c.stats
	*c = *NewConn()
	c.stats = stats
}

func (c *Conn) requestStream() *stream {
	if c.role == RoleClient {
		return &c.out
	}
	return &c.in
}

func (c *Conn) responseStream() *stream {
	if c.role == RoleClient {
		return &c.in
	}
	return &c.out
}

// inSink and outSink tell the streams apart: which one carries requests is
// known only once the first request shows up.
type inSink Conn
type outSink Conn

func (k *inSink) head(s *stream, h *head, partial bool) framing {
	return (*Conn)(k).head(RoleServer, s, h, partial)
}
func (k *inSink) done(s *stream) { (*Conn)(k).done(RoleServer, s) }

func (k *outSink) head(s *stream, h *head, partial bool) framing {
	return (*Conn)(k).head(RoleClient, s, h, partial)
}
func (k *outSink) done(s *stream) { (*Conn)(k).done(RoleClient, s) }

// head dispatches a head read by the stream that would make the process a
// server (inbound requests) or a client (outbound requests).
func (c *Conn) head(asRole Role, s *stream, h *head, partial bool) framing {
	if c.role == 0 {
		c.role = asRole
		c.responseStream().reset(false)
	}
	if s.request {
		return c.requestHead(s, h, partial)
	}
	return c.responseHead(s, h, partial)
}

func (c *Conn) done(asRole Role, s *stream) {
	if s.request {
		c.requestDone(s)
	} else {
		c.responseDone(s)
	}
}

func (c *Conn) requestHead(s *stream, h *head, partial bool) framing {
	c.reading = nil
	if len(c.pending) >= MaxPending {
		c.stats.PendingOverflow++
	} else {
		p := c.newExchange()
		p.x = Exchange{Role: c.role, Method: h.method, Target: h.target, Version: h.version,
			Host: h.host, Traceparent: h.traceparent, RequestStart: s.start, Partial: partial}
		c.pending = append(c.pending, p)
		c.reading = p
		c.handler.Started(&p.x)
	}
	switch {
	case h.chunked:
		return framing{kind: byChunks}
	case h.contentLength > 0:
		return framing{kind: byLength, length: h.contentLength}
	}
	return framing{kind: noBody}
}

func (c *Conn) requestDone(s *stream) {
	if p := c.reading; p != nil {
		p.x.RequestEnd = s.last
		p.x.RequestBodySize = s.bodySize
		p.reqDone = true
		c.reading = nil
	}
}

func (c *Conn) responseHead(s *stream, h *head, partial bool) framing {
	c.interim = h.status >= 100 && h.status < 200 && h.status != 101
	if len(c.pending) == 0 {
		// A response to nothing we saw: frame it to stay in step, keep nothing.
		return responseFraming(h, "")
	}
	p := c.pending[0]
	if c.interim {
		return framing{kind: noBody}
	}
	p.x.Status = h.status
	p.x.ResponseStart = s.start
	p.x.Partial = p.x.Partial || partial
	if h.status == 101 || (p.x.Method == "CONNECT" && h.status/100 == 2) {
		return framing{kind: stopParsing}
	}
	return responseFraming(h, p.x.Method)
}

// responseFraming applies RFC 9112 §6.3: HEAD responses, 1xx, 204 and 304
// have no body whatever they say.
func responseFraming(h *head, method string) framing {
	switch {
	case method == "HEAD", h.status < 200, h.status == 204, h.status == 304:
		return framing{kind: noBody}
	case h.chunked:
		return framing{kind: byChunks}
	case h.contentLength >= 0:
		return framing{kind: byLength, length: h.contentLength}
	}
	return framing{kind: byClose}
}

func (c *Conn) responseDone(s *stream) {
	if c.interim || len(c.pending) == 0 {
		c.interim = false
		return
	}
	p := c.pending[0]
	c.pending = c.pending[1:]
	p.x.ResponseEnd = s.last
	p.x.ResponseBodySize = s.bodySize
	if !p.reqDone {
		p.x.RequestEnd = c.requestStream().last
		if c.reading == p {
			c.reading = nil
		}
	}
	if s.stopped {
		c.stopped = true
	}
	c.handler.Done(&p.x)
	c.release(p)
}

func (c *Conn) newExchange() *exchange {
	if n := len(c.free); n > 0 {
		p := c.free[n-1]
		c.free = c.free[:n-1]
		return p
	}
	return &exchange{}
}

func (c *Conn) release(p *exchange) {
	*p = exchange{}
	if len(c.free) < 4 {
		c.free = append(c.free, p)
	}
}
