package mysql

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/sqlquery"
)

// serverPacket handles a packet the server sent.
func (c *Conn) serverPacket(p *packet) bool {
	switch c.phase {
	case phaseStart:
		return c.greeting(p)
	case phaseHandshake:
		if len(p.data) > 0 && p.data[0] == 0xff {
			c.phase = phaseOff // refused
			return false
		}
		return c.notMySQL(Inbound)
	case phaseAuth:
		return c.authPacket(p)
	}
	if c.absorb {
		// An EOF that may end the definitions of a statement prepared
		// while it was not known whether EOF packets are sent.
		c.absorb = false
		if p.seq == c.absorbSeq && isEOF(p) {
			c.eof = eofPackets
			return true
		}
	}
	e := c.responder()
	if e == nil {
		c.stray()
		return false
	}
	if e.kind == kindBarrier || e.rs == rsLost {
		c.rd[Inbound].lose()
		c.serverLost()
		return false
	}
	if p.seq != e.seq && !(e.rs == rsInfile && c.rd[Outbound].lost) {
		return c.desync(e)
	}
	e.seq = p.seq + uint8(p.size/maxPayload) + 1
	first := !e.started
	if first {
		e.rec.ResponseStart = p.start
	}
	e.rec.ResponseEnd = max(e.rec.ResponseEnd, p.end)
	if len(p.data) == 0 && p.size > 0 && e.rs == rsRows {
		// A row whose first byte fell in a gap: only an EOF packet's
		// length tells it apart from a row.
		if c.eof == eofPackets && p.size != 5 {
			e.afterMeta = false
			return true
		}
		c.rd[Inbound].lose()
		e.rs, e.lostRows = rsLost, true
		return false
	}
	if !c.respond(e, p) {
		// A first packet that does not fit shows the response is not
		// this command's: desync drops it.
		return c.desync(e)
	}
	e.started = true
	c.flush()
	return true
}

// greeting handles the first server packet of a connection seen from its
// start: the initial handshake, or an ERR that refuses the connection.
func (c *Conn) greeting(p *packet) bool {
	if p.seq == 0 && len(p.data) > 0 {
		if p.data[0] == 0xff {
			c.phase = phaseOff
			return false
		}
		if g, ok := parseGreeting(p.data); ok {
			c.phase = phaseHandshake
			c.server, c.mariaServerCaps = g.caps, g.mariaCaps
			c.system = semconv.MySQL
			if bytes.Contains(g.version, []byte("MariaDB")) {
				c.system = MariaDB
			}
			return true
		}
	}
	// Server bytes before any command: the connection was seen in the
	// middle of a response.
	c.stray()
	return false
}

// authPacket handles the server's packets while the client logs in.
func (c *Conn) authPacket(p *packet) bool {
	if len(p.data) == 0 {
		return true
	}
	switch p.data[0] {
	case 0x00:
		c.phase = phaseCommand
		c.namespace = c.authDB
		if ok, valid := parseOK(p.data); valid {
			c.tracked(&ok)
		}
	case 0xff:
		c.phase = phaseOff // the login failed: the server closes
		return false
	}
	return true // an authentication switch or more authentication data
}

// desync handles a server packet that does not fit the response it should
// belong to: a response not yet begun is not this command's (it is
// dropped); one in progress is lost from here.
func (c *Conn) desync(e *pending) bool {
	c.fail(&c.stats.NotMySQL, reasonNotMySQL)
	if !e.started {
		c.drop(e)
	} else {
		e.rs, e.lostRows = rsLost, false
	}
	c.rd[Inbound].lose()
	c.flush()
	return false
}

// serverLost reacts to a gap that hid where the server's packets are.
func (c *Conn) serverLost() {
	e := c.responder()
	if e == nil {
		c.stray() // the gap holds bytes no command asked for
		return
	}
	if e.rs == rsLost {
		return
	}
	if !e.started && e.kind != kindBarrier {
		// The gap holds the response's start.
		e.started = true
		if c.seg != nil {
			e.rec.ResponseStart = c.seg.Time
		}
	}
	e.lostRows = e.rs == rsRows
	e.rs = rsLost
	if c.seg != nil {
		e.rec.ResponseEnd = max(e.rec.ResponseEnd, c.seg.Time)
	}
}

