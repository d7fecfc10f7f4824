package sqlquery

import (
	"strings"
	"unsafe"
)

const (
	// MaxTextLen bounds what Sanitize returns, in bytes, marker included.
	MaxTextLen = 4096
	// TruncatedMarker ends a text that Sanitize cut at MaxTextLen. It is
	// cut between tokens, never inside one, and the marker is plain SQL
	// punctuation, so that sanitizing the result again gives it back.
	TruncatedMarker = " ..."
)

// maxDepth bounds the parentheses whose context Sanitize tracks; deeper
// ones share the deepest slot, which only makes it replace more.
const maxDepth = 32

// Sanitize returns the statement text with every literal replaced by "?":
// the db.query.text of the database conventions, which never carries a
// value. It reads the text in one pass, whichever of PostgreSQL and MySQL
// it was written for:
//
//   - Strings: '...', where a doubled quote stands for one, with
//     backslash escapes where MySQL (or a PostgreSQL E'...') reads them;
//     the prefixed forms E'...', N'...', X'ff', B'0101', U&'...',
//     _utf8mb4'...'; PostgreSQL's dollar quotes $$...$$ and $tag$...$tag$.
//     Where the two databases would end a string at different bytes
//     (MySQL 'a\'b' against PostgreSQL 'a\'), the text up to where both
//     readings meet again is one literal: more is replaced, never less.
//     An unterminated string runs to the end of the text.
//   - "...": a string in MySQL, an identifier in PostgreSQL and ANSI SQL.
//     It is kept only where it is plainly an identifier: next to a "."
//     ("t"."c"), after FROM, JOIN, INTO, UPDATE, TABLE, AS, SET, RETURNING
//     and similar words, after a comma in a FROM, SET or RETURNING list, and
//     in the column list after INSERT INTO "t". Anywhere else it is replaced,
//     even if PostgreSQL would read a column name there. `...` is always an
//     identifier.
//   - Numbers: 12, 1.5, .5, 1e-3, 0x1F, 0b101, with the sign when it is
//     unary (after an operator, "(", "," or a keyword such as SELECT,
//     WHERE, THEN); 99+100 keeps its binary "+". TRUE and FALSE are
//     literals except in IS [NOT] TRUE. NULL is kept: it carries no value
//     and IS NULL is part of the statement's shape.
//   - Parameters stay: $1, ?, :name, @var, @@var.
//   - Comments (--, # and nested /* */) are removed: they can carry values
//     (sqlcommenter). Runs of whitespace become one space.
//   - Lists collapse: IN (?, ?, ?) becomes IN (?) and the rows of a VALUES
//     list that repeat the row before them are dropped, so that
//     VALUES (?, ?), (?, ?) becomes VALUES (?, ?).
//
// The result is at most MaxTextLen bytes; a longer one is cut between two
// tokens and ends with TruncatedMarker. Sanitize allocates once, for the
// result, and not at all when the text has no literal, comment or extra
// whitespace to remove: the result is then the text itself.
func Sanitize(text string) string {
	return sanitize(text, readBoth)
}

func sanitize(text string, rs readings) string {
	z := sanitizer{text: text, lex: newLexer(text, rs), lazy: true, cut: -1}
	z.frames[0].query = true
	for !z.done {
		t := z.lex.next()
		if t.kind == tEOF {
			break
		}
		z.token(t)
	}
	return z.finish()
}

// sanitizer is the state of one Sanitize call.
type sanitizer struct {
	text string
	lex  lexer
	// The output is text[:n] while lazy: nothing differed from the text
	// yet. It is copied into out at the first difference.
	out  []byte
	n    int
	lazy bool
	cut  int // the output length to cut back to if the cap is passed; -1 until known
	done bool

	prev, prev2 token // the two tokens before, as read
	depth       int
	frames      [maxDepth]frame
	nameThen    bool // reading the name after INTO, TABLE, COPY or REFERENCES

	in   inList
	rows valueRows
}

// frame is what Sanitize knows of one level of parentheses.
type frame struct {
	query     bool // it holds a query (or is the top level): FROM there opens a table list
	first     bool // no token read inside it yet
	names     bool // a FROM, SET or RETURNING list is open in it
	nameParen bool // it is a list of names: INTO t (a, b), KEY (a)
}

