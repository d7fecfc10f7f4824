package sqlquery

import (
	"strings"
	"unicode/utf8"
)

// MaxSummaryLen bounds Statement.Summary, in characters, as the
// conventions ask; the summary is cut between its parts, never inside an
// operation or a target.
const MaxSummaryLen = 255

// maxNest bounds the nesting of subqueries and parentheses Analyze
// follows; a deeper statement is given its operation only.
const maxNest = 48

// Analyze tells the operation, collection and summary of one statement
// (split a text of several with Split first; a text that holds several
// statements gives the zero Statement).
//
// Operation is the statement's leading keyword in upper case; after
// WITH ... it is the main statement's. Summary is db.query.summary: the
// operations (SELECT, INSERT, CREATE TABLE, ...) and the tables they work
// on, in the order the text names them, each as written (case and quotes
// kept, blanks around dots dropped), subqueries and the queries of a WITH
// included, the names the WITH defines left out: "SELECT orders",
// "SELECT songs artists", "INSERT shipping_details SELECT orders",
// "UPDATE accounts SELECT ledger". Collection is the table when the
// statement names exactly one (counting each name once), without quotes
// and with its qualifier as written: "public.orders".
//
// Analyze gives only what it is sure of. A statement whose shape it does
// not follow (a construct it does not know, a text cut short, a string
// whose end PostgreSQL and MySQL would see at different places) gets its
// Operation only, or nothing when even that is unclear. Summary is left
// empty for statements whose targets Analyze does not read (SHOW, GRANT,
// VACUUM, ...): the span name then falls back to the operation.
func Analyze(text string) Statement {
	return analyze(text, readBoth)
}

func analyze(text string, rs readings) Statement {
	a := analyzer{text: text, lex: newLexer(text, rs)}
	a.advance()
	op := a.statement()
	if !a.atEnd() {
		a.unsure = true
		a.skipToEnd()
	}
	for a.isPunct(';') {
		a.advance()
	}
	if a.tok.kind != tEOF || op == kwNone {
		return Statement{} // several statements, or none known
	}
	st := Statement{Operation: op.name()}
	if a.unsure || a.lex.mixed || a.lex.open || a.noSummary {
		return st
	}
	st.Summary = a.sum.string()
	if a.coll.state == collOne && !a.noCollection {
		st.Collection = a.coll.string(st.Summary)
	}
	return st
}

// analyzer reads one statement, recursively, one token ahead.
type analyzer struct {
	text   string
	lex    lexer
	tok    token // the current token
	prev   token // the one before it
	peeked bool
	ahead  token // the one after it, once peeked

	nest         int
	unsure       bool // the shape is not followed: give the operation only
	noSummary    bool // a statement whose targets are not read
	noCollection bool // a statement whose targets are no collection it works on (EXPLAIN)

	sum  summary
	coll collection
	ctes [8]token // names a WITH defines (single words or quoted names)
	nCTE int
}

func (a *analyzer) advance() {
	a.prev = a.tok
	if a.peeked {
		a.tok, a.peeked = a.ahead, false
		return
	}
	a.tok = a.lex.next()
}

func (a *analyzer) peek() token {
	if !a.peeked {
		a.ahead, a.peeked = a.lex.next(), true
	}
	return a.ahead
}

func (a *analyzer) isKw(k keyword) bool { return a.tok.kind == tWord && a.tok.kw == k }

func (a *analyzer) isPunct(c byte) bool {
	return a.tok.kind == tPunct && a.text[a.tok.start] == c && a.tok.end == a.tok.start+1
}

// atEnd says whether the statement ends here.
func (a *analyzer) atEnd() bool { return a.tok.kind == tEOF || a.isPunct(';') }

// skip consumes the current token if it is the keyword k.
func (a *analyzer) skip(k keyword) bool {
	if a.isKw(k) {
		a.advance()
		return true
	}
	return false
}

// expect consumes the punctuation c, or marks the statement not followed.
func (a *analyzer) expect(c byte) bool {
	if a.isPunct(c) {
		a.advance()
		return true
	}
	a.unsure = true
	return false
}

func (a *analyzer) enter() bool {
	if a.nest >= maxNest {
		a.unsure = true
		return false
	}
	a.nest++
	return true
}

func (a *analyzer) leave() { a.nest-- }

