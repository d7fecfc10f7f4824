package sqlquery

import (
	"strings"
	"testing"
)

type sanitizeCase struct {
	name, in, want string
}

// sanitizeCases hold for every reading: the texts read the same in
// PostgreSQL and MySQL, or are read by the package functions.
var sanitizeCases = []sanitizeCase{
	// Strings.
	{"string", "SELECT 'hello'", "SELECT ?"},
	{"doubled quote", "SELECT 'My name''s not important'", "SELECT ?"},
	{"newline in string", "SELECT 'My name is \n not important'", "SELECT ?"},
	{"two strings", "SELECT 'a' 'b', 'c'", "SELECT ? ?, ?"},
	{"empty string", "SELECT '' , ''''", "SELECT ? , ?"},
	{"escape string", `SELECT E'it\'s', e'\\', E'\n'`, "SELECT ?, ?, ?"},
	{"unicode string", `SELECT U&'d\0061t\+000061', u&'x'`, "SELECT ?, ?"},
	{"bit and hex strings", "SELECT B'0101', b'1', X'ff', x'0A'", "SELECT ?, ?, ?, ?"},
	{"national string", "SELECT N'ñandú', n'x'", "SELECT ?, ?"},
	{"charset introducer", `SELECT _utf8mb4'abc', _binary'\0' FROM t`, "SELECT ?, ? FROM t"},
	{"escaped backslash", `SELECT 'a\\', 1`, "SELECT ?, ?"},
	{"string then identifier", "SELECT 'a'b", "SELECT ?b"},
	{"typed literals", "SELECT DATE '2024-01-02', TIMESTAMP '2024-01-02 03:04', INTERVAL '1 day'", "SELECT DATE ?, TIMESTAMP ?, INTERVAL ?"},
	{"cast literal", "SELECT '2024-01-02'::date, '{1,2}'::int[]", "SELECT ?::date, ?::int[]"},
	{"odbc escape", "SELECT { guid '01234567-89ab-cdef-0123-456789abcdef' }", "SELECT { guid ? }"},

	// Where PostgreSQL and MySQL end a string at different bytes: the
	// union of both readings is replaced.
	{"pg backslash string", `SELECT * FROM t WHERE a = '\' OR b = 'secret'`, "SELECT * FROM t WHERE a = ?"},
	{"mysql escaped quote", `SELECT * FROM t WHERE name = 'O\'Brien' AND id = 5`, "SELECT * FROM t WHERE name = ?"},
	{"mysql escaped quote alone", `SELECT 'it\'s'`, "SELECT ?"},
	{"backslash in unicode string", `SELECT U&'\' , 'x'`, "SELECT ?"},

	// Unterminated and adversarial.
	{"unterminated string", "SELECT * FROM t WHERE a = 'abc", "SELECT * FROM t WHERE a = ?"},
	{"unterminated after doubled quote", "SELECT 'a''", "SELECT ?"},
	{"unterminated escape string", `SELECT E'abc\'`, "SELECT ?"},
	{"lone quote", "'", "?"},
	{"comment in string", "SELECT '-- not a comment', '/* nor this */', '# nor this' FROM t", "SELECT ?, ?, ? FROM t"},
	{"double dash in string", "SELECT 'a--b' FROM t WHERE x = 1", "SELECT ? FROM t WHERE x = ?"},
	{"quote in line comment", "SELECT 1 -- it's\nFROM t WHERE a = 'x'", "SELECT ? FROM t WHERE a = ?"},
	{"quote in block comment", "/* it's */ SELECT a FROM t", "SELECT a FROM t"},
	{"string looks like dollar quote", "SELECT '$$', 1", "SELECT ?, ?"},
	// MySQL reads $$it as an identifier and 's$$, 1 as a string.
	{"dollar quote holds a quote", "SELECT $$it's$$, 1", "SELECT ?"},
	{"unterminated dollar quote", "SELECT $q$ secret", "SELECT ?"},
	{"unterminated block comment", "SELECT 1 /* secret", "SELECT ?"},
	{"unterminated double quote", `SELECT "secret`, "SELECT ?"},

	// Dollar quotes and parameters.
	{"dollar quotes", "SELECT $$abc$$, $tag$ x $$ y $tag$, $fn$a$fn$ b", "SELECT ?, ?, ? b"},
	{"dollar quote then identifier", "SELECT $fn$a$fn$b", "SELECT ?"}, // MySQL: one identifier
	{"parameter and dollar quote", "SELECT * FROM t WHERE a = $1 AND b = $q$secret$q$", "SELECT * FROM t WHERE a = $1 AND b = ?"},
	{"parameter then dollar", "SELECT $1$x$", "SELECT $1?"},
	{"dollar in identifier", "SELECT a$$b, $x FROM t$1", "SELECT a$$b, $x FROM t$1"},
	{"parameters", "SELECT * FROM t WHERE a = ? AND b = :name AND c = @var AND d = @@session.sql_mode AND e = $12", "SELECT * FROM t WHERE a = ? AND b = :name AND c = @var AND d = @@session.sql_mode AND e = $12"},
	{"casts are no parameters", "SELECT a::text, b::int FROM t", "SELECT a::text, b::int FROM t"},
	{"array slice", "SELECT arr[1:2], arr[a:b] FROM t", "SELECT arr[?:?], arr[a:b] FROM t"},
	{"quoted variable", "SET @'my var' = 1", "SET @? = ?"},

	// Comments.
	{"comments", "SELECT column -- end of line comment\nFROM /* block \n comment */ table", "SELECT column FROM table"},
	{"hash comment", "SELECT a # secret\nFROM t", "SELECT a FROM t"},
	{"hash comment or a number", "SELECT a # secret 42\nFROM t", "SELECT a ? FROM t"}, // PostgreSQL: a # secret 42
	{"nested comment", "SELECT /* a /* b */ c */ 1", "SELECT ?"},
	{"sqlcommenter", "SELECT * FROM songs /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',tracestate='congo%3Dt61rcWkgMzE'*/", "SELECT * FROM songs"},
	{"optimizer hint", "SELECT /*+ INDEX(t idx) */ a FROM t", "SELECT a FROM t"},
	{"comment between tokens", "SELECT a/**/FROM t", "SELECT a FROM t"},
	{"pg json operator read as mysql comment", "SELECT a #> '{b}' FROM t WHERE id = 1", "SELECT a ?"},

	// Double quotes: identifiers where plainly so, strings elsewhere.
	{"dq qualified", `SELECT "t"."a", "t".b, t."c" FROM "t"`, `SELECT "t"."a", "t".b, t."c" FROM "t"`},
	{"dq ambiguous", `SELECT "a" FROM t WHERE b = "secret"`, `SELECT ? FROM t WHERE b = ?`},
	{"dq from list", `SELECT * FROM "a", "b" JOIN "c" ON "a".x = "c".x WHERE y = "v"`, `SELECT * FROM "a", "b" JOIN "c" ON "a".x = "c".x WHERE y = ?`},
	{"dq insert columns", `INSERT INTO "t" ("a", "b") VALUES ("x", 'y') RETURNING "id", "a"`, `INSERT INTO "t" ("a", "b") VALUES (?, ?) RETURNING "id", "a"`},
	{"dq update set", `UPDATE "t" SET "a" = "x", "b" = 1 WHERE "t"."id" = 2`, `UPDATE "t" SET "a" = ?, "b" = ? WHERE "t"."id" = ?`},
	{"dq alias", `SELECT count(*) AS "__count" FROM t`, `SELECT count(*) AS "__count" FROM t`},
	{"dq in function is a string", `SELECT EXTRACT(YEAR FROM "2020-01-01"), TRIM(BOTH 'x' FROM "xsecretx")`, `SELECT EXTRACT(YEAR FROM ?), TRIM(BOTH ? FROM ?)`},
	{"dq in subquery from", `SELECT * FROM (SELECT * FROM "t") s`, `SELECT * FROM (SELECT * FROM "t") s`},
	{"dq ddl", `CREATE TABLE IF NOT EXISTS "t" ("id" serial PRIMARY KEY, "name" text DEFAULT "x")`, `CREATE TABLE IF NOT EXISTS "t" ("id" serial PRIMARY KEY, "name" text DEFAULT ?)`},
	{"dq on conflict", `INSERT INTO t (a) VALUES (1) ON CONFLICT ("a") DO UPDATE SET "a" = EXCLUDED."a"`, `INSERT INTO t (a) VALUES (?) ON CONFLICT ("a") DO UPDATE SET "a" = EXCLUDED."a"`},
	{"dq with backslash", `SELECT * FROM t WHERE a = "x\"y" AND b = 2`, `SELECT * FROM t WHERE a = ?`},
	{"dq doubled", `SELECT * FROM "a""b"`, `SELECT * FROM "a""b"`},
	{"dq with backslash is no name", `SELECT * FROM "a\b" WHERE c = 1`, `SELECT * FROM ? WHERE c = ?`},
	{"backticks", "SELECT `t`.`a` FROM `db`.`t` WHERE `a` = 'x'", "SELECT `t`.`a` FROM `db`.`t` WHERE `a` = ?"},
	{"backtick holds a quote", "SELECT `it's` FROM t WHERE a = 1", "SELECT ?"},

	// Numbers and signs.
	{"integers", "SELECT 12, -12, +12", "SELECT ?, ?, ?"},
	{"decimals", "SELECT 12.34, -12.34, +12.34, .01, -.01, 5.", "SELECT ?, ?, ?, ?, ?, ?"},
	{"exponents", "SELECT 12.34e56, -12.34e-56, +1E+3, .5e3", "SELECT ?, ?, ?, ?"},
	{"hex binary octal", "SELECT 0xDEADBEEF, 0XdeadBEEF, 0b101, 0o17, 1_000_000", "SELECT ?, ?, ?, ?, ?"},
	{"binary plus", "SELECT 99+100", "SELECT ?+?"},
	{"binary minus", "SELECT a-1, a - 1, (a)-1, a[1]-1 FROM t", "SELECT a-?, a - ?, (a)-?, a[?]-? FROM t"},
	{"unary minus", "SELECT a * -1, (-1), f(-1, +2), - 5 FROM t WHERE x = -1 OR y < - 2.5", "SELECT a * ?, (?), f(?, ?), ? FROM t WHERE x = ? OR y < ?"},
	{"signs after keywords", "SELECT CASE WHEN a THEN -1 ELSE +2 END - 3, x BETWEEN -1 AND -2 FROM t LIMIT -1", "SELECT CASE WHEN a THEN ? ELSE ? END - ?, x BETWEEN ? AND ? FROM t LIMIT ?"},
	{"digits in identifiers", "SELECT c3po, r2d2 FROM covid19 WHERE n1h1=1234", "SELECT c3po, r2d2 FROM covid19 WHERE n1h1=?"},
	{"number with trailing letters", "SELECT 1abc, 2e, 3.4.5", "SELECT ?, ?, ??"},
	{"dot number", "SELECT t.5, x.1y FROM t", "SELECT t?, x? FROM t"},
	{"type modifiers", "SELECT CAST(a AS numeric(10, 2)), b::varchar(255)", "SELECT CAST(a AS numeric(?, ?)), b::varchar(?)"},

	// Booleans and NULL.
	{"booleans", "SELECT TRUE, false, NULL FROM t WHERE a IS TRUE AND b IS NOT FALSE AND c = true AND d IS NULL", "SELECT ?, ?, NULL FROM t WHERE a IS TRUE AND b IS NOT FALSE AND c = ? AND d IS NULL"},

	// Lists.
	{"in list", "SELECT * FROM table WHERE value IN (123, 456, 'abc')", "SELECT * FROM table WHERE value IN (?)"},
	{"in list of parameters", "SELECT * FROM t WHERE a IN (?, ?, ?) AND b NOT IN (?,?)", "SELECT * FROM t WHERE a IN (?) AND b NOT IN (?)"},
	{"in list tight", "SELECT * FROM t WHERE a IN(1,2,3)", "SELECT * FROM t WHERE a IN(?)"},
	{"in list numbered parameters", "SELECT * FROM t WHERE a IN ($1, $2, $3)", "SELECT * FROM t WHERE a IN ($1, $2, $3)"},
	{"in list mixed", "SELECT * FROM t WHERE a IN (1, 2, b, 3)", "SELECT * FROM t WHERE a IN (?, ?, b, ?)"},
	{"in list expression", "SELECT * FROM t WHERE a IN (1 + 2, 3)", "SELECT * FROM t WHERE a IN (? + ?, ?)"},
	{"in subquery", "SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = 1)", "SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = ?)"},
	{"in list unterminated", "SELECT * FROM t WHERE a IN (1, 2,", "SELECT * FROM t WHERE a IN (?, ?,"},
	{"in list one", "SELECT * FROM t WHERE a IN ('x')", "SELECT * FROM t WHERE a IN (?)"},
	{"values rows", "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')", "INSERT INTO t (a, b) VALUES (?, ?)"},
	{"values rows differ", "INSERT INTO t (a, b) VALUES (1, 'x'), (2, now()), (3, now()), (4, 'z')", "INSERT INTO t (a, b) VALUES (?, ?), (?, now()), (?, ?)"},
	{"values rows tight", "INSERT INTO t VALUES(1,2),(3,4),(5,6) ON CONFLICT DO NOTHING", "INSERT INTO t VALUES(?,?) ON CONFLICT DO NOTHING"},
	{"values rows of parameters", "INSERT INTO t VALUES ($1, $2), ($3, $4)", "INSERT INTO t VALUES ($1, $2), ($3, $4)"},
	{"values rows nested", "INSERT INTO t VALUES ((1), ARRAY[2, 3]), ((4), ARRAY[5, 6])", "INSERT INTO t VALUES ((?), ARRAY[?, ?])"},
	{"values row prefix of the one before", "INSERT INTO t VALUES (1, 2), (1)", "INSERT INTO t VALUES (?, ?), (?)"},
	{"values unterminated", "INSERT INTO t VALUES (1, 2), (3,", "INSERT INTO t VALUES (?, ?), (?,"},
	{"values trailing comma", "INSERT INTO t VALUES (1, 2),", "INSERT INTO t VALUES (?, ?),"},
	{"values statement", "VALUES (1), (2) UNION SELECT 3", "VALUES (?) UNION SELECT ?"},
	{"value as column", "SELECT value, key FROM kv WHERE value = 'x'", "SELECT value, key FROM kv WHERE value = ?"},

	// Whitespace.
	{"whitespace", "  SELECT\ta,\n\n  b   FROM t  ;  ", "SELECT a, b FROM t ;"},
	{"empty", "", ""},
	{"blank", " \n\t ", ""},
	{"only a comment", "-- nothing", ""},

	// Statements from ORMs and drivers.
	{"django select", `SELECT "auth_user"."id", "auth_user"."password", "auth_user"."last_login", "auth_user"."is_superuser", "auth_user"."username" FROM "auth_user" WHERE "auth_user"."username" = 'admin' LIMIT 21`,
		`SELECT "auth_user"."id", "auth_user"."password", "auth_user"."last_login", "auth_user"."is_superuser", "auth_user"."username" FROM "auth_user" WHERE "auth_user"."username" = ? LIMIT ?`},
	{"django insert", `INSERT INTO "polls_question" ("question_text", "pub_date") VALUES ('What''s up?', '2024-01-02T03:04:05.123456+00:00'::timestamptz) RETURNING "polls_question"."id"`,
		`INSERT INTO "polls_question" ("question_text", "pub_date") VALUES (?, ?::timestamptz) RETURNING "polls_question"."id"`},
	{"django join", `SELECT "polls_choice"."id", "polls_question"."question_text" FROM "polls_choice" INNER JOIN "polls_question" ON ("polls_choice"."question_id" = "polls_question"."id") WHERE ("polls_question"."pub_date" <= '2024-01-01' AND "polls_choice"."votes" > 3) ORDER BY "polls_choice"."id" ASC`,
		`SELECT "polls_choice"."id", "polls_question"."question_text" FROM "polls_choice" INNER JOIN "polls_question" ON ("polls_choice"."question_id" = "polls_question"."id") WHERE ("polls_question"."pub_date" <= ? AND "polls_choice"."votes" > ?) ORDER BY "polls_choice"."id" ASC`},
	{"hibernate select", "select u1_0.id,u1_0.email,u1_0.name from users u1_0 where u1_0.email=? offset ? rows fetch first ? rows only",
		"select u1_0.id,u1_0.email,u1_0.name from users u1_0 where u1_0.email=? offset ? rows fetch first ? rows only"},
	{"hibernate insert", "insert into orders (created_at,customer_id,total,id) values (?,?,?,?)", "insert into orders (created_at,customer_id,total,id) values (?,?,?,?)"},
	{"gorm postgres", `SELECT * FROM "users" WHERE "users"."deleted_at" IS NULL AND "users"."id" = $1 ORDER BY "users"."id" LIMIT 1`,
		`SELECT * FROM "users" WHERE "users"."deleted_at" IS NULL AND "users"."id" = $1 ORDER BY "users"."id" LIMIT ?`},
	{"gorm insert interpolated", `INSERT INTO "users" ("created_at","updated_at","deleted_at","name","age") VALUES ('2024-01-01 00:00:00','2024-01-01 00:00:00',NULL,'jinzhu',18),('2024-01-01 00:00:00','2024-01-01 00:00:00',NULL,'jinzhu2',19) RETURNING "id"`,
		`INSERT INTO "users" ("created_at","updated_at","deleted_at","name","age") VALUES (?,?,NULL,?,?) RETURNING "id"`},
	{"gorm mysql", "SELECT * FROM `users` WHERE `users`.`deleted_at` IS NULL AND `name` = 'jinzhu' ORDER BY `users`.`id` LIMIT 1",
		"SELECT * FROM `users` WHERE `users`.`deleted_at` IS NULL AND `name` = ? ORDER BY `users`.`id` LIMIT ?"},
	{"rails postgres", `SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2`, `SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2`},
	{"rails mysql bulk", "INSERT INTO `posts` (`title`,`created_at`) VALUES ('a', '2024-01-01 10:00:00'), ('b', '2024-01-02 10:00:00')",
		"INSERT INTO `posts` (`title`,`created_at`) VALUES (?, ?)"},
	{"psycopg2 bytea", `INSERT INTO t (a, b) VALUES ('x', '\x00ff'::bytea)`, `INSERT INTO t (a, b) VALUES (?, ?::bytea)`},
	{"jdbc call", "{call my_proc(?, 42)}", "{call my_proc(?, ?)}"},
	{"on duplicate key values", "INSERT INTO t (a, b) VALUES (?, ?) ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b)",
		"INSERT INTO t (a, b) VALUES (?, ?) ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b)"},
	{"jdbc session", "SET application_name = 'PostgreSQL JDBC Driver'; SET extra_float_digits = 3", "SET application_name = ?; SET extra_float_digits = ?"},
	{"mysql session", "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci; SELECT @@max_allowed_packet; SET autocommit=1",
		"SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci; SELECT @@max_allowed_packet; SET autocommit=?"},
	{"pg function body", "CREATE FUNCTION f(a int) RETURNS int AS $body$ BEGIN RETURN a + 42; END $body$ LANGUAGE plpgsql",
		"CREATE FUNCTION f(a int) RETURNS int AS ? LANGUAGE plpgsql"},
	{"like escape", `SELECT * FROM t WHERE a LIKE '100\%' ESCAPE '\' AND b = 1`, "SELECT * FROM t WHERE a LIKE ? ESCAPE ?"},
}

