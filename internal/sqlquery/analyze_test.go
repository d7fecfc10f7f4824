package sqlquery

import (
	"strings"
	"testing"
	"unicode/utf8"
)

type analyzeCase struct {
	name string
	in   string
	want Statement
}

func st(op, coll, sum string) Statement {
	return Statement{Operation: op, Collection: coll, Summary: sum}
}

var analyzeCases = []analyzeCase{
	// The examples of the conventions.
	{"single operation", "SELECT *\nFROM   wuser_table\nWHERE  username = ?", st("SELECT", "wuser_table", "SELECT wuser_table")},
	{"insert select", "INSERT INTO shipping_details\n(order_id,\naddress)\nSELECT order_id,\naddress\nFROM   orders\nWHERE  order_id = ?",
		st("INSERT", "", "INSERT shipping_details SELECT orders")},
	{"two tables", "SELECT *\nFROM   songs,\n       artists\nWHERE  songs.artist_id == artists.id", st("SELECT", "", "SELECT songs artists")},
	{"anonymous table", "SELECT order_date\nFROM   (SELECT *\n        FROM   orders o\n               JOIN customers c\n                 ON o.customer_id = c.customer_id)",
		st("SELECT", "", "SELECT SELECT orders customers")},
	{"quoted names", `SELECT * FROM "song list", artists`, st("SELECT", "", `SELECT "song list" artists`)},
	{"no table", "SELECT 12, -12, +12", st("SELECT", "", "SELECT")},
	{"digits in names", "SELECT c3po, r2d2 FROM covid19 WHERE n1h1=1234", st("SELECT", "covid19", "SELECT covid19")},
	{"qualified names", "SELECT a FROM dbo.Table JOIN dbo.AnotherTable", st("SELECT", "", "SELECT dbo.Table dbo.AnotherTable")},
	{"insert values", "INSERT INTO X VALUES(1, 23456, 123.456, 99+100)", st("INSERT", "X", "INSERT X")},
	{"case kept", "SELEcT order_date\nFROM ORders", st("SELECT", "ORders", "SELEcT ORders")},
	{"case kept in subquery", "SELEcT order_date\nFROM   (sELECT *\nFROM   orders o\nJOIN customers c\nON o.customer_id = c.customer_id)",
		st("SELECT", "", "SELEcT sELECT orders customers")},
	{"cross join", "SELECT * FROM Orders o CROSS JOIN OrderDetails od", st("SELECT", "", "SELECT Orders OrderDetails")},
	{"comma join", "SELECT * FROM Orders o, OrderDetails od", st("SELECT", "", "SELECT Orders OrderDetails")},
	{"create table", "CREATE  TABLE MyTable (\n    ID NOT NULL IDENTITY(1,1) PRIMARY KEY\n)", st("CREATE", "MyTable", "CREATE TABLE MyTable")},
	{"alter table", "ALTER  TABLE MyTable ADD Name varchar(255)", st("ALTER", "MyTable", "ALTER TABLE MyTable")},
	{"drop table", "DROP  TABLE MyTable", st("DROP", "MyTable", "DROP TABLE MyTable")},
	{"comments", "SELECT column -- end of line comment\nFROM /* block \n comment */ table", st("SELECT", "table", "SELECT table")},

	// Joins and subqueries.
	{"joins", "SELECT * FROM a LEFT OUTER JOIN b ON a.id = b.a_id INNER JOIN c USING (id) NATURAL JOIN d RIGHT JOIN e ON (e.x = a.x) FULL JOIN f ON true",
		st("SELECT", "", "SELECT a b c d e f")},
	{"comma after join condition", "SELECT * FROM a JOIN b ON a.x = b.x, c WHERE c.y = 1", st("SELECT", "", "SELECT a b c")},
	{"straight join", "SELECT * FROM a STRAIGHT_JOIN b ON a.x = b.x", st("SELECT", "", "SELECT a b")},
	{"parenthesised join", "SELECT * FROM (a JOIN b ON a.x = b.x) JOIN c ON c.y = b.y", st("SELECT", "", "SELECT a b c")},
	{"lateral", "SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.a = a.id LIMIT 1) lb", st("SELECT", "", "SELECT a SELECT b")},
	{"subqueries in order", "SELECT (SELECT count(*) FROM b) AS n, x FROM a WHERE id IN (SELECT a_id FROM c) AND EXISTS (SELECT 1 FROM d)",
		st("SELECT", "", "SELECT SELECT b a SELECT c SELECT d")},
	{"same table twice", "SELECT * FROM orders WHERE total > (SELECT avg(total) FROM orders)", st("SELECT", "orders", "SELECT orders SELECT orders")},
	{"self join", "SELECT * FROM emp e JOIN emp m ON e.manager = m.id", st("SELECT", "emp", "SELECT emp emp")},
	{"union", "SELECT a FROM x UNION ALL SELECT b FROM y ORDER BY 1", st("SELECT", "", "SELECT x SELECT y")},
	{"parenthesised union", "(SELECT a FROM x) UNION (SELECT b FROM y) LIMIT 5", st("SELECT", "", "SELECT x SELECT y")},
	{"table function", "SELECT * FROM generate_series(1, 10) AS g(i)", st("SELECT", "", "SELECT")},
	{"table function and table", "SELECT * FROM t, unnest(t.arr) AS u(x)", st("SELECT", "t", "SELECT t")},
	{"dual", "SELECT 1 FROM DUAL", st("SELECT", "", "SELECT")},
	{"distinct from", "SELECT a IS DISTINCT FROM b FROM t", st("SELECT", "t", "SELECT t")},
	{"extract from", "SELECT EXTRACT(YEAR FROM created) FROM t", st("SELECT", "t", "SELECT t")},
	{"for update", "SELECT * FROM jobs WHERE state = 'new' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", st("SELECT", "jobs", "SELECT jobs")},
	{"mysql hints", "SELECT * FROM t PARTITION (p0) USE INDEX (i1) JOIN u FORCE INDEX FOR JOIN (i2) ON t.a = u.a", st("SELECT", "", "SELECT t u")},
	{"select into variables", "SELECT a, b INTO @x, @y FROM t", st("SELECT", "t", "SELECT t")},
	{"inheritance", "SELECT * FROM ONLY parent", st("SELECT", "parent", "SELECT parent")},
	{"quoted and qualified", `SELECT * FROM "public"."Orders" o JOIN public.items i ON i.o = o.id`, st("SELECT", "", `SELECT "public"."Orders" public.items`)},
	{"one quoted table", `SELECT * FROM "public"."Orders" WHERE "Orders"."id" = $1`, st("SELECT", "public.Orders", `SELECT "public"."Orders"`)},
	{"backticks", "SELECT * FROM `shop`.`order items` WHERE id = ?", st("SELECT", "shop.order items", "SELECT `shop`.`order items`")},
	{"blanks around dots", "SELECT * FROM public . orders", st("SELECT", "public.orders", "SELECT public.orders")},
	{"values statement", "VALUES (1, 2), (3, 4)", st("VALUES", "", "VALUES")},
	{"subquery values", "SELECT * FROM (VALUES (1), (2)) AS v(x)", st("SELECT", "", "SELECT VALUES")},

	// WITH.
	{"cte", "WITH recent AS (SELECT * FROM orders WHERE created > now() - interval '1 day') SELECT * FROM recent JOIN customers c ON c.id = recent.customer_id",
		st("SELECT", "", "SELECT orders SELECT customers")},
	{"cte one table", "WITH x AS (SELECT * FROM orders) SELECT count(*) FROM x", st("SELECT", "orders", "SELECT orders SELECT")},
	{"recursive cte", "WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n+1 FROM t WHERE n < 100) SELECT sum(n) FROM t",
		st("SELECT", "", "VALUES SELECT SELECT")},
	{"two ctes", "WITH a AS (SELECT * FROM x), b AS MATERIALIZED (SELECT * FROM y) SELECT * FROM a, b", st("SELECT", "", "SELECT x SELECT y SELECT")},
	{"data-modifying cte", "WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) INSERT INTO done SELECT * FROM moved",
		st("INSERT", "", "DELETE queue INSERT done SELECT")},
	{"keyword-like cte name", "WITH data AS (SELECT * FROM t), key AS (SELECT 1) SELECT * FROM data, key", st("SELECT", "t", "SELECT t SELECT SELECT")},
	{"insert with cte", "INSERT INTO t WITH s AS (SELECT * FROM u) SELECT * FROM s", st("INSERT", "", "INSERT t SELECT u SELECT")},

	// INSERT.
	{"insert returning", `INSERT INTO "users" ("name","age") VALUES ($1,$2) RETURNING "id"`, st("INSERT", "users", `INSERT "users"`)},
	{"insert on conflict", "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = (SELECT max(b) FROM u)", st("INSERT", "", "INSERT t SELECT u")},
	{"insert default values", "INSERT INTO log DEFAULT VALUES", st("INSERT", "log", "INSERT log")},
	{"insert set", "INSERT IGNORE INTO t SET a = 1, b = 'x'", st("INSERT", "t", "INSERT t")},
	{"insert without into", "INSERT t (a) VALUES (1)", st("INSERT", "t", "INSERT t")},
	{"insert on duplicate key", "INSERT INTO t (a, b) VALUES (1, 2) ON DUPLICATE KEY UPDATE b = VALUES(b)", st("INSERT", "t", "INSERT t")},
	{"replace", "REPLACE INTO t (a) VALUES (1)", st("REPLACE", "t", "REPLACE t")},
	{"insert alias", "INSERT INTO t AS x (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = x.a + 1", st("INSERT", "t", "INSERT t")},
	{"insert parenthesised select", "INSERT INTO t (SELECT * FROM u)", st("INSERT", "", "INSERT t SELECT u")},
	{"insert overriding", "INSERT INTO t (id) OVERRIDING SYSTEM VALUE VALUES (1)", st("INSERT", "t", "INSERT t")},

	// UPDATE, DELETE, MERGE.
	{"update", "UPDATE accounts SET balance = balance - 100 WHERE id = 1", st("UPDATE", "accounts", "UPDATE accounts")},
	{"update from", "UPDATE a SET x = b.y FROM b WHERE a.id = b.id", st("UPDATE", "", "UPDATE a b")},
	{"update subquery", "UPDATE accounts SET total = (SELECT sum(amount) FROM ledger WHERE ledger.account = accounts.id)", st("UPDATE", "", "UPDATE accounts SELECT ledger")},
	{"update multi-table", "UPDATE items i JOIN orders o ON o.id = i.order_id SET i.done = 1 WHERE o.state = 'x'", st("UPDATE", "", "UPDATE items orders")},
	{"update alias", "UPDATE ONLY t AS x SET a = 1", st("UPDATE", "t", "UPDATE t")},
	{"delete", "DELETE FROM t WHERE id = 1 RETURNING *", st("DELETE", "t", "DELETE t")},
	{"delete using", "DELETE FROM a USING b WHERE a.id = b.id", st("DELETE", "", "DELETE a b")},
	{"delete mysql modifiers", "DELETE LOW_PRIORITY QUICK FROM t WHERE a = 1 ORDER BY id LIMIT 10", st("DELETE", "t", "DELETE t")},
	{"delete multi-table", "DELETE t1, t2 FROM t1 JOIN t2 ON t1.id = t2.id", st("DELETE", "", "")},
	{"merge", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT (id, a) VALUES (s.id, s.a)",
		st("MERGE", "", "MERGE t s")},
	{"merge subquery", "MERGE INTO t AS x USING (SELECT * FROM s) AS y ON x.id = y.id WHEN MATCHED THEN DELETE", st("MERGE", "", "MERGE t SELECT s")},

	// Definitions.
	{"create table as", "CREATE TEMPORARY TABLE t AS SELECT * FROM s", st("CREATE", "", "CREATE TABLE t SELECT s")},
	{"create table if not exists", `CREATE TABLE IF NOT EXISTS "t" ("id" serial PRIMARY KEY, "ref" int REFERENCES u (id))`, st("CREATE", "t", `CREATE TABLE "t"`)},
	{"create view", "CREATE OR REPLACE VIEW v AS SELECT * FROM t", st("CREATE", "", "CREATE VIEW v SELECT t")},
	{"create materialized view", "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t", st("CREATE", "", "CREATE MATERIALIZED VIEW mv SELECT t")},
	{"create index", "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx ON t (a)", st("CREATE", "", "CREATE INDEX idx")},
	{"create index unnamed", "CREATE INDEX ON t (a)", st("CREATE", "", "CREATE INDEX")},
	{"drop tables", "DROP TABLE IF EXISTS a, b CASCADE", st("DROP", "", "DROP TABLE a b")},
	{"drop index", "DROP INDEX CONCURRENTLY idx", st("DROP", "", "DROP INDEX idx")},
	{"alter table only", "ALTER TABLE ONLY public.t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id)", st("ALTER", "public.t", "ALTER TABLE public.t")},
	{"create schema", "CREATE SCHEMA IF NOT EXISTS app", st("CREATE", "", "CREATE SCHEMA app")},
	{"create function", "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", st("CREATE", "", "CREATE FUNCTION f")},
	{"create procedure", "CREATE PROCEDURE p() BEGIN SELECT * FROM t; UPDATE u SET a = 1; END", st("CREATE", "", "CREATE PROCEDURE p")},
	{"create role", "CREATE ROLE app LOGIN PASSWORD 'x'", st("CREATE", "", "")},
	{"truncate", "TRUNCATE TABLE ONLY a, b RESTART IDENTITY", st("TRUNCATE", "", "TRUNCATE TABLE a b")},
	{"truncate one", "truncate logs", st("TRUNCATE", "logs", "truncate logs")},

	// Other statements.
	{"begin", "BEGIN", st("BEGIN", "", "BEGIN")},
	{"begin isolation", "BEGIN ISOLATION LEVEL SERIALIZABLE", st("BEGIN", "", "BEGIN")},
	{"start transaction", "START TRANSACTION READ ONLY", st("START", "", "START TRANSACTION")},
	{"start replica", "START SLAVE", st("START", "", "")},
	{"commit", "commit;", st("COMMIT", "", "commit")},
	{"rollback to savepoint", "ROLLBACK TO SAVEPOINT s1", st("ROLLBACK", "", "ROLLBACK")},
	{"savepoint", "SAVEPOINT s1", st("SAVEPOINT", "", "SAVEPOINT")},
	{"set", "SET search_path TO app, public", st("SET", "", "SET")},
	{"set names", "SET NAMES utf8mb4", st("SET", "", "SET")},
	{"set from subquery", "SET @n = (SELECT count(*) FROM t)", st("SET", "", "SET SELECT t")},
	{"show", "SHOW transaction_isolation", st("SHOW", "", "")},
	{"show columns", "SHOW COLUMNS FROM t", st("SHOW", "", "")},
	{"use", "USE shop", st("USE", "", "USE shop")},
	{"call", "CALL refresh_totals(1, 'x')", st("CALL", "", "CALL refresh_totals")},
	{"explain", "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t WHERE a = 1", st("EXPLAIN", "", "EXPLAIN SELECT t")},
	{"explain mysql", "EXPLAIN FORMAT=JSON UPDATE t SET a = 1", st("EXPLAIN", "", "EXPLAIN UPDATE t")},
	{"explain table", "EXPLAIN t", st("EXPLAIN", "", "")},
	{"copy", "COPY public.t (a, b) FROM STDIN WITH (FORMAT csv)", st("COPY", "public.t", "COPY public.t")},
	{"copy query", "COPY (SELECT * FROM t) TO STDOUT", st("COPY", "t", "COPY SELECT t")},
	{"vacuum", "VACUUM ANALYZE t", st("VACUUM", "", "")},
	{"grant", "GRANT SELECT ON t TO app", st("GRANT", "", "")},
	{"describe", "DESC t", st("DESC", "", "")},

	// ORMs.
	{"django", `SELECT "auth_user"."id", "auth_user"."username" FROM "auth_user" WHERE "auth_user"."username" = 'admin' LIMIT 21`, st("SELECT", "auth_user", `SELECT "auth_user"`)},
	{"django join", `SELECT "polls_choice"."id" FROM "polls_choice" INNER JOIN "polls_question" ON ("polls_choice"."question_id" = "polls_question"."id") WHERE "polls_question"."pub_date" <= '2024-01-01' ORDER BY "polls_choice"."id" ASC`,
		st("SELECT", "", `SELECT "polls_choice" "polls_question"`)},
	{"django count", `SELECT COUNT(*) AS "__count" FROM "auth_user"`, st("SELECT", "auth_user", `SELECT "auth_user"`)},
	{"django update", `UPDATE "auth_user" SET "last_login" = '2024-01-02T03:04:05'::timestamptz WHERE "auth_user"."id" = 1`, st("UPDATE", "auth_user", `UPDATE "auth_user"`)},
	{"hibernate", "select u1_0.id,u1_0.email from users u1_0 left join orders o1_0 on u1_0.id=o1_0.user_id where u1_0.email=? offset ? rows fetch first ? rows only",
		st("SELECT", "", "select users orders")},
	{"hibernate sequence", "select nextval('orders_seq')", st("SELECT", "", "select")},
	{"gorm", `SELECT * FROM "users" WHERE "users"."deleted_at" IS NULL AND "users"."id" = $1 ORDER BY "users"."id" LIMIT 1`, st("SELECT", "users", `SELECT "users"`)},
	{"gorm mysql", "SELECT * FROM `users` WHERE `users`.`deleted_at` IS NULL ORDER BY `users`.`id` LIMIT 1", st("SELECT", "users", "SELECT `users`")},
	{"rails", `SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2`, st("SELECT", "users", `SELECT "users"`)},
	{"rails exists", `SELECT 1 AS one FROM "posts" WHERE "posts"."user_id" = $1 LIMIT $2`, st("SELECT", "posts", `SELECT "posts"`)},
	{"sqlalchemy", "SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.name = %(name_1)s", st("SELECT", "users", "SELECT users")},

	// What is not followed gives the operation only, or nothing.
	{"unknown statement", "FROBNICATE the widgets", Statement{}},
	{"empty", "", Statement{}},
	{"comment only", "/* nothing */", Statement{}},
	{"several statements", "SELECT 1; SELECT 2", Statement{}},
	{"trailing semicolons", "SELECT * FROM t;;", st("SELECT", "t", "SELECT t")},
	{"two aliases", "SELECT * FROM t x y", st("SELECT", "", "")},
	{"string as table", "SELECT * FROM 'artists'", st("SELECT", "", "")},
	{"cut short", "SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE", st("SELECT", "", "")},
	{"readings disagree", `SELECT * FROM t WHERE name = 'O\'Brien' AND id IN (SELECT id FROM u)`, st("SELECT", "", "")},
	{"hash operator or comment", "SELECT a # b FROM t", st("SELECT", "", "")},
	{"select into table", "SELECT * INTO newtable FROM t", st("SELECT", "", "")},
	{"stray parenthesis", "SELECT 1)", st("SELECT", "", "")},
	{"too many ctes", "WITH a AS (SELECT 1), b AS (SELECT 1), c AS (SELECT 1), d AS (SELECT 1), e AS (SELECT 1), f AS (SELECT 1), g AS (SELECT 1), h AS (SELECT 1), i AS (SELECT 1) SELECT * FROM i",
		st("SELECT", "", "")},
}