// respond moves a response on by one packet; false when the packet does
// not fit.
func (c *Conn) respond(e *pending, p *packet) bool {
	if len(p.data) == 0 {
		// Empty, or its first byte was not seen: no packet of a response
		// can be told without it.
		return false
	}
	switch e.rs {
	case rsFirst:
		return c.first(e, p)
	case rsColumns:
		return c.column(e, p)
	case rsRows:
		return c.row(e, p)
	case rsDefs:
		return c.def(e, p)
	case rsInfile:
		c.infile = false
		return c.first(e, p)
	}
	return false
}

// first reads the first packet of a response, or of the next result.
func (c *Conn) first(e *pending, p *packet) bool {
	switch e.kind {
	case kindAny:
		c.succeed(e)
		return true
	case kindAuth:
		return c.changedUser(e, p)
	case kindPrepare:
		return c.prepared(e, p)
	case kindFetch:
		e.rs = rsRows
		return c.row(e, p)
	case kindFieldList:
		e.rs = rsColumns
		return c.column(e, p)
	}
	switch b := p.data[0]; {
	case b == 0x00 && e.kind != kindFieldList:
		return c.okPacket(e, p)
	case b == 0xff:
		return c.errPacket(e, p)
	case b == 0xfe && e.kind == kindSimple && p.size == 5:
		c.succeed(e) // COM_SET_OPTION and COM_DEBUG answer with EOF
		return true
	case b == 0xfb && e.cmd == comQuery && e.rs == rsFirst:
		// LOCAL INFILE: the client sends the file, then the server
		// answers.
		e.rs = rsInfile
		c.infile, c.infileSeq = true, p.seq
		return true
	case e.kind == kindResult && e.rs == rsFirst:
		return c.columnCount(e, p)
	}
	return false
}

// okPacket ends a response with success, or one result of several.
func (c *Conn) okPacket(e *pending, p *packet) bool {
	ok, valid := parseOK(p.data)
	if !valid {
		return false
	}
	c.tracked(&ok)
	if ok.status&statusMoreResults != 0 && e.kind == kindResult {
		e.multi, e.rs = true, rsFirst
		return true
	}
	c.succeed(e)
	return true
}

// errPacket ends a response with an error; MariaDB's progress reports
// (error 0xffff) do not end it.
func (c *Conn) errPacket(e *pending, p *packet) bool {
	er, valid := parseErr(p.data)
	if !valid {
		return false
	}
	if er.code == progressCode {
		return true
	}
	c.failed(e, &er)
	return true
}

// columnCount reads the packet that starts a result set.
func (c *Conn) columnCount(e *pending, p *packet) bool {
	if !p.whole {
		return false
	}
	n, meta, ok := c.readColumnCount(p.data)
	if !ok {
		return false
	}
	e.afterMeta = true
	if !meta {
		e.rs = rsRows
		return true
	}
	e.cols, e.rs = n, rsColumns
	return true
}

// readColumnCount reads a column count and whether column definitions
// follow. MariaDB clients that cache metadata get a flag after the count;
// MySQL clients with optional metadata get one before it. When the
// handshake was not seen the packet's length tells which.
func (c *Conn) readColumnCount(b []byte) (n uint64, meta, ok bool) {
	v, k := lenenc(b)
	switch {
	case k == len(b):
		return v, true, k > 0 && v > 0 && !c.cacheMeta && !c.optionalMeta()
	case k == 0 || k+1 != len(b):
		return 0, false, false
	}
	// A flag byte (0 or 1) and a count, in one order or the other.
	flagAfter := b[k] <= 1 && v > 0
	if c.capsKnown {
		flagAfter = c.cacheMeta
	}
	if flagAfter {
		return v, b[k] == 1, b[k] <= 1 && v > 0
	}
	v, k2 := lenenc(b[1:])
	if (c.capsKnown && !c.optionalMeta()) || b[0] > 1 || k2 == 0 || v == 0 {
		return 0, false, false
	}
	return v, b[0] == 1, true
}