// inList collapses IN (?, ?, ?) to IN (?): the "?" after the first are
// held back, and written only if something other than "?" turns up.
type inList struct {
	state      uint8
	pending    int  // ", ?" pairs held back
	comma      bool // a "," held back after them
	commaSpace bool // the spacing of the first held pair
	elemSpace  bool
}

const (
	inOff       = iota
	inOpen      // after "IN ("
	inAfterElem // after a "?"
	inAfterSep  // after a ","
)

// valueRows drops a VALUES row that repeats the one before it. While a
// row is matched it is compared with the row before, byte for byte, and
// nothing is written; at the first difference what matched is written.
type valueRows struct {
	state            uint8
	depth            int   // the depth of VALUES
	refStart, refEnd int   // the row before, in the output
	k                int   // bytes of it matched
	sep, paren       token // the "," and "(" held back before the row
}

const (
	rowsOff      = iota
	rowsWant     // after VALUES, before its first row
	rowsIn       // in a row that is written
	rowsAfter    // after a row
	rowsSep      // after the "," after a row
	rowsMatching // in a row that so far repeats the one before
)

func (z *sanitizer) frame() *frame { return &z.frames[min(z.depth, maxDepth-1)] }

// token writes one token and updates the context.
func (z *sanitizer) token(t token) {
	lit := z.literal(t)
	// A literal leaves the context as the "?" that replaces it would:
	// sanitizing the output again must take the same decisions.
	ctx := t
	if lit {
		ctx.kind, ctx.kw = tParam, kwNone
	}
	if z.collapseIn(t, lit) {
		z.advance(ctx)
		return
	}
	if !z.rowsBefore(t) {
		z.emit(t, lit)
	}
	z.advance(ctx)
	z.rowsAfter(t)
}

// literal says whether t is replaced by "?".
func (z *sanitizer) literal(t token) bool {
	switch t.kind {
	case tString, tNumber:
		return true
	case tDQ:
		return !z.dqIdentifier(t)
	case tWord:
		if t.kw != kwTrue && t.kw != kwFalse {
			return false
		}
		// IS TRUE and IS NOT FALSE are predicates, not values.
		return !(z.prev.kw == kwIs || z.prev.kw == kwNot && z.prev2.kw == kwIs)
	}
	return false
}

// dqIdentifier says whether the "..." t is plainly an identifier. One
// with a backslash never is: MySQL reads "..." as a name only with
// ANSI_QUOTES, where a backslash escapes nothing, so the two readings
// would not end it at the same byte.
func (z *sanitizer) dqIdentifier(t token) bool {
	if strings.IndexByte(z.text[t.start:t.end], '\\') >= 0 {
		return false
	}
	p := z.prev
	switch {
	case z.isPunct(p, '.') || z.dotAfter():
		return true
	case p.kind == tWord && p.kw.is(fNameNext):
		// FROM in EXTRACT(YEAR FROM "...") or TRIM(... FROM "...") is no
		// table list: MySQL would read a string there.
		return p.kw != kwFrom || z.frame().query
	case z.isPunct(p, ','):
		f := z.frame()
		return f.names || f.nameParen
	case z.isPunct(p, '('):
		return z.frame().nameParen
	}
	return false
}

// dotAfter says whether a "." and a name follow the token just read: the
// token is then the qualifier of a name. The name must stay a name when
// sanitized (not B'...', TRUE, or a "..." that is replaced), for the
// decision to be the same when the output is read again.
func (z *sanitizer) dotAfter() bool {
	l := z.lex // a copy: peeking does not move the sanitizer's lexer
	if dot := l.next(); !z.isPunct(dot, '.') {
		return false
	}
	t := l.next()
	switch t.kind {
	case tWord:
		return t.kw != kwTrue && t.kw != kwFalse
	case tQuoted:
		return true
	case tDQ:
		return strings.IndexByte(z.text[t.start:t.end], '\\') < 0
	case tPunct:
		return z.text[t.start] == '*'
	}
	return false
}

func (z *sanitizer) isPunct(t token, c byte) bool {
	return t.kind == tPunct && z.text[t.start] == c
}

