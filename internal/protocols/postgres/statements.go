package postgres

// analysis is what the text of a Query or of a prepared statement says,
// made once per distinct text on a connection.
type analysis struct {
	operation, collection, summary string
	text                           string // sanitized, when Options.QueryText
	// statements counts the statements of the text (a simple Query may
	// hold several; a prepared statement holds one).
	statements int
	// clipped: the text was not seen whole. Only the operation is kept
	// then, and only when the text holds one statement for sure.
	clipped bool
}

// analyze reads text, a Query's or a Parse's. clipped says text is only a
// prefix of the statement; single says it holds one statement whatever its
// semicolons say (Parse).
//
// A text of several statements in one Query message is one operation of
// the semantic conventions' kind "batch": two or more operations submitted
// in a single protocol message. It becomes one record whose operation and
// summary are the statements' own prefixed by "BATCH " when all statements
// share them, else "BATCH", whose collection is the statements' one when
// they share it, and whose text is the whole text.
func analyze(text []byte, clipped, single, withText bool) analysis {
	if clipped {
		a := analysis{clipped: true, statements: 1}
		if single || len(splitStatements(text, nil)) == 1 {
			a.operation = analyzeSQL(string(text)).Operation
		}
		return a
	}
	var spans [maxBatch + 1][2]int
	parts := splitStatements(text, spans[:0])
	if single && len(parts) > 1 {
		parts = [][2]int{{0, len(text)}}
	}
	a := analysis{statements: len(parts)}
	if len(parts) > maxBatch {
		// More statements than are read one by one: a batch of unknown
		// shape.
		a.operation, a.summary = "BATCH", "BATCH"
	} else {
		for i, p := range parts {
			st := analyzeSQL(string(text[p[0]:p[1]]))
			if i == 0 {
				a.operation, a.collection, a.summary = st.Operation, st.Collection, st.Summary
				continue
			}
			if st.Operation != a.operation {
				a.operation = ""
			}
			if st.Collection != a.collection {
				a.collection = ""
			}
			if st.Summary != a.summary {
				a.summary = ""
			}
		}
		if len(parts) > 1 {
			a.operation = batchName(a.operation)
			a.summary = batchName(a.summary)
		}
	}
	if withText {
		a.text = sanitize(string(text))
	}
	return a
}

// maxBatch bounds the statements of one Query read one by one.
const maxBatch = 64

// batchName is a batch's operation or summary: the statements' shared
// one prefixed by "BATCH ", or "BATCH" when they differ.
func batchName(shared string) string {
	if shared == "" {
		return "BATCH"
	}
	return "BATCH " + shared
}

// splitStatements appends to spans the start and end of each non-empty
// statement of text, as the server's parser splits a Query: at semicolons
// outside quotes, dollar quotes and comments. It stops after maxBatch+1.
func splitStatements(text []byte, spans [][2]int) [][2]int {
	start := 0
	blank := true // only blanks and comments since start
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == ';':
			if !blank {
				spans = append(spans, [2]int{start, i})
				if len(spans) > maxBatch {
					return spans
				}
			}
			start, blank = i+1, true
			i++
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		case c == '-' && i+1 < len(text) && text[i+1] == '-':
			for i < len(text) && text[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			i = skipBlockComment(text, i)
			continue
		}
		blank = false
		switch {
		case c == '\'':
			i = skipQuoted(text, i, '\'', escapeString(text, i))
		case c == '"':
			i = skipQuoted(text, i, '"', false)
		case c == '$':
			i = skipDollar(text, i)
		case identByte(c):
			for i < len(text) && (identByte(text[i]) || text[i] == '$') {
				i++
			}
		default:
			i++
		}
	}
	if !blank {
		spans = append(spans, [2]int{start, len(text)})
	}
	return spans
}

// identByte says whether c may be part of an identifier or keyword.
func identByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

// escapeString says whether the quote at text[i] opens an escape string
// (E'...'), in which a backslash escapes the next byte.
func escapeString(text []byte, i int) bool {
	if i == 0 || text[i-1] != 'E' && text[i-1] != 'e' {
		return false
	}
	return i == 1 || !identByte(text[i-2])
}