// optionalMeta says MySQL's optional result-set metadata was agreed.
func (c *Conn) optionalMeta() bool {
	return c.capsKnown && c.agreed()&capOptionalMetadata != 0
}

// column reads a column definition.
func (c *Conn) column(e *pending, p *packet) bool {
	if e.kind == kindFieldList {
		switch {
		case p.data[0] == 0xfe && p.size < 9:
			c.succeed(e)
			return true
		case p.data[0] == 0xff:
			return c.errPacket(e, p)
		}
		return isColumnDef(p)
	}
	if !isColumnDef(p) || e.cols == 0 {
		return false
	}
	e.cols--
	if e.cols == 0 {
		e.rs = rsRows
	}
	return true
}

// isColumnDef says p starts like a column definition: its catalog is
// always "def".
func isColumnDef(p *packet) bool {
	return len(p.data) >= 4 && p.data[0] == 3 && string(p.data[1:4]) == "def"
}

// isEOF says p is an EOF packet (not an OK packet with a 0xfe header).
func isEOF(p *packet) bool {
	return p.size == 5 && len(p.data) == 5 && p.data[0] == 0xfe
}

// row reads a row, or the packet that ends the rows.
func (c *Conn) row(e *pending, p *packet) bool {
	b := p.data[0]
	switch {
	case b == 0xfe && p.size < maxPayload:
		if e.afterMeta && isEOF(p) && c.eof != eofDeprecate {
			// The EOF between metadata and rows.
			e.afterMeta = false
			c.eof = eofPackets
			st, _ := eofStatus(p.data)
			c.statusFlags(st)
			if st&statusCursorExists != 0 {
				c.succeed(e) // rows come with COM_STMT_FETCH
			}
			return true
		}
		return c.rowsEnd(e, p)
	case b == 0xff:
		return c.errPacket(e, p)
	}
	if e.afterMeta {
		if c.eof == eofPackets && e.kind != kindFetch {
			return false // the EOF after the metadata is missing
		}
		if e.kind != kindFetch {
			c.eof = eofDeprecate
		}
	}
	e.afterMeta = false
	return true
}

// rowsEnd reads the EOF or OK packet after the rows.
func (c *Conn) rowsEnd(e *pending, p *packet) bool {
	var status uint16
	if isEOF(p) {
		st, _ := eofStatus(p.data)
		status = st
		c.statusFlags(st)
		if c.eof == eofUnknown {
			c.eof = eofPackets
		}
	} else {
		ok, valid := parseOK(p.data)
		if !valid {
			return false
		}
		c.tracked(&ok)
		status = ok.status
		if c.eof == eofUnknown {
			c.eof = eofDeprecate
		}
	}
	e.afterMeta = false
	if status&statusMoreResults != 0 && e.kind == kindResult {
		e.multi, e.rs = true, rsFirst
		return true
	}
	c.succeed(e)
	return true
}

// prepared reads the answer to COM_STMT_PREPARE.
func (c *Conn) prepared(e *pending, p *packet) bool {
	if p.data[0] == 0xff {
		return c.errPacket(e, p)
	}
	if p.data[0] != 0 || len(p.data) < 12 || !p.whole {
		return false
	}
	id := binary.LittleEndian.Uint32(p.data[1:])
	cols := uint64(binary.LittleEndian.Uint16(p.data[5:]))
	params := uint64(binary.LittleEndian.Uint16(p.data[7:]))
	meta := true
	if len(p.data) >= 13 && c.optionalMeta() {
		meta = p.data[12] != 0
	}
	e.rec.StatementID = id
	if e.stmt != nil {
		c.stmts.put(id, e.stmt)
	}
	if !meta || params+cols == 0 {
		c.succeed(e)
		return true
	}
	e.rs = rsDefs
	e.cols, e.prepCols = params, cols
	if params == 0 {
		e.cols, e.prepCols = cols, 0
	}
	return true
}

