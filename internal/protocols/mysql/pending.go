package mysql

import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"

// respKind is the shape of the response a command gets.
type respKind uint8

const (
	kindResult    respKind = iota // OK, ERR, LOCAL INFILE request, or result sets
	kindPrepare                   // COM_STMT_PREPARE_OK and its definitions, or ERR
	kindSimple                    // one OK, EOF or ERR packet
	kindAny                       // one packet of any content (COM_STATISTICS)
	kindFieldList                 // column definitions until EOF, or ERR
	kindFetch                     // rows until their end, or ERR
	kindAuth                      // authentication after COM_CHANGE_USER, until OK or ERR
	kindBarrier                   // commands that passed unseen: responses not readable
)

// respState is where a response is.
type respState uint8

const (
	rsFirst   respState = iota // its first packet (or the next result's) comes
	rsColumns                  // column definitions
	rsRows                     // rows, after the metadata
	rsDefs                     // a prepared statement's parameter and column definitions
	rsInfile                   // the client sends a file; the server's OK or ERR comes
	rsLost                     // lost inside: it ends before the client's next command
)

// pending is a command waiting for its response.
type pending struct {
	rec    Record // the record, when the command makes one
	record bool
	cmd    byte
	kind   respKind
	rs     respState
	seq    uint8 // the sequence id the next server packet must have

	started bool // the response's first packet was seen
	done    bool // the response ended
	held    bool // paired after a loss: emitted once confirmed
	// lostRows says the response was lost inside its rows, where their
	// headers can be found again.
	lostRows bool

	stmt  *statement // the statement prepared or executed
	useDB string     // the database the command selects on success
	use   bool

	cols      uint64 // column or parameter definitions left
	prepCols  uint64 // a prepared statement's column definitions, after its parameters
	afterMeta bool   // the metadata just ended: an EOF packet may follow
	defsEOF   bool   // an EOF may follow the prepared statement's definitions
	multi     bool   // more than one result came
}

// pendingQueue holds the commands in the order they were sent, which is
// the order of the responses. It reuses its backing array.
type pendingQueue struct {
	q     []pending
	qHead int
}

// push queues a command, or returns nil when maxPending are waiting.
func (pq *pendingQueue) push() *pending {
	n := len(pq.q) - pq.qHead
	if n >= maxPending {
		return nil
	}
	if len(pq.q) == cap(pq.q) && pq.qHead > 0 {
		copy(pq.q, pq.q[pq.qHead:])
		clear(pq.q[n:])
		pq.q, pq.qHead = pq.q[:n], 0
	}
	if pq.q == nil {
		pq.q = make([]pending, 0, 2)
	}
	pq.q = append(pq.q, pending{})
	return &pq.q[len(pq.q)-1]
}

// responder is the oldest command whose response has not ended.
func (pq *pendingQueue) responder() *pending {
	for i := pq.qHead; i < len(pq.q); i++ {
		if !pq.q[i].done {
			return &pq.q[i]
		}
	}
	return nil
}

// clearQueue forgets every command, keeping the room.
func (pq *pendingQueue) clearQueue() {
	clear(pq.q)
	pq.q, pq.qHead = pq.q[:0], 0
	if cap(pq.q) > 8 {
		pq.q = nil
	}
}

// flush emits the finished exchanges at the front of the queue.
func (c *Conn) flush() {
	for c.qHead < len(c.q) && c.q[c.qHead].done && !c.q[c.qHead].held {
		c.pop(true)
	}
	if c.qHead == len(c.q) {
		c.q, c.qHead = c.q[:0], 0
	}
}

// pop forgets the oldest command, emitting its record if emit says so.
// The sink gets a pointer into the queue: a pointer to a copy would
// escape to the heap.
func (c *Conn) pop(emit bool) {
	p := &c.q[c.qHead]
	c.qHead++
	switch {
	case emit && p.record && c.h != nil:
		c.stats.Records++
		c.h.Done(&p.rec)
	case p.record:
		protocols.Abandon(c.h, &p.rec.Exchange) // Started, and never Done
	}
	*p = pending{} // let go of its strings
}

// confirm emits the exchanges held since a realignment: the client sent
// a command with nothing left unanswered and the server's side in step,
// so no stray bytes showed them paired wrong.
func (c *Conn) confirm() {
	if !c.aligned || c.responder() != nil || !c.rd[Inbound].atBoundary() {
		return
	}
	c.aligned = false
	for i := c.qHead; i < len(c.q); i++ {
		c.q[i].held = false
	}
	c.flush()
}

// stray handles server bytes that answer no command: the exchanges held
// since a realignment may have been paired with another command's
// response, so they are dropped.
func (c *Conn) stray() {
	c.fail(&c.stats.Unmatched, reasonUnmatched)
	for c.qHead < len(c.q) {
		if c.q[c.qHead].held && c.q[c.qHead].record {
			c.fail(&c.stats.Unconfirmed, reasonUnconfirmed)
		}
		c.pop(false)
	}
	c.q, c.qHead = c.q[:0], 0
	c.rd[Inbound].lose()
}

// dropAll forgets every command without reporting it.
func (c *Conn) dropAll() {
	for c.qHead < len(c.q) {
		if c.q[c.qHead].record {
			c.fail(&c.stats.Dropped, reasonDropped)
		}
		c.pop(false)
	}
	c.q, c.qHead = c.q[:0], 0
}

// closeQueue reports what is left at the connection's end.
func (c *Conn) closeQueue(ts uint64) {
	lostIn := c.rd[Inbound].lost
	for i := c.qHead; i < len(c.q); i++ {
		e := &c.q[i]
		e.held = false
		switch {
		case e.done:
		case e.rs == rsLost:
			c.endUnseen(e)
		case !e.started && lostIn:
			// Its response may have passed in bytes not understood.
			c.drop(e)
		default:
			// The connection ended before the response did: no response.
			e.done = true
			e.rec.ResponseStart, e.rec.ResponseEnd = 0, 0
			e.rec.DB.StatusCode, e.rec.DB.ErrorType, e.rec.DB.Error = "", "", false
		}
	}
	c.flush()
	c.clearQueue()
}

// drop ends a command whose response cannot be known: it is not reported.
func (c *Conn) drop(e *pending) {
	if e.record {
		c.fail(&c.stats.Dropped, reasonDropped)
		protocols.Abandon(c.h, &e.rec.Exchange) // Started, and never Done
	}
	e.done, e.record = true, false
}

// endUnseen ends a response whose end was not seen: it is reported with
// what was known when the bytes were lost.
func (c *Conn) endUnseen(e *pending) {
	if e.record {
		c.fail(&c.stats.EndUnseen, reasonEndUnseen)
	}
	e.done, e.rec.EndUnseen = true, true
}