// advance updates the context after t.
func (z *sanitizer) advance(t token) {
	f := z.frame()
	if f.first {
		f.first = false
		if t.kw == kwSelect || t.kw == kwWith {
			f.query = true
		}
	}
	switch t.kind {
	case tWord:
		switch {
		case t.kw.is(fNameList):
			if t.kw != kwFrom || f.query {
				f.names = true
			}
		case t.kw.is(fClauseEnd):
			f.names = false
		}
		switch {
		case t.kw.is(fNameThenParen):
			z.nameThen = true
		case t.kw.is(fNotAlias) || t.kw.is(fStatement):
			z.nameThen = false
		}
	case tDQ, tQuoted:
	case tPunct:
		switch z.text[t.start] {
		case '.':
		case '(':
			// KEY (...), or INTO t (...) with the name just read.
			nameParen := z.prev.kind == tWord && z.prev.kw.is(fNameParen) ||
				z.nameThen && (z.prev.kind == tDQ || z.prev.kind == tQuoted ||
					z.prev.kind == tWord && !z.prev.kw.is(fNameThenParen))
			z.nameThen = false
			z.depth++
			*z.frame() = frame{first: true, nameParen: nameParen}
		case ')':
			z.nameThen = false
			if z.depth > 0 {
				z.depth--
			}
		default:
			z.nameThen = false
		}
	default:
		z.nameThen = false
	}
	z.prev2, z.prev = z.prev, t
}

// collapseIn runs the IN (?, ?) collapse; it returns true when it held t
// back.
func (z *sanitizer) collapseIn(t token, lit bool) bool {
	in := &z.in
	q := lit || t.kind == tParam && z.text[t.start] == '?'
	switch in.state {
	case inOff:
		return false
	case inOpen:
		in.state = inOff
		if q {
			in.state = inAfterElem
		}
		return false
	case inAfterElem:
		switch {
		case z.isPunct(t, ','):
			if in.pending == 0 {
				in.commaSpace = t.space
			}
			in.comma, in.state = true, inAfterSep
			return true
		case z.isPunct(t, ')'):
			*in = inList{} // the held pairs are dropped
			return false
		}
	case inAfterSep:
		if q {
			if in.pending == 0 {
				in.elemSpace = t.space
			}
			in.pending++
			in.comma, in.state = false, inAfterElem
			return true
		}
	}
	z.flushIn()
	return false
}

// flushIn writes the pairs an IN list held back.
func (z *sanitizer) flushIn() {
	in := z.in
	z.in = inList{}
	for range in.pending {
		z.putSpace(in.commaSpace)
		z.put(",", -1)
		z.putSpace(in.elemSpace)
		z.put("?", -1)
	}
	if in.comma {
		z.putSpace(in.commaSpace)
		z.put(",", -1)
	}
}

// rowsBefore runs the VALUES collapse before t is written; it returns
// true when it held t back.
func (z *sanitizer) rowsBefore(t token) bool {
	r := &z.rows
	switch r.state {
	case rowsWant:
		if z.isPunct(t, '(') {
			r.state, r.refStart = rowsIn, -1 // set by emit, after the space
			return false
		}
		r.state = rowsOff
	case rowsAfter:
		if z.isPunct(t, ',') && z.depth == r.depth {
			r.state, r.sep = rowsSep, t
			return true
		}
		r.state = rowsOff
	case rowsSep:
		if z.isPunct(t, '(') {
			r.state, r.paren, r.k = rowsMatching, t, 0
			return false
		}
		r.state = rowsOff
		z.putTokenSpace(r.sep)
		z.put(",", r.sep.start)
	}
	return false
}

// rowsAfter runs the VALUES collapse after t is written.
func (z *sanitizer) rowsAfter(t token) {
	r := &z.rows
	if t.kind == tWord && (t.kw == kwValues || t.kw == kwValue) {
		*r = valueRows{state: rowsWant, depth: z.depth}
		return
	}
	if !z.isPunct(t, ')') || z.depth != r.depth {
		return
	}
	switch r.state {
	case rowsIn:
		r.refEnd, r.state = z.n, rowsAfter
	case rowsMatching:
		if r.k != r.refEnd-r.refStart {
			z.flushRow() // a row that is a prefix of the one before
			r.refEnd, r.state = z.n, rowsAfter
			return
		}
		r.state = rowsAfter // a repeat: dropped with its ","
	}
}

