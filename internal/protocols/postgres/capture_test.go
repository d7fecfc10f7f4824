package postgres

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
)

// recapture records the sessions in testdata again from a real server:
//
//	go test -run TestCapture ./internal/protocols/postgres/ -args -postgres.recapture
//
// The replay tests then assert on the new recordings; what a server
// sends may differ in details (process ids, keys, timings, segmentation)
// but not in what the tests assert.
var recapture = flag.Bool("postgres.recapture", false, "record the testdata sessions again from a PostgreSQL server")

// proxyPorts are the loopback ports the recording proxy may listen on.
var proxyPorts = []int{25436, 25437, 25438, 25439}

// chunk is what one read of the proxy moved: bytes one side wrote, with
// the direction as the client sees it (Outbound: the client wrote them).
type chunk struct {
	dir  Direction
	data []byte
}

// recorder is a TCP proxy in front of a server that keeps, per
// connection, the bytes each way in the order they moved.
type recorder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  [][]chunk
	wg     sync.WaitGroup
}

func newRecorder(t testing.TB, target string) *recorder {
	t.Helper()
	var ln net.Listener
	var err error
	for _, p := range proxyPorts {
		if ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no port for the recording proxy among %v: %v", proxyPorts, err)
	}
	r := &recorder{ln: ln, target: target}
	go r.accept()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (r *recorder) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *recorder) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		idx := len(r.conns)
		r.conns = append(r.conns, nil)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(idx, Outbound, c, s)
		go r.pipe(idx, Inbound, s, c)
	}
}

// pipe copies src to dst, recording each read before it forwards it, so
// that the order recorded is one the client could have seen.
func (r *recorder) pipe(idx int, dir Direction, src, dst net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.conns[idx] = append(r.conns[idx], chunk{dir, bytes.Clone(buf[:n])})
			_, werr := dst.Write(buf[:n])
			r.mu.Unlock()
			if werr != nil {
				err = werr
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite() // the other side sees the end too
			} else {
				dst.Close()
			}
			return
		}
	}
}

// take waits until every connection so far ended, and returns them.
func (r *recorder) take(t testing.TB) [][]chunk {
	t.Helper()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("recorded connections did not end in 30 s")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	conns := r.conns
	r.conns = nil
	return conns
}

// writeSession saves connections as testdata/name.session: a line per
// chunk, ">" for what the client wrote and "<" for what it read, then the
// bytes in base64; "conn" starts each connection.
func writeSession(t testing.TB, name, about string, conns [][]chunk) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n# Recorded by TestCapture through a proxy: one line per read of the proxy.\n", about)
	for _, conn := range conns {
		b.WriteString("conn\n")
		for _, ch := range conn {
			mark := ">"
			if ch.dir == Inbound {
				mark = "<"
			}
			fmt.Fprintf(&b, "%s %s\n", mark, base64.StdEncoding.EncodeToString(ch.data))
		}
	}
	if err := os.WriteFile(filepath.Join("testdata", name+".session"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readSession loads testdata/name.session.
func readSession(t testing.TB, name string) [][]chunk {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".session"))
	if err != nil {
		t.Fatalf("%v (record it with -postgres.recapture)", err)
	}
	defer f.Close()
	var conns [][]chunk
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case text == "" || text[0] == '#':
		case text == "conn":
			conns = append(conns, nil)
		case len(text) > 2 && (text[0] == '>' || text[0] == '<') && len(conns) > 0:
			data, err := base64.StdEncoding.DecodeString(text[2:])
			if err != nil {
				t.Fatalf("%s.session:%d: %v", name, line, err)
			}
			dir := Outbound
			if text[0] == '<' {
				dir = Inbound
			}
			conns[len(conns)-1] = append(conns[len(conns)-1], chunk{dir, data})
		default:
			t.Fatalf("%s.session:%d: bad line", name, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return conns
}

// TestCapture records the sessions the replay tests use, from real
// clients talking to a real server through the recording proxy.
func TestCapture(t *testing.T) {
	if !*recapture {
		t.Skip("recordings are in testdata; -postgres.recapture records them again")
	}
	srv := dbservers.StartPostgres(t)
	rec := newRecorder(t, "127.0.0.1:"+strconv.Itoa(srv.Port))
	dsn := func(extra string) string {
		return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable%s",
			dbservers.PostgresUser, dbservers.PostgresPassword, rec.port(), dbservers.PostgresDatabase, extra)
	}
	setUp(t, srv)
	for _, s := range captureScripts {
		t.Run(s.name, func(t *testing.T) {
			s.run(t, dsn, rec)
			writeSession(t, s.name, s.about, rec.take(t))
		})
	}
}