// statement reads one statement or query and returns its operation.
func (a *analyzer) statement() keyword {
	if !a.enter() {
		return kwNone
	}
	defer a.leave()
	if a.isPunct('(') { // (SELECT ...) UNION (SELECT ...)
		a.advance()
		op := a.statement()
		if a.expect(')') {
			a.queryRest()
		}
		return op
	}
	if a.tok.kind != tWord || !a.tok.kw.is(fStatement) {
		return kwNone
	}
	op := a.tok.kw
	switch op {
	case kwWith:
		return a.with()
	case kwSelect:
		a.query()
	case kwValues:
		a.operation(a.tok)
		a.advance()
		a.queryRest()
	case kwInsert, kwReplace:
		a.insert()
	case kwUpdate:
		a.update()
	case kwDelete:
		a.delete()
	case kwMerge:
		a.merge()
	case kwCreate, kwAlter, kwDrop:
		a.definition()
	case kwTruncate:
		a.truncate()
	case kwExplain:
		a.explain()
	case kwCopy:
		a.copy()
	case kwCall, kwUse:
		a.operation(a.tok)
		a.advance()
		a.name(false)
		a.skipStatement()
	case kwStart:
		if a.peek().kind != tWord || a.peek().kw != kwTransaction {
			a.noSummary = true
			a.skipStatement()
			break
		}
		a.operation(a.tok, a.peek())
		a.skipStatement()
	case kwSet:
		// SET @a = (SELECT ...) reads a table, but works on a variable.
		a.operation(a.tok)
		a.noCollection = true
		a.advance()
		a.scanExpr(0)
	case kwBegin, kwCommit, kwEnd, kwRollback, kwAbort, kwSavepoint, kwRelease,
		kwReset, kwDiscard, kwCheckpoint, kwDeallocate, kwUnlock:
		a.operation(a.tok)
		a.skipStatement()
	default:
		a.noSummary = true
		a.skipStatement()
	}
	return op
}

// with reads WITH name AS (query), ... and the main statement.
func (a *analyzer) with() keyword {
	a.advance()
	a.skip(kwRecursive)
	for {
		if !a.isName() {
			a.unsure = true
			return kwNone
		}
		if a.nCTE < len(a.ctes) && a.tok.end-a.tok.start < maxCTEName {
			a.ctes[a.nCTE] = a.tok
			a.nCTE++
		} else {
			a.noSummary = true // a name it cannot remember might be taken for a table
		}
		a.advance()
		if a.isPunct('(') {
			a.skipParens()
		}
		if !a.skip(kwAs) {
			a.unsure = true
			return kwNone
		}
		if a.skip(kwNot) && !a.skip(kwMaterialized) {
			a.unsure = true
			return kwNone
		}
		a.skip(kwMaterialized)
		if !a.expect('(') {
			return kwNone
		}
		a.statement()
		if !a.expect(')') {
			return kwNone
		}
		if !a.isPunct(',') {
			break
		}
		a.advance()
	}
	return a.statement()
}

// query reads SELECT ... and what follows it at its level.
func (a *analyzer) query() {
	a.operation(a.tok)
	a.advance()
	a.queryRest()
}

// queryRest reads the clauses of a query after its SELECT or VALUES: the
// FROM list, subqueries, set operations.
func (a *analyzer) queryRest() {
	for !a.unsure {
		a.scanExpr(stopFrom | stopInto | stopSetOp)
		switch {
		case a.isKw(kwFrom):
			a.advance()
			a.tableList()
		case a.isKw(kwInto):
			a.selectInto()
		case a.isSetOp():
			a.advance()
			if !a.skip(kwAll) {
				a.skip(kwDistinct)
			}
			switch {
			case a.isKw(kwSelect):
				a.query()
			case a.isKw(kwValues):
				a.operation(a.tok)
				a.advance()
			case a.isPunct('('):
				a.parens()
			default:
				a.unsure = true
			}
		default:
			return
		}
	}
}

func (a *analyzer) isSetOp() bool {
	switch {
	case a.tok.kind != tWord:
		return false
	case a.tok.kw == kwUnion, a.tok.kw == kwIntersect, a.tok.kw == kwExcept, a.tok.kw == kwMinus:
		return true
	}
	return false
}

