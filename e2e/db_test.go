package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
)

// dbEnv holds the database servers TestDB's subtests share, their tables
// made and filled by the test process (which is never watched).
type dbEnv struct {
	pg *dbservers.Postgres
	my *dbservers.MariaDB
	rd *dbservers.Redis
}

// TestDB runs real PostgreSQL, MariaDB and Redis servers once, and checks
// the spans and metrics of their clients in Go, Python and the
// command-line tools, exactly; DB calls made while serving HTTP; and what
// watching the servers themselves gives. Figures (counts, linking share,
// example spans, timings) are logged for the README.
func TestDB(t *testing.T) {
	requireRoot(t)
	began := time.Now()
	env := &dbEnv{pg: dbservers.StartPostgres(t), my: dbservers.StartMariaDB(t), rd: dbservers.StartRedis(t)}
	env.fill(t)
	t.Logf("TIMING servers started and filled in %v", time.Since(began).Round(time.Millisecond))
	t.Run("clients", func(t *testing.T) {
		t.Run("postgresql", env.testPostgresClients)
		t.Run("mysql", env.testMySQLClients)
		t.Run("redis", env.testRedisClients)
	})
	t.Run("query-text-off", env.testQueryTextOff)
	t.Run("opened-before-start", env.testOpenedBefore)
	t.Run("under-http", env.testUnderHTTP)
	t.Run("server-side", func(t *testing.T) {
		t.Run("postgresql", env.testPostgresServer)
		t.Run("mariadb", env.testMariaDBServer)
		t.Run("redis", env.testRedisServer)
	})
	t.Logf("TIMING TestDB took %v", time.Since(began).Round(time.Millisecond))
}

// fill makes the tables: users (ids 1..10) and items, empty, in both SQL
// servers.
func (e *dbEnv) fill(t *testing.T) {
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, e.pg.DSN(dbservers.PostgresDatabase))
	require.NoError(t, err)
	defer pg.Close(ctx)
	for _, q := range []string{
		"CREATE TABLE users (id int PRIMARY KEY, name text)",
		"INSERT INTO users SELECT g, 'user-' || g FROM generate_series(1, 10) g",
		"CREATE TABLE items (id int PRIMARY KEY, v text)",
	} {
		_, err := pg.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	my, err := sql.Open("mysql", e.my.DSN(dbservers.MariaDBDatabase))
	require.NoError(t, err)
	defer my.Close()
	for _, q := range []string{
		"CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(64))",
		"INSERT INTO users VALUES (1,'user-1'),(2,'user-2'),(3,'user-3'),(4,'user-4'),(5,'user-5')," +
			"(6,'user-6'),(7,'user-7'),(8,'user-8'),(9,'user-9'),(10,'user-10')",
		"CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(64))",
	} {
		_, err := my.Exec(q)
		require.NoError(t, err, q)
	}
}

// dbLiterals are bits of the values the workloads send: no attribute of
// any span may hold one.
var dbLiterals = []string{"secret", "zed", "dup", "user-", "goredis:", "redispy:", "cli:", "req:"}

// dbOp is one expected span of a database client, by the attributes that
// tell operations apart; code is db.response.status_code (and error.type,
// and status Error), "" for success.
type dbOp struct {
	name, op, coll, summary, text, ns, code string
	batch                                   int64 // db.operation.batch.size, 0 when absent
}

func (o dbOp) key() string {
	k := fmt.Sprintf("%q op=%q coll=%q summary=%q ns=%q text=%q", o.name, o.op, o.coll, o.summary, o.ns, o.text)
	if o.batch != 0 {
		k += fmt.Sprintf(" batch=%d", o.batch)
	}
	if o.code != "" {
		k += fmt.Sprintf(" ERROR code=%q type=%q", o.code, o.code)
	}
	return k
}

// dbKey is the key of span s as dbOp.key makes it, with what is wrong in
// its status appended.
func dbKey(s span) string {
	o := dbOp{name: s.Name(), op: s.str("db.operation.name"), coll: s.str("db.collection.name"),
		summary: s.str("db.query.summary"), text: s.str("db.query.text"), ns: s.str("db.namespace"),
		batch: s.int("db.operation.batch.size")}
	code, errType := s.str("db.response.status_code"), s.str("error.type")
	k := o.key()
	if code != "" || errType != "" || s.Status().Code() == ptrace.StatusCodeError {
		k += fmt.Sprintf(" ERROR code=%q type=%q", code, errType)
		if s.Status().Code() != ptrace.StatusCodeError {
			k += " status=" + s.Status().Code().String()
		}
	}
	return k
}

// dbWant lists the expected spans of a client: how many of each.
type dbWant []dbCount

type dbCount struct {
	n  int
	op dbOp
}

func (w dbWant) add(n int, o dbOp) dbWant { return append(w, dbCount{n, o}) }

func (w dbWant) keys() map[string]int {
	m := map[string]int{}
	for _, c := range w {
		m[c.op.key()] += c.n
	}
	return m
}

func (w dbWant) total() int {
	n := 0
	for _, c := range w {
		n += c.n
	}
	return n
}

// withoutText is w with db.query.text off.
func (w dbWant) withoutText() dbWant {
	return w.each(func(o dbOp) dbOp { o.text = ""; return o })
}

// each is w with f applied to each expected span.
func (w dbWant) each(f func(dbOp) dbOp) dbWant {
	out := make(dbWant, len(w))
	for i, c := range w {
		c.op = f(c.op)
		out[i] = c
	}
	return out
}

// dbClientCheck is what a client's spans must say beyond their keys.
type dbClientCheck struct {
	system string
	port   int
}