// setUp makes the tables the sessions use.
func setUp(t *testing.T, srv *dbservers.Postgres) {
	out, err := srv.Psql("-v", "ON_ERROR_STOP=1", "-c", `
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (id serial PRIMARY KEY, user_id int, amount numeric, note text);
CREATE TABLE items (id int, label text);
INSERT INTO users SELECT g, 'user' || g, 'u' || g || '@example.com' FROM generate_series(1, 10) g;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO `+dbservers.PostgresMD5User+`;`).CombinedOutput()
	if err != nil {
		t.Fatalf("setting up the tables: %v: %s", err, out)
	}
}

// captureScript is one recorded session.
type captureScript struct {
	name, about string
	run         func(t *testing.T, dsn func(string) string, rec *recorder)
}

var captureScripts = []captureScript{
	{"pgx-simple", "pgx v5, simple protocol: queries, a multi-statement Query, errors 42601 and 23505, a notice, LISTEN/NOTIFY", pgxSimple},
	{"pgx-extended", "pgx v5, extended protocol with its statement cache: one statement prepared and executed 100 times, an unnamed one, errors", pgxExtended},
	{"pgx-batch", "pgx v5, a batch (pipeline) of queries, and one with an error in the middle", pgxBatch},
	{"psql", "psql 15: -c with several statements, a script with a multi-statement line, \\copy in and out, an error", psqlSession},
	{"psycopg2", "psycopg2 (Debian's, /usr/bin/python3): parameters, executemany, an error, a rollback, copy_expert", psycopg2Session},
}

func pgxConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	return conn
}

// must runs f and fails the test on an error it did not expect; want is
// the SQLSTATE expected, "" for none.
func must(t *testing.T, want string, err error) {
	t.Helper()
	got := ""
	if err != nil {
		got = err.Error()
	}
	if want == "" && err != nil || want != "" && !strings.Contains(got, want) {
		t.Fatalf("got error %q, want %q", got, want)
	}
}

