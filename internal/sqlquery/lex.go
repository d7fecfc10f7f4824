package sqlquery

import "strings"

// The text of a statement does not say which database it was written for,
// and the two this package reads disagree on where some literals and
// comments end:
//
//   - MySQL reads a backslash in '...' and "..." as an escape, so '\'' is
//     one string; PostgreSQL (standard_conforming_strings on, the default
//     since 9.1) reads '\' as a whole string holding a backslash, and only
//     E'...' strings have escapes.
//   - MySQL reads "..." as a string; PostgreSQL as a quoted identifier.
//   - MySQL starts a comment at #; PostgreSQL reads # as an operator.
//   - PostgreSQL nests /* */ comments and has dollar-quoted strings
//     ($$...$$, $tag$...$tag$); MySQL does neither.
//
// The lexer therefore reads every quoted string and comment both ways. Where
// the readings agree, the construct is one token. Where they disagree, the
// text from the construct's start to the first place where both readings
// are back in plain code at the same byte is one region, and that region is
// a literal if either reading found a literal in it (else a comment): the
// reading that replaces more always wins, so no value leaks whichever
// database the text was for.

// readings is a set of the two ways of reading a text.
type readings uint8

const (
	readMySQL    readings = 1 << iota // backslash escapes, "..." strings, # comments, flat /* */
	readPostgres                      // standard strings, "..." identifiers, nested /* */, $$ strings
	readBoth     = readMySQL | readPostgres
)

// kind is the kind of a token.
type kind uint8

const (
	tEOF    kind = iota
	tWord        // an unquoted identifier or keyword
	tQuoted      // a `backtick` quoted identifier
	tDQ          // a "double-quoted" identifier (PostgreSQL, ANSI) or string (MySQL)
	tString      // a string literal of any form, with its prefix (E, N, X, B, U&, _charset)
	tNumber      // a numeric literal, with its sign when the sign is unary
	tParam       // a parameter or variable: $1, ?, :name, @var, @@var
	tPunct       // an operator or punctuation byte; "::" is one token
)

// token is one token of a text: text[start:end].
type token struct {
	start, end int
	kind       kind
	kw         keyword // for tWord: the keyword it spells, or 0
	space      bool    // whitespace or a comment comes before it
	gap        int     // where that whitespace starts: the end of the token before
}

// regionKind is what a quoted or commented region of text is.
type regionKind uint8

const (
	regNone         regionKind = iota
	regComment                 // removed from the text
	regString                  // a literal in at least one reading
	regDQ                      // "..." ending at the same byte in both readings
	regBacktick                // `...` quoted identifier
	regMixed                   // a literal where the readings disagree on the text's shape
	regMixedComment            // a comment in one reading, plain code in the other
)

// Character classes.
const (
	cSpace      = 1 << iota // whitespace
	cIdentStart             // may start an identifier: letters, _, bytes of UTF-8 sequences
	cIdent                  // may continue an identifier: also digits and $
	cDigit
)

var charClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r\f\v") {
		t[c] = cSpace
	}
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c >= 0x80:
			t[c] = cIdentStart | cIdent
		case c >= '0' && c <= '9':
			t[c] = cIdent | cDigit
		case c == '$':
			t[c] = cIdent
		}
	}
	return t
}()

func isSpace(c byte) bool      { return charClass[c]&cSpace != 0 }
func isIdentStart(c byte) bool { return charClass[c]&cIdentStart != 0 }
func isIdent(c byte) bool      { return charClass[c]&cIdent != 0 }
func isDigit(c byte) bool      { return charClass[c]&cDigit != 0 }

// lexer reads the tokens of a text, one at a time, skipping whitespace and
// comments.
type lexer struct {
	s   string
	pos int
	rs  readings
	// The previous token, for the unary-sign rule.
	prevKind kind
	prevByte byte
	prevKw   keyword
	// mixed says the readings disagreed somewhere on where a string or
	// comment ends: the shape of the text is then not certain.
	mixed bool
	// open says the text ends inside a string or comment: it was cut.
	open bool
}

func newLexer(s string, rs readings) lexer { return lexer{s: s, rs: rs} }

// next returns the next token, or a tEOF token at the end of the text.
func (l *lexer) next() token {
	t := l.scan()
	l.prevKind, l.prevKw, l.prevByte = t.kind, t.kw, 0
	if t.kind == tPunct {
		l.prevByte = l.s[t.start]
	}
	return t
}