// def reads a prepared statement's parameter or column definition, or the
// EOF after a block of them.
func (c *Conn) def(e *pending, p *packet) bool {
	if e.defsEOF {
		e.defsEOF = false
		if isEOF(p) {
			c.eof = eofPackets
			c.nextBlock(e)
			return true
		}
		if c.eof == eofPackets || e.prepCols == 0 {
			return false
		}
		c.eof = eofDeprecate
		c.nextBlock(e) // p is the first column definition
	}
	if !isColumnDef(p) || e.cols == 0 {
		return false
	}
	e.cols--
	if e.cols > 0 {
		return true
	}
	switch c.eof {
	case eofPackets:
		e.defsEOF = true
	case eofDeprecate:
		c.nextBlock(e)
	default:
		if e.prepCols > 0 {
			e.defsEOF = true // the next packet tells
			break
		}
		// Whether an EOF follows is not known: the response ends here,
		// and an EOF that comes next is taken as its own.
		c.succeed(e)
		c.absorb, c.absorbSeq = true, e.seq
	}
	return true
}

// nextBlock moves from the parameters to the columns, or ends.
func (c *Conn) nextBlock(e *pending) {
	if e.prepCols > 0 {
		e.cols, e.prepCols = e.prepCols, 0
		return
	}
	c.succeed(e)
}

// changedUser reads the answer to COM_CHANGE_USER.
func (c *Conn) changedUser(e *pending, p *packet) bool {
	switch p.data[0] {
	case 0x00:
		ok, valid := parseOK(p.data)
		if !valid {
			return false
		}
		c.stmts.clear() // the session's statements are gone
		c.namespace = ""
		if e.use {
			c.namespace = e.useDB
		}
		c.tracked(&ok)
		e.done = true
	case 0xff:
		c.namespace = ""
		return c.errPacket(e, p)
	}
	return true // an authentication switch or more data
}

// tracked applies what an OK packet says of the session: the new current
// database, and how strings are written.
func (c *Conn) tracked(ok *okPacket) {
	c.statusFlags(ok.status)
	if ok.schemaSet {
		c.namespace = c.dbName(ok.schema)
	}
}

// statusFlags follows the server's status: whether a backslash escapes
// in strings decides how statement texts are read.
func (c *Conn) statusFlags(st uint16) {
	c.dialect = sqlquery.MySQL
	if st&statusNoBackslash != 0 {
		c.dialect = sqlquery.AnyDialect
	}
}

// succeed ends a response that did not fail, and applies what the command
// changed.
func (c *Conn) succeed(e *pending) {
	e.done = true
	switch {
	case e.use:
		c.namespace = e.useDB
	case e.cmd == comResetConnection:
		// The statements are gone; whether the database stays is not
		// something the protocol says.
		c.stmts.clear()
		c.namespace = ""
	case e.cmd == comQuery && e.multi && (e.stmt == nil || e.stmt.mayUse):
		// Several statements ran, and one of them may have changed
		// the database.
		c.namespace = ""
	}
}

// failed ends a response with the server's error.
func (c *Conn) failed(e *pending, er *errPacket) {
	e.done = true
	if e.cmd == comQuery && e.multi && (e.stmt == nil || e.stmt.mayUse) {
		c.namespace = ""
	}
	if !e.record {
		return
	}
	d := &e.rec.DB
	d.StatusCode = errorCode(er.code)
	d.ErrorType = d.StatusCode
	d.Error = true
	if er.sqlState != nil {
		e.rec.SQLState = validText(er.sqlState)
	}
}

// errorCode formats an error number, without allocating for the common
// ones.
func errorCode(n uint16) string {
	switch n {
	case 1045:
		return "1045"
	case 1046:
		return "1046"
	case 1049:
		return "1049"
	case 1054:
		return "1054"
	case 1062:
		return "1062"
	case 1064:
		return "1064"
	case 1146:
		return "1146"
	case 1205:
		return "1205"
	case 1213:
		return "1213"
	}
	return strconv.Itoa(int(n))
}