// run waits for the exact spans of client pid, checks every
// span's common attributes, and that db.client.operation.duration counted
// each operation; it returns the spans in the order they came.
func (c dbClientCheck) run(t *testing.T, h *harness, pid int, want dbWant) []span {
	t.Helper()
	// As h.waitSpans, with a diff of the spans by key when they differ.
	assert.Eventually(t, func() bool { return len(h.spansOf(pid, ptrace.SpanKindClient)) >= want.total() },
		15*time.Second, 50*time.Millisecond, "pid %d: waiting for %d client spans", pid, want.total())
	time.Sleep(500 * time.Millisecond) // time enough for extra spans to show up
	got := h.spansOf(pid, ptrace.SpanKindClient)
	keys := map[string]int{}
	for _, s := range got {
		keys[dbKey(s)]++
		c.common(t, s)
	}
	require.Equal(t, want.keys(), keys, "spans of pid %d by key", pid)
	for _, kind := range []ptrace.SpanKind{ptrace.SpanKindServer, ptrace.SpanKindInternal, ptrace.SpanKindUnspecified} {
		assert.Empty(t, h.spansOf(pid, kind), "%v spans of a client", kind)
	}
	h.waitRequestCount(t, pid, "db.client.operation.duration", uint64(want.total()))
	h.checkDBMetricAttributes(t, pid)
	t.Logf("COUNTS pid %d (%s): %d operations -> %d CLIENT spans, db.client.operation.duration count %d",
		pid, c.system, want.total(), len(got), h.requestCount(pid, "db.client.operation.duration"))
	return got
}

// dbMetricAttributes are the attributes db.client.operation.duration may
// have: low-cardinality ones only, never the query text.
var dbMetricAttributes = map[string]bool{"db.system.name": true, "db.operation.name": true,
	"db.collection.name": true, "db.namespace": true, "db.response.status_code": true, "error.type": true,
	"server.address": true, "server.port": true}

// checkDBMetricAttributes checks the attributes of every
// db.client.operation.duration point of process pid.
func (h *harness) checkDBMetricAttributes(t *testing.T, pid int) {
	t.Helper()
	for _, md := range h.metrics.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			if p, _ := rm.Resource().Attributes().Get("process.pid"); p.Int() != int64(pid) {
				continue
			}
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					if ms.At(k).Name() != "db.client.operation.duration" {
						continue
					}
					dps := ms.At(k).Histogram().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						dps.At(d).Attributes().Range(func(key string, _ pcommon.Value) bool {
							assert.True(t, dbMetricAttributes[key], "db.client.operation.duration has attribute %s", key)
							return true
						})
					}
				}
			}
		}
	}
}

// common checks what every span of a client of this server says.
func (c dbClientCheck) common(t *testing.T, s span) {
	t.Helper()
	assert.Equal(t, c.system, s.str("db.system.name"))
	assert.Equal(t, "127.0.0.1", s.str("server.address"))
	assert.Equal(t, int64(c.port), s.int("server.port"))
	assert.Equal(t, "127.0.0.1", s.str("network.peer.address"))
	assert.Equal(t, int64(c.port), s.int("network.peer.port"))
	assert.True(t, s.EndTimestamp() >= s.StartTimestamp() && s.StartTimestamp() > 0, "span times %v..%v", s.StartTimestamp(), s.EndTimestamp())
	s.Attributes().Range(func(k string, v pcommon.Value) bool {
		for _, lit := range dbLiterals {
			assert.NotContains(t, v.AsString(), lit, "attribute %s of %q holds a literal", k, s.Name())
		}
		return true
	})
}

// goDBPeer is the test binary as the database client role.
func goDBPeer(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), "E2E_ROLE="+role), env...)
	return cmd
}

// pythonDBPeer is a client script of testdata/db run by Debian's Python,
// which has Debian's database modules.
func pythonDBPeer(script string, env ...string) *exec.Cmd {
	cmd := exec.Command("/usr/bin/python3", filepath.Join("testdata", "db", script))
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// runDBPeer runs a client peer to its end; it must say "DONE <json>".
func runDBPeer(t *testing.T, cmd *exec.Cmd) (int, dbReport) {
	t.Helper()
	p := startPeer(t, cmd)
	line := p.readLine(t)
	require.True(t, strings.HasPrefix(line, "DONE "), "%v said %q", cmd.Args, line)
	var rep dbReport
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "DONE ")), &rep))
	require.NoError(t, cmd.Wait())
	return p.pid(), rep
}

// runCLI runs a command-line client with stdin to its end, and checks its
// exit status.
func runCLI(t *testing.T, cmd *exec.Cmd, stdin string, wantExit int) int {
	t.Helper()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	require.Equal(t, wantExit, cmd.ProcessState.ExitCode(), "%v: %v\n%s", cmd.Args, err, out)
	return cmd.ProcessState.Pid()
}

// logExample prints one span whole, for the README.
func logExample(t *testing.T, what string, s span) {
	t.Helper()
	t.Logf("EXAMPLE %s\n%s", what, formatSpan(s))
}

// formatSpan is a span as the README shows it: name, kind, status,
// attributes and resource, sorted.
func formatSpan(s span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  name:   %s\n  kind:   %s\n  status: %s", s.Name(), s.Kind(), s.Status().Code())
	if m := s.Status().Message(); m != "" {
		fmt.Fprintf(&b, " (%s)", m)
	}
	fmt.Fprintf(&b, "\n  duration: %v\n  attributes:\n", s.EndTimestamp().AsTime().Sub(s.StartTimestamp().AsTime()))
	writeMap(&b, s.Attributes())
	b.WriteString("  resource:\n")
	writeMap(&b, s.res)
	return b.String()
}

func writeMap(b *strings.Builder, m pcommon.Map) {
	var keys []string
	m.Range(func(k string, _ pcommon.Value) bool { keys = append(keys, k); return true })
	sort.Strings(keys)
	for _, k := range keys {
		v, _ := m.Get(k)
		if v.Type() == pcommon.ValueTypeStr {
			fmt.Fprintf(b, "    %s: %q\n", k, v.Str())
		} else {
			fmt.Fprintf(b, "    %s: %s\n", k, v.AsString())
		}
	}
}

// firstWith returns the first span whose operation is op and status code
// is code.
func firstWith(spans []span, op, code string) span {
	for _, s := range spans {
		if s.str("db.operation.name") == op && s.str("db.response.status_code") == code {
			return s
		}
	}
	return span{}
}

// watchPorts starts a receiver that selects the clients of the given
// ports when they connect; queryText sets db.query_text.
func watchPorts(t *testing.T, queryText bool, ports ...int) *harness {
	t.Helper()
	var ps []string
	for _, p := range ports {
		ps = append(ps, strconv.Itoa(p))
	}
	began := time.Now()
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.OpenPorts = strings.Join(ps, ",")
		c.DB.QueryText = queryText
	})
	t.Logf("TIMING receiver started in %v", time.Since(began).Round(time.Millisecond))
	return h
}

