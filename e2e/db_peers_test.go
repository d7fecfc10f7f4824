package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// The database clients of the tests, as peers: each runs a fixed workload
// against the server named by E2E_DSN (E2E_ADDR for Redis) on one
// connection, checks that the server answered as the workload expects
// (the errors it provokes included), and prints "DONE <json>" with what
// the tests need to know of it, or "ERROR ..." and exits 1.
func init() {
	peerRoles["db-pgx"] = func() { runDBClient(pgxWorkload) }
	peerRoles["db-gomysql"] = func() { runDBClient(goMySQLWorkload) }
	peerRoles["db-goredis"] = func() { runDBClient(goRedisWorkload) }
	peerRoles["db-goredis-large-reply"] = func() { runDBClient(goRedisLargeReply) }
	peerRoles["db-http-service"] = runDBHTTPService
}

// dbReport is what a client peer says of its run. Times are Unix
// nanoseconds, as span timestamps are.
type dbReport struct {
	Ops           int   `json:"ops"`            // operations the workload sent
	PipelineStart int64 `json:"pipeline_start"` // just before a Redis pipeline's write
	PipelineEnd   int64 `json:"pipeline_end"`   // just after its replies were read
}

func runDBClient(work func(ctx context.Context) (dbReport, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := work(ctx)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	b, _ := json.Marshal(rep)
	fmt.Println("DONE", string(b))
}

// connected lets a test start the receiver after the client connected,
// when E2E_WAIT is set: it says "READY -" and waits for a line on stdin.
func connected() {
	if os.Getenv("E2E_WAIT") == "" {
		return
	}
	fmt.Println("READY -")
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// base is the first item id this client inserts: each client has ids of
// its own, so that the workloads of several clients never collide.
func base() int { return envInt("E2E_BASE") }

// wantSQLState checks that err is a PostgreSQL error of code.
func wantSQLState(err error, code string) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != code {
		return fmt.Errorf("want SQLSTATE %s, got %v", code, err)
	}
	return nil
}

// pgxWorkload: 10 queries the driver prepares on its own (its statement
// cache), a statement prepared once and executed 100 times, a query whose
// rows take many reads, a statement with literals sent in the simple
// protocol, a query of a missing table (42P01, failing at prepare), a
// duplicate key (23505, failing at execute) and a batch of 5 queries in
// one round trip: 119 operations.
func pgxWorkload(ctx context.Context) (dbReport, error) {
	conn, err := pgx.Connect(ctx, os.Getenv("E2E_DSN"))
	if err != nil {
		return dbReport{}, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(ctx)
	connected()
	var name string
	for i := 1; i <= 10; i++ {
		if err := conn.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", i).Scan(&name); err != nil {
			return dbReport{}, fmt.Errorf("select %d: %w", i, err)
		}
	}
	if _, err := conn.Prepare(ctx, "ins", "INSERT INTO items (id, v) VALUES ($1, $2)"); err != nil {
		return dbReport{}, fmt.Errorf("prepare: %w", err)
	}
	for i := 0; i < 100; i++ {
		if _, err := conn.Exec(ctx, "ins", base()+i, "secret-"+strconv.Itoa(i)); err != nil {
			return dbReport{}, fmt.Errorf("insert %d: %w", i, err)
		}
	}
	// About 160 KB of rows: many reads, most longer than the capture.
	rows, err := conn.Query(ctx, "SELECT repeat(v, 200) FROM items WHERE id >= $1", base())
	if err != nil {
		return dbReport{}, fmt.Errorf("large select: %w", err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if rows.Close(); rows.Err() != nil || n != 100 {
		return dbReport{}, fmt.Errorf("large select: %d rows, %v", n, rows.Err())
	}
	// No arguments: pgx sends it as a simple Query, literals and all.
	if _, err := conn.Exec(ctx, "UPDATE users SET name = 'zed' WHERE id = 3"); err != nil {
		return dbReport{}, fmt.Errorf("update: %w", err)
	}
	err = conn.QueryRow(ctx, "SELECT name FROM no_such_table WHERE id = $1", 1).Scan(&name)
	if err := wantSQLState(err, "42P01"); err != nil {
		return dbReport{}, err
	}
	_, err = conn.Exec(ctx, "INSERT INTO users (id, name) VALUES ($1, $2)", 1, "dup")
	if err := wantSQLState(err, "23505"); err != nil {
		return dbReport{}, err
	}
	b := &pgx.Batch{}
	for i := 0; i < 5; i++ {
		b.Queue("SELECT count(*) FROM items WHERE id >= $1", base()+i)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return dbReport{}, fmt.Errorf("batch: %w", err)
	}
	return dbReport{Ops: 119}, nil
}

// wantMySQLError checks that err is a MySQL error of number n.
func wantMySQLError(err error, n uint16) error {
	var my *mysql.MySQLError
	if !errors.As(err, &my) || my.Number != n {
		return fmt.Errorf("want MySQL error %d, got %v", n, err)
	}
	return nil
}

// goMySQLWorkload, with database/sql on one connection: 10 queries with
// an argument (the driver prepares, executes and closes each), a
// statement prepared once and executed 100 times, queries whose rows take
// many reads (prepared and not), a statement with literals (COM_QUERY), a
// query of a missing table (1146) and a duplicate key at execute (1062):
// 115 operations, and 13 COM_STMT_PREPAREs.
func goMySQLWorkload(ctx context.Context) (dbReport, error) {
	db, err := sql.Open("mysql", os.Getenv("E2E_DSN"))
	if err != nil {
		return dbReport{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if os.Getenv("E2E_WAIT") != "" {
		if err := db.PingContext(ctx); err != nil { // connects
			return dbReport{}, fmt.Errorf("connecting: %w", err)
		}
		connected()
	}
	var name string
	for i := 1; i <= 10; i++ {
		if err := db.QueryRowContext(ctx, "SELECT name FROM users WHERE id = ?", i).Scan(&name); err != nil {
			return dbReport{}, fmt.Errorf("select %d: %w", i, err)
		}
	}
	stmt, err := db.PrepareContext(ctx, "INSERT INTO items (id, v) VALUES (?, ?)")
	if err != nil {
		return dbReport{}, fmt.Errorf("prepare: %w", err)
	}
	for i := 0; i < 100; i++ {
		if _, err := stmt.ExecContext(ctx, base()+i, "secret-"+strconv.Itoa(i)); err != nil {
			return dbReport{}, fmt.Errorf("insert %d: %w", i, err)
		}
	}
	stmt.Close()
	// About 160 KB of rows, prepared (binary rows) and not (text rows).
	for _, q := range []struct {
		text string
		args []any
	}{{"SELECT REPEAT(v, 200) FROM items WHERE id >= ?", []any{base()}}, {"SELECT REPEAT(v, 200) FROM items", nil}} {
		if err := countRows(db.QueryContext(ctx, q.text, q.args...)); err != nil {
			return dbReport{}, fmt.Errorf("%s: %w", q.text, err)
		}
	}
	if _, err := db.ExecContext(ctx, "UPDATE users SET name = 'zed' WHERE id = 3"); err != nil {
		return dbReport{}, fmt.Errorf("update: %w", err)
	}
	err = db.QueryRowContext(ctx, "SELECT name FROM no_such_table WHERE id = 1").Scan(&name)
	if err := wantMySQLError(err, 1146); err != nil {
		return dbReport{}, err
	}
	_, err = db.ExecContext(ctx, "INSERT INTO users (id, name) VALUES (?, ?)", 1, "dup")
	if err := wantMySQLError(err, 1062); err != nil {
		return dbReport{}, err
	}
	return dbReport{Ops: 128}, nil
}

// countRows reads the rows of a query to their end: there must be some.
func countRows(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("no rows")
	}
	return nil
}

// goRedisWorkload, on one connection: the client's own handshake
// (HELLO, CLIENT SETINFO x2), 10 SETs and 10 GETs, a SET and a GET of a
// 100 KB value, a pipeline of 50 INCRs, a transaction (MULTI SET INCR
// EXEC), WRONGTYPE, an ERR and an unknown command: 79 commands of its
// own, and its handshake.
func goRedisWorkload(ctx context.Context) (dbReport, error) {
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("E2E_ADDR"), PoolSize: 1, MinIdleConns: 0})
	defer rdb.Close()
	if os.Getenv("E2E_WAIT") != "" {
		if err := rdb.Ping(ctx).Err(); err != nil { // connects
			return dbReport{}, fmt.Errorf("connecting: %w", err)
		}
		connected()
	}
	prefix := "goredis:" + strconv.Itoa(base()) + ":"
	for i := 0; i < 10; i++ {
		if err := rdb.Set(ctx, prefix+strconv.Itoa(i), "secret-"+strconv.Itoa(i), 0).Err(); err != nil {
			return dbReport{}, fmt.Errorf("set: %w", err)
		}
	}
	for i := 0; i < 10; i++ {
		if err := rdb.Get(ctx, prefix+strconv.Itoa(i)).Err(); err != nil {
			return dbReport{}, fmt.Errorf("get: %w", err)
		}
	}
	// A 100 KB value, each way: a bulk string longer than the capture.
	big := strings.Repeat("secret", 100<<10/6)
	if err := rdb.Set(ctx, prefix+"big", big, 0).Err(); err != nil {
		return dbReport{}, fmt.Errorf("set big: %w", err)
	}
	if v, err := rdb.Get(ctx, prefix+"big").Result(); err != nil || v != big {
		return dbReport{}, fmt.Errorf("get big: %d bytes, %v", len(v), err)
	}
	var rep dbReport
	pipe := rdb.Pipeline()
	for i := 0; i < 50; i++ {
		pipe.Incr(ctx, prefix+"counter")
	}
	rep.PipelineStart = time.Now().UnixNano()
	cmds, err := pipe.Exec(ctx)
	rep.PipelineEnd = time.Now().UnixNano()
	if err != nil || len(cmds) != 50 {
		return rep, fmt.Errorf("pipeline: %d commands, %v", len(cmds), err)
	}
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, prefix+"tx", "1", 0)
		p.Incr(ctx, prefix+"tx")
		return nil
	}); err != nil {
		return rep, fmt.Errorf("transaction: %w", err)
	}
	if err := rdb.LPush(ctx, prefix+"0", "x").Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		return rep, fmt.Errorf("want WRONGTYPE, got %v", err)
	}
	if err := rdb.Incr(ctx, prefix+"0").Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR") {
		return rep, fmt.Errorf("want ERR, got %v", err)
	}
	if err := rdb.Do(ctx, "NOSUCHCOMMAND", "a").Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR") {
		return rep, fmt.Errorf("want ERR for an unknown command, got %v", err)
	}
	rep.Ops = 79
	return rep, nil
}