func TestAnalyze(t *testing.T) {
	for _, c := range analyzeCases {
		t.Run(c.name, func(t *testing.T) {
			if got := Analyze(c.in); got != c.want {
				t.Errorf("Analyze(%q)\n got %+v\nwant %+v", c.in, got, c.want)
			}
		})
	}
}

func TestAnalyzeDialect(t *testing.T) {
	in := `SELECT * FROM t WHERE name = 'O\'Brien' AND id IN (SELECT id FROM u)`
	if got, want := MySQL.Analyze(in), st("SELECT", "", "SELECT t SELECT u"); got != want {
		t.Errorf("MySQL: got %+v, want %+v", got, want)
	}
	in = `SELECT a #>> '{b,c}' FROM t WHERE p = '\'`
	if got, want := PostgreSQL.Analyze(in), st("SELECT", "t", "SELECT t"); got != want {
		t.Errorf("PostgreSQL: got %+v, want %+v", got, want)
	}
	if got, want := Analyze(in), st("SELECT", "", ""); got != want {
		t.Errorf("any: got %+v, want %+v", got, want)
	}
}

func TestAnalyzeSummaryLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("SELECT * FROM ")
	for i := range 40 {
		if i > 0 {
			b.WriteString(" JOIN ")
		}
		b.WriteString("table_with_a_long_name_")
		b.WriteByte(byte('a' + i%26))
		b.WriteString(" ON true")
	}
	got := Analyze(b.String())
	if n := utf8.RuneCountInString(got.Summary); n > MaxSummaryLen || n < MaxSummaryLen-30 {
		t.Errorf("summary of %d characters: %q", n, got.Summary)
	}
	for _, part := range strings.Fields(got.Summary)[1:] {
		if len(part) != len("table_with_a_long_name_a") {
			t.Errorf("summary cut inside a target: %q", part)
		}
	}
	// A target longer than the limit is left out whole.
	long := "SELECT * FROM " + strings.Repeat("é", 300)
	if got := Analyze(long); got.Summary != "SELECT" {
		t.Errorf("long target: summary %q", got.Summary)
	}
}