// The Postgres expectations of the workloads, in the database "otel".
func pgOp(name, op, coll, text, code string) dbOp {
	return dbOp{name: name, op: op, coll: coll, summary: name, text: text, ns: dbservers.PostgresDatabase, code: code}
}

// pgxWant is what pgxWorkload sends, with texts as the driver sends them
// (placeholders are no literals) or sanitized.
func pgxWant() dbWant {
	return dbWant{}.
		add(10, pgOp("SELECT users", "SELECT", "users", "SELECT name FROM users WHERE id = $1", "")).
		add(100, pgOp("INSERT items", "INSERT", "items", "INSERT INTO items (id, v) VALUES ($1, $2)", "")).
		add(1, pgOp("SELECT items", "SELECT", "items", "SELECT repeat(v, ?) FROM items WHERE id >= $1", "")).
		add(1, pgOp("UPDATE users", "UPDATE", "users", "UPDATE users SET name = ? WHERE id = ?", "")).
		add(1, pgOp("SELECT no_such_table", "SELECT", "no_such_table", "SELECT name FROM no_such_table WHERE id = $1", "42P01")).
		add(1, pgOp("INSERT users", "INSERT", "users", "INSERT INTO users (id, name) VALUES ($1, $2)", "23505")).
		add(5, pgOp("SELECT items", "SELECT", "items", "SELECT count(*) FROM items WHERE id >= $1", ""))
}

func (e *dbEnv) testPostgresClients(t *testing.T) {
	h := watchPorts(t, true, e.pg.Port)
	check := dbClientCheck{system: "postgresql", port: e.pg.Port}
	dsn := "E2E_DSN=" + e.pg.DSN(dbservers.PostgresDatabase)

	t.Run("go-pgx", func(t *testing.T) {
		pid, rep := runDBPeer(t, goDBPeer("db-pgx", dsn, "E2E_BASE=1000"))
		want := pgxWant()
		require.Equal(t, rep.Ops, want.total())
		spans := check.run(t, h, pid, want)
		logExample(t, "postgresql pgx prepared INSERT", firstWith(spans, "INSERT", ""))
		logExample(t, "postgresql pgx error", firstWith(spans, "SELECT", "42P01"))
	})
	t.Run("python-psycopg2", func(t *testing.T) {
		pid, rep := runDBPeer(t, pythonDBPeer("postgres_client.py", dsn, "E2E_BASE=2000"))
		want := dbWant{}.
			add(10, pgOp("SELECT users", "SELECT", "users", "SELECT name FROM users WHERE id = ?", "")).
			add(20, pgOp("INSERT items", "INSERT", "items", "INSERT INTO items (id, v) VALUES (?, ?)", "")).
			add(1, pgOp("COPY items", "COPY", "items", "COPY items (id, v) FROM STDIN", "")).
			add(1, dbOp{name: "DO otel", op: "DO", text: "DO ?", ns: dbservers.PostgresDatabase}).
			add(1, pgOp("SELECT items", "SELECT", "items", "SELECT repeat(v, ?) FROM items WHERE id BETWEEN ? AND ?", "")).
			add(1, pgOp("UPDATE users", "UPDATE", "users", "UPDATE users SET name = ? WHERE id IN (?)", "")).
			add(1, pgOp("SELECT no_such_table", "SELECT", "no_such_table", "SELECT name FROM no_such_table WHERE id = ?", "42P01")).
			add(1, dbOp{name: "BATCH SELECT", op: "BATCH SELECT", summary: "BATCH SELECT", text: "SELECT ?; SELECT ?",
				ns: dbservers.PostgresDatabase, batch: 2})
		require.Equal(t, rep.Ops, want.total())
		check.run(t, h, pid, want)
	})
	t.Run("psql", func(t *testing.T) {
		args := []string{}
		for i := 1; i <= 5; i++ {
			args = append(args, "-c", fmt.Sprintf("SELECT name FROM users WHERE id = %d", i))
		}
		args = append(args, "-c", "UPDATE users SET name = 'zed' WHERE id = 3",
			"-c", "SELECT name FROM no_such_table WHERE id = 1")
		pid := runCLI(t, e.pg.Psql(args...), "", 1) // the last command failed
		want := dbWant{}.
			add(5, pgOp("SELECT users", "SELECT", "users", "SELECT name FROM users WHERE id = ?", "")).
			add(1, pgOp("UPDATE users", "UPDATE", "users", "UPDATE users SET name = ? WHERE id = ?", "")).
			add(1, pgOp("SELECT no_such_table", "SELECT", "no_such_table", "SELECT name FROM no_such_table WHERE id = ?", "42P01"))
		spans := check.run(t, h, pid, want)
		logExample(t, "postgresql psql simple query", firstWith(spans, "UPDATE", ""))
	})
}

// The MySQL expectations, in the database "otel" of a MariaDB server.
func myOp(name, op, coll, summary, text, code string) dbOp {
	return dbOp{name: name, op: op, coll: coll, summary: summary, text: text, ns: dbservers.MariaDBDatabase, code: code}
}

// goMySQLWant is what goMySQLWorkload sends: each statement with
// arguments is prepared (a PREPARE span) and executed.
func goMySQLWant() dbWant {
	return dbWant{}.
		add(10, myOp("PREPARE users", "PREPARE", "users", "", "SELECT name FROM users WHERE id = ?", "")).
		add(10, myOp("SELECT users", "SELECT", "users", "SELECT users", "SELECT name FROM users WHERE id = ?", "")).
		add(1, myOp("PREPARE items", "PREPARE", "items", "", "INSERT INTO items (id, v) VALUES (?, ?)", "")).
		add(100, myOp("INSERT items", "INSERT", "items", "INSERT items", "INSERT INTO items (id, v) VALUES (?, ?)", "")).
		add(1, myOp("PREPARE items", "PREPARE", "items", "", "SELECT REPEAT(v, ?) FROM items WHERE id >= ?", "")).
		add(1, myOp("SELECT items", "SELECT", "items", "SELECT items", "SELECT REPEAT(v, ?) FROM items WHERE id >= ?", "")).
		add(1, myOp("SELECT items", "SELECT", "items", "SELECT items", "SELECT REPEAT(v, ?) FROM items", "")).
		add(1, myOp("UPDATE users", "UPDATE", "users", "UPDATE users", "UPDATE users SET name = ? WHERE id = ?", "")).
		add(1, myOp("SELECT no_such_table", "SELECT", "no_such_table", "SELECT no_such_table", "SELECT name FROM no_such_table WHERE id = ?", "1146")).
		add(1, myOp("PREPARE users", "PREPARE", "users", "", "INSERT INTO users (id, name) VALUES (?, ?)", "")).
		add(1, myOp("INSERT users", "INSERT", "users", "INSERT users", "INSERT INTO users (id, name) VALUES (?, ?)", "1062"))
}