// selectInto reads SELECT ... INTO: variables are fine; a table
// (PostgreSQL's SELECT INTO creates one) or a file is not followed.
func (a *analyzer) selectInto() {
	a.advance()
	for a.tok.kind == tParam {
		a.advance()
		if !a.isPunct(',') {
			return
		}
		a.advance()
	}
	a.unsure = true
}

// Stop sets of scanExpr.
const (
	stopFrom  = 1 << iota // FROM, except in IS DISTINCT FROM
	stopInto              // INTO
	stopSetOp             // UNION, INTERSECT, EXCEPT
	stopJoin              // a comma, a join, a clause: the end of a join condition
)

// scanExpr skips an expression list, following the subqueries in it,
// up to the end of its level (a ")", ";" or the end) or a word of stop.
func (a *analyzer) scanExpr(stop int) {
	for !a.unsure {
		t := a.tok
		switch t.kind {
		case tEOF:
			return
		case tPunct:
			switch a.text[t.start] {
			case ';', ')':
				if t.end == t.start+1 {
					return
				}
			case '(':
				a.parens()
				continue
			case ',':
				if stop&stopJoin != 0 {
					return
				}
			}
		case tWord:
			if a.stops(t, stop) {
				return
			}
			if t.kw == kwSelect { // INSERT ... SELECT, CREATE TABLE ... AS SELECT
				a.query()
				continue
			}
		}
		a.advance()
	}
}

func (a *analyzer) stops(t token, stop int) bool {
	switch {
	case t.kw == kwNone:
		return false
	case stop&stopFrom != 0 && t.kw == kwFrom:
		return !(a.prev.kind == tWord && a.prev.kw == kwDistinct)
	case stop&stopInto != 0 && t.kw == kwInto:
		return true
	case stop&stopSetOp != 0 && a.isSetOp():
		return true
	case stop&stopJoin != 0 && (t.kw.is(fClause) || t.kw.is(fJoin)):
		// LEFT(...) and RIGHT(...) are functions.
		return !((t.kw == kwLeft || t.kw == kwRight) && a.peekPunct('('))
	}
	return false
}

func (a *analyzer) peekPunct(c byte) bool {
	p := a.peek()
	return p.kind == tPunct && a.text[p.start] == c
}

// parens reads a parenthesised part: a subquery, or an expression whose
// subqueries it follows.
func (a *analyzer) parens() {
	a.advance()
	if !a.enter() {
		return
	}
	defer a.leave()
	if a.startsQuery() {
		a.statement()
	} else {
		a.scanExpr(0)
	}
	a.expect(')')
}

func (a *analyzer) startsQuery() bool {
	return a.tok.kind == tWord && (a.tok.kw == kwSelect || a.tok.kw == kwWith || a.tok.kw == kwValues)
}

// skipParens skips a parenthesised list that holds no query: column
// names, index hints.
func (a *analyzer) skipParens() {
	depth := 0
	for !a.atEnd() {
		switch {
		case a.isPunct('('):
			depth++
		case a.isPunct(')'):
			depth--
		}
		a.advance()
		if depth == 0 {
			return
		}
	}
	a.unsure = true
}

// skipStatement skips to the end of the statement, across parentheses:
// to a ";", or a ")" that closes the statement's own level.
func (a *analyzer) skipStatement() {
	depth := 0
	for !a.atEnd() {
		switch {
		case a.isPunct('('):
			depth++
		case a.isPunct(')'):
			if depth == 0 {
				return
			}
			depth--
		}
		a.advance()
	}
}

// skipToEnd skips what is left of a statement not followed, to a ";"
// outside parentheses; stray ")" do not count.
func (a *analyzer) skipToEnd() {
	depth := 0
	for a.tok.kind != tEOF && !(depth == 0 && a.isPunct(';')) {
		switch {
		case a.isPunct('('):
			depth++
		case a.isPunct(')') && depth > 0:
			depth--
		}
		a.advance()
	}
}