func TestAnalyzeDeepNesting(t *testing.T) {
	in := strings.Repeat("(", 10000) + "SELECT 1 FROM t" + strings.Repeat(")", 10000)
	if got := Analyze(in); got != st("", "", "") && got.Summary != "" {
		t.Errorf("deep nesting: %+v", got)
	}
	in = "SELECT * FROM t WHERE a IN " + strings.Repeat("(SELECT b FROM u WHERE c IN ", 1000) + "(1)" + strings.Repeat(")", 1000)
	if got := Analyze(in); got != st("SELECT", "", "") {
		t.Errorf("deep subqueries: %+v", got)
	}
}

func TestAnalyzeAllocs(t *testing.T) {
	in := `SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2`
	if n := testing.AllocsPerRun(100, func() { Analyze(in) }); n > 2 {
		t.Errorf("Analyze: %v allocations", n)
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"SELECT 1", []string{"SELECT 1"}},
		{" ; ;  ", nil},
		{"", nil},
		{"SELECT ';' ; /* ; */ ; -- ;\n SELECT \";\"", []string{"SELECT ';'", `SELECT ";"`}},
		{"BEGIN; UPDATE t SET a = 1; COMMIT", []string{"BEGIN", "UPDATE t SET a = 1", "COMMIT"}},
		{"SELECT $$a;b$$; SELECT $x$;$x$", []string{"SELECT $$a;b$$", "SELECT $x$;$x$"}},
		{"SELECT (1; 2); SELECT 3", []string{"SELECT (1; 2)", "SELECT 3"}},
		{"/* lead */ SELECT 1 /* trail */ ; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"CREATE PROCEDURE p() BEGIN SELECT 1; IF x THEN SELECT 2; END IF; CASE y WHEN 1 THEN SELECT 3; END CASE; END; SELECT 4",
			[]string{"CREATE PROCEDURE p() BEGIN SELECT 1; IF x THEN SELECT 2; END IF; CASE y WHEN 1 THEN SELECT 3; END CASE; END", "SELECT 4"}},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3",
			[]string{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END", "SELECT 3"}},
		{"CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1; SELECT 1", []string{"CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1", "SELECT 1"}},
		{"BEGIN; SELECT CASE WHEN a THEN 1 END; END", []string{"BEGIN", "SELECT CASE WHEN a THEN 1 END", "END"}},
		// The readings disagree on where the string ends: no cut inside.
		{`SELECT 'a\'; SELECT 2; SELECT 'b'`, []string{`SELECT 'a\'; SELECT 2; SELECT 'b'`}},
	} {
		got := Split(c.in)
		if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("Split(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	if got := PostgreSQL.Split(`SELECT 'a\'; SELECT 2`); len(got) != 2 {
		t.Errorf("PostgreSQL.Split: %q", got)
	}
	if got := MySQL.Split(`SELECT 'a\'; SELECT 2'; SELECT 3`); len(got) != 2 {
		t.Errorf("MySQL.Split: %q", got)
	}
}

func TestAnalyzeCutText(t *testing.T) {
	for _, in := range []string{
		"SELECT * FROM t WHERE a = 'abc",
		"SELECT * FROM t /* comment",
		`SELECT * FROM t WHERE a = "x`,
		"SELECT * FROM t WHERE a = $$x",
		"SELECT * FROM t WHERE a IN (1, 2",
	} {
		if got, want := Analyze(in), st("SELECT", "", ""); got != want {
			t.Errorf("Analyze(%q) = %+v, want %+v", in, got, want)
		}
	}
	if got, want := Analyze("SELECT * FROM t -- comment"), st("SELECT", "t", "SELECT t"); got != want {
		t.Errorf("a line comment ends at the end of the text: %+v", got)
	}
}