func (e *dbEnv) testMySQLClients(t *testing.T) {
	h := watchPorts(t, true, e.my.Port)
	check := dbClientCheck{system: "mariadb", port: e.my.Port}

	t.Run("go-sql-driver", func(t *testing.T) {
		pid, rep := runDBPeer(t, goDBPeer("db-gomysql", "E2E_DSN="+e.my.DSN(dbservers.MariaDBDatabase), "E2E_BASE=1000"))
		want := goMySQLWant()
		require.Equal(t, rep.Ops, want.total())
		spans := check.run(t, h, pid, want)
		logExample(t, "mariadb go-sql-driver prepared INSERT", firstWith(spans, "INSERT", ""))
		logExample(t, "mariadb go-sql-driver error", firstWith(spans, "SELECT", "1146"))
	})
	t.Run("python-pymysql", func(t *testing.T) {
		pid, rep := runDBPeer(t, pythonDBPeer("mysql_client.py", "E2E_HOST=127.0.0.1", "E2E_PORT="+strconv.Itoa(e.my.Port),
			"E2E_USER="+dbservers.MariaDBUser, "E2E_PASSWORD="+dbservers.MariaDBPassword, "E2E_DB="+dbservers.MariaDBDatabase,
			"E2E_BASE=2000"))
		want := dbWant{}.
			add(10, myOp("SELECT users", "SELECT", "users", "SELECT users", "SELECT name FROM users WHERE id = ?", "")).
			add(1, myOp("INSERT items", "INSERT", "items", "INSERT items", "INSERT INTO items (id, v) VALUES (?, ?)", "")).
			add(1, myOp("SELECT items", "SELECT", "items", "SELECT items", "SELECT REPEAT(v, ?) FROM items WHERE id >= ?", "")).
			add(1, myOp("UPDATE users", "UPDATE", "users", "UPDATE users", "UPDATE users SET name = ? WHERE id IN (?)", "")).
			add(1, myOp("SELECT no_such_table", "SELECT", "no_such_table", "SELECT no_such_table", "SELECT name FROM no_such_table WHERE id = ?", "1146"))
		require.Equal(t, rep.Ops, want.total())
		check.run(t, h, pid, want)
	})
	t.Run("mariadb-cli", func(t *testing.T) {
		var stmts []string
		for i := 1; i <= 5; i++ {
			stmts = append(stmts, fmt.Sprintf("SELECT name FROM users WHERE id = %d", i))
		}
		stmts = append(stmts, "UPDATE users SET name = 'zed' WHERE id = 3", "SELECT name FROM no_such_table WHERE id = 1")
		pid := runCLI(t, e.my.Client(dbservers.MariaDBDatabase, "-e", strings.Join(stmts, "; ")), "", 1)
		want := dbWant{}.
			add(5, myOp("SELECT users", "SELECT", "users", "SELECT users", "SELECT name FROM users WHERE id = ?", "")).
			add(1, myOp("UPDATE users", "UPDATE", "users", "UPDATE users", "UPDATE users SET name = ? WHERE id = ?", "")).
			add(1, myOp("SELECT no_such_table", "SELECT", "no_such_table", "SELECT no_such_table", "SELECT name FROM no_such_table WHERE id = ?", "1146"))
		spans := check.run(t, h, pid, want)
		logExample(t, "mariadb cli COM_QUERY", firstWith(spans, "UPDATE", ""))
	})
}

// rdOp is a Redis command's expected span: its name is the command, its
// text the command and a "?" per argument, its namespace database 0.
func rdOp(cmd string, args int, code string) dbOp {
	text := cmd + strings.Repeat(" ?", args)
	return dbOp{name: cmd, op: cmd, summary: cmd, text: text, ns: "0", code: code}
}

// goRedisWant is what goRedisWorkload sends, and what the client sends on
// its own: go-redis opens a second connection for the transaction, and
// begins each with HELLO 3 and CLIENT SETINFO twice (which Redis 7.0 does
// not know: ERR), and one of them with CLIENT MAINT_NOTIFICATIONS (ERR
// too; an unknown subcommand is the container's name alone).
func goRedisWant() dbWant {
	return dbWant{}.
		add(2, rdOp("HELLO", 1, "")).
		add(4, dbOp{name: "CLIENT SETINFO", op: "CLIENT SETINFO", summary: "CLIENT SETINFO", text: "CLIENT SETINFO ? ?", ns: "0", code: "ERR"}).
		add(1, rdOp("CLIENT", 4, "ERR")).
		add(12, rdOp("SET", 2, "")). // 10, the large one, and one in the transaction
		add(11, rdOp("GET", 1, "")).
		add(51, rdOp("INCR", 1, "")). // the pipeline's 50, and one in the transaction
		add(1, rdOp("MULTI", 0, "")).
		add(1, rdOp("EXEC", 0, "")).
		add(1, rdOp("LPUSH", 2, "WRONGTYPE")).
		add(1, rdOp("INCR", 1, "ERR")).
		add(1, dbOp{name: "_OTHER", op: "_OTHER", summary: "_OTHER", ns: "0", code: "ERR"})
}

// goRedisHandshake counts the spans of goRedisWant the client sends on
// its own.
const goRedisHandshake = 7

