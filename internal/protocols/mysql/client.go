package mysql

import (
	"encoding/binary"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// The commands (the first byte of a command packet).
const (
	comQuit             = 0x01
	comInitDB           = 0x02
	comQuery            = 0x03
	comFieldList        = 0x04
	comCreateDB         = 0x05
	comDropDB           = 0x06
	comRefresh          = 0x07
	comShutdown         = 0x08
	comStatistics       = 0x09
	comProcessInfo      = 0x0a
	comProcessKill      = 0x0c
	comDebug            = 0x0d
	comPing             = 0x0e
	comChangeUser       = 0x11
	comBinlogDump       = 0x12
	comTableDump        = 0x13
	comRegisterSlave    = 0x15
	comStmtPrepare      = 0x16
	comStmtExecute      = 0x17
	comStmtSendLongData = 0x18
	comStmtClose        = 0x19
	comStmtReset        = 0x1a
	comSetOption        = 0x1b
	comStmtFetch        = 0x1c
	comBinlogDumpGTID   = 0x1e
	comResetConnection  = 0x1f
	comStmtBulkExecute  = 0xfa // MariaDB
)

// command says what the parser knows of a command.
type command struct {
	known    bool
	kind     respKind
	none     bool // no response comes
	off      bool // the connection leaves the command protocol (replication)
	size     int  // the exact payload length, 0 when it varies
	min      int  // the least payload length
	text     bool // the payload after the command byte is text
	operates bool // the command is a database operation: it makes a record
}

// commands is indexed by the command byte.
var commands = func() (t [256]command) {
	set := func(b byte, c command) { c.known = true; t[b] = c }
	set(comQuit, command{none: true, size: 1})
	set(comInitDB, command{kind: kindSimple, min: 2, text: true})
	set(comQuery, command{kind: kindResult, min: 2, text: true, operates: true})
	set(comFieldList, command{kind: kindFieldList, min: 2, text: true})
	set(comCreateDB, command{kind: kindSimple, min: 2, text: true})
	set(comDropDB, command{kind: kindSimple, min: 2, text: true})
	set(comRefresh, command{kind: kindSimple, size: 2})
	set(comShutdown, command{kind: kindSimple, min: 1})
	set(comStatistics, command{kind: kindAny, size: 1})
	set(comProcessInfo, command{kind: kindResult, size: 1})
	set(comProcessKill, command{kind: kindSimple, size: 5})
	set(comDebug, command{kind: kindSimple, size: 1})
	set(comPing, command{kind: kindSimple, size: 1})
	set(comChangeUser, command{kind: kindAuth, min: 3})
	set(comBinlogDump, command{off: true, min: 11})
	set(comTableDump, command{off: true, min: 3})
	set(comRegisterSlave, command{off: true, min: 18})
	set(comStmtPrepare, command{kind: kindPrepare, min: 2, text: true, operates: true})
	set(comStmtExecute, command{kind: kindResult, min: 10, operates: true})
	set(comStmtSendLongData, command{none: true, min: 7})
	set(comStmtClose, command{none: true, size: 5})
	set(comStmtReset, command{kind: kindSimple, size: 5})
	set(comSetOption, command{kind: kindSimple, size: 3})
	set(comStmtFetch, command{kind: kindFetch, size: 9})
	set(comBinlogDumpGTID, command{off: true, min: 19})
	set(comResetConnection, command{kind: kindSimple, size: 1})
	set(comStmtBulkExecute, command{kind: kindResult, min: 7, operates: true})
	return t
}()

// fits says whether a payload of size bytes fits the command.
func (cm *command) fits(size int) bool {
	if cm.size != 0 {
		return size == cm.size
	}
	return size >= cm.min
}

// clientPacket handles a packet the client wrote.
func (c *Conn) clientPacket(p *packet) bool {
	switch c.phase {
	case phaseStart:
		if p.seq == 1 {
			return c.login(p)
		}
		if _, ok := parseGreeting(p.data); ok && p.seq == 0 {
			// The watched process greets: it is the server.
			c.off(nil, reasonServerSide)
			return false
		}
		if p.seq == 0 && len(p.data) > 0 && commands[p.data[0]].known && commands[p.data[0]].fits(p.size) {
			// The connection was seen after its handshake.
			c.phase = phaseCommand
			return c.command(p)
		}
		return c.notMySQL(Outbound)
	case phaseHandshake:
		return c.login(p)
	case phaseAuth:
		return true // authentication data
	}
	switch {
	case c.infile && p.seq != 0:
		c.infileSeq = p.seq + uint8(p.size/maxPayload)
		if e := c.responder(); e != nil && e.rs == rsInfile {
			e.seq = c.infileSeq + 1
		}
		if p.size == 0 {
			c.infile = false // the empty packet ends the file
		}
		return true
	case p.seq == 0:
		c.infile = false
		return c.command(p)
	}
	if e := c.responder(); e != nil && e.kind == kindAuth {
		e.seq = p.seq + 1 // authentication data after COM_CHANGE_USER
		return true
	}
	return c.notMySQL(Outbound)
}

// notMySQL drops bytes that make no sense where they came: the direction
// waits for a packet start it can recognise.
func (c *Conn) notMySQL(dir Direction) bool {
	c.fail(&c.stats.NotMySQL, reasonNotMySQL)
	c.rd[dir].lose()
	c.lost(dir)
	return false
}

// login handles the client's handshake response.
func (c *Conn) login(p *packet) bool {
	l, ok := parseLogin(p.data, p.whole)
	if !ok {
		// Protocol 3.20 or not MySQL: nothing here can be read.
		c.off(&c.stats.NotMySQL, reasonNotMySQL)
		return false
	}
	c.caps, c.capsKnown = l.caps, true
	if l.sslOnly {
		c.encrypted = true
		c.off(&c.stats.TLS, reasonTLS)
		return false
	}
	agreed := l.caps
	if c.server != 0 {
		agreed &= c.server
	}
	if agreed&(capCompress|capZstd) != 0 {
		c.off(&c.stats.Compressed, reasonCompressed)
		return false
	}
	switch {
	case agreed&capDeprecateEOF == 0:
		c.eof = eofPackets
	case c.server != 0:
		c.eof = eofDeprecate
	}
	c.cacheMeta = l.mariaCaps&mariaCacheMetadata != 0 && (c.server == 0 || c.mariaServerCaps&mariaCacheMetadata != 0)
	c.authDB = ""
	if l.db != nil {
		c.authDB = c.dbName(l.db)
	}
	c.phase = phaseAuth
	return true
}

// agreed returns the capabilities both sides announced, as far as known.
func (c *Conn) agreed() uint32 {
	if c.server == 0 {
		return c.caps
	}
	return c.caps & c.server
}

// command handles a command packet (sequence id 0).
func (c *Conn) command(p *packet) bool {
	if len(p.data) == 0 || !commands[p.data[0]].known || !commands[p.data[0]].fits(p.size) {
		return c.notMySQL(Outbound)
	}
	cmd := p.data[0]
	info := &commands[cmd]
	c.realign()
	switch {
	case info.off:
		c.off(nil, reasonReplication)
		return false
	case cmd == comStmtClose:
		if len(p.data) >= 5 {
			c.stmts.remove(binary.LittleEndian.Uint32(p.data[1:]))
		}
		return true
	case info.none:
		return true
	}
	e := c.push()
	if e == nil {
		// Too many in flight for a client that waits for each answer:
		// the pairing is not to be trusted any more.
		c.fail(&c.stats.Dropped, reasonPendingOverflow)
		c.dropAll()
		c.rd[Inbound].lose()
		return true
	}
	e.cmd, e.kind = cmd, info.kind
	e.seq = p.seq + uint8(p.size/maxPayload) + 1
	e.held = c.aligned
	switch cmd {
	case comQuery:
		c.query(e, p)
	case comStmtPrepare:
		c.prepare(e, p)
	case comStmtExecute, comStmtBulkExecute:
		c.execute(e, p)
	case comInitDB:
		if p.whole {
			e.useDB, e.use = c.dbName(p.data[1:]), true
		}
	case comChangeUser:
		if db, ok := changeUserDB(p.data, c.caps); ok && p.whole {
			e.useDB, e.use = c.dbName(db), true
		}
	}
	if info.operates {
		c.start(e, p)
	}
	return true
}

// start fills what every record has and tells the sink a request began.
func (c *Conn) start(e *pending, p *packet) {
	e.record = true
	x := &e.rec.Exchange
	x.Role = protocols.RoleClient
	x.RequestStart, x.RequestEnd = p.start, p.end
	if c.seg != nil {
		x.Tid = c.seg.Tid
		if !c.chosenUsed && p.start == c.seg.Time {
			x.Chosen, c.chosenUsed = c.seg.Chosen, true
		}
	}
	e.rec.Command = e.cmd
	e.rec.DB.System = c.system
	e.rec.DB.Namespace = c.namespace
	if c.h != nil {
		c.h.Started(x)
	}
}

// query reads a COM_QUERY.
func (c *Conn) query(e *pending, p *packet) {
	text, ok := c.queryText(p.data[1:])
	if !ok {
		return // query attributes with parameters: the text is not at hand
	}
	st := c.statement(text, p.whole)
	e.stmt = st
	c.describe(e, st, "")
	if p.whole {
		if db, ok := useStatement(text); ok {
			e.useDB, e.use = c.dbName(db), true
		}
	}
}

// queryText finds the statement text of a COM_QUERY payload (after the
// command byte). Clients that agreed on query attributes (MySQL 8) put
// them first; only the form without any is read.
func (c *Conn) queryText(b []byte) ([]byte, bool) {
	attrs := c.capsKnown && c.agreed()&capQueryAttributes != 0
	if !attrs && !c.capsKnown && len(b) >= 2 && b[0] == 0 && b[1] == 1 {
		// Statement text never starts with a NUL byte: this is a
		// parameter count of 0 and one parameter set.
		attrs = true
	}
	if !attrs {
		return b, true
	}
	if len(b) < 2 || b[0] != 0 || b[1] != 1 {
		return nil, false
	}
	return b[2:], true
}

// prepare reads a COM_STMT_PREPARE.
func (c *Conn) prepare(e *pending, p *packet) {
	st := c.statement(p.data[1:], p.whole)
	e.stmt = st
	c.describe(e, st, "PREPARE")
}

// execute reads a COM_STMT_EXECUTE or COM_STMT_BULK_EXECUTE: the
// statement's text is the one its COM_STMT_PREPARE had.
func (c *Conn) execute(e *pending, p *packet) {
	if len(p.data) < 5 {
		return
	}
	id := binary.LittleEndian.Uint32(p.data[1:])
	if id == 0xffffffff && c.system == MariaDB {
		id = c.stmts.last // MariaDB: the statement prepared last
	}
	e.rec.StatementID = id
	st := c.stmts.get(id)
	if st == nil {
		// Prepared before the parser saw the connection, or forgotten:
		// its text is not known, and nothing is made up.
		c.fail(&c.stats.UnknownStatement, reasonUnknownStatement)
		return
	}
	e.stmt = st
	c.describe(e, st, "")
}

// describe sets the record's fields from the statement; op overrides the
// operation (PREPARE).
func (c *Conn) describe(e *pending, st *statement, op string) {
	d := &e.rec.DB
	if st == nil {
		return
	}
	d.Operation, d.Collection, d.Summary = st.Operation, st.Collection, st.Summary
	if op != "" {
		d.Operation, d.Summary = op, ""
	}
	if c.opts.QueryText {
		d.QueryText = st.text
	}
}

// realign runs before each command. The client sends a command only once
// it read the whole response to the one before (unless it pipelines), so
// a server side that lost its packets is taken to start the next
// response at its next segment: what was lost before ends here.
func (c *Conn) realign() {
	if !c.rd[Inbound].lost {
		c.dropBarrier()
		c.confirm()
		return
	}
	for i := c.qHead; i < len(c.q); i++ {
		e := &c.q[i]
		switch {
		case e.done:
		case e.started && e.kind != kindBarrier:
			c.endUnseen(e)
		default:
			c.drop(e)
		}
	}
	c.flush()
	c.rd[Inbound].reset()
	c.aligned = true
	c.stats.Resyncs++
}

// dropBarrier removes a barrier that no response reached by the time the
// client sends its next command: a client reads every answer before it
// sends again, so the gap hid no command. A client that pipelines may
// still have answers coming: what follows is held as after a
// realignment, and dropped if they come.
func (c *Conn) dropBarrier() {
	e := c.responder()
	if e == nil || e.kind != kindBarrier || e.started || !c.rd[Inbound].atBoundary() {
		return
	}
	e.done = true
	c.aligned = true
	c.flush()
}

// clientLost reacts to a gap that hid where the client's packets are:
// commands may have passed unseen, so responses are not paired until the
// server's side is realigned.
func (c *Conn) clientLost() {
	if c.phase != phaseCommand || c.infile {
		return
	}
	if n := len(c.q); n > c.qHead && c.q[n-1].kind == kindBarrier {
		return
	}
	if e := c.push(); e != nil {
		e.kind = kindBarrier
		return
	}
	c.dropAll()
	c.rd[Inbound].lose()
}

// dbName makes a database name into a string, reusing the current one
// when it is the same (a connection selects the same database again and
// again).
func (c *Conn) dbName(b []byte) string {
	if len(b) > maxNamespace {
		return ""
	}
	if string(b) == c.namespace {
		return c.namespace
	}
	if string(b) == c.authDB {
		return c.authDB
	}
	return validText(b)
}