// tableList reads table references separated by commas and joins.
func (a *analyzer) tableList() {
	if !a.tableRef() {
		return
	}
	for !a.unsure {
		switch {
		case a.isPunct(','):
			a.advance()
			a.tableRef()
		case a.tok.kind == tWord && a.tok.kw.is(fJoin):
			if a.join() {
				a.tableRef()
			}
		case a.isKw(kwOn):
			a.advance()
			a.scanExpr(stopJoin)
		case a.isKw(kwUsing) && a.peekPunct('('):
			a.advance()
			a.skipParens()
		default:
			// What may follow a table list: the statement's end or a
			// clause. Anything else is a shape not followed.
			if !a.atEnd() && !a.isPunct(')') && !a.isKw(kwUsing) && !a.isSetOp() &&
				!(a.tok.kind == tWord && (a.tok.kw.is(fClause) || a.tok.kw.is(fClauseEnd))) {
				a.unsure = true
			}
			return
		}
	}
}

// join reads [NATURAL] [INNER | CROSS | LEFT | RIGHT | FULL] [OUTER] JOIN.
func (a *analyzer) join() bool {
	for a.tok.kind == tWord && (a.tok.kw.is(fJoin) || a.tok.kw == kwOuter) {
		k := a.tok.kw
		a.advance()
		if k == kwJoin || k == kwStraightJoin {
			return true
		}
	}
	a.unsure = true
	return false
}

// tableRef reads one table reference: a table, a subquery, a table
// function or a parenthesised join, with its alias.
func (a *analyzer) tableRef() bool {
	for a.skip(kwLateral) || a.skip(kwOnly) {
	}
	switch {
	case a.isPunct('('):
		a.advance()
		if !a.enter() {
			return false
		}
		if a.startsQuery() {
			a.statement()
		} else {
			a.tableList()
		}
		a.leave()
		if !a.expect(')') {
			return false
		}
	case a.isName():
		n := a.qualifiedName()
		if n.n == 0 {
			return false
		}
		if a.isPunct('(') { // a table function: generate_series(1, 10)
			a.parens()
		} else {
			a.target(n, true)
			if a.isPunct('*') { // PostgreSQL: the table and its children
				a.advance()
			}
			a.tableHints()
		}
	default:
		a.unsure = true
		return false
	}
	a.alias()
	a.tableHints()
	return !a.unsure
}

// alias reads [AS] alias [(columns)].
func (a *analyzer) alias() {
	switch {
	case a.isKw(kwAs):
		a.advance()
		if !a.isName() {
			a.unsure = true
			return
		}
		a.advance()
	case a.tok.kind == tDQ, a.tok.kind == tQuoted, a.tok.kind == tWord && !a.tok.kw.is(fNotAlias):
		a.advance()
	default:
		return
	}
	if a.isPunct('(') {
		a.skipParens()
	}
}

// tableHints skips MySQL's PARTITION (p), USE|FORCE|IGNORE INDEX (i) and
// the TABLESAMPLE clause.
func (a *analyzer) tableHints() {
	for !a.unsure {
		switch {
		case a.isKw(kwPartition):
			a.advance()
			a.skipParens()
		case a.isKw(kwUse), a.isKw(kwForce), a.isKw(kwIgnore) && (a.peek().kw == kwIndex || a.peek().kw == kwKey):
			for !a.atEnd() && !a.isPunct('(') {
				a.advance()
			}
			a.skipParens()
		case a.isKw(kwTablesample):
			a.advance()
			a.advance() // the method
			a.skipParens()
			if a.tok.kind == tWord && equalUpper(a.text[a.tok.start:a.tok.end], "REPEATABLE") {
				a.advance()
				a.skipParens()
			}
		default:
			return
		}
	}
}

// isName says whether the current token may be (the first part of) a name.
func (a *analyzer) isName() bool {
	switch a.tok.kind {
	case tDQ, tQuoted:
		return true
	case tWord:
		return !a.tok.kw.is(fNotAlias)
	}
	return false
}

// qname is a name of up to four parts: db.schema.table.
type qname struct {
	parts [4]token
	n     int
}

// qualifiedName reads name(.name)*.
func (a *analyzer) qualifiedName() qname {
	var q qname
	for {
		if !a.isName() || q.n == len(q.parts) {
			a.unsure = true
			return qname{}
		}
		q.parts[q.n] = a.tok
		q.n++
		a.advance()
		if !a.isPunct('.') {
			return q
		}
		a.advance()
	}
}

// name reads the name a statement works on (CALL p, USE db) as a target.
func (a *analyzer) name(collection bool) bool {
	if !a.isName() {
		a.unsure = true
		return false
	}
	n := a.qualifiedName()
	if n.n == 0 {
		return false
	}
	a.target(n, collection)
	return true
}