// checkPipeline checks the n spans of a pipeline: consecutive in the
// order they came, from the first span of op after skip spans of op, in
// order of time, each inside the client's wall-clock window around it
// (with slack for the kernel's clock against the wall clock).
func checkPipeline(t *testing.T, spans []span, op string, n int, from, to int64) {
	t.Helper()
	first := -1
	for i, s := range spans {
		if s.str("db.operation.name") == op {
			first = i
			break
		}
	}
	require.GreaterOrEqual(t, first, 0, "no %s span", op)
	require.LessOrEqual(t, first+n, len(spans))
	const slack = int64(5 * time.Millisecond)
	var prev span
	for i, s := range spans[first : first+n] {
		require.Equal(t, op, s.str("db.operation.name"), "span %d of the pipeline", i)
		start, end := int64(s.StartTimestamp()), int64(s.EndTimestamp())
		assert.True(t, start >= from-slack && end <= to+slack,
			"span %d of the pipeline: %d..%d is outside the client's window %d..%d", i, start, end, from, to)
		if i > 0 {
			assert.True(t, start >= int64(prev.StartTimestamp()) && end >= int64(prev.EndTimestamp()),
				"span %d of the pipeline is out of order", i)
		}
		prev = s
	}
	t.Logf("PIPELINE %d %s spans: first starts %v after the client's window opens, last ends %v before it closes (window %v)",
		n, op, time.Duration(int64(spans[first].StartTimestamp())-from), time.Duration(to-int64(spans[first+n-1].EndTimestamp())),
		time.Duration(to-from))
}

func (e *dbEnv) testRedisClients(t *testing.T) {
	h := watchPorts(t, true, e.rd.Port)
	check := dbClientCheck{system: "redis", port: e.rd.Port}

	t.Run("go-redis", func(t *testing.T) {
		pid, rep := runDBPeer(t, goDBPeer("db-goredis", "E2E_ADDR="+e.rd.Addr, "E2E_BASE=1000"))
		want := goRedisWant()
		require.Equal(t, rep.Ops+goRedisHandshake, want.total())
		spans := check.run(t, h, pid, want)
		checkPipeline(t, spans, "INCR", 50, rep.PipelineStart, rep.PipelineEnd)
		logExample(t, "redis go-redis GET", firstWith(spans, "GET", ""))
		logExample(t, "redis go-redis error", firstWith(spans, "LPUSH", "WRONGTYPE"))
	})
	t.Run("python-redis", func(t *testing.T) {
		pid, rep := runDBPeer(t, pythonDBPeer("redis_client.py", "E2E_HOST=127.0.0.1", "E2E_PORT="+strconv.Itoa(e.rd.Port), "E2E_BASE=2000"))
		want := dbWant{}.
			add(11, rdOp("SET", 2, "")).
			add(10, rdOp("GET", 1, "")).
			add(51, rdOp("INCRBY", 2, "")). // redis-py's incr is INCRBY key 1
			add(1, rdOp("MULTI", 0, "")).
			add(1, rdOp("EXEC", 0, "")).
			add(1, rdOp("LPUSH", 2, "WRONGTYPE")).
			add(1, rdOp("INCRBY", 2, "ERR"))
		require.Equal(t, rep.Ops, want.total())
		spans := check.run(t, h, pid, want)
		checkPipeline(t, spans, "INCRBY", 50, rep.PipelineStart, rep.PipelineEnd)
	})
	t.Run("go-redis-large-reply", func(t *testing.T) {
		// An array reply longer than the capture, of elements shorter than
		// it, cannot be followed through its gaps; as Redis clients may
		// pipeline, nothing says where it ended, so the parser pairs
		// nothing more on the connection. What it reports must be right.
		list := "large:list"
		rdb := redis.NewClient(&redis.Options{Addr: e.rd.Addr})
		defer rdb.Close()
		vals := make([]any, 2000)
		for i := range vals {
			vals[i] = "element-" + strconv.Itoa(i)
		}
		require.NoError(t, rdb.RPush(context.Background(), list, vals...).Err())
		unreported := h.unreported(t)
		pid, rep := runDBPeer(t, goDBPeer("db-goredis-large-reply", "E2E_ADDR="+e.rd.Addr, "E2E_LIST="+list))
		want := dbWant{}.add(1, rdOp("HELLO", 1, "")).add(10, rdOp("GET", 1, "")).add(1, rdOp("LRANGE", 3, ""))
		require.Equal(t, rep.Ops, want.total())
		got := checkSubset(t, h, check, pid, want)
		t.Logf("COUNTS go-redis with a large array reply: %d commands -> %d spans; parse failures %s", want.total(), len(got), parseFailures(t, h))
		require.Len(t, got, 6, "HELLO and the GETs before the large reply")
		h.waitUnreported(t, unreported+int64(want.total()-len(got)))
	})
	t.Run("redis-cli", func(t *testing.T) {
		// One command per invocation, -r repeating it on one connection.
		for _, c := range []struct {
			args []string
			want dbWant
		}{
			{[]string{"-r", "5", "SET", "cli:0", "secret-0"}, dbWant{}.add(5, rdOp("SET", 2, ""))},
			{[]string{"-r", "5", "GET", "cli:0"}, dbWant{}.add(5, rdOp("GET", 1, ""))},
			{[]string{"LPUSH", "cli:0", "x"}, dbWant{}.add(1, rdOp("LPUSH", 2, "WRONGTYPE"))},
			{[]string{"INCR", "cli:0"}, dbWant{}.add(1, rdOp("INCR", 1, "ERR"))},
		} {
			pid := runCLI(t, e.rd.CLI(c.args...), "", 0)
			check.run(t, h, pid, c.want)
		}
	})
	t.Run("redis-cli-pipe", func(t *testing.T) {
		// --pipe writes what it reads as it comes, and a last ECHO of its
		// own to learn that every reply is in.
		var in strings.Builder
		resp := func(args ...string) {
			fmt.Fprintf(&in, "*%d\r\n", len(args))
			for _, a := range args {
				fmt.Fprintf(&in, "$%d\r\n%s\r\n", len(a), a)
			}
		}
		for i := 0; i < 50; i++ {
			resp("INCR", "cli:pipe:ctr")
		}
		resp("MULTI")
		resp("SET", "cli:tx", "secret")
		resp("LPUSH", "cli:tx", "x")
		resp("EXEC")
		from := time.Now().UnixNano()
		pid := runCLI(t, e.rd.CLI("--pipe"), in.String(), 0)
		to := time.Now().UnixNano()
		want := dbWant{}.
			add(50, rdOp("INCR", 1, "")).
			add(1, rdOp("MULTI", 0, "")).
			add(1, rdOp("SET", 2, "")).
			add(1, rdOp("LPUSH", 2, "WRONGTYPE")). // queued, failed in EXEC
			add(1, rdOp("EXEC", 0, "")).
			add(1, rdOp("ECHO", 1, ""))
		spans := check.run(t, h, pid, want)
		checkPipeline(t, spans, "INCR", 50, from, to)
	})
	t.Run("redis-cli-stdin", func(t *testing.T) {
		// Reading commands from stdin, redis-cli first asks COMMAND DOCS,
		// whose reply (about 200 KB of small nested values) the capture
		// cannot follow: the parser loses its place in the replies and,
		// as Redis clients may pipeline, pairs nothing more on the
		// connection. What it reports must still be right.
		var lines []string
		for i := 0; i < 5; i++ {
			lines = append(lines, fmt.Sprintf("SET cli:%d secret-%d", i, i))
		}
		lines = append(lines, "MULTI", "SET cli:tx 1", "INCR cli:tx", "EXEC")
		unreported := h.unreported(t)
		pid := runCLI(t, e.rd.CLI(), strings.Join(lines, "\n")+"\n", 0)
		want := dbWant{}.
			add(1, dbOp{name: "COMMAND DOCS", op: "COMMAND DOCS", summary: "COMMAND DOCS", text: "COMMAND DOCS", ns: "0"}).
			add(6, rdOp("SET", 2, "")).
			add(1, rdOp("INCR", 1, "")).
			add(1, rdOp("MULTI", 0, "")).
			add(1, rdOp("EXEC", 0, ""))
		got := checkSubset(t, h, check, pid, want)
		h.waitUnreported(t, unreported+int64(want.total()-len(got)))
		t.Logf("COUNTS redis-cli reading stdin: %d commands -> %d spans; parse failures %s", want.total(), len(got), parseFailures(t, h))
	})
}

