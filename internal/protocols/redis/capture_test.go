package redis

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
)

// recapture records the sessions in testdata again from a real server:
//
//	go test -run TestCapture -redis.recapture ./internal/protocols/redis/
//
// The replay tests then assert on the new recordings, which may differ in
// details (segmentation, client ids in HELLO's reply, library versions).
var recapture = flag.Bool("redis.recapture", false, "record the testdata sessions again from a redis-server")

// proxyPorts are the loopback ports the recording proxy may listen on.
var proxyPorts = []int{26385, 26386, 26387, 26388}

// chunk is what one read of the proxy moved: bytes one side wrote, as the
// client saw them (Outbound: written by the client).
type chunk struct {
	dir  Direction
	data []byte
}

// proxy is a TCP proxy in front of a server that keeps, per connection,
// the bytes in each direction in the order they moved. A chunk is kept
// before it is forwarded, so that a reply is never kept before the
// command it answers.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  [][]chunk
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	var ln net.Listener
	var err error
	for _, p := range proxyPorts {
		if ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no port for the recording proxy: %v", err)
	}
	p := &proxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) port() string { return strconv.Itoa(p.ln.Addr().(*net.TCPAddr).Port) }

func (p *proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		idx := len(p.conns)
		p.conns = append(p.conns, nil)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(idx, Outbound, client, server)
		go p.pump(idx, Inbound, server, client)
	}
}

// pump copies src to dst, keeping each read as a chunk.
func (p *proxy) pump(idx int, dir Direction, src, dst net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.conns[idx] = append(p.conns[idx], chunk{dir: dir, data: append([]byte(nil), buf[:n]...)})
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	// Half-close so the other side sees the end, then let both go.
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	if dir == Inbound {
		src.Close()
		dst.Close()
	}
}

// sessions returns the recorded connections, after waiting for the
// proxy to see them end.
func (p *proxy) sessions(t *testing.T, want int) [][]chunk {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		n := len(p.conns)
		p.mu.Unlock()
		if n >= want {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.ln.Close()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) != want {
		for i, c := range p.conns {
			writeSession(t, "unexpected-"+strconv.Itoa(i), "", c)
		}
		t.Fatalf("%d connections recorded, want %d", len(p.conns), want)
	}
	return p.conns
}