// goRedisLargeReply, on one connection: HELLO (go-redis's handshake), 5
// GETs, an LRANGE of the 2000 short elements of the list E2E_LIST, and 5
// GETs.
func goRedisLargeReply(ctx context.Context) (dbReport, error) {
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("E2E_ADDR"), PoolSize: 1, Protocol: 2, DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	defer rdb.Close()
	get := func() error {
		for i := 0; i < 5; i++ {
			if err := rdb.Get(ctx, "large:"+strconv.Itoa(i)).Err(); err != redis.Nil {
				return fmt.Errorf("get: %v", err)
			}
		}
		return nil
	}
	if err := get(); err != nil {
		return dbReport{}, err
	}
	if n, err := rdb.LRange(ctx, os.Getenv("E2E_LIST"), 0, -1).Result(); err != nil || len(n) != 2000 {
		return dbReport{}, fmt.Errorf("lrange: %d elements, %v", len(n), err)
	}
	if err := get(); err != nil {
		return dbReport{}, err
	}
	return dbReport{Ops: 12}, nil
}

// runDBHTTPService serves GET /work/{i}: while serving, it queries
// PostgreSQL (pgx pool) and Redis (go-redis), then answers 200. Each
// request's database work says which request it is in a way sanitizing
// keeps: the SQL names the column req_{i} (an identifier, not a
// literal), and the Redis command EXISTS takes (i mod 32)+1 keys, which
// db.query.text shows as that many "?". The pools are filled before
// READY, so that no connection's set-up lands inside a request.
func runDBHTTPService() {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(os.Getenv("E2E_DSN"))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	const conns = 16
	cfg.MinConns, cfg.MaxConns = conns, conns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("E2E_REDIS"), PoolSize: conns, MinIdleConns: conns})
	if err := warm(ctx, pool, rdb, conns); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	lock := os.Getenv("E2E_LOCK_THREAD") != ""
	mux.HandleFunc("GET /work/{i}", func(w http.ResponseWriter, r *http.Request) {
		if lock {
			// The goroutine keeps the thread that read the request, and
			// no other goroutine runs on it meanwhile.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
		}
		i, err := strconv.Atoi(r.PathValue("i"))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var n int64
		q := fmt.Sprintf("SELECT count(*) AS req_%d FROM items WHERE id >= $1", i)
		if err := pool.QueryRow(r.Context(), q, i).Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		keys := make([]string, i%32+1)
		for k := range keys {
			keys[k] = "req:" + strconv.Itoa(i) + ":" + strconv.Itoa(k)
		}
		if err := rdb.Exists(r.Context(), keys...).Err(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", ln.Addr().String())
	http.Serve(ln, mux)
}

// warm opens every connection of both pools now, holding them all at once
// so that each is a connection of its own.
func warm(ctx context.Context, pool *pgxpool.Pool, rdb *redis.Client, n int) error {
	var held []*pgxpool.Conn
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("postgres pool: %w", err)
		}
		held = append(held, c)
	}
	var rconns []*redis.Conn
	defer func() {
		for _, c := range rconns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c := rdb.Conn()
		if err := c.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis pool: %w", err)
		}
		rconns = append(rconns, c)
	}
	return nil
}