// checkSubset waits a while for the spans of client pid, and checks that
// each is one of those wanted: where some cannot be reported, none may be
// wrong.
func checkSubset(t *testing.T, h *harness, check dbClientCheck, pid int, want dbWant) []span {
	t.Helper()
	time.Sleep(time.Second)
	got := h.spansOf(pid, ptrace.SpanKindClient)
	keys := want.keys()
	for _, s := range got {
		check.common(t, s)
		k := dbKey(s)
		assert.Positive(t, keys[k], "a span that is not one of the commands sent: %s", k)
		keys[k]--
	}
	return got
}

// unreported is the count of Redis commands the receiver could not
// report (parse failures of reason unreported_command), 0 when none.
func (h *harness) unreported(t *testing.T) int64 {
	return max(h.selfMetric(t, "otelcol_receiver_ebpf_parse_failures", "reason", "unreported_command"), 0)
}

// waitUnreported waits until the count of unreported Redis commands is
// n: every command is a span or counted.
func (h *harness) waitUnreported(t *testing.T, n int64) {
	t.Helper()
	assert.Eventually(t, func() bool { return h.unreported(t) == n }, 10*time.Second, 50*time.Millisecond,
		"unreported Redis commands: %d, want %d", h.unreported(t), n)
}

// Connections opened before the receiver started: what the receiver did
// not see is left out (the database named at startup; the text of the
// statement pgx prepared in a round trip the parser saw before it knew
// where it was in the stream), and the rest is exact. A Redis connection
// seen from its middle is not paired at all (a later one is).
func (e *dbEnv) testOpenedBefore(t *testing.T) {
	noNamespace := func(o dbOp) dbOp { o.ns = ""; return o }
	pgx := pgxWant().each(func(o dbOp) dbOp {
		if o.text == "SELECT name FROM users WHERE id = $1" {
			return dbOp{name: "postgresql"} // nothing known but the system
		}
		return noNamespace(o)
	})
	for _, c := range []struct {
		name   string
		cmd    *exec.Cmd
		check  dbClientCheck
		want   dbWant
		subset bool
	}{
		{"go-pgx", goDBPeer("db-pgx", "E2E_DSN="+e.pg.DSN(dbservers.PostgresDatabase), "E2E_BASE=6000", "E2E_WAIT=1"),
			dbClientCheck{"postgresql", e.pg.Port}, pgx, false},
		// The server's greeting, which names MySQL or MariaDB, was not
		// seen: which of the two it is cannot be told, and the system is
		// the conventions' fallback, "other_sql".
		{"go-sql-driver", goDBPeer("db-gomysql", "E2E_DSN="+e.my.DSN(dbservers.MariaDBDatabase), "E2E_BASE=6000", "E2E_WAIT=1"),
			dbClientCheck{"other_sql", e.my.Port}, goMySQLWant().each(noNamespace), false},
		{"go-redis", goDBPeer("db-goredis", "E2E_ADDR="+e.rd.Addr, "E2E_BASE=6000", "E2E_WAIT=1"),
			dbClientCheck{"redis", e.rd.Port}, goRedisWant(), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdin, err := c.cmd.StdinPipe()
			require.NoError(t, err)
			p := startReady(t, c.cmd)
			h := startReceiver(t, func(cfg *ebpfreceiver.Config) { cfg.Discovery.Pids = []int{p.pid()} })
			h.waitInstrumented(t, p.pid())
			_, err = stdin.Write([]byte("go\n"))
			require.NoError(t, err)
			line := p.readLine(t)
			require.True(t, strings.HasPrefix(line, "DONE "), "%v said %q", c.cmd.Args, line)
			if c.subset {
				got := checkSubset(t, h, c.check, p.pid(), c.want)
				t.Logf("COUNTS %s opened before the receiver started: %d commands -> %d spans; parse failures %s",
					c.name, c.want.total(), len(got), parseFailures(t, h))
				return
			}
			c.check.run(t, h, p.pid(), c.want)
			t.Logf("parse failures %s", parseFailures(t, h))
		})
	}
}