// insert reads INSERT [INTO] t [(cols)] VALUES | SELECT | SET | DEFAULT VALUES.
func (a *analyzer) insert() {
	a.operation(a.tok)
	a.advance()
	for a.skip(kwLowPriority) || a.skip(kwDelayed) || a.skip(kwHighPriority) || a.skip(kwIgnore) {
	}
	a.skip(kwInto)
	if !a.name(true) {
		return
	}
	if a.isKw(kwPartition) {
		a.advance()
		a.skipParens()
	}
	if a.skip(kwAs) { // PostgreSQL: INSERT INTO t AS alias
		if !a.isName() {
			a.unsure = true
			return
		}
		a.advance()
	}
	if a.isPunct('(') {
		if p := a.peek(); p.kind == tWord && (p.kw == kwSelect || p.kw == kwWith) {
			a.parens() // INSERT INTO t (SELECT ...)
			a.scanExpr(0)
			return
		}
		a.skipParens()
	}
	if a.skip(kwOverriding) { // OVERRIDING SYSTEM VALUE
		a.advance()
		a.advance()
	}
	switch {
	case a.isKw(kwValues), a.isKw(kwValue), a.isKw(kwSet):
		a.advance()
	case a.isKw(kwDefault) && a.peek().kw == kwValues:
		a.advance()
		a.advance()
	case a.isKw(kwSelect), a.isKw(kwWith), a.isPunct('('):
		a.statement()
	default:
		a.unsure = true
		return
	}
	a.scanExpr(0) // rows, ON CONFLICT, ON DUPLICATE KEY UPDATE, RETURNING
}

// update reads UPDATE t [, u | JOIN u] SET ... [FROM list] ...
func (a *analyzer) update() {
	a.operation(a.tok)
	a.advance()
	for a.skip(kwLowPriority) || a.skip(kwIgnore) {
	}
	a.tableList()
	if a.unsure || !a.skip(kwSet) {
		a.unsure = true
		return
	}
	a.scanExpr(stopFrom)
	if a.skip(kwFrom) {
		a.tableList()
	}
	a.scanExpr(0)
}

// delete reads DELETE FROM t [USING list] ...; MySQL's DELETE t1 FROM ...
// is not followed.
func (a *analyzer) delete() {
	a.operation(a.tok)
	a.advance()
	for a.skip(kwLowPriority) || a.skip(kwQuick) || a.skip(kwIgnore) {
	}
	if !a.skip(kwFrom) {
		a.unsure = true
		return
	}
	a.tableList()
	if a.skip(kwUsing) {
		a.tableList()
	}
	a.scanExpr(0)
}

// merge reads MERGE INTO t USING source ON ... WHEN ...
func (a *analyzer) merge() {
	a.operation(a.tok)
	a.advance()
	a.skip(kwInto)
	if !a.tableRef() {
		return
	}
	if !a.skip(kwUsing) {
		a.unsure = true
		return
	}
	if !a.tableRef() || !a.skip(kwOn) {
		a.unsure = true
		return
	}
	a.scanExpr(0)
}