// writeSession saves one connection's chunks, one a line: "C" for what
// the client wrote, "S" for what the server wrote, and the bytes quoted.
func writeSession(t *testing.T, name, comment string, chunks []chunk) {
	t.Helper()
	var b strings.Builder
	for _, l := range strings.Split(comment, "\n") {
		b.WriteString("# " + l + "\n")
	}
	for _, c := range chunks {
		side := "C"
		if c.dir == Inbound {
			side = "S"
		}
		b.WriteString(side + " " + strconv.Quote(string(c.data)) + "\n")
	}
	if err := os.WriteFile(filepath.Join("testdata", name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readSession loads a session saved by writeSession: each chunk becomes
// a segment whose time is its line number in the file.
func readSession(t testing.TB, name string) []step {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []step
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || text[0] == '#' {
			continue
		}
		data, err := strconv.Unquote(text[2:])
		if err != nil || len(text) < 3 || (text[0] != 'C' && text[0] != 'S') {
			t.Fatalf("%s:%d: not a chunk: %v", name, line, err)
		}
		dir := Outbound
		if text[0] == 'S' {
			dir = Inbound
		}
		steps = append(steps, step{dir: dir, data: data, t: uint64(line)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}

// TestCapture records the sessions the replay tests assert on.
func TestCapture(t *testing.T) {
	if !*recapture {
		t.Skip("records sessions only with -redis.recapture")
	}
	srv := dbservers.StartRedis(t)
	version, err := srv.CLI("INFO", "server").Output()
	if err != nil {
		t.Fatal(err)
	}
	serverVersion := "redis-server " + infoField(string(version), "redis_version")
	t.Run("go-redis", func(t *testing.T) { captureGoRedis(t, srv, serverVersion) })
	t.Run("go-redis pubsub", func(t *testing.T) { captureGoPubSub(t, srv, serverVersion) })
	t.Run("redis-cli", func(t *testing.T) { captureCLI(t, srv, serverVersion) })
	t.Run("redis-py", func(t *testing.T) { capturePy(t, srv, serverVersion) })
	t.Run("inline", func(t *testing.T) { captureInline(t, srv, serverVersion) })
}

func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+":"); ok {
			return v
		}
	}
	return "?"
}

// captureGoRedis records one go-redis connection (RESP3, database 2):
// commands, errors, a pipeline of 50 commands, a transaction, blocking
// pops answered late and not at all.
func captureGoRedis(t *testing.T, srv *dbservers.Redis, version string) {
	p := newProxy(t, srv.Addr)
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: p.addr(), DB: 2, PoolSize: 1})
	other := goredis.NewClient(&goredis.Options{Addr: srv.Addr, DB: 2})
	defer other.Close()
	must := func(err error) {
		t.Helper()
		if err != nil && err != goredis.Nil {
			t.Fatal(err)
		}
	}
	must(rdb.Set(ctx, "greeting", "hello", 0).Err())
	must(rdb.Get(ctx, "greeting").Err())
	must(rdb.Get(ctx, "missing").Err())
	must(rdb.Incr(ctx, "counter").Err())
	if err := rdb.LPush(ctx, "greeting", "x").Err(); err == nil {
		t.Fatal("LPUSH on a string succeeded")
	}
	if err := rdb.Do(ctx, "NOSUCHCOMMAND", "arg").Err(); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	must(rdb.HSet(ctx, "user:1", "name", "ada", "lang", "go").Err())
	must(rdb.HGetAll(ctx, "user:1").Err())
	_, err := rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		for i := range 50 {
			switch i % 3 {
			case 0:
				pipe.Set(ctx, "key:"+strconv.Itoa(i), i, 0)
			case 1:
				pipe.Get(ctx, "key:"+strconv.Itoa(i-1))
			default:
				pipe.Incr(ctx, "counter")
			}
		}
		return nil
	})
	must(err)
	_, err = rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		pipe.Incr(ctx, "counter")
		pipe.LPush(ctx, "greeting", "x") // WRONGTYPE when EXEC runs it
		pipe.Get(ctx, "counter")
		return nil
	})
	if err == nil {
		t.Fatal("the transaction had no error")
	}
	must(rdb.BLPop(ctx, time.Second, "queue").Err())
	go func() {
		time.Sleep(300 * time.Millisecond)
		other.RPush(ctx, "queue", "job")
	}()
	must(rdb.BLPop(ctx, 5*time.Second, "queue").Err())
	must(rdb.Ping(ctx).Err())
	rdb.Close()
	// go-redis runs pipelines on a connection of their own.
	conns := p.sessions(t, 2)
	v := "go-redis v9.23.0 (RESP3, DB 2) against " + version
	writeSession(t, "go.session", v, conns[0])
	writeSession(t, "go-pipeline.session", v+": a pipeline of 50 commands and a transaction", conns[1])
}

// captureGoPubSub records a go-redis subscriber: confirmations and
// messages are RESP3 pushes.
func captureGoPubSub(t *testing.T, srv *dbservers.Redis, version string) {
	p := newProxy(t, srv.Addr)
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: p.addr()})
	pub := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer pub.Close()
	sub := rdb.Subscribe(ctx, "news", "sport")
	receive := func(want string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := sub.Receive(rctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%T", m); !strings.Contains(got, want) {
			t.Fatalf("received %s, want %s", got, want)
		}
	}
	receive("Subscription")
	receive("Subscription")
	for i := range 3 {
		if err := pub.Publish(ctx, "news", "headline "+strconv.Itoa(i)).Err(); err != nil {
			t.Fatal(err)
		}
		receive("Message")
	}
	if err := sub.PSubscribe(ctx, "sp*"); err != nil {
		t.Fatal(err)
	}
	receive("Subscription")
	pub.Publish(ctx, "sport", "score")
	receive("Message") // on sport twice: by its channel and by the pattern
	receive("Message")
	if err := sub.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	receive("Pong")
	if err := sub.Unsubscribe(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	receive("Subscription")
	sub.Close()
	rdb.Close()
	conns := p.sessions(t, 1)
	writeSession(t, "go-pubsub.session", "go-redis v9.23.0 PubSub (RESP3) against "+version+
		"; another client published", conns[0])
}