// With db.query_text off, the same clients give the same spans without
// db.query.text.
func (e *dbEnv) testQueryTextOff(t *testing.T) {
	h := watchPorts(t, false, e.pg.Port, e.my.Port, e.rd.Port)
	for _, c := range []struct {
		name  string
		cmd   *exec.Cmd
		check dbClientCheck
		want  dbWant
	}{
		{"go-pgx", goDBPeer("db-pgx", "E2E_DSN="+e.pg.DSN(dbservers.PostgresDatabase), "E2E_BASE=5000"),
			dbClientCheck{"postgresql", e.pg.Port}, pgxWant()},
		{"go-sql-driver", goDBPeer("db-gomysql", "E2E_DSN="+e.my.DSN(dbservers.MariaDBDatabase), "E2E_BASE=5000"),
			dbClientCheck{"mariadb", e.my.Port}, goMySQLWant()},
		{"go-redis", goDBPeer("db-goredis", "E2E_ADDR="+e.rd.Addr, "E2E_BASE=5000"),
			dbClientCheck{"redis", e.rd.Port}, goRedisWant()},
	} {
		t.Run(c.name, func(t *testing.T) {
			pid, _ := runDBPeer(t, c.cmd)
			spans := c.check.run(t, h, pid, c.want.withoutText())
			for _, s := range spans {
				_, ok := s.Attributes().Get("db.query.text")
				require.False(t, ok, "span %q has db.query.text", s.Name())
			}
		})
	}
}

// dbLinks counts, among the DB spans made while serving requests, the
// ones whose parent is their request's server span (right), another span
// (wrong), or none (missing).
type dbLinks struct {
	right, wrong, missing int
	bySystem              map[string]*[3]int // right, wrong, missing per db.system.name
	absent                int                // requests' DB operations with no span
	setUp                 int                // DB spans of no request: the pools' connections opened before serving
}

var reqColumn = regexp.MustCompile(`AS req_(\d+) FROM`)

// dbRequest says which request a DB span of runDBHTTPService is part of:
// exactly for Postgres (the column's name); for Redis, the request's
// number modulo 32 (the number of keys). ok is false for spans of no
// request.
func dbRequest(s span) (n int, mod32 bool, ok bool) {
	switch {
	case s.str("db.system.name") == "postgresql":
		m := reqColumn.FindStringSubmatch(s.str("db.query.text"))
		if m == nil {
			return 0, false, false
		}
		n, _ = strconv.Atoi(m[1])
		return n, false, true
	case s.str("db.operation.name") == "EXISTS":
		return strings.Count(s.str("db.query.text"), "?") - 1, true, true
	}
	return 0, false, false
}

// linkDB judges the parent of every DB span of the service: right when it
// is the server span of the request the DB work belongs to, in the same
// trace, and the DB span lies within it in time.
func linkDB(t *testing.T, server, db []span, requests int) dbLinks {
	l := dbLinks{bySystem: map[string]*[3]int{"postgresql": {}, "redis": {}}}
	byID := map[pcommon.SpanID]span{}
	firstServed := pcommon.Timestamp(1<<63 - 1)
	for _, s := range server {
		byID[s.SpanID()] = s
		firstServed = min(firstServed, s.StartTimestamp())
	}
	seen := map[string]int{}
	debug := os.Getenv("E2E_DEBUG_LINKS") != ""
	for _, d := range db {
		n, mod32, ok := dbRequest(d)
		if !ok {
			l.setUp++
			if d.EndTimestamp() >= firstServed {
				// Work that names no request while serving: pgxpool pings a
				// connection idle for over a second, on the goroutine that
				// acquires it or on its own. It may be under the request or
				// a root; it is never another request's.
				_, under := byID[d.ParentSpanID()]
				assert.True(t, under || d.ParentSpanID().IsEmpty(), "DB span %q of no request has a parent that serves nothing", d.Name())
			}
			continue
		}
		seen[fmt.Sprintf("%s %d %v", d.str("db.system.name"), n, mod32)]++
		sys := l.bySystem[d.str("db.system.name")]
		if d.ParentSpanID().IsEmpty() {
			l.missing++
			sys[2]++
			continue
		}
		p, found := byID[d.ParentSpanID()]
		if !found { // a parent that is no request of the service
			l.wrong++
			sys[1]++
			continue
		}
		req, _ := strconv.Atoi(lastSegment(p))
		if mod32 {
			req %= 32
		}
		sameTrace := p.TraceID() == d.TraceID()
		inside := d.StartTimestamp() >= p.StartTimestamp() && d.EndTimestamp() <= p.EndTimestamp()
		if req == n && sameTrace && inside {
			l.right++
			sys[0]++
			continue
		}
		l.wrong++
		sys[1]++
		if debug {
			fmt.Printf("WRONG %s: request %d (mod32 %v), parent's request %d, same trace %v, inside %v\n",
				d.str("db.system.name"), n, mod32, req, sameTrace, inside)
		}
	}
	for i := 0; i < requests; i++ {
		if seen[fmt.Sprintf("postgresql %d false", i)] != 1 {
			l.absent++
		}
	}
	for r := 0; r < 32; r++ {
		want := 0
		for i := r; i < requests; i += 32 {
			want++
		}
		if got := seen[fmt.Sprintf("redis %d true", r)]; got < want {
			l.absent += want - got
		}
	}
	return l
}