// definition reads CREATE, ALTER and DROP of the objects it knows:
// CREATE TABLE t, DROP VIEW a, b, ALTER TABLE ONLY t, CREATE INDEX i ON t.
func (a *analyzer) definition() {
	verb := a.tok
	a.advance()
	for {
		switch {
		case a.isKw(kwOr) && a.peek().kw == kwReplace:
			a.advance()
			a.advance()
			continue
		case a.skip(kwTemp), a.skip(kwTemporary), a.skip(kwUnlogged), a.skip(kwGlobal),
			a.skip(kwLocal), a.skip(kwUnique), a.skip(kwRecursive):
			continue
		}
		break
	}
	kind := a.tok
	if kind.kind != tWord {
		a.noSummary = true
		a.skipStatement()
		return
	}
	var kindWords [2]token
	kindWords[0] = kind
	nWords := 1
	if kind.kw == kwMaterialized && a.peek().kw == kwView {
		kindWords[1] = a.peek()
		nWords = 2
		a.advance()
	}
	switch kind.kw {
	case kwMaterialized:
		if nWords == 2 {
			break
		}
		a.noSummary = true
		a.skipStatement()
		return
	case kwTable, kwView, kwIndex, kwSequence, kwSchema, kwDatabase,
		kwFunction, kwProcedure, kwTrigger, kwType, kwExtension:
	default:
		a.noSummary = true
		a.skipStatement()
		return
	}
	a.operation(verb, kindWords[:nWords]...)
	a.advance()
	for a.skip(kwConcurrently) || a.skip(kwIf) || a.skip(kwNot) || a.skip(kwExists) || a.skip(kwOnly) {
	}
	relation := kind.kw == kwTable || kind.kw == kwView || kind.kw == kwMaterialized
	switch {
	case kind.kw == kwIndex && verb.kw == kwCreate:
		if !a.isKw(kwOn) { // the name is optional
			a.name(false)
		}
		a.skipStatement()
	case verb.kw == kwDrop:
		for a.name(relation) && a.isPunct(',') {
			a.advance()
		}
		a.skipStatement()
	case relation && verb.kw == kwCreate:
		// Columns, options, and AS SELECT ... whose tables are read.
		if a.name(true) {
			a.scanExpr(0)
		}
	case kind.kw == kwFunction || kind.kw == kwProcedure || kind.kw == kwTrigger:
		// The body may hold statements and semicolons of its own: the
		// rest of the text is the body.
		a.name(false)
		for a.tok.kind != tEOF {
			a.advance()
		}
	default:
		a.name(relation)
		a.skipStatement()
	}
}

// truncate reads TRUNCATE [TABLE] [ONLY] t [, u].
func (a *analyzer) truncate() {
	if a.peek().kw == kwTable {
		a.operation(a.tok, a.peek())
		a.advance()
	} else {
		a.operation(a.tok)
	}
	a.advance()
	for {
		a.skip(kwOnly)
		if !a.name(true) {
			return
		}
		if a.isPunct('*') {
			a.advance()
		}
		if !a.isPunct(',') {
			break
		}
		a.advance()
	}
	a.skipStatement()
}

// explain reads EXPLAIN [options] statement.
func (a *analyzer) explain() {
	a.operation(a.tok)
	a.noCollection = true
	a.advance()
	for !a.unsure {
		switch {
		case a.isPunct('(') && a.peek().kw != kwSelect && a.peek().kw != kwWith:
			a.skipParens() // PostgreSQL: EXPLAIN (ANALYZE, BUFFERS)
		case a.isKw(kwAnalyze):
			a.advance()
		case a.tok.kind == tWord && a.tok.kw == kwNone && isExplainOption(a.text[a.tok.start:a.tok.end]):
			a.advance()
			if a.isPunct('=') { // MySQL: FORMAT=JSON
				a.advance()
				a.advance()
			}
		default:
			if a.isPunct('(') || a.tok.kind == tWord && a.tok.kw.is(fStatement) &&
				a.tok.kw != kwExplain && a.tok.kw != kwDesc && a.tok.kw != kwDescribe {
				if a.statement() == kwNone {
					a.unsure = true
				}
				return
			}
			a.unsure = true // MySQL: EXPLAIN t describes a table
			return
		}
	}
}

func isExplainOption(w string) bool {
	for _, o := range [...]string{"VERBOSE", "EXTENDED", "PARTITIONS", "FORMAT"} {
		if equalUpper(w, o) {
			return true
		}
	}
	return false
}

// copy reads COPY t [(cols)] FROM|TO ... and COPY (query) TO ...
func (a *analyzer) copy() {
	a.operation(a.tok)
	a.advance()
	if a.isPunct('(') {
		a.parens()
	} else {
		a.name(true)
	}
	a.skipStatement()
}

// operation adds an operation of one or more words to the summary:
// "SELECT", "CREATE TABLE".
func (a *analyzer) operation(first token, more ...token) {
	a.sum.begin()
	a.sum.write(a.text[first.start:first.end])
	for _, w := range more {
		a.sum.write(" ")
		a.sum.write(a.text[w.start:w.end])
	}
	a.sum.end()
}

// target adds a table (or another object) to the summary, as written, and
// counts it among the statement's collections.
func (a *analyzer) target(n qname, collection bool) {
	if n.n == 1 && (a.isCTE(n.parts[0]) || isDual(a.text, n.parts[0])) {
		return
	}
	a.sum.begin()
	for i := 0; i < n.n; i++ {
		if i > 0 {
			a.sum.write(".")
		}
		p := n.parts[i]
		a.sum.write(a.text[p.start:p.end])
	}
	a.sum.end()
	if collection {
		a.coll.add(a.text, n)
	}
}

