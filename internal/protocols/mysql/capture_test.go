package mysql

import (
	"bufio"
	"bytes"
	"database/sql"
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

	_ "github.com/go-sql-driver/mysql" // the Go client whose sessions are recorded

	"github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
)

// recapture records the sessions in testdata again from a real server:
//
//	go test -run TestCapture -mysql.recapture ./internal/protocols/mysql/
//
// The replay tests then assert on the new recordings, which may differ in
// details (thread ids in handshakes, timings, segmentation).
var recapture = flag.Bool("mysql.recapture", false, "record the testdata sessions again from a MariaDB server")

// chunk is what one read of a proxy moved: the bytes one side wrote, as
// the client saw them (Outbound: written by the client).
type chunk struct {
	dir  Direction
	data []byte
}

// recorder is a TCP proxy in front of a server that keeps, per
// connection, the bytes in each direction in the order they moved.
type recorder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  [][]chunk
	wg     sync.WaitGroup
}

func newRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	var ln net.Listener
	var err error
	for _, p := range []int{23309, 23308, 23307} {
		if ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no port for the recording proxy: %v", err)
	}
	r := &recorder{ln: ln, target: target}
	go r.accept()
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

// pipe copies from src to dst, recording each read before forwarding it,
// so that the recorded order is one the client could have seen.
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
			// Half-close so that the other side sees the end too.
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

// close stops the proxy once every connection ended, and returns them.
func (r *recorder) close(t *testing.T) [][]chunk {
	r.ln.Close()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("recorded connections did not end")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// writeSession saves one connection's chunks: a line per chunk, ">" for
// bytes the client wrote and "<" for bytes it read, then base64.
func writeSession(path string, chunks []chunk) error {
	var b strings.Builder
	for _, c := range chunks {
		mark := "<"
		if c.dir == Outbound {
			mark = ">"
		}
		b.WriteString(mark + " " + base64.StdEncoding.EncodeToString(c.data) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing session %s: %w", path, err)
	}
	return nil
}

// readSession loads a session saved by writeSession.
func readSession(t testing.TB, name string) []chunk {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("opening session: %v", err)
	}
	defer f.Close()
	var chunks []chunk
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 2 {
			continue
		}
		data, err := base64.StdEncoding.DecodeString(line[2:])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dir := Inbound
		if line[0] == '>' {
			dir = Outbound
		}
		chunks = append(chunks, chunk{dir, data})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return chunks
}

// sessions are the recorded sessions, in the order they run against one
// server (each uses the tables the one before made).
var sessions = []struct {
	name string
	run  func(t *testing.T, port int)
}{
	{"go.session", goSession},
	{"pymysql.session", pythonSession},
	{"cli.session", cliSession},
}

// recordSessions runs the sessions against a new MariaDB server through
// the recording proxy, and hands each recorded connection to use.
func recordSessions(t *testing.T, use func(t *testing.T, name string, chunks []chunk)) {
	m := dbservers.StartMariaDB(t)
	target := "127.0.0.1:" + strconv.Itoa(m.Port)
	for _, s := range sessions {
		t.Run(s.name, func(t *testing.T) {
			r := newRecorder(t, target)
			s.run(t, r.port())
			conns := r.close(t)
			if len(conns) != 1 {
				t.Fatalf("%d connections recorded, want 1", len(conns))
			}
			use(t, s.name, conns[0])
		})
	}
}

// TestCapture records real sessions of the three clients against MariaDB
// into testdata. It runs only when asked to.
func TestCapture(t *testing.T) {
	if !*recapture {
		t.Skip("records sessions only with -mysql.recapture")
	}
	recordSessions(t, func(t *testing.T, name string, chunks []chunk) {
		if err := writeSession(filepath.Join("testdata", name), chunks); err != nil {
			t.Fatal(err)
		}
	})
}

// goSession is database/sql with go-sql-driver/mysql on one connection:
// text statements, a statement prepared once and executed 100 times, a
// 10 000-row result, errors 1146 and 1062, a query with an argument
// (prepared, executed, closed by the driver), a ping.
func goSession(t *testing.T, port int) {
	dsn := fmt.Sprintf("%s:%s@tcp(127.0.0.1:%d)/%s?interpolateParams=false",
		dbservers.MariaDBUser, dbservers.MariaDBPassword, port, dbservers.MariaDBDatabase)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := db.Exec(q, args...)
		must(err)
	}
	exec("CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(50))")
	exec("INSERT INTO users VALUES (1, 'alice'), (2, 'bob')")
	stmt, err := db.Prepare("INSERT INTO items (id, label) VALUES (?, ?)")
	if err == nil {
		t.Fatal("preparing on a missing table succeeded")
	}
	exec("CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(50))")
	stmt, err = db.Prepare("INSERT INTO items (id, label) VALUES (?, ?)")
	must(err)
	for i := range 100 {
		_, err := stmt.Exec(i, "item-"+strconv.Itoa(i))
		must(err)
	}
	must(stmt.Close())
	rows, err := db.Query("SELECT seq, CONCAT('row-', seq) FROM seq_1_to_10000")
	must(err)
	n := 0
	for rows.Next() {
		n++
	}
	must(rows.Err())
	if n != 10000 {
		t.Fatalf("%d rows", n)
	}
	if _, err := db.Query("SELECT * FROM no_such_table"); err == nil || !strings.Contains(err.Error(), "1146") {
		t.Fatalf("no error 1146: %v", err)
	}
	if _, err := db.Exec("INSERT INTO users VALUES (1, 'again')"); err == nil || !strings.Contains(err.Error(), "1062") {
		t.Fatalf("no error 1062: %v", err)
	}
	var name string
	must(db.QueryRow("SELECT name FROM users WHERE id = ?", 2).Scan(&name))
	must(db.Ping())
	must(db.Close())
}