func pgxSimple(t *testing.T, dsn func(string) string, _ *recorder) {
	ctx := context.Background()
	conn := pgxConnect(t, dsn("&default_query_exec_mode=simple_protocol"))
	defer conn.Close(ctx)
	var name string
	must(t, "", conn.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", 3).Scan(&name))
	_, err := conn.Exec(ctx, "INSERT INTO orders (user_id, amount, note) VALUES ($1, $2, $3)", 3, 9.5, "it's")
	must(t, "", err)
	_, err = conn.Exec(ctx, "UPDATE users SET email = 'x@example.com' WHERE id = 2; DELETE FROM orders WHERE amount > 100")
	must(t, "", err)
	_, err = conn.Exec(ctx, "SELEC 1")
	must(t, "42601", err)
	_, err = conn.Exec(ctx, "INSERT INTO users (id, name) VALUES (1, 'dup')")
	must(t, "23505", err)
	_, err = conn.Exec(ctx, "DROP TABLE IF EXISTS no_such_table")
	must(t, "", err)
	_, err = conn.Exec(ctx, "LISTEN events")
	must(t, "", err)
	_, err = conn.Exec(ctx, "NOTIFY events, 'hello'")
	must(t, "", err)
	rows, err := conn.Query(ctx, "SELECT id, name FROM users ORDER BY id")
	must(t, "", err)
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if n != 10 {
		t.Fatalf("%d rows", n)
	}
}

func pgxExtended(t *testing.T, dsn func(string) string, _ *recorder) {
	ctx := context.Background()
	conn := pgxConnect(t, dsn(""))
	defer conn.Close(ctx)
	for i := 0; i < 100; i++ {
		var name string
		must(t, "", conn.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", i%10+1).Scan(&name))
	}
	_, err := conn.Exec(ctx, "INSERT INTO orders (user_id, amount) VALUES ($1, $2)", 4, 12.25)
	must(t, "", err)
	_, err = conn.Exec(ctx, "UPDATE users SET name = name WHERE id = $1", pgx.QueryExecModeExec, 5)
	must(t, "", err)
	_, err = conn.Exec(ctx, "SELEC $1", 1)
	must(t, "42601", err)
	_, err = conn.Exec(ctx, "INSERT INTO users (id, name) VALUES ($1, $2)", 1, "dup")
	must(t, "23505", err)
	_, err = conn.Exec(ctx, "INSERT INTO users (id, name) VALUES ($1, $2)", 2, "dup")
	must(t, "23505", err)
}

func pgxBatch(t *testing.T, dsn func(string) string, _ *recorder) {
	ctx := context.Background()
	conn := pgxConnect(t, dsn(""))
	defer conn.Close(ctx)
	b := &pgx.Batch{}
	b.Queue("INSERT INTO items (id, label) VALUES ($1, $2)", 1, "a")
	b.Queue("INSERT INTO items (id, label) VALUES ($1, $2)", 2, "b")
	b.Queue("SELECT count(*) FROM items")
	b.Queue("UPDATE items SET label = $1 WHERE id = $2", "c", 1)
	must(t, "", conn.SendBatch(ctx, b).Close())
	b = &pgx.Batch{}
	b.Queue("SELECT id FROM users WHERE id = $1", 1)
	b.Queue("INSERT INTO users (id, name) VALUES ($1, $2)", 1, "dup")
	b.Queue("SELECT id FROM users WHERE id = $1", 2)
	must(t, "23505", conn.SendBatch(ctx, b).Close())
}

func psqlSession(t *testing.T, dsn func(string) string, rec *recorder) {
	dir := t.TempDir()
	data := filepath.Join(dir, "items.csv")
	var csv strings.Builder
	for i := 100; i < 400; i++ {
		fmt.Fprintf(&csv, "%d,label %d with some text to make the rows longer\n", i, i)
	}
	if err := os.WriteFile(data, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "script.sql")
	err := os.WriteFile(script, []byte(`SELECT count(*) FROM users; SELECT name FROM users WHERE id = 7;
\copy items FROM '`+data+`' WITH (FORMAT csv)
\copy (SELECT * FROM items ORDER BY id) TO STDOUT
SELECT * FROM no_such_table;
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	psql := func(args ...string) {
		base := []string{"-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(rec.port()),
			"-U", dbservers.PostgresUser, "-d", dbservers.PostgresDatabase}
		cmd := exec.Command(psqlPath(t), append(base, args...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+dbservers.PostgresPassword)
		if out, err := cmd.CombinedOutput(); err != nil && !bytes.Contains(out, []byte("no_such_table")) {
			t.Fatalf("psql %v: %v: %s", args, err, out)
		}
	}
	psql("-c", "BEGIN; INSERT INTO items VALUES (50, 'fifty'); SELECT * FROM items WHERE id = 50; COMMIT")
	psql("-f", script)
}

// psqlPath finds psql: Debian's is a wrapper on PATH.
func psqlPath(t *testing.T) string {
	if p, err := exec.LookPath("psql"); err == nil {
		return p
	}
	t.Fatal("psql not found: install postgresql-client")
	return ""
}

func psycopg2Session(t *testing.T, _ func(string) string, rec *recorder) {
	script := fmt.Sprintf(`
import psycopg2, io
conn = psycopg2.connect(host="127.0.0.1", port=%d, user=%q, password=%q, dbname=%q, sslmode="prefer")
cur = conn.cursor()
cur.execute("SELECT name FROM users WHERE id = %%s", (4,))
cur.fetchall()
cur.executemany("INSERT INTO orders (user_id, amount, note) VALUES (%%s, %%s, %%s)", [(1, 2.5, "a"), (2, 3.5, "b")])
conn.commit()
try:
    cur.execute("INSERT INTO users (id, name) VALUES (%%s, %%s)", (3, "dup"))
except psycopg2.errors.UniqueViolation:
    conn.rollback()
cur.copy_expert("COPY items (id, label) FROM STDIN", io.StringIO("".join("%%d\tpy %%d\n" %% (i, i) for i in range(500, 520))))
conn.commit()
cur.execute("SELECT count(*) FROM items")
cur.fetchall()
conn.close()
`, rec.port(), dbservers.PostgresMD5User, dbservers.PostgresMD5Password, dbservers.PostgresDatabase)
	cmd := exec.Command("/usr/bin/python3", "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python3: %v: %s", err, out)
	}
}