func TestSanitize(t *testing.T) {
	for _, c := range sanitizeCases {
		t.Run(c.name, func(t *testing.T) {
			got := Sanitize(c.in)
			if got != c.want {
				t.Errorf("Sanitize(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
			if again := Sanitize(got); again != got {
				t.Errorf("not idempotent: Sanitize(%q) = %q", got, again)
			}
		})
	}
}

// TestSanitizeDialect covers the texts that PostgreSQL and MySQL read
// differently: each database's reading replaces exactly its literals.
func TestSanitizeDialect(t *testing.T) {
	for _, c := range []struct {
		name       string
		d          Dialect
		in, want   string
		wantUnsure string // what AnyDialect gives
	}{
		{"pg backslash string", PostgreSQL, `SELECT * FROM t WHERE a = '\' OR b = 'x' AND c = 1`, "SELECT * FROM t WHERE a = ? OR b = ? AND c = ?", "SELECT * FROM t WHERE a = ?"},
		{"pg E string", PostgreSQL, `SELECT E'\'', 1`, "SELECT ?, ?", "SELECT ?, ?"},
		{"pg json operators", PostgreSQL, `SELECT a #> '{b}', a #>> '{c}' FROM t WHERE id = 1`, "SELECT a #> ?, a #>> ? FROM t WHERE id = ?", "SELECT a ?"},
		{"pg nested comment", PostgreSQL, "SELECT /* a /* 'b' */ c */ 1", "SELECT ?", "SELECT ?"},
		{"pg dq identifier with backslash", PostgreSQL, `SELECT * FROM "a\" WHERE b = 1`, `SELECT * FROM ? WHERE b = ?`, `SELECT * FROM ?`},
		{"mysql escaped quote", MySQL, `SELECT * FROM t WHERE name = 'O\'Brien' AND id = 5`, "SELECT * FROM t WHERE name = ? AND id = ?", "SELECT * FROM t WHERE name = ?"},
		{"mysql escaped dq", MySQL, `SELECT * FROM t WHERE a = "x\"y" AND b = 2`, "SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = ?"},
		{"mysql hash comment", MySQL, "SELECT a # x 'y\nFROM t", "SELECT a FROM t", "SELECT a ?"},
		{"mysql escaped quote in introducer", MySQL, `SELECT _binary'\0\'x' FROM t`, "SELECT ? FROM t", "SELECT ?"},
		{"pg dollar quote holds a quote", PostgreSQL, "SELECT $$it's$$, 1", "SELECT ?, ?", "SELECT ?"},
		{"mysql flat comment", MySQL, "SELECT /* a /* b */ 1, 'c' */", "SELECT ?, ? */", "SELECT ?"},
		{"mysql dollar identifiers", MySQL, "SELECT $$a$$ FROM t WHERE b = 1", "SELECT $$a$$ FROM t WHERE b = ?", "SELECT ? FROM t WHERE b = ?"},
		{"mysql interpolated", MySQL, `INSERT INTO t (a, b) VALUES ('it\'s', 'C:\\dir\\'), ('x\'', 'y'), (1, 2)`, "INSERT INTO t (a, b) VALUES (?, ?)", "INSERT INTO t (a, b) VALUES (?, ?)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.d.Sanitize(c.in); got != c.want {
				t.Errorf("%v.Sanitize(%q)\n got %q\nwant %q", c.d, c.in, got, c.want)
			}
			if got := Sanitize(c.in); got != c.wantUnsure {
				t.Errorf("Sanitize(%q)\n got %q\nwant %q", c.in, got, c.wantUnsure)
			}
		})
	}
}