// resync looks for the packets of a direction that lost them, at the
// start of a segment. It returns the bytes to read as packets from, nil
// while still lost.
func (c *Conn) resync(dir Direction, d []byte, whole bool) []byte {
	moved := len(d)
	if c.seg != nil {
		moved = c.seg.Len
	}
	if dir == Outbound {
		if (c.phase == phaseCommand || c.phase == phaseStart) && commandAt(d, moved) {
			c.rd[Outbound].reset()
			c.stats.Resyncs++
			return d
		}
		return nil
	}
	e := c.responder()
	if e == nil || e.rs != rsLost || !e.lostRows {
		return nil
	}
	if c.seg != nil {
		e.rec.ResponseEnd = max(e.rec.ResponseEnd, c.seg.Time)
	}
	i := findRows(d, whole, e.cmd != comQuery)
	if i < 0 {
		return nil
	}
	c.rd[Inbound].reset()
	c.stats.Resyncs++
	e.rs, e.lostRows, e.afterMeta = rsRows, false, false
	e.seq = d[i+3]
	return d[i:]
}

// findRows finds where the row packets in d start again after a gap: at
// a header followed by at least two more whose sequence ids follow on, or
// that lead exactly to the end of d with a packet that ends rows. binary
// says the rows are the binary protocol's (they start with 0x00).
func findRows(d []byte, whole, binary bool) int {
	for i := 0; i+4 <= len(d) && i < 4096; i++ {
		if chainAt(d, i, whole, binary) {
			return i
		}
	}
	return -1
}

// chainAt checks the chain of row headers starting at d[i].
func chainAt(d []byte, i int, whole, binary bool) bool {
	seq := d[i+3]
	for hops := 0; hops < 8; hops++ {
		if i+4 > len(d) {
			return hops >= 3 // headers up to the very end
		}
		size := int(d[i]) | int(d[i+1])<<8 | int(d[i+2])<<16
		if d[i+3] != seq+uint8(hops) || size == 0 || size >= maxPayload {
			return false
		}
		next := i + 4 + size
		if next > len(d) {
			return hops >= 2 && rowStart(d[i+4:], size, binary)
		}
		if !rowStart(d[i+4:next], size, binary) {
			return hops >= 1 && whole && next == len(d) && d[i+4] == 0xfe && size < 9
		}
		if next == len(d) {
			return hops >= 2
		}
		i = next
	}
	return true
}

// rowStart says a payload of size bytes may start with b as a row does.
func rowStart(b []byte, size int, binary bool) bool {
	if len(b) == 0 {
		return true
	}
	if binary {
		return b[0] == 0
	}
	if b[0] == 0xfb {
		return true // NULL
	}
	n, k := lenenc(b)
	return k > 0 && uint64(size-k) >= n
}

// tailEnd checks whether the last bytes of a segment, on a server side
// that lost its packets inside rows, are the packet that ends them.
func (c *Conn) tailEnd(t []byte, ts uint64) {
	e := c.responder()
	if e == nil || e.rs != rsLost || !e.lostRows {
		return
	}
	e.rec.ResponseEnd = max(e.rec.ResponseEnd, ts)
	seq, status, ok := endOfRows(t, c.eof)
	if !ok {
		return
	}
	c.rd[Inbound].reset()
	c.stats.Resyncs++
	e.lostRows = false
	if status&statusMoreResults != 0 && e.kind == kindResult {
		e.multi, e.rs, e.seq = true, rsFirst, seq+1
		return
	}
	c.succeed(e)
	c.flush()
}

// endOfRows looks for an EOF packet, or an OK packet with a 0xfe header
// and no text, that ends exactly at the end of t.
func endOfRows(t []byte, mode eofMode) (seq uint8, status uint16, ok bool) {
	if mode != eofDeprecate && len(t) >= 9 {
		h := t[len(t)-9:]
		if h[0] == 5 && h[1] == 0 && h[2] == 0 && h[4] == 0xfe {
			return h[3], binary.LittleEndian.Uint16(h[7:]), true
		}
	}
	if mode == eofPackets {
		return 0, 0, false
	}
	for size := 7; size <= 12 && size+4 <= len(t); size++ {
		h := t[len(t)-size-4:]
		if int(h[0]) != size || h[1] != 0 || h[2] != 0 || h[4] != 0xfe {
			continue
		}
		b := h[4:]
		i := 1
		for range 2 {
			_, n := lenenc(b[i:])
			if n == 0 {
				i = -1
				break
			}
			i += n
		}
		if i > 0 && i+4 == len(b) {
			return h[3], binary.LittleEndian.Uint16(b[i:]), true
		}
	}
	return 0, 0, false
}