// pythonSession is PyMySQL: text queries, a multi-statement query, a
// procedure call, LOAD DATA LOCAL INFILE, COM_INIT_DB, COM_PING, an error.
func pythonSession(t *testing.T, port int) {
	dir := t.TempDir()
	data := filepath.Join(dir, "items.tsv")
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, "%d\tloaded-%d\n", 1000+i, i)
	}
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`
import pymysql
c = pymysql.connect(host="127.0.0.1", port=%d, user=%q, password=%q, database=%q,
                    local_infile=True, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
cur = c.cursor()
cur.execute("SELECT id, name FROM users WHERE name = 'bob'")
assert cur.fetchall() == ((2, "bob"),)
cur.execute("UPDATE users SET name = 'carol' WHERE id = 2")
cur.execute("SELECT 1; SELECT 2, 3")
while cur.nextset():
    pass
cur.execute("CREATE PROCEDURE count_items() BEGIN SELECT COUNT(*) FROM items; SELECT 1; END")
cur.execute("CALL count_items()")
while cur.nextset():
    pass
cur.execute("LOAD DATA LOCAL INFILE %%s INTO TABLE items", (%q,))
try:
    cur.execute("SELECT nope FROM users")
except pymysql.err.OperationalError as e:
    assert e.args[0] == 1054, e
c.select_db("mysql")
cur.execute("SELECT COUNT(*) FROM user")
c.select_db(%q)
c.ping(reconnect=False)
c.commit()
c.close()
`, port, dbservers.MariaDBUser, dbservers.MariaDBPassword, dbservers.MariaDBDatabase, data, dbservers.MariaDBDatabase)
	cmd := exec.Command("/usr/bin/python3", "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
}

// cliSession is the mariadb command-line client reading a script: USE
// (sent as COM_INIT_DB), queries, an error it goes on after (--force).
func cliSession(t *testing.T, port int) {
	args := []string{"--no-defaults", "--protocol=TCP", "--host=127.0.0.1", "--port=" + strconv.Itoa(port),
		"--user=" + dbservers.MariaDBUser, "--password=" + dbservers.MariaDBPassword, "--skip-ssl", "--force"}
	cmd := exec.Command("mariadb", args...)
	cmd.Stdin = strings.NewReader(`use otel
SELECT COUNT(*) FROM items WHERE id < 50;
SELECT * FROM missing_table;
DELETE FROM items WHERE id >= 1000;
SHOW TABLES;
`)
	// With --force the client goes on after the error and exits 0.
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("ERROR 1146")) {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
}