// A Go service that queries Postgres (pgx pool) and Redis (go-redis)
// while serving each HTTP request: every DB span should be the child of
// its request's server span, and none may be another's. The service is
// selected when it connects to the databases, so its connections are seen
// from their start. The last load pins each handler to the thread that
// read its request (runtime.LockOSThread), as a thread-per-request server
// does: what correlation by thread can do, against what Go's scheduler
// leaves it; both are told by the goroutine now.
func (e *dbEnv) testUnderHTTP(t *testing.T) {
	for _, load := range []struct {
		name              string
		requests, clients int
		env               []string
	}{
		{"sequential", 64, 1, nil},
		{"16-clients", 320, 16, nil},
		{"16-clients-locked-threads", 320, 16, []string{"E2E_LOCK_THREAD=1"}},
	} {
		t.Run(load.name, func(t *testing.T) {
			h := watchPorts(t, true, e.pg.Port, e.rd.Port)
			svc := startReady(t, goDBPeer("db-http-service", append([]string{"E2E_DSN=" + e.pg.DSN(dbservers.PostgresDatabase),
				"E2E_REDIS=" + e.rd.Addr}, load.env...)...))
			h.waitInstrumented(t, svc.pid())
			h.waitRuntimeOf(t, svc.pid()) // goroutines are told apart from then on
			_, ok := runGoClient(t, "http://"+svc.addr+"/work/{i}", load.requests, load.clients)
			require.Equal(t, load.requests, ok)
			server := h.waitSpans(t, svc.pid(), ptrace.SpanKindServer, load.requests)
			var db []span
			require.Eventually(t, func() bool {
				db = h.spansOf(svc.pid(), ptrace.SpanKindClient)
				n := 0
				for _, d := range db {
					if _, _, ok := dbRequest(d); ok {
						n++
					}
				}
				return n >= 2*load.requests
			}, 15*time.Second, 50*time.Millisecond, "DB spans of the requests")
			time.Sleep(500 * time.Millisecond) // time enough for extra spans to show up
			db = h.spansOf(svc.pid(), ptrace.SpanKindClient)
			l := linkDB(t, server, db, load.requests)
			ops := l.right + l.wrong + l.missing
			t.Logf("LINKING db-under-http %s: %d requests, %d DB spans of requests: %d right, %d wrong, %d missing parents (%.1f%% right); %d absent; %d spans of no request (set-up, pool pings)",
				load.name, load.requests, ops, l.right, l.wrong, l.missing, 100*float64(l.right)/float64(max(ops, 1)), l.absent, l.setUp)
			for _, sys := range []string{"postgresql", "redis"} {
				c := l.bySystem[sys]
				t.Logf("LINKING db-under-http %s %s: %d right, %d wrong, %d missing", load.name, sys, c[0], c[1], c[2])
			}
			require.Equal(t, 2*load.requests, ops, "one Postgres and one Redis span per request")
			require.Zero(t, l.absent)
			require.Zero(t, l.wrong, "a DB span with a wrong parent")
			// The goroutine that serves a request makes its calls (pgx and
			// go-redis write on the asking goroutine): every one is known.
			require.GreaterOrEqual(t, 100*l.right, 99*ops, "at least 99%% of the DB spans are their request's child")
		})
	}
}

// serverSide runs 10 queries on a connection opened before the receiver
// started and 10 on one opened after, with the server selected by pid,
// and checks what the server's processes produced: the parsers make
// client records only, so a server yields no span, never a wrong one. A
// connection the kernel saw accepted is counted once as a parse failure
// of reason accepted (when not "").
func serverSide(t *testing.T, pids []int, accepted string, before, after func(t *testing.T) func(i int)) {
	t.Helper()
	queryOld := before(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = pids })
	for _, pid := range pids {
		h.waitInstrumented(t, pid)
	}
	queryNew := after(t)
	for i := 1; i <= 10; i++ {
		queryOld(i)
		queryNew(i)
	}
	time.Sleep(time.Second) // time enough for spans to show up
	for _, pid := range pids {
		for _, kind := range []ptrace.SpanKind{ptrace.SpanKindServer, ptrace.SpanKindClient,
			ptrace.SpanKindInternal, ptrace.SpanKindUnspecified} {
			spans := h.spansOf(pid, kind)
			for _, s := range spans {
				t.Errorf("pid %d made a %v span:\n%s", pid, kind, formatSpan(s))
			}
		}
	}
	if accepted != "" {
		assert.Eventually(t, func() bool {
			return h.selfMetric(t, "otelcol_receiver_ebpf_parse_failures", "reason", accepted) == 1
		}, 5*time.Second, 50*time.Millisecond, "parse failures %s: want %s=1", parseFailures(t, h), accepted)
	}
	t.Logf("SERVER-SIDE pids %v: 20 queries -> 0 spans; parse failures %s", pids, parseFailures(t, h))
}

// parseFailures lists the receiver's counted parse failures.
func parseFailures(t *testing.T, h *harness) string {
	m, err := h.tel.GetMetric("otelcol_receiver_ebpf_parse_failures")
	if err != nil {
		return "none"
	}
	var out []string
	if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, p := range sum.DataPoints {
			proto, _ := p.Attributes.Value("protocol")
			reason, _ := p.Attributes.Value("reason")
			out = append(out, fmt.Sprintf("%s/%s=%d", proto.AsString(), reason.AsString(), p.Value))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (e *dbEnv) testPostgresServer(t *testing.T) {
	ctx := context.Background()
	postmaster, err := e.pg.Pid()
	require.NoError(t, err)
	// A backend is forked for each connection: the one of a connection
	// opened now is selected by its pid; the postmaster only accepts.
	conn, err := pgx.Connect(ctx, e.pg.DSN(dbservers.PostgresDatabase))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(ctx) })
	var backend int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend))
	query := func(c *pgx.Conn) func(i int) {
		return func(i int) {
			var name string
			require.NoError(t, c.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", i).Scan(&name))
		}
	}
	serverSide(t, []int{postmaster, backend}, "",
		func(t *testing.T) func(int) { return query(conn) },
		func(t *testing.T) func(int) {
			// A new connection's backend is a new process, not selected:
			// its queries show that the postmaster sees none of them.
			c, err := pgx.Connect(ctx, e.pg.DSN(dbservers.PostgresDatabase))
			require.NoError(t, err)
			t.Cleanup(func() { c.Close(ctx) })
			return query(c)
		})
}

func (e *dbEnv) testMariaDBServer(t *testing.T) {
	open := func(t *testing.T) func(int) {
		db, err := sql.Open("mysql", e.my.DSN(dbservers.MariaDBDatabase))
		require.NoError(t, err)
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		require.NoError(t, db.Ping())
		return func(i int) {
			var name string
			require.NoError(t, db.QueryRow("SELECT name FROM users WHERE id = ?", i).Scan(&name))
		}
	}
	serverSide(t, []int{e.my.Pid()}, "server_side", open, open)
}

func (e *dbEnv) testRedisServer(t *testing.T) {
	open := func(t *testing.T) func(int) {
		ctx := context.Background()
		rdb := redis.NewClient(&redis.Options{Addr: e.rd.Addr, PoolSize: 1})
		t.Cleanup(func() { rdb.Close() })
		require.NoError(t, rdb.Ping(ctx).Err())
		return func(i int) {
			require.NoError(t, rdb.Set(ctx, "server-side", i, 0).Err())
		}
	}
	serverSide(t, []int{e.rd.Pid()}, "server_side", open, open)
}