func (l *lexer) scan() token {
	s := l.s
	space, gap := false, l.pos
	for {
		for l.pos < len(s) && isSpace(s[l.pos]) {
			l.pos++
			space = true
		}
		if l.pos >= len(s) {
			return token{start: len(s), end: len(s), kind: tEOF, space: space, gap: gap}
		}
		start := l.pos
		end, rk, closed := start, regNone, true
		if regionStart(s, start) {
			end, rk, closed = scanRegion(s, start, l.rs)
			l.open = l.open || !closed
		}
		switch rk {
		case regNone:
			t := l.plain(start)
			t.space, t.gap = space, gap
			return t
		case regComment, regMixedComment:
			l.mixed = l.mixed || rk == regMixedComment
			l.pos = end
			space = true
			continue
		}
		l.pos = end
		l.mixed = l.mixed || rk == regMixed
		return token{start: start, end: end, kind: regionToken[rk], space: space, gap: gap}
	}
}

var regionToken = [...]kind{regString: tString, regDQ: tDQ, regBacktick: tQuoted, regMixed: tString}

// plain reads a token that is neither quoted nor a comment.
func (l *lexer) plain(i int) token {
	s := l.s
	c := s[i]
	switch {
	case isIdentStart(c):
		return l.word(i)
	case isDigit(c) || c == '.' && i+1 < len(s) && isDigit(s[i+1]):
		l.pos = scanNumber(s, i)
		return token{start: i, end: l.pos, kind: tNumber}
	case c == '$':
		j := i + 1
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			l.pos = j
			return token{start: i, end: j, kind: tParam}
		}
		// Not a parameter, nor a dollar quote (scanRegion saw none): MySQL
		// allows $ in identifiers.
		return l.word(i)
	case c == '?':
		l.pos = i + 1
		return token{start: i, end: i + 1, kind: tParam}
	case c == ':':
		if i+1 < len(s) && s[i+1] == ':' {
			l.pos = i + 2
			return token{start: i, end: i + 2, kind: tPunct}
		}
		if i+1 < len(s) && isIdentStart(s[i+1]) {
			l.pos = identEnd(s, i+1)
			return token{start: i, end: l.pos, kind: tParam}
		}
	case c == '@':
		j := i + 1
		if j < len(s) && s[j] == '@' {
			j++
		}
		if j < len(s) && isIdentStart(s[j]) {
			l.pos = identEnd(s, j)
			return token{start: i, end: l.pos, kind: tParam}
		}
	case c == '-' || c == '+':
		if end, ok := l.signedNumber(i); ok {
			l.pos = end
			return token{start: i, end: end, kind: tNumber}
		}
	}
	l.pos = i + 1
	return token{start: i, end: i + 1, kind: tPunct}
}

// word reads an identifier or keyword at i, and a string literal when the
// word is the prefix of one: E'...', N'...', X'...', B'...', U&'...',
// _utf8mb4'...'.
func (l *lexer) word(i int) token {
	s := l.s
	j := identEnd(s, i)
	q := j
	if j-i == 1 && (s[i]|0x20) == 'u' && j+1 < len(s) && s[j] == '&' && s[j+1] == '\'' {
		q = j + 1
	}
	if q < len(s) && s[q] == '\'' && stringPrefix(s[i:j]) {
		end, rk, closed := scanRegion(s, q, l.rs)
		l.pos = end
		l.mixed = l.mixed || rk == regMixed
		l.open = l.open || !closed
		return token{start: i, end: end, kind: tString}
	}
	l.pos = j
	return token{start: i, end: j, kind: tWord, kw: lookupKeyword(s[i:j])}
}

// stringPrefix says whether w, directly followed by a quote, is part of
// the string literal.
func stringPrefix(w string) bool {
	if len(w) == 1 {
		switch w[0] | 0x20 {
		case 'e', 'n', 'x', 'b', 'u':
			return true
		}
		return false
	}
	return w[0] == '_' // a MySQL character set introducer: _utf8mb4'...', _binary'...'
}

