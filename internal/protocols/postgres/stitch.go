package postgres

import (
	"bytes"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// itemKind is what the server owes for one message of the client.
type itemKind uint8

const (
	itParse             itemKind = iota + 1 // ParseComplete
	itBind                                  // BindComplete
	itDescribeStatement                     // ParameterDescription, then RowDescription or NoData
	itDescribePortal                        // RowDescription or NoData
	itExecute                               // DataRow..., then CommandComplete, EmptyQueryResponse or PortalSuspended
	itClose                                 // CloseComplete
	itSync                                  // ReadyForQuery
	itQuery                                 // anything, until ReadyForQuery
	itFunction                              // FunctionCallResponse, then ReadyForQuery
	itStartup                               // authentication and parameters, until ReadyForQuery
	itSSL                                   // one byte: 'S' or 'N'
	itGSS                                   // one byte: 'G' or 'N'
)

// ready says whether k is answered by a ReadyForQuery.
func (k itemKind) ready() bool {
	return k == itSync || k == itQuery || k == itFunction || k == itStartup
}

// item is one answer owed.
type item struct {
	kind itemKind
	step uint8  // itDescribeStatement: its ParameterDescription came
	rec  uint64 // seq+1 of the record it belongs to; 0 for none
	// first and end bound the records of an itSync's round trip.
	first, end uint64
	// name and an are an itParse's named statement and its analysis: the
	// name stands for the text once the server accepted it (a Parse that
	// reuses a name in use fails, and the name keeps its text).
	name string
	an   *analysis
}

// pending is a record in flight.
type pending struct {
	r           Record
	seq         uint64
	executed    bool // an Execute or a Query; else a Parse that may make no record
	parsed      bool // its statement was parsed in the same round trip
	started     bool // the Sink's Started was called
	done        bool // its answer ended
	drop        bool // it makes no record
	failed      bool
	lostAnswer  bool // its answer ended where framing was found again: not all of it was seen
	completions int  // a Query's CommandComplete and EmptyQueryResponse messages
	an          *analysis
}

// pairing is the state of the stitcher: the answers owed, in the order
// the server gives them, and the records in flight.
type pairing struct {
	// open: new requests are queued. When closed (a loss hid what the
	// client asked, or an answer did not fit), the answers still owed
	// are given, and nothing new is queued until a quiet point (armed,
	// then a write).
	open  bool
	armed bool

	items    []item
	itemHead int

	recs    []pending
	recHead int
	nextSeq uint64

	part       uint64 // seq+1 of the record the current extended round trip builds; 0 for none
	partOpen   bool   // a part began (its record may not have been made)
	groupFirst uint64 // seq of the first record since the latest Sync
}

// reset forgets everything in flight, keeping the room of the queues.
func (p *pairing) reset() {
	clear(p.items)
	clear(p.recs)
	items, recs := p.items[:0], p.recs[:0]
	if cap(items) > 64 {
		items = nil
	}
	if cap(recs) > 16 {
		recs = nil
	}
	*p = pairing{items: items, recs: recs}
}

func (p *pairing) front() *item {
	if p.itemHead == len(p.items) {
		return nil
	}
	return &p.items[p.itemHead]
}

func (p *pairing) pop() {
	p.itemHead++
	if p.itemHead == len(p.items) {
		p.items, p.itemHead = p.items[:0], 0
	}
}

func (p *pairing) owed() int { return len(p.items) - p.itemHead }

// rec returns the record with seq+1 == ref, or nil.
func (p *pairing) rec(ref uint64) *pending {
	if ref == 0 || p.recHead == len(p.recs) {
		return nil
	}
	seq := ref - 1
	first := p.recs[p.recHead].seq
	if seq < first || seq-first >= uint64(len(p.recs)-p.recHead) {
		return nil
	}
	return &p.recs[p.recHead+int(seq-first)]
}

// expect queues an answer owed, when pairing is open.
func (c *Conn) expect(it item) {
	if !c.open {
		return
	}
	if c.owed() >= maxItems {
		c.fail(&c.stats.QueueOverflow, reasonQueue)
		c.stopPairing(false)
		return
	}
	if len(c.items) == cap(c.items) && c.itemHead > 0 {
		n := copy(c.items, c.items[c.itemHead:])
		c.items, c.itemHead = c.items[:n], 0
	}
	c.items = append(c.items, it)
}

// newRecord starts a record for a request whose first message s just
// read, or returns nil when maxRecords are in flight.
func (c *Conn) newRecord(s *stream) *pending {
	if len(c.recs)-c.recHead >= maxRecords {
		c.fail(&c.stats.PendingOverflow, reasonPending)
		return nil
	}
	if len(c.recs) == cap(c.recs) && c.recHead > 0 {
		n := copy(c.recs, c.recs[c.recHead:])
		clear(c.recs[n:])
		c.recs, c.recHead = c.recs[:n], 0
	}
	c.recs = append(c.recs, pending{seq: c.nextSeq})
	c.nextSeq++
	p := &c.recs[len(c.recs)-1]
	p.r.Role = protocols.RoleClient
	p.r.RequestStart = s.start
	p.r.Tid, p.r.Chosen = s.claim()
	p.r.System = semconv.PostgreSQL
	p.r.Namespace = c.namespace
	return p
}

// partRecord returns the record the current extended round trip builds,
// making it at the round trip's first message.
func (c *Conn) partRecord(s *stream) *pending {
	if !c.partOpen {
		c.partOpen = true
		if p := c.newRecord(s); p != nil {
			c.part = p.seq + 1
		}
	}
	return c.rec(c.part)
}

// endPart ends the current extended round trip's part.
func (c *Conn) endPart() { c.part, c.partOpen = 0, false }

// frontendMessage handles a whole message of the client's.
func (c *Conn) frontendMessage(s *stream, cut bool, ts uint64) {
	body := s.body
	switch s.typ {
	case 0:
		c.untypedMessage(s, body, cut)
	case 'Q':
		c.query(s, body, cut, ts)
	case 'P':
		c.parse(s, body, cut)
	case 'B':
		c.bind(s, body)
	case 'E':
		c.execute(s, body, ts)
	case 'D', 'C':
		c.describeOrClose(s.typ, body)
	case 'S':
		c.sync(ts)
	case 'F':
		if !c.discard {
			c.expect(item{kind: itFunction})
		}
	case 'c', 'f':
		c.copyIn = false
	}
}

// untypedMessage handles the client's first messages.
func (c *Conn) untypedMessage(s *stream, body []byte, cut bool) {
	switch s.code {
	case protocol30:
		s.untyped = false
		db := startupParam(body, "database")
		if len(db) == 0 {
			db = startupParam(body, "user") // the server's default
		}
		if !cut && len(db) > 0 {
			c.namespace = string(db)
		}
		c.expect(item{kind: itStartup})
	case sslRequest:
		c.expect(item{kind: itSSL})
	case gssencRequest:
		c.expect(item{kind: itGSS})
	}
}

// query handles a simple Query: one record, whatever the number of
// statements in its text.
func (c *Conn) query(s *stream, body []byte, cut bool, ts uint64) {
	if c.discard {
		return // the server discards it
	}
	// A Query ends the unnamed statement and portal.
	c.stmts.drop(nil)
	c.portals.bind(nil, nil)
	if !c.open {
		return
	}
	p := c.newRecord(s)
	if p == nil {
		c.expect(item{kind: itQuery})
		return
	}
	text := body
	if !cut {
		text = body[:max(len(body)-1, 0)] // its NUL
	}
	if cut {
		an := analyze(text, true, false, false)
		p.an = &an
	} else {
		p.an = c.texts.get(text, false, c.opts.QueryText)
	}
	p.executed = true
	p.r.RequestEnd = ts
	c.groupFirst = c.nextSeq // a later Sync ends no Query
	c.fillFrom(p, p.an)
	c.expect(item{kind: itQuery, rec: p.seq + 1})
	c.started(p)
}

// parse handles a Parse: the statement it names now has its text.
func (c *Conn) parse(s *stream, body []byte, cut bool) {
	if c.discard {
		return
	}
	var an *analysis
	name, rest, ok := cutString(body)
	// A name longer than the server keeps is not remembered.
	known := ok && len(name) < maxName
	if known {
		text, _, ended := cutString(rest)
		if !ended && cut {
			a := analyze(text, true, true, false)
			an = &a
		} else {
			an = c.texts.get(text, true, c.opts.QueryText)
		}
		if len(name) == 0 {
			// The unnamed statement is replaced at once: the server drops
			// the old one before it parses the new.
			c.stmts.put(name, an)
		}
	}
	if !c.open {
		return // a named one is not known to have been accepted
	}
	it := item{kind: itParse}
	if known && len(name) > 0 {
		it.name, it.an = string(name), an
	}
	if p := c.partRecord(s); p != nil {
		p.an, p.parsed = an, true
		it.rec = p.seq + 1
	}
	c.expect(it)
}

// bind handles a Bind: its portal stands for the statement it names.
func (c *Conn) bind(s *stream, body []byte) {
	if c.discard {
		return
	}
	portal, rest, ok := cutString(body)
	stmt, _, ok2 := cutString(rest)
	switch {
	case ok && ok2:
		c.portals.bind(portal, c.stmts.get(stmt))
	case ok:
		c.portals.bind(portal, nil) // the statement's name was too long to keep
	default:
		c.portals.forget() // which portal it bound is not known
	}
	if !c.open {
		return
	}
	var ref uint64
	if p := c.partRecord(s); p != nil {
		ref = p.seq + 1
	}
	c.expect(item{kind: itBind, rec: ref})
}

// execute handles an Execute: the operation of the round trip's part.
func (c *Conn) execute(s *stream, body []byte, ts uint64) {
	if c.discard {
		c.fail(&c.stats.SkippedAfterError, reasonSkipped)
		return
	}
	portal, _, ok := cutString(body)
	an, known := c.portals.get(portal)
	if !ok {
		an, known = nil, false
	}
	if !c.open {
		return
	}
	p := c.partRecord(s)
	c.endPart()
	if p == nil {
		c.expect(item{kind: itExecute})
		return
	}
	if !known {
		c.fail(&c.stats.StatementUnknown, reasonUnknownStmt)
	}
	p.executed, p.an = true, an
	p.r.Prepared = !p.parsed
	p.r.RequestEnd = ts
	c.fillFrom(p, an)
	c.expect(item{kind: itExecute, rec: p.seq + 1})
	c.started(p)
}

// describeOrClose handles a Describe or a Close of a statement or portal.
func (c *Conn) describeOrClose(typ byte, body []byte) {
	if c.discard {
		return
	}
	if len(body) == 0 {
		body = []byte{0} // not kept: neither S nor P
	}
	name, _, ok := cutString(body[1:])
	kind := itDescribePortal
	switch {
	case typ == 'D' && body[0] == 'S':
		kind = itDescribeStatement
	case typ == 'C':
		kind = itClose
		if ok && body[0] == 'S' {
			c.stmts.drop(name)
		} else if ok {
			c.portals.drop(name)
		}
	}
	c.expect(item{kind: kind, rec: c.part})
}

// sync handles a Sync: the end of an extended round trip.
func (c *Conn) sync(ts uint64) {
	if c.copyIn {
		return // the server ignores it during COPY FROM STDIN
	}
	c.discard = false
	c.endPart()
	if !c.open {
		return
	}
	for seq := c.groupFirst; seq < c.nextSeq; seq++ {
		if p := c.rec(seq + 1); p != nil && !p.done {
			p.r.RequestEnd = ts
		}
	}
	c.expect(item{kind: itSync, first: c.groupFirst, end: c.nextSeq})
	c.groupFirst = c.nextSeq
}

// fillFrom writes what a statement's text says into a record.
func (c *Conn) fillFrom(p *pending, an *analysis) {
	if an == nil {
		return
	}
	p.r.Operation = an.operation
	p.r.Clipped = an.clipped
	if an.clipped {
		return
	}
	p.r.Collection, p.r.Summary, p.r.QueryText = an.collection, an.summary, an.text
	if an.statements > 1 {
		p.r.BatchSize = an.statements
	}
}

// started tells the Sink of a record's request.
func (c *Conn) started(p *pending) {
	p.started = true
	if c.h != nil {
		c.h.Started(&p.r.Exchange)
	}
}

// cutString splits b after the C string it starts with; ok is false when
// the string's NUL is not in b (rest is then empty).
func cutString(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

// oneByteAnswer says whether the server's next byte answers an SSLRequest
// or GSSENCRequest.
func (c *Conn) oneByteAnswer() bool {
	it := c.front()
	return it != nil && (it.kind == itSSL || it.kind == itGSS)
}

// answerByte handles the server's one-byte answer to an SSLRequest or a
// GSSENCRequest. A server too old to know them answers with an
// ErrorResponse, which is read as a message.
func (c *Conn) answerByte(b byte) bool {
	it := c.front()
	switch {
	case b == 'E':
		c.pop()
		return false
	case b == 'N':
		c.pop() // the client goes on in plaintext, with a StartupMessage
	case b == 'S' && it.kind == itSSL, b == 'G' && it.kind == itGSS:
		// Encrypted from here: nothing more can be read.
		c.stopPairing(true)
		c.ignore = true
		c.fail(&c.stats.Encrypted, reasonEncrypted)
	default:
		c.fail(&c.stats.Unexpected, reasonUnexpected)
		c.stopPairing(true)
	}
	return true
}

// backendMessage handles a whole message of the server's.
func (c *Conn) backendMessage(s *stream, cut bool, ts uint64) {
	typ := s.typ
	switch typ {
	case 'N', 'A', 'S':
		// Notices, notifications and parameter changes come anywhere.
		return
	}
	it := c.front()
	if it == nil {
		// An ErrorResponse with nothing asked: the server ending the
		// session (FATAL).
		if c.open && typ != 'E' {
			c.fail(&c.stats.Unmatched, reasonUnmatched)
		}
		s.lastZ = typ == 'Z'
		return
	}
	if p := c.rec(it.rec); p != nil && p.r.ResponseStart == 0 {
		p.r.ResponseStart = ts
	}
	if typ == 'E' {
		c.errorResponse(it, s.body, ts)
	} else if !c.answer(it, typ, ts) {
		c.fail(&c.stats.Unexpected, reasonUnexpected)
		c.stopPairing(true)
	}
	s.lastZ = typ == 'Z'
	c.flush()
}

// answer pairs a message of the server's, other than an error, with the
// answer owed first. It reports whether the message fits.
func (c *Conn) answer(it *item, typ byte, ts uint64) bool {
	switch it.kind {
	case itParse, itBind, itClose, itDescribePortal:
		var ok bool
		switch it.kind {
		case itParse:
			ok = typ == '1'
			if ok && it.name != "" {
				c.stmts.putString(it.name, it.an)
			}
		case itBind:
			ok = typ == '2'
		case itClose:
			ok = typ == '3'
		default:
			ok = typ == 'T' || typ == 'n'
		}
		if ok {
			c.pop()
		}
		return ok
	case itDescribeStatement:
		switch {
		case it.step == 0 && typ == 't':
			it.step = 1
		case it.step == 1 && (typ == 'T' || typ == 'n'):
			c.pop()
		default:
			return false
		}
		return true
	case itExecute:
		return c.executeAnswer(it, typ, ts)
	case itQuery:
		return c.queryAnswer(it, typ, ts)
	case itFunction:
		if typ == 'Z' {
			c.pop()
		}
		return typ == 'V' || typ == 'Z'
	case itSync:
		if typ != 'Z' {
			return false
		}
		c.endGroup(it, ts)
		c.pop()
		return true
	case itStartup:
		if typ == 'Z' {
			c.pop()
		}
		return typ == 'R' || typ == 'K' || typ == 'v' || typ == 'Z'
	}
	return false
}

// executeAnswer pairs a message with an Execute's answer.
func (c *Conn) executeAnswer(it *item, typ byte, ts uint64) bool {
	switch typ {
	case 'D', 'H', 'W', 'd', 'c':
		return true
	case 'G':
		// COPY FROM STDIN: the server ignores a Sync the client sent
		// before its data; it waits for the one after.
		c.copyIn = true
		if c.owed() > 1 {
			next := &c.items[c.itemHead+1]
			if next.kind != itSync || c.owed() > 2 {
				return false
			}
			// The Sync after the data ends the round trip instead.
			c.groupFirst = min(c.groupFirst, next.first)
			*next = c.items[c.itemHead]
			c.pop()
		}
		return true
	case 'C', 'I', 's':
		c.copyIn = false
		if p := c.rec(it.rec); p != nil {
			c.complete(p, ts)
		}
		c.pop()
		return true
	}
	return false
}

// queryAnswer pairs a message with a simple Query's answer.
func (c *Conn) queryAnswer(it *item, typ byte, ts uint64) bool {
	p := c.rec(it.rec)
	switch typ {
	case 'T', 'D', 'H', 'W', 'd', 'c':
		return true
	case 'G':
		c.copyIn = true
		return true
	case 'C', 'I':
		c.copyIn = false
		if p != nil {
			p.completions++
		}
		return true
	case 'Z':
		if p != nil {
			c.complete(p, ts)
			c.checkStatements(p)
		}
		c.pop()
		return true
	}
	return false
}

// checkStatements compares the statements the server completed with
// those the text was split into: a disagreement means the split was
// wrong, and what it said is dropped.
func (c *Conn) checkStatements(p *pending) {
	an := p.an
	if an == nil || p.lostAnswer {
		if an != nil && an.clipped {
			p.r.Operation = ""
		}
		return
	}
	if an.clipped {
		// The text was cut: its operation holds only if it was the one
		// statement.
		if p.failed || p.completions != 1 {
			p.r.Operation = ""
		}
		return
	}
	if p.failed {
		return // the statements after the error did not run
	}
	if p.completions != max(an.statements, 1) {
		c.fail(&c.stats.SplitMismatch, reasonSplit)
		p.r.Operation, p.r.Collection, p.r.Summary, p.r.BatchSize = "", "", "", 0
	}
}

// endGroup ends the records of an extended round trip at its
// ReadyForQuery: a part that prepared without executing makes no record
// unless it failed (it then ended at its error).
func (c *Conn) endGroup(it *item, ts uint64) {
	for seq := it.first; seq < it.end; seq++ {
		p := c.rec(seq + 1)
		if p == nil || p.done || p.drop {
			continue
		}
		if p.executed {
			c.complete(p, ts)
		} else {
			p.drop = true
		}
	}
}

// complete ends a record's answer at ts.
func (c *Conn) complete(p *pending, ts uint64) {
	p.done = true
	p.r.ResponseEnd = ts
	if p.r.ResponseStart == 0 {
		p.r.ResponseStart = ts
	}
}

// errorResponse pairs an ErrorResponse with the answer owed first.
func (c *Conn) errorResponse(it *item, body []byte, ts uint64) {
	c.copyIn = false
	p := c.rec(it.rec)
	if p != nil {
		c.failed(p, errorCode(body))
	}
	switch it.kind {
	case itQuery, itFunction, itSync:
		// The ReadyForQuery still comes: after a Query's error the rest
		// of its statements are skipped; an error at Sync (a deferred
		// constraint at commit) comes after its records ended.
		return
	case itStartup, itSSL, itGSS:
		c.pop() // the server closes the connection
		return
	}
	// Extended protocol: the server skips the client's messages up to the
	// next Sync. The record that failed ends here; those it skips make
	// none.
	if p != nil {
		c.complete(p, ts) // a failed prepare too: the statement's failure
		if !p.executed {
			c.fillFrom(p, p.an)
		}
	}
	if it.kind == itParse && it.name == "" {
		c.stmts.drop(nil) // the unnamed statement is gone with its Parse
	}
	failedRef := it.rec
	c.pop()
	for it := c.front(); it != nil && it.kind != itSync; it = c.front() {
		if q := c.rec(it.rec); q != nil && it.rec != failedRef && !q.drop {
			q.drop = true
			if q.executed {
				c.fail(&c.stats.SkippedAfterError, reasonSkipped)
			}
		}
		c.pop()
	}
	if c.front() == nil {
		// The client has not sent its Sync yet: what it sends until then
		// is skipped too.
		c.discard = true
		if q := c.rec(c.part); q != nil && c.part != failedRef {
			q.drop = true
		}
		c.endPart()
	}
}

// failed marks a record failed with the SQLSTATE code.
func (c *Conn) failed(p *pending, code []byte) {
	p.failed = true
	p.r.Error = true
	if sqlstate(code) {
		if p.r.StatusCode != string(code) {
			p.r.StatusCode = string(code)
		}
		p.r.ErrorType = p.r.StatusCode
	} else {
		p.r.ErrorType = "_OTHER"
	}
}

// flush hands on the records at the front that ended, in request order.
func (c *Conn) flush() {
	for c.recHead < len(c.recs) {
		p := &c.recs[c.recHead]
		if !p.done && !p.drop {
			break
		}
		switch {
		case p.drop && p.started:
			protocols.Abandon(c.h, &p.r.Exchange) // Started, and never Done
		case !p.drop && c.h != nil:
			if !p.started {
				c.h.Started(&p.r.Exchange)
			}
			c.h.Done(&p.r)
		}
		*p = pending{} // let go of its strings
		c.recHead++
	}
	if c.recHead == len(c.recs) {
		c.recs, c.recHead = c.recs[:0], 0
	}
}

// readyFound is called when a lost server direction was found again after
// a read that ended with ReadyForQuery; ok says the operation it ends
// succeeded. When exactly one ReadyForQuery was owed, the read ended it,
// and everything owed before it. Otherwise which one it was is not known:
// pairing stops, and this read is the quiet point it may start again at.
func (c *Conn) readyFound(ok bool, ts uint64) {
	ready := 0
	for i := c.itemHead; i < len(c.items); i++ {
		if c.items[i].kind.ready() {
			ready++
		}
	}
	if !c.open || ready != 1 {
		c.stopPairing(true)
		c.armed = true
		return
	}
	for {
		it := c.front()
		last := it.kind.ready()
		c.endLost(c.rec(it.rec), ok, ts)
		for seq := it.first; seq < it.end; seq++ {
			c.endLost(c.rec(seq+1), ok, ts)
		}
		c.pop()
		if last {
			break
		}
	}
	c.flush()
	c.armed = c.front() == nil
}

// endLost ends a record whose answer was partly lost.
func (c *Conn) endLost(p *pending, ok bool, ts uint64) {
	if p == nil || p.done || p.drop {
		return
	}
	switch {
	case ok && p.executed:
		p.lostAnswer = true
		c.complete(p, ts)
		c.checkStatements(p)
	case p.executed:
		p.drop = true
		c.fail(&c.stats.ResponseLost, reasonResponseLost)
	default:
		p.drop = true
	}
}

// stopPairing closes pairing. With all, the answers owed are forgotten and
// the records in flight dropped (counted); without, the answers already
// owed are still paired (a loss in the client's direction hides only what
// came after them), and only the record being built is dropped.
func (c *Conn) stopPairing(all bool) {
	c.open, c.armed = false, false
	if q := c.rec(c.part); q != nil {
		q.drop = true
	}
	c.endPart()
	if !all {
		c.flush()
		return
	}
	for i := c.recHead; i < len(c.recs); i++ {
		if p := &c.recs[i]; !p.done && !p.drop {
			p.drop = true
			if p.executed {
				c.fail(&c.stats.ResponseLost, reasonResponseLost)
			}
		}
	}
	clear(c.items)
	c.items, c.itemHead = c.items[:0], 0
	c.discard, c.copyIn = false, false
	c.flush()
}

// closePending ends the connection's records: those still waiting for
// their answer are reported without one.
func (c *Conn) closePending() {
	for i := c.recHead; i < len(c.recs); i++ {
		p := &c.recs[i]
		if !p.done && !p.drop {
			if p.executed {
				p.done = true // ResponseEnd 0: no answer came
			} else {
				p.drop = true
			}
		}
	}
	c.flush()
}

// portals maps the connection's portals to their statements' analyses.
type portals struct {
	unnamed      *analysis
	unnamedKnown bool
	named        map[string]*analysis
}

// bind records that portal name stands for a statement whose analysis is
// an (nil: a statement whose text is not known).
func (ps *portals) bind(name []byte, an *analysis) {
	if len(name) == 0 {
		ps.unnamed, ps.unnamedKnown = an, an != nil
		return
	}
	if ps.named == nil {
		ps.named = make(map[string]*analysis)
	}
	if _, ok := ps.named[string(name)]; !ok && len(ps.named) >= maxPortals {
		clear(ps.named) // portals last a transaction: the old ones are gone
	}
	ps.named[string(name)] = an
}

// get returns the analysis of the statement portal name stands for, and
// whether it is known.
func (ps *portals) get(name []byte) (*analysis, bool) {
	if len(name) == 0 {
		return ps.unnamed, ps.unnamedKnown
	}
	an := ps.named[string(name)]
	return an, an != nil
}

func (ps *portals) drop(name []byte) {
	if len(name) == 0 {
		ps.unnamed, ps.unnamedKnown = nil, false
		return
	}
	delete(ps.named, string(name))
}

func (ps *portals) forget() {
	ps.unnamed, ps.unnamedKnown = nil, false
	clear(ps.named)
}