func TestSanitizeCap(t *testing.T) {
	// A long IN list collapses before the cap matters.
	var b strings.Builder
	b.WriteString("SELECT * FROM t WHERE id IN (")
	for i := range 5000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("12345")
	}
	b.WriteString(") AND x = 'y'")
	if got, want := Sanitize(b.String()), "SELECT * FROM t WHERE id IN (?) AND x = ?"; got != want {
		t.Errorf("long IN list: got %q, want %q", got, want)
	}

	// A long statement is cut between tokens and marked.
	b.Reset()
	b.WriteString("SELECT ")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("column_name_x")
	}
	b.WriteString(" FROM t WHERE a = 'secret'")
	got := Sanitize(b.String())
	if len(got) > MaxTextLen {
		t.Fatalf("len %d > %d", len(got), MaxTextLen)
	}
	if !strings.HasSuffix(got, "column_name_x"+TruncatedMarker) && !strings.HasSuffix(got, "column_name_x,"+TruncatedMarker) {
		t.Errorf("cut badly: ...%q", got[len(got)-40:])
	}
	if len(got) < MaxTextLen-len(", column_name_x")-len(TruncatedMarker) {
		t.Errorf("cut too early: len %d", len(got))
	}
	if again := Sanitize(got); again != got {
		t.Errorf("a cut text changes when sanitized again")
	}

	// A text that fits exactly is not cut.
	exact := "SELECT " + strings.Repeat("a", MaxTextLen-len("SELECT "))
	if got := Sanitize(exact); got != exact {
		t.Errorf("a text of MaxTextLen bytes was changed: len %d", len(got))
	}
	over := exact + " b"
	if got := Sanitize(over); got != "SELECT"+TruncatedMarker {
		t.Errorf("a text over MaxTextLen: got %q", got)
	}
	// Long literals shrink to "?" and need no cut.
	long := "SELECT '" + strings.Repeat("x", 10000) + "', 1"
	if got := Sanitize(long); got != "SELECT ?, ?" {
		t.Errorf("long literal: got %q", got)
	}
}

func TestSanitizeAllocs(t *testing.T) {
	for _, c := range []struct {
		in     string
		allocs float64
	}{
		{`SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2`, 0},
		{"select u1_0.id,u1_0.email from users u1_0 where u1_0.email=?", 0},
		{`SELECT * FROM "users" WHERE "users"."id" = 42 AND name = 'x'`, 1},
		{"  SELECT 1 /* c */", 1},
	} {
		got := testing.AllocsPerRun(100, func() { Sanitize(c.in) })
		if got != c.allocs {
			t.Errorf("Sanitize(%q): %v allocations, want %v", c.in, got, c.allocs)
		}
	}
}

func TestSanitizeSharesUnchangedText(t *testing.T) {
	in := `SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2;  `
	got := Sanitize(in)
	if got != strings.TrimSpace(in) {
		t.Fatalf("got %q", got)
	}
}