// skipQuoted returns the index after the string or quoted identifier that
// opens at text[i]; a doubled quote stands for one. An unterminated one
// runs to the end.
func skipQuoted(text []byte, i int, q byte, backslash bool) int {
	for i++; i < len(text); i++ {
		switch text[i] {
		case '\\':
			if backslash {
				i++
			}
		case q:
			if i+1 < len(text) && text[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(text)
}

// skipBlockComment returns the index after the comment that opens at
// text[i]; block comments nest.
func skipBlockComment(text []byte, i int) int {
	depth := 0
	for i < len(text) {
		switch {
		case text[i] == '/' && i+1 < len(text) && text[i+1] == '*':
			depth++
			i += 2
		case text[i] == '*' && i+1 < len(text) && text[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(text)
}

// skipDollar returns the index after the dollar-quoted string that opens
// at text[i] ($$...$$, $tag$...$tag$), or after the '$' of a parameter
// ($1) or anything else.
func skipDollar(text []byte, i int) int {
	j := i + 1
	for j < len(text) && text[j] != '$' {
		c := text[j]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80 || c >= '0' && c <= '9' && j > i+1) {
			return i + 1
		}
		j++
	}
	if j >= len(text) {
		return i + 1
	}
	tag := text[i : j+1]
	for k := j + 1; k+len(tag) <= len(text); k++ {
		if text[k] == '$' && string(text[k:k+len(tag)]) == string(tag) {
			return k + len(tag)
		}
	}
	return len(text)
}

// textCache remembers the analyses of the last texts a connection sent
// (Query texts, and Parse texts of unnamed statements, which clients send
// again for every execution): a connection tends to repeat a few.
type textCache struct {
	raw  [textCacheSize]string
	an   [textCacheSize]*analysis
	next int
}

const (
	textCacheSize = 8
	maxCachedText = 2 << 10 // longer texts are analysed each time
)

// get returns the analysis of text, from the cache or made and cached.
func (tc *textCache) get(text []byte, single, withText bool) *analysis {
	for i := range tc.raw {
		if tc.an[i] != nil && tc.raw[i] == string(text) {
			return tc.an[i]
		}
	}
	a := analyze(text, false, single, withText)
	if len(text) > maxCachedText {
		return &a
	}
	i := tc.next
	tc.next = (tc.next + 1) % textCacheSize
	tc.raw[i], tc.an[i] = string(text), &a
	return &a
}

// forget empties the cache.
func (tc *textCache) forget() { *tc = textCache{} }

// statement is a prepared statement a connection made with Parse.
type statement struct {
	an      *analysis
	lastUse uint64
	size    int // bytes held for it
}

// statements maps a connection's prepared statement names to what their
// text says. It holds at most maxStatements of them and maxStatementBytes
// of text; past either, the least recently used are forgotten (an Execute
// of a forgotten one then has no text, as one prepared before the
// receiver started).
type statements struct {
	m     map[string]*statement
	bytes int
	clock uint64
}

const (
	maxStatements     = 256
	maxStatementBytes = 256 << 10
)

// put records that name now stands for a.
func (ss *statements) put(name []byte, a *analysis) {
	if st, ok := ss.m[string(name)]; ok {
		ss.replace(st, a)
		return
	}
	ss.putString(string(name), a)
}

// putString is put with a name that is a string already.
func (ss *statements) putString(name string, a *analysis) {
	if st, ok := ss.m[name]; ok {
		ss.replace(st, a)
		return
	}
	if ss.m == nil {
		ss.m = make(map[string]*statement)
	}
	size := len(name) + statementSize(a)
	for len(ss.m) > 0 && (len(ss.m) >= maxStatements || ss.bytes+size > maxStatementBytes) {
		ss.evict()
	}
	ss.clock++
	ss.m[name] = &statement{an: a, lastUse: ss.clock, size: size}
	ss.bytes += size
}

// replace gives a statement in the map another text, in place: the
// unnamed statement changes at every Parse of it.
func (ss *statements) replace(st *statement, a *analysis) {
	size := st.size - statementSize(st.an) + statementSize(a)
	ss.bytes += size - st.size
	ss.clock++
	st.an, st.size, st.lastUse = a, size, ss.clock
	for ss.bytes > maxStatementBytes && len(ss.m) > 1 {
		ss.evict()
	}
}

// statementSize is what a statement's analysis holds, roughly.
func statementSize(a *analysis) int { return len(a.text) + len(a.summary) + 64 }

// get returns the analysis of the statement name, or nil.
func (ss *statements) get(name []byte) *analysis {
	st, ok := ss.m[string(name)]
	if !ok {
		return nil
	}
	ss.clock++
	st.lastUse = ss.clock
	return st.an
}

// drop forgets the statement name (Close).
func (ss *statements) drop(name []byte) {
	if st, ok := ss.m[string(name)]; ok {
		ss.bytes -= st.size
		delete(ss.m, string(name))
	}
}

// evict forgets the least recently used statement.
func (ss *statements) evict() {
	var oldest string
	var at uint64
	first := true
	for name, st := range ss.m {
		if first || st.lastUse < at {
			oldest, at, first = name, st.lastUse, false
		}
	}
	ss.drop([]byte(oldest))
}

// forget empties the map, keeping its room.
func (ss *statements) forget() {
	clear(ss.m)
	ss.bytes = 0
}
