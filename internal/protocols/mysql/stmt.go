package mysql

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/sqlquery"
)

// statement is what the text of a statement gives a record. It never
// holds the text itself: only the text with its literals replaced.
type statement struct {
	text string // db.query.text: literals replaced by "?"; "" when cut or not kept
	sqlquery.Statement
	// mayUse says the text may hold a USE statement among others, so
	// that running it may change the current database.
	mayUse bool
}

// unknownStatement describes a text that was not seen whole and tells
// nothing about it.
var unknownStatement = &statement{}

// statement makes what a record needs of a statement text. whole says
// the text was seen to its end: the text of a cut one is not reported
// (its literal may be cut in the middle, its tables may be past the cut),
// and only its leading operation is.
func (c *Conn) statement(text []byte, whole bool) *statement {
	if !whole {
		c.fail(nil, reasonTruncated)
		op := c.dialect.Analyze(validText(text)).Operation
		if op == "" || !leadsWith(text, op) {
			return unknownStatement
		}
		return &statement{Statement: sqlquery.Statement{Operation: op}, mayUse: true}
	}
	if st := c.queries.get(text, c.dialect); st != nil {
		return st
	}
	s := validText(text)
	st := &statement{Statement: c.dialect.Analyze(s)}
	if bytes.IndexByte(text, ';') >= 0 {
		st.mayUse = c.selectsDatabase(s)
	}
	if c.opts.QueryText {
		st.text = c.dialect.Sanitize(s)
	}
	c.queries.put(text, c.dialect, st)
	return st
}

// selectsDatabase says a text of several statements has a USE among them.
func (c *Conn) selectsDatabase(s string) bool {
	parts := c.dialect.Split(s)
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if leadsWith([]byte(p), "USE") && (len(p) == 3 || !identByte(p[3])) {
			return true
		}
	}
	return false
}

// leadsWith says the text starts with the keyword op, after blanks.
func leadsWith(text []byte, op string) bool {
	t := bytes.TrimLeft(text, " \t\r\n(")
	return len(t) >= len(op) && strings.EqualFold(string(t[:len(op)]), op)
}

func identByte(b byte) bool {
	return b == '_' || b == '$' || b >= 0x80 || b >= '0' && b <= '9' || (b|0x20) >= 'a' && (b|0x20) <= 'z'
}

// useStatement reads a text that is exactly one USE statement and returns
// the database it names.
func useStatement(text []byte) ([]byte, bool) {
	t := bytes.TrimSpace(text)
	t = bytes.TrimSpace(bytes.TrimSuffix(t, []byte(";")))
	if len(t) < 5 || !strings.EqualFold(string(t[:3]), "use") || (t[3] != ' ' && t[3] != '\t' && t[3] != '\n' && t[3] != '\r') {
		return nil, false
	}
	name := bytes.TrimSpace(t[4:])
	if len(name) >= 2 && name[0] == '`' && name[len(name)-1] == '`' {
		inner := name[1 : len(name)-1]
		if bytes.Count(inner, []byte("`"))%2 != 0 || bytes.Contains(bytes.ReplaceAll(inner, []byte("``"), nil), []byte("`")) {
			return nil, false
		}
		if bytes.Contains(inner, []byte("``")) {
			return bytes.ReplaceAll(inner, []byte("``"), []byte("`")), true
		}
		return inner, len(inner) > 0
	}
	for _, b := range name {
		if !identByte(b) {
			return nil, false
		}
	}
	return name, len(name) > 0
}

// validText makes b a string that is valid UTF-8, as attributes must be.
func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// queryCache remembers the statements made of the last texts a
// connection sent, so that a repeated text is analysed once.
type queryCache struct {
	raw     [8]string // the texts as sent; kept in memory only, never reported
	st      [8]*statement
	next    int
	dialect sqlquery.Dialect // how the texts were read
}

// maxCachedText is the longest text the cache keeps.
const maxCachedText = 1 << 10

func (q *queryCache) get(text []byte, d sqlquery.Dialect) *statement {
	if d != q.dialect {
		*q = queryCache{dialect: d}
		return nil
	}
	for i := range q.raw {
		if q.st[i] != nil && q.raw[i] == string(text) {
			return q.st[i]
		}
	}
	return nil
}

func (q *queryCache) put(text []byte, d sqlquery.Dialect, st *statement) {
	if len(text) > maxCachedText || d != q.dialect {
		return
	}
	q.raw[q.next], q.st[q.next] = string(text), st
	q.next = (q.next + 1) % len(q.raw)
}

// stmtTable maps the ids of a connection's prepared statements to what
// their texts said. It holds at most maxStatements statements and
// maxStmtBytes of their text, forgetting the oldest first.
type stmtTable struct {
	m     map[uint32]*statement
	order []uint32 // ids in the order they were prepared
	bytes int
	last  uint32 // the id prepared last
}

func (t *stmtTable) get(id uint32) *statement { return t.m[id] }

func (t *stmtTable) put(id uint32, st *statement) {
	if t.m == nil {
		t.m = make(map[uint32]*statement)
	}
	t.last = id
	if old, ok := t.m[id]; ok {
		t.bytes -= len(old.text)
	} else {
		t.order = append(t.order, id)
	}
	t.m[id] = st
	t.bytes += len(st.text)
	for len(t.m) > maxStatements || t.bytes > maxStmtBytes {
		t.evict()
	}
	if len(t.order) > 2*maxStatements {
		t.compact()
	}
}

// evict forgets the oldest statement.
func (t *stmtTable) evict() {
	for len(t.order) > 0 {
		id := t.order[0]
		t.order = t.order[1:]
		if st, ok := t.m[id]; ok {
			t.bytes -= len(st.text)
			delete(t.m, id)
			return
		}
	}
}

// compact drops the ids of closed statements from the order.
func (t *stmtTable) compact() {
	kept := t.order[:0]
	for _, id := range t.order {
		if _, ok := t.m[id]; ok {
			kept = append(kept, id)
		}
	}
	t.order = append([]uint32(nil), kept...)
}

func (t *stmtTable) remove(id uint32) {
	if st, ok := t.m[id]; ok {
		t.bytes -= len(st.text)
		delete(t.m, id)
	}
}

func (t *stmtTable) clear() {
	clear(t.m)
	t.order, t.bytes, t.last = t.order[:0], 0, 0
}
