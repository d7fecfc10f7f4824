package http2

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// Kind is what a stream carries.
type Kind uint8

// The kinds of streams.
const (
	kindUnknown Kind = iota // not decoded: the stream is not reported
	KindGRPC                // a gRPC call
	KindHTTP                // an HTTP request and its response
)

// stream is one stream of the connection, from its request's HEADERS to
// its end; x is its record.
type stream struct {
	x  Exchange
	id uint32

	kind    Kind
	started bool // the Sink was told of it

	// What the request's header block said.
	reqLost    bool  // the block was lost whole: only the stream's existence is known
	reqPartial bool  // some of its fields could not be decoded
	reqCT      uint8 // its content type
	hasMethod  bool
	hasPath    bool

	// What the response's header blocks said.
	respHead    bool // the final response head (or a trailers-only one) was seen
	respPartial bool // some field of a response block could not be decoded
	respGRPC    bool // a response block had gRPC's content-type or a grpc-status
	status      int  // :status, -1 when not known
	grpcStatus  int  // grpc-status, -1 when not seen

	reqEnd   bool // the request ended (END_STREAM)
	respEnd  bool // the response ended (END_STREAM)
	rst      bool // a RST_STREAM ended the stream
	rstCode  uint32
	rstKnown bool // its error code was read
	refused  bool // a GOAWAY said the server did not process it
	endLost  bool // the response side lost its frames while the stream was open
}

// streams are the open streams of a connection, in reused slots.
type streams struct {
	slots []stream
	free  []int32
	byID  map[uint32]int32
	ids   []uint32 // scratch: streams to end, by id
}

func (t *streams) reset() {
	clear(t.slots)
	t.slots, t.free = t.slots[:0], t.free[:0]
	if cap(t.slots) > 32 {
		t.slots, t.free = nil, nil // a burst of streams was the exception
	}
	if t.byID == nil {
		t.byID = map[uint32]int32{}
	}
	clear(t.byID)
	t.ids = t.ids[:0]
}

// get returns the open stream id, or nil.
func (t *streams) get(id uint32) *stream {
	i, ok := t.byID[id]
	if !ok {
		return nil
	}
	return &t.slots[i]
}

// open returns a new stream id, or nil when maxStreams are open. The
// pointer is good until the next open.
func (t *streams) open(id uint32) *stream {
	if len(t.byID) >= maxStreams {
		return nil
	}
	var i int32
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
	} else {
		t.slots = append(t.slots, stream{})
		i = int32(len(t.slots) - 1)
	}
	t.byID[id] = i
	st := &t.slots[i]
	*st = stream{id: id, status: -1, grpcStatus: -1}
	return st
}

// release forgets stream st.
func (t *streams) release(st *stream) {
	i := t.byID[st.id]
	delete(t.byID, st.id)
	t.slots[i] = stream{}
	t.free = append(t.free, i)
}

// headers takes the fields of a complete header block of side s on stream
// id; lost is set when the block was not decoded.
func (c *Conn) headers(s *side, id uint32, endStream, lost bool, f *fields) {
	if c.clientSide() != s {
		c.responseHeaders(s, id, endStream, lost, f)
		return
	}
	st := c.get(id)
	if st == nil {
		if id%2 == 0 {
			c.fail(&c.stats.BadFrames, reasonBadFrame) // clients open odd streams
			return
		}
		if st = c.open(id); st == nil {
			c.fail(&c.stats.StreamOverflow, reasonStreamOverflow)
			return
		}
		c.request(st, s, lost, f)
	}
	// A second block from the client is its trailers: only its end counts.
	st.x.RequestEnd = s.now()
	if endStream {
		st.reqEnd = true
	}
}

// request records a request from its header block.
func (c *Conn) request(st *stream, s *side, lost bool, f *fields) {
	x := &st.x
	x.conn, x.StreamID = c, st.id
	x.Role = c.role
	x.RequestStart, x.RequestEnd = s.blockTime, s.blockTime
	x.Tid, x.Chosen = s.blockTid, s.blockChosen
	if lost {
		st.reqLost, st.reqPartial = true, true
		x.Clipped = true
		return
	}
	st.reqPartial = !f.complete()
	st.reqCT = f.ct
	if f.hasMethod {
		st.hasMethod = true
		x.method = methodName(f.method)
	}
	if f.hasPath {
		st.hasPath = true
		x.path = cached(&c.lastPath, f.path)
	}
	if f.hasAuthority {
		x.authority = cached(&c.lastAuthority, f.authority)
	}
	x.scheme = schemeName(f.scheme)
	x.Traceparent = traceparentOf(f)
	x.LinkOp, x.LinkTarget = x.method, x.path
	x.Clipped = !st.hasMethod || !st.hasPath
	if st.kind = st.decideKind(false); st.kind != kindUnknown {
		st.started = true
		if c.h != nil {
			c.h.Started(&x.Exchange)
		}
	}
}

// decideKind says what the stream carries, from what is certain: a gRPC
// content type or status on either side, or a request whose content type
// was decoded (or whose block was decoded whole) and is not gRPC's. At
// the end (final), a response decoded whole without a trace of gRPC
// makes a request whose block was not decoded whole an HTTP one.
func (st *stream) decideKind(final bool) Kind {
	switch {
	case st.reqCT == ctGRPC || st.respGRPC:
		return KindGRPC
	case st.reqLost:
		return kindUnknown
	case st.reqCT == ctOther, st.reqCT == ctAbsent && !st.reqPartial:
		return KindHTTP
	case final && st.respHead && !st.respPartial:
		return KindHTTP
	}
	return kindUnknown
}

