package sqlquery

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// refReading is how the reference tokenizer reads a text: as MySQL or
// as PostgreSQL. It is written apart from the lexer, plainly, to tell the
// fuzz targets what a literal is.
type refReading bool

const (
	refMySQL    refReading = true
	refPostgres refReading = false
)

// refLiterals returns the literals of s as r reads them (the contents of
// quoted strings, dollar-quoted bodies, numbers) and marks in code the
// bytes r reads as plain code or identifiers.
func refLiterals(s string, r refReading, code []bool) []string {
	var lits []string
	identByte := func(c byte) bool {
		return c == '_' || c == '$' || c >= 0x80 || c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
	}
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	i := 0
	for i < len(s) {
		c := s[i]
		next := byte(0)
		if i+1 < len(s) {
			next = s[i+1]
		}
		switch {
		case c == '\'':
			escapes := r == refMySQL || i > 0 && s[i-1]|0x20 == 'e' && (i < 2 || !identByte(s[i-2]))
			j := i + 1
			for j < len(s) {
				if escapes && s[j] == '\\' {
					j += 2
					continue
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			lits = append(lits, s[i+1:min(j, len(s))])
			i = j + 1
		case c == '"' || c == '`' && r == refMySQL:
			// Quoted names: neither literals nor comments. A MySQL "..."
			// string is left out of the literals: Sanitize keeps it where
			// it is plainly an identifier, by rules this tokenizer does
			// not repeat.
			j := i + 1
			for j < len(s) {
				if s[j] == '\\' && c == '"' && r == refMySQL {
					j += 2
					continue
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(s))
			for k := i; k < end; k++ {
				code[k] = true
			}
			i = end
		case c == '-' && next == '-', c == '#' && r == refMySQL:
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && next == '*':
			depth := 0
			j := i
			for j+1 < len(s) {
				if s[j] == '/' && s[j+1] == '*' && (depth == 0 || r == refPostgres) {
					depth++
					j += 2
					continue
				}
				if s[j] == '*' && s[j+1] == '/' {
					depth--
					j += 2
					if depth == 0 {
						break
					}
					continue
				}
				j++
			}
			if depth != 0 {
				j = len(s)
			}
			i = j
		case c == '$' && r == refPostgres && (next == '$' || next != 0 && !digit(next) && identByte(next) && next != '$'):
			j := i + 1
			for j < len(s) && s[j] != '$' && identByte(s[j]) {
				j++
			}
			if j >= len(s) || s[j] != '$' {
				code[i] = true
				i++
				continue
			}
			tag := s[i : j+1]
			body := s[j+1:]
			if k := strings.Index(body, tag); k >= 0 {
				lits = append(lits, body[:k])
				i = j + 1 + k + len(tag)
			} else {
				lits = append(lits, body)
				i = len(s)
			}
		case digit(c) || c == '.' && digit(next):
			j := i
			if c == '.' {
				j++
			}
			for j < len(s) && identByte(s[j]) {
				j++
			}
			if j+1 < len(s) && s[j] == '.' && digit(s[j+1]) && c != '.' {
				for j++; j < len(s) && identByte(s[j]); j++ {
				}
			}
			lits = append(lits, s[i:j])
			i = j
		case identByte(c):
			j := i
			for j < len(s) && identByte(s[j]) {
				j++
			}
			for k := i; k < j; k++ {
				code[k] = true
			}
			i = j
		default:
			code[i] = true
			i++
		}
	}
	return lits
}

// checkSanitized checks what Sanitize returned for in, read the ways rs
// says.
func checkSanitized(t *testing.T, in, out string, rs []refReading) {
	t.Helper()
	if len(out) > MaxTextLen {
		t.Fatalf("output of %d bytes", len(out))
	}
	backticks := false // PostgreSQL reads ` as an operator
	for _, r := range rs {
		backticks = backticks || r == refMySQL
	}
	checkNoStrings(t, out, backticks)
	// No byte sequence of a literal longer than 3 bytes survives, unless
	// the same bytes stand in the text as plain code in every reading.
	codeAll := make([]bool, len(in))
	for i := range codeAll {
		codeAll[i] = true
	}
	var lits []string
	for _, r := range rs {
		code := make([]bool, len(in))
		lits = append(lits, refLiterals(in, r, code)...)
		for i := range codeAll {
			codeAll[i] = codeAll[i] && code[i]
		}
	}
	windows := make(map[string]bool, len(out))
	for i := 0; i+4 <= len(out); i++ {
		windows[out[i:i+4]] = true
	}
	for _, lit := range lits {
		for i := 0; i+4 <= len(lit); i++ {
			w := lit[i : i+4]
			if !windows[w] || strings.ContainsAny(w, " \t\n\r\f\v?") || inCode(in, w, codeAll) {
				continue
			}
			t.Fatalf("literal bytes %q of %q leak into %q", w, lit, out)
		}
	}
}

// checkNoStrings checks that out holds no quoted string and no digit of a
// number: outside quoted names ("...", and `...` when MySQL reads out),
// no quote, and no digit but in a word or a $1 parameter.
func checkNoStrings(t *testing.T, out string, backticks bool) {
	t.Helper()
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case c == '"' || c == '`' && backticks:
			j := strings.IndexByte(out[i+1:], c)
			if j < 0 {
				return
			}
			i += j + 1
			for i+1 < len(out) && out[i+1] == c { // a doubled quote
				k := strings.IndexByte(out[i+2:], c)
				if k < 0 {
					return
				}
				i += k + 2
			}
		case c == '\'':
			t.Fatalf("a quote in %q at %d", out, i)
		case c >= '0' && c <= '9':
			if i == 0 || !isIdent(out[i-1]) {
				t.Fatalf("a digit of a number in %q at %d", out, i)
			}
		}
	}
}

// inCode says whether w stands somewhere in s on bytes all marked code.
func inCode(s, w string, code []bool) bool {
	for from := 0; ; {
		k := strings.Index(s[from:], w)
		if k < 0 {
			return false
		}
		k += from
		ok := true
		for j := k; j < k+len(w); j++ {
			ok = ok && code[j]
		}
		if ok {
			return true
		}
		from = k + 1
	}
}

func addSeeds(f *testing.F) {
	for _, c := range sanitizeCases {
		f.Add(c.in)
	}
	for _, c := range analyzeCases {
		f.Add(c.in)
	}
	for _, s := range []string{
		`'\'`, `'a\''`, `E'\\'`, `$$`, `$a$ $a`, `"a\"b" 'c'`, "`a'b` 'c'", "# 'x\n 1",
		"/* /* */ '1234' */ 5678", "-- '\n'abcd'", "x IN (1, 2", "VALUES (1), (1", "U&'\\' '1234'",
	} {
		f.Add(s)
	}
}

func FuzzSanitize(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in string) {
		out := Sanitize(in)
		checkSanitized(t, in, out, []refReading{refMySQL, refPostgres})
		if again := Sanitize(out); again != out {
			t.Fatalf("not idempotent:\n in   %q\n out  %q\n again %q", in, out, again)
		}
		pg := PostgreSQL.Sanitize(in)
		checkSanitized(t, in, pg, []refReading{refPostgres})
		if again := PostgreSQL.Sanitize(pg); again != pg {
			t.Fatalf("PostgreSQL: not idempotent:\n in   %q\n out  %q\n again %q", in, pg, again)
		}
		my := MySQL.Sanitize(in)
		checkSanitized(t, in, my, []refReading{refMySQL})
		if again := MySQL.Sanitize(my); again != my {
			t.Fatalf("MySQL: not idempotent:\n in   %q\n out  %q\n again %q", in, my, again)
		}
	})
}

func FuzzAnalyze(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in string) {
		for _, d := range []Dialect{AnyDialect, PostgreSQL, MySQL} {
			s := d.Analyze(in)
			if utf8.RuneCountInString(s.Summary) > MaxSummaryLen {
				t.Fatalf("summary of %d characters", utf8.RuneCountInString(s.Summary))
			}
			if s.Operation == "" && (s.Summary != "" || s.Collection != "") {
				t.Fatalf("no operation but %+v", s)
			}
			if strings.ToUpper(s.Operation) != s.Operation || strings.ContainsAny(s.Operation, " ;(") {
				t.Fatalf("operation %q", s.Operation)
			}
			if s.Summary != "" && !strings.EqualFold(strings.Fields(s.Summary)[0], s.Operation) &&
				!strings.Contains(strings.ToUpper(in), "WITH") { // a WITH's queries come first
				t.Fatalf("summary %q does not start with %q", s.Summary, s.Operation)
			}
			if s.Collection != "" && s.Summary == "" {
				t.Fatalf("a collection without a summary: %+v", s)
			}
			for _, part := range d.Split(in) {
				if part == "" || !strings.Contains(in, part) {
					t.Fatalf("split part %q", part)
				}
			}
		}
	})
}