// flushRow writes the row being matched as far as it matched, with the
// "," and "(" held back before it, and makes it the row to compare with.
func (z *sanitizer) flushRow() {
	r := &z.rows
	r.state = rowsIn
	z.putTokenSpace(r.sep)
	z.put(",", r.sep.start)
	z.putTokenSpace(r.paren)
	start, k := z.n, r.k
	// What matched is the text from the "(" on when the row was written
	// as it stands; else it is copied from the row before.
	src := r.paren.start
	for i := 0; i < k; i++ {
		if src+i >= len(z.text) || z.text[src+i] != z.outAt(r.refStart+i) {
			src = -1
			break
		}
	}
	switch {
	case k == 0:
	case src >= 0:
		z.put(z.text[src:src+k], src)
	case z.lazy:
		z.put(z.text[r.refStart:r.refStart+k], -1)
	default:
		// The bytes are the output's own: appending them to it is safe
		// even when append moves it.
		z.put(unsafe.String(&z.out[r.refStart], k), -1)
	}
	r.refStart = start
}

func (z *sanitizer) outAt(i int) byte {
	if z.lazy {
		return z.text[i]
	}
	return z.out[i]
}

// match compares p with the row before, at the matched length; false
// when it differs, after writing the row so far.
func (z *sanitizer) match(p string) bool {
	r := &z.rows
	if r.k+len(p) <= r.refEnd-r.refStart {
		i := 0
		for i < len(p) && z.outAt(r.refStart+r.k+i) == p[i] {
			i++
		}
		if i == len(p) {
			r.k += len(p)
			return true
		}
	}
	z.flushRow()
	return false
}

// emit writes t: its text, or "?" for a literal.
func (z *sanitizer) emit(t token, lit bool) {
	if z.rows.state == rowsMatching && t.start == z.rows.paren.start {
		t.space = false // the "(" of a matched row: its space is held with it
	}
	z.putTokenSpace(t)
	if z.rows.state == rowsIn && z.rows.refStart < 0 {
		z.rows.refStart = z.n
	}
	if lit {
		z.put("?", -1)
	} else {
		z.put(z.text[t.start:t.end], t.start)
	}
	if z.isPunct(t, '(') && z.prev.kind == tWord && z.prev.kw == kwIn {
		z.in = inList{state: inOpen}
	}
}

// putTokenSpace writes the one space that stands for the whitespace and
// comments before t.
func (z *sanitizer) putTokenSpace(t token) {
	if !t.space || z.n == 0 && z.rows.state != rowsMatching {
		return
	}
	src := -1
	if t.start-t.gap == 1 && z.text[t.gap] == ' ' {
		src = t.gap
	}
	z.put(" ", src)
}

func (z *sanitizer) putSpace(space bool) {
	if space {
		z.put(" ", -1)
	}
}

// put writes p. src is where p stands in the text, or -1: while the output
// is the text so far, a p that is the text's next bytes costs nothing.
func (z *sanitizer) put(p string, src int) {
	if z.done || z.rows.state == rowsMatching && z.match(p) {
		return
	}
	if z.n+len(p) > MaxTextLen-len(TruncatedMarker) {
		if z.cut < 0 {
			z.cut = z.n
		}
		if z.n+len(p) > MaxTextLen {
			z.truncate()
			return
		}
	}
	if z.lazy {
		if src == z.n {
			z.n += len(p)
			return
		}
		z.materialize()
	}
	z.out = append(z.out, p...)
	z.n += len(p)
}

func (z *sanitizer) materialize() {
	z.out = make([]byte, z.n, min(len(z.text), MaxTextLen)+len(TruncatedMarker))
	copy(z.out, z.text[:z.n])
	z.lazy = false
}

// truncate cuts the output at the last token that leaves room for the
// marker, and ends the work.
func (z *sanitizer) truncate() {
	if z.lazy {
		z.materialize()
	}
	z.out = z.out[:z.cut]
	for len(z.out) > 0 && z.out[len(z.out)-1] == ' ' {
		z.out = z.out[:len(z.out)-1]
	}
	z.out = append(z.out, TruncatedMarker...)
	z.n = len(z.out)
	z.done = true
}

// finish writes what is held back and returns the output.
func (z *sanitizer) finish() string {
	if !z.done {
		if z.in.state != inOff {
			z.flushIn()
		}
		switch z.rows.state {
		case rowsSep:
			z.rows.state = rowsOff
			z.putTokenSpace(z.rows.sep)
			z.put(",", z.rows.sep.start)
		case rowsMatching:
			z.flushRow()
		}
	}
	if z.lazy {
		return z.text[:z.n]
	}
	if len(z.out) == 0 {
		return ""
	}
	// out is never written again: the string may share its bytes, as
	// strings.Builder does.
	return unsafe.String(unsafe.SliceData(z.out), len(z.out))
}