// responseHeaders takes a header block the server sent on stream id: an
// informational head (ignored), the final head, or the trailers.
func (c *Conn) responseHeaders(s *side, id uint32, endStream, lost bool, f *fields) {
	st := c.get(id)
	if st == nil {
		c.fail(&c.stats.UnmatchedFrames, reasonUnmatched)
		return
	}
	switch {
	case lost:
		st.respPartial = true
		if !st.respHead && !st.endLost {
			// A block not decoded: informational or final, unknown. It
			// is taken as the final head; its status stays unknown.
			st.respHead = true
			st.x.ResponseStart = s.blockTime
		}
	case !st.respHead && f.status >= 100 && f.status < 200 && !endStream:
		return // informational (1xx): the final head follows
	case !st.respHead:
		st.respHead = true
		st.status = f.status
		if f.status >= 0 || !st.endLost {
			// A block without :status after lost frames is the trailers
			// of a head that went with them: when the response started
			// is not known.
			st.x.ResponseStart = s.blockTime
		}
		fallthrough
	default:
		if !f.complete() {
			st.respPartial = true
		}
		if f.ct == ctGRPC || f.grpcStatus >= 0 {
			st.respGRPC = true
		}
		if f.grpcStatus >= 0 {
			st.grpcStatus = f.grpcStatus
		}
	}
	if endStream {
		st.respEnd = true
		st.x.ResponseEnd = s.now()
		c.finish(st)
	}
}

// data counts a DATA frame of n body bytes on stream id.
func (c *Conn) data(s *side, id uint32, n int, endStream bool) {
	st := c.get(id)
	if st == nil {
		return // a stream ended already, or not tracked
	}
	if c.clientSide() == s {
		st.x.HTTP.RequestBodySize += int64(n)
		if !st.reqEnd {
			st.x.RequestEnd = s.now()
		}
		if endStream {
			st.reqEnd = true
		}
		return
	}
	st.x.HTTP.ResponseBodySize += int64(n)
	if endStream {
		st.respEnd = true
		st.x.ResponseEnd = s.now()
		c.finish(st)
	}
}

// rstStream ends stream id: either side reset it.
func (c *Conn) rstStream(s *side, id uint32, code uint32, known bool) {
	st := c.get(id)
	if st == nil {
		return // ended already: a reset after a complete response is common
	}
	st.rst, st.rstCode, st.rstKnown = true, code, known
	// The exchange lasted until the reset, response or not.
	st.x.ResponseEnd = s.now()
	c.finish(st)
}

// goAway ends the streams a server's GOAWAY says it did not process.
func (c *Conn) goAway(s *side, last uint32) {
	if c.clientSide() == s {
		return // a client's GOAWAY is about pushed streams
	}
	ids := c.ids[:0]
	for id := range c.byID {
		if id > last {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		if st := c.get(id); st != nil {
			st.refused = true
			st.x.ResponseEnd = s.now()
			c.finish(st)
		}
	}
	c.ids = ids[:0]
}

// endsLost marks the open streams whose response side lost its frames:
// their end may have gone with them.
func (c *Conn) endsLost(s *side) {
	if c.clientSide() == s {
		return // a request's end only moves RequestEnd
	}
	for _, i := range c.byID {
		c.slots[i].endLost = true
	}
}

// closeStreams reports the streams still open when the connection ends,
// by id. The close delimits no HTTP/2 response: they end without one.
func (c *Conn) closeStreams() {
	ids := c.ids[:0]
	for id := range c.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st := c.get(id)
		if st.endLost {
			c.fail(&c.stats.StreamEndsLost, reasonStreamEndLost)
		}
		c.finish(st)
	}
	c.ids = ids[:0]
}

// finish reports stream st, if it can say what it carried, and forgets it.
func (c *Conn) finish(st *stream) {
	defer c.release(st)
	k := st.kind
	if k == kindUnknown {
		k = st.decideKind(true)
	}
	ok := false
	switch k {
	case KindGRPC:
		ok = c.fillRPC(st)
	case KindHTTP:
		ok = c.fillHTTP(st)
	default:
		c.fail(&c.stats.HeadersUnknown, reasonHeadersUnknown)
	}
	switch {
	case ok && c.h != nil:
		st.x.Kind = k
		c.h.Done(&st.x)
	case !ok && st.started:
		protocols.Abandon(c.h, &st.x.Exchange) // Started, and never Done
	}
}

// methodName is a :method as a string: a constant for the methods the
// conventions name, so that the common ones cost no allocation.
func methodName(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return text(b)
}

// schemeName is a :scheme as a string; h2c's is "http".
func schemeName(b []byte) string {
	switch string(b) {
	case "", "http":
		return "http"
	case "https":
		return "https"
	}
	return text(b)
}

// cached returns b as a string, reusing *last when it is the same.
func cached(last *string, b []byte) string {
	if *last != string(b) { // compiled without converting b
		*last = text(b)
	}
	return *last
}

// text is b as a string of valid UTF-8, as attributes must be: a peer may
// send any octets.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