// isDual says whether t is MySQL's DUAL, a table that is none.
func isDual(text string, t token) bool {
	return t.kind == tWord && equalUpper(text[t.start:t.end], "DUAL")
}

// maxCTEName bounds the names of a WITH's queries, so that isCTE can
// compare them on the stack.
const maxCTEName = 128

// isCTE says whether t names a query the statement's WITH defines.
func (a *analyzer) isCTE(t token) bool {
	var buf, cbuf [maxCTEName]byte
	name, ok := unquote(buf[:0], a.text, t)
	if !ok {
		return false
	}
	for _, c := range a.ctes[:a.nCTE] {
		cname, ok := unquote(cbuf[:0], a.text, c)
		if ok && strings.EqualFold(string(name), string(cname)) {
			return true
		}
	}
	return false
}

// summary builds db.query.summary in place, part by part.
type summary struct {
	buf   [4 * MaxSummaryLen]byte
	n     int
	chars int
	start int // where the open part starts
	full  bool
	over  bool // the open part does not fit
}

func (s *summary) begin() {
	if s.full {
		return
	}
	s.start, s.over = s.n, false
	if s.n > 0 {
		s.write(" ")
	}
}

func (s *summary) write(p string) {
	if s.full || s.over {
		return
	}
	if s.n+len(p) > len(s.buf) {
		s.over = true
		return
	}
	s.n += copy(s.buf[s.n:], p)
}

// end closes a part; a part that does not fit is dropped and ends the
// summary, which keeps the order of what it holds. Parts are separated by
// a space, so their lengths in characters add up.
func (s *summary) end() {
	if s.full {
		return
	}
	chars := s.chars + utf8.RuneCount(s.buf[s.start:s.n])
	if s.over || chars > MaxSummaryLen {
		s.n, s.full = s.start, true
		return
	}
	s.chars = chars
}

func (s *summary) string() string { return string(s.buf[:s.n]) }

// collection tells whether a statement names exactly one table.
type collection struct {
	name  [256]byte // the first table, unquoted
	n     int
	state uint8
}

const (
	collNone = iota
	collOne
	collMany
)

func (c *collection) add(text string, q qname) {
	var buf [256]byte
	name, ok := unquoteName(buf[:0], text, q)
	switch {
	case !ok:
		c.state = collMany // too long to compare: not told
	case c.state == collNone:
		c.n = copy(c.name[:], name)
		c.state = collOne
	case c.state == collOne && string(c.name[:c.n]) != string(name):
		c.state = collMany
	}
}

// string returns the table's name, sharing the summary's bytes when it is
// written there as it is.
func (c *collection) string(summary string) string {
	name := c.name[:c.n]
	if i := strings.Index(summary, string(name)); i >= 0 {
		return summary[i : i+len(name)]
	}
	return string(name)
}

// unquoteName appends the parts of q to dst without their quotes, joined
// by dots; false when it does not fit in dst's capacity.
func unquoteName(dst []byte, text string, q qname) ([]byte, bool) {
	for i := 0; i < q.n; i++ {
		if i > 0 {
			dst = append(dst, '.')
		}
		var ok bool
		if dst, ok = unquote(dst, text, q.parts[i]); !ok {
			return dst, false
		}
	}
	return dst, true
}

// unquote appends the name t spells, without quotes, to dst; false when it
// does not fit in dst's capacity.
func unquote(dst []byte, text string, t token) ([]byte, bool) {
	s := text[t.start:t.end]
	if t.kind == tDQ || t.kind == tQuoted {
		q := s[0]
		s = s[1:]
		if len(s) > 0 && s[len(s)-1] == q {
			s = s[:len(s)-1]
		}
		for i := 0; i < len(s); i++ {
			if len(dst) == cap(dst) {
				return dst, false
			}
			dst = append(dst, s[i])
			if s[i] == q && i+1 < len(s) && s[i+1] == q {
				i++
			}
		}
		return dst, true
	}
	if len(dst)+len(s) > cap(dst) {
		return dst, false
	}
	return append(dst, s...), true
}
