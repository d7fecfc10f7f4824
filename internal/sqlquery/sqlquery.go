// Package sqlquery reads SQL statement text the way the database semantic
// conventions need it: with every literal replaced by "?" (db.query.text
// must never carry a value), and summarised as an operation and the
// tables it works on (db.operation.name, db.collection.name,
// db.query.summary).
//
// A text may be PostgreSQL's or MySQL's, and the two read some texts
// differently (a backslash in a string, "..." quotes, # and nested
// comments, dollar quotes). The package functions do not know which:
// where the readings differ, Sanitize takes the one that replaces more and
// Analyze gives only what both agree on. A caller that knows the database
// uses the Dialect's methods, which read the text its way only.
//
// Bounds: Sanitize returns at most MaxTextLen bytes and Summary holds at
// most MaxSummaryLen characters. Every function works in one pass, in
// time linear in the text (a literal is read at most once per reading),
// with its state on the stack: a fixed number of bytes whatever the text,
// and recursion no deeper than a fixed bound.
//
// The conventions (v1.44, SQL) say that db.operation.name and
// db.collection.name SHOULD NOT be taken from db.query.text, and that
// db.query.summary may be: Analyze gives all three, and the caller decides
// which to report.
package sqlquery // import "github.com/otelcol-ebpf/ebpfreceiver/internal/sqlquery"

// Statement is what the text of one statement says of it. Fields that
// cannot be told from the text are left empty: never a guess.
type Statement struct {
	Operation  string // the operation keyword in upper case: "SELECT", "INSERT"; "" when unknown
	Collection string // the one table the statement names; "" when none or several
	Summary    string // db.query.summary: "SELECT orders", "SELECT orders customers"
}

// Dialect is the database a text was written for.
type Dialect uint8

const (
	// AnyDialect reads a text both as PostgreSQL and as MySQL would, and
	// keeps what is true of both; the package functions use it.
	AnyDialect Dialect = iota
	// PostgreSQL reads a text as PostgreSQL does with
	// standard_conforming_strings on (the default since 9.1): a backslash
	// is an escape only in E'...'. With the setting off, or unknown, use
	// AnyDialect.
	PostgreSQL
	// MySQL reads a text as MySQL does without NO_BACKSLASH_ESCAPES: a
	// backslash escapes in '...' and "...", # starts a comment, there are
	// no dollar quotes. With NO_BACKSLASH_ESCAPES on, use AnyDialect.
	MySQL
)

func (d Dialect) readings() readings {
	switch d {
	case PostgreSQL:
		return readPostgres
	case MySQL:
		return readMySQL
	}
	return readBoth
}

// Sanitize is the package's Sanitize, reading the text as d does.
func (d Dialect) Sanitize(text string) string { return sanitize(text, d.readings()) }

// Analyze is the package's Analyze, reading the text as d does.
func (d Dialect) Analyze(text string) Statement { return analyze(text, d.readings()) }

// Split is the package's Split, reading the text as d does.
func (d Dialect) Split(text string) []string { return split(text, d.readings()) }