// signedNumber reads a sign and the number after it when the sign is
// unary: after an operator, an opening parenthesis, a comma, or a keyword
// that an operand follows.
func (l *lexer) signedNumber(i int) (int, bool) {
	s := l.s
	if i+1 < len(s) && s[i+1] == '-' {
		return 0, false // "--" is a comment; scanRegion saw it first
	}
	switch l.prevKind {
	case tEOF:
	case tPunct:
		if l.prevByte == ')' || l.prevByte == ']' {
			return 0, false
		}
	case tWord:
		if kwFlags[l.prevKw]&fOperand == 0 {
			return 0, false
		}
	default:
		return 0, false
	}
	j := i + 1
	for j < len(s) && isSpace(s[j]) {
		j++
	}
	if j < len(s) && (isDigit(s[j]) || s[j] == '.' && j+1 < len(s) && isDigit(s[j+1])) {
		return scanNumber(s, j), true
	}
	return 0, false
}

func identEnd(s string, i int) int {
	for i < len(s) && isIdent(s[i]) {
		i++
	}
	return i
}

// scanNumber returns the end of the number at i: 12, 1.5, .5, 1e-3, 0x1F,
// 0b101, 0o17, 1_000. Identifier bytes right after it belong to it: MySQL
// reads 1abc as an identifier and PostgreSQL as a number followed by an
// identifier, so the whole is replaced.
func scanNumber(s string, i int) int {
	j := i
	if s[j] == '0' && j+1 < len(s) {
		switch s[j+1] | 0x20 {
		case 'x', 'b', 'o':
			return identEnd(s, j+2)
		}
	}
	j = digitsEnd(s, j)
	if j < len(s) && s[j] == '.' {
		j = digitsEnd(s, j+1)
	}
	if j < len(s) && (s[j]|0x20) == 'e' {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			j = digitsEnd(s, k)
		}
	}
	return identEnd(s, j)
}

func digitsEnd(s string, i int) int {
	for i < len(s) && (isDigit(s[i]) || s[i] == '_') {
		i++
	}
	return i
}

// scanRegion reads the quoted string, quoted identifier or comment at i
// under the readings rs and returns its end and kind; regNone when none
// starts at i. closed is false when some reading runs to the end of the
// text without closing it: a text cut off.
func scanRegion(s string, i int, rs readings) (end int, k regionKind, closed bool) {
	if !regionStart(s, i) {
		return i, regNone, true
	}
	if rs != readBoth {
		end, k, ok, closed := construct(s, i, rs)
		if !ok {
			return i, regNone, true
		}
		return end, k, closed
	}
	eM, kM, okM, cM := construct(s, i, readMySQL)
	eP, kP, okP, cP := construct(s, i, readPostgres)
	switch {
	case !okM && !okP:
		return i, regNone, true
	case okM && okP && eM == eP && kM == kP:
		return eM, kM, cM && cP
	}
	// The readings disagree: follow both until they meet in plain code.
	lit := okM && (kM == regString || kM == regDQ) || okP && kP == regString
	comment := okM && kM == regComment || okP && kP == regComment
	closed = (!okM || cM) && (!okP || cP)
	pm, pp := eM, eP
	if !okM {
		pm = codeStep(s, i)
	}
	if !okP {
		pp = codeStep(s, i)
	}
	plainMySQL := !okM // MySQL read nothing but plain code
	for pm != pp {
		// Advance the reading that is behind. A number in plain code is a
		// literal too: MySQL may read `a 1` as a name, PostgreSQL 1 as a
		// number.
		at, r := pp, readPostgres
		if pm < pp {
			at, r = pm, readMySQL
		}
		end, k, c := step(s, at, r)
		lit = lit || k == regString || k == regDQ && r == readMySQL || k == regNone && numberAt(s, at)
		comment, closed = comment || k == regComment, closed && c
		if r == readMySQL {
			pm, plainMySQL = end, plainMySQL && k == regNone
		} else {
			pp = end
		}
	}
	switch {
	case plainMySQL && okP && kP == regString && pp == eP:
		// A dollar-quoted string MySQL reads as plain identifiers: no
		// MySQL text has those, so the shape of the text is not in doubt.
		return pm, regString, closed
	case lit:
		return pm, regMixed, closed
	case comment:
		return pm, regMixedComment, closed
	case okM && kM == regBacktick:
		return pm, regBacktick, closed // PostgreSQL read the same bytes as plain code
	}
	return pm, regMixed, closed
}