// captureCLI records redis-cli reading commands from its standard input
// (RESP2).
func captureCLI(t *testing.T, srv *dbservers.Redis, version string) {
	p := newProxy(t, srv.Addr)
	cli := exec.Command(srv.CLI().Path, "-h", "127.0.0.1", "-p", p.port())
	cli.Stdin = strings.NewReader("SELECT 1\nSET name cli\nGET name\nINCR name\nNOSUCH a b\n" +
		"MULTI\nINCR n\nLPUSH name x\nEXEC\nSUBSCRIBE\nCLIENT SETNAME recorder\nCONFIG GET maxmemory\nPING\n")
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli: %v: %s", err, out)
	}
	conns := p.sessions(t, 1)
	writeSession(t, "cli.session", "redis-cli 7.0.15 with commands on its standard input, against "+version, conns[0])
}

// pyScript drives redis-py (RESP2): commands, errors, a transaction, a
// pipeline without one, and a subscriber on a connection of its own, fed
// by a third connection that is not recorded.
const pyScript = `
import sys, time, redis
port = int(sys.argv[1]); direct = int(sys.argv[2])
r = redis.Redis(host="127.0.0.1", port=port, single_connection_client=True)
r.set("py:key", "value")
r.get("py:key")
r.hset("py:hash", mapping={"a": "1", "b": "2"})
r.hgetall("py:hash")
try:
    r.lpush("py:key", "x")
except redis.ResponseError:
    pass
p = r.pipeline(transaction=True)
p.incr("py:n"); p.get("py:key"); p.incr("py:key")
try:
    p.execute()
except redis.ResponseError:
    pass
p = r.pipeline(transaction=False)
for i in range(10):
    p.set("py:%d" % i, i)
p.execute()
r.close()
s = redis.Redis(host="127.0.0.1", port=port)
ps = s.pubsub()
ps.subscribe("alerts", "logs")
ps.get_message(timeout=2); ps.get_message(timeout=2)
pub = redis.Redis(host="127.0.0.1", port=direct)
for i in range(3):
    pub.publish("alerts", "alert %d" % i)
got = 0
deadline = time.time() + 5
while got < 3 and time.time() < deadline:
    m = ps.get_message(timeout=1)
    if m and m["type"] == "message":
        got += 1
ps.ping()
ps.get_message(timeout=2)
ps.unsubscribe()
ps.get_message(timeout=2); ps.get_message(timeout=2)
ps.close()
`

func capturePy(t *testing.T, srv *dbservers.Redis, version string) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("no " + python + ": install python3 and python3-redis")
	}
	p := newProxy(t, srv.Addr)
	py := exec.Command(python, "-c", pyScript, p.port(), strconv.Itoa(srv.Port))
	if out, err := py.CombinedOutput(); err != nil {
		t.Fatalf("redis-py: %v: %s", err, out)
	}
	pyVersion, err := exec.Command(python, "-c", "import redis; print(redis.__version__)").Output()
	if err != nil {
		t.Fatal(err)
	}
	// redis-py runs pipelines on connections of their own.
	conns := p.sessions(t, 3)
	v := "redis-py " + strings.TrimSpace(string(pyVersion)) + " (RESP2) against " + version
	writeSession(t, "py.session", v, conns[0])
	writeSession(t, "py-pipeline.session", v+": a transaction, then a pipeline of 10 commands", conns[1])
	writeSession(t, "py-pubsub.session", v+", subscriber; a connection not recorded published", conns[2])
}

// captureInline records inline commands, as a person typing into a raw
// TCP connection sends them, each answered before the next is written.
func captureInline(t *testing.T, srv *dbservers.Redis, version string) {
	p := newProxy(t, srv.Addr)
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	for _, line := range []string{"PING\r\n", "SET inline \"two words\"\r\n", "GET inline\r\n",
		"get missing\n", "NOSUCH\r\n", "SELECT 5\r\n", "EXISTS inline\r\n"} {
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatal(err)
		}
		if _, err := readReply(rd); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	conns := p.sessions(t, 1)
	writeSession(t, "inline.session", "inline commands over a raw TCP connection, against "+version, conns[0])
}

// readReply reads one RESP2 reply of the kinds inline commands get.
func readReply(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil || line[0] != '$' {
		return line, err
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	if n < 0 {
		return line, nil
	}
	buf := make([]byte, n+2)
	_, err = io.ReadFull(rd, buf)
	return line + string(buf), err
}