// regionStart says whether a quoted string, quoted identifier or comment
// may start at i in some reading.
func regionStart(s string, i int) bool {
	switch s[i] {
	case '\'', '"', '`', '#', '$':
		return true
	case '-':
		return i+1 < len(s) && s[i+1] == '-'
	case '/':
		return i+1 < len(s) && s[i+1] == '*'
	}
	return false
}

// numberAt says whether plain code at i starts a number: what one reading
// reads as a number inside what the other reads as a quoted name is a
// literal.
func numberAt(s string, i int) bool {
	return isDigit(s[i]) || s[i] == '.' && i+1 < len(s) && isDigit(s[i+1])
}

// step advances one reading by one construct, which it returns, or one
// piece of plain code (regNone).
func step(s string, i int, r readings) (end int, k regionKind, closed bool) {
	end, k, ok, closed := construct(s, i, r)
	if !ok {
		return codeStep(s, i), regNone, true
	}
	return end, k, closed
}

// codeStep skips one unit of plain code: a whole word, so that a $ inside
// an identifier never starts a dollar quote, or one byte.
func codeStep(s string, i int) int {
	if isIdent(s[i]) {
		return identEnd(s, i+1)
	}
	return i + 1
}

// construct reads the construct at i under the single reading r. closed
// is false for a construct the text ends in: a string or comment cut off.
func construct(s string, i int, r readings) (end int, k regionKind, ok, closed bool) {
	mysql := r&readMySQL != 0
	switch s[i] {
	case '\'':
		// Escapes: always in MySQL; in PostgreSQL only in E'...' strings.
		end, closed = scanQuoted(s, i, '\'', mysql || ePrefix(s, i))
		return end, regString, true, closed
	case '"':
		end, closed = scanQuoted(s, i, '"', mysql)
		return end, regDQ, true, closed
	case '`':
		if mysql {
			end, closed = scanQuoted(s, i, '`', false)
			return end, regBacktick, true, closed
		}
	case '#':
		if mysql {
			return lineEnd(s, i), regComment, true, true
		}
	case '-':
		// MySQL wants a blank after "--"; reading every "--" as a comment
		// removes more, never less.
		if i+1 < len(s) && s[i+1] == '-' {
			return lineEnd(s, i), regComment, true, true
		}
	case '/':
		if i+1 < len(s) && s[i+1] == '*' {
			end, closed = blockEnd(s, i, !mysql)
			return end, regComment, true, closed
		}
	case '$':
		if !mysql {
			if tagEnd, ok := dollarTag(s, i); ok {
				tag := s[i:tagEnd]
				if k := strings.Index(s[tagEnd:], tag); k >= 0 {
					return tagEnd + k + len(tag), regString, true, true
				}
				return len(s), regString, true, false
			}
		}
	}
	return i, regNone, false, true
}

// ePrefix says whether the quote at i opens a PostgreSQL E'...' string.
func ePrefix(s string, i int) bool {
	return i >= 1 && (s[i-1]|0x20) == 'e' && (i < 2 || !isIdent(s[i-2]))
}

// scanQuoted returns the end of the string quoted by q that opens at i:
// after its closing quote, or the end of the text. A doubled quote stands
// for one; with backslash, a backslash escapes the byte after it.
func scanQuoted(s string, i int, q byte, backslash bool) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if backslash {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return len(s), false
}

// lineEnd returns the end of the line comment at i: the newline, which
// stays as whitespace.
func lineEnd(s string, i int) int {
	if k := strings.IndexByte(s[i:], '\n'); k >= 0 {
		return i + k
	}
	return len(s)
}

// blockEnd returns the end of the /* comment at i; PostgreSQL nests them.
func blockEnd(s string, i int, nested bool) (int, bool) {
	depth := 0
	for j := i; j+1 < len(s); j++ {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			if depth == 0 || nested {
				depth++
			}
			j++
		case s[j] == '*' && s[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return len(s), false
}

// dollarTag reads the opening $tag$ or $$ of a dollar-quoted string at i.
func dollarTag(s string, i int) (int, bool) {
	j := i + 1
	if j < len(s) && s[j] == '$' {
		return j + 1, true
	}
	if j >= len(s) || !isIdentStart(s[j]) {
		return 0, false
	}
	for j < len(s) && isIdent(s[j]) && s[j] != '$' {
		j++
	}
	if j < len(s) && s[j] == '$' {
		return j + 1, true
	}
	return 0, false
}
