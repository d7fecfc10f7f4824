package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
)

// tlsCounts counts HTTP spans by "path status".
func tlsCounts(spans []span) map[string]int {
	n := map[string]int{}
	for _, s := range spans {
		path := s.str("url.path")
		if path == "" {
			path = pathOfURL(s.str("url.full"))
		}
		n[fmt.Sprintf("%s %d", path, s.int("http.response.status_code"))]++
	}
	return n
}

// sumCounts adds counts together.
func sumCounts(all ...map[string]int) map[string]int {
	n := map[string]int{}
	for _, m := range all {
		for k, v := range m {
			n[k] += v
		}
	}
	return n
}

// tlsServerTest is an HTTPS server under the three clients.
type tlsServerTest struct {
	pid     int
	addr    string
	version string // network.protocol.version the server speaks to curl and Go
}

// The clients' requests, as "path status" counts.
var (
	curlWant = map[string]int{"/curl/a 200": 95, "/status/404 404": 2, "/status/503 503": 2, "/big 200": 1}
	pyWant   = map[string]int{"/py/b 200": 20, "/big 200": 1}
	goWant   = map[string]int{"/go/c 200": 100}
	postWant = map[string]int{"/go/post 200": 3}
)

func curlURLs(addr string) []string {
	base := "https://" + addr
	var urls []string
	for i := 0; i < 95; i++ {
		urls = append(urls, base+"/curl/a")
		if i == 10 || i == 50 {
			urls = append(urls, base+"/status/404", base+"/status/503")
		}
	}
	return append(urls, base+"/big")
}

// run sends every client's requests to the server, all watched, and
// checks the spans of both sides: exact counts by path and status, https,
// and the sizes of the 1 MiB bodies.
func (st tlsServerTest) run(t *testing.T, c certs, extraPids ...int) {
	port := st.addr[strings.LastIndexByte(st.addr, ':')+1:]
	holders := startHolders(t)
	h := startReceiver(t, func(cfg *ebpfreceiver.Config) {
		cfg.Discovery.Pids = append(append([]int{st.pid}, holders...), extraPids...)
		cfg.Discovery.OpenPorts = port // the clients are selected at connect()
	})
	for _, pid := range append([]int{st.pid}, holders...) {
		h.waitInstrumented(t, pid)
		h.waitTLS(t, pid)
	}
	defer func() {
		if t.Failed() {
			t.Logf("TLS self-telemetry: %s", h.tlsTelemetry(t))
		}
	}()

	curl := runCurlTLS(t, c.cert, curlURLs(st.addr))
	py := runPythonTLSClient(t, c.cert, "https://"+st.addr+"/py/b", "20", "https://"+st.addr+"/big", "1")
	goPid := runGoTLSClient(t, c.cert, 100, "E2E_URLS=https://"+st.addr+"/go/c", "E2E_REQUESTS=100", "E2E_CONCURRENCY=1")
	post := runGoTLSClient(t, c.cert, 3, "E2E_URLS=https://"+st.addr+"/go/post", "E2E_REQUESTS=3", "E2E_CONCURRENCY=1",
		"E2E_POST_SIZE="+strconv.Itoa(1<<20))

	served := h.waitTLSSpans(t, st.pid, ptrace.SpanKindServer, sumCounts(curlWant, pyWant, goWant, postWant))
	for _, s := range served {
		assert.Equal(t, "https", s.str("url.scheme"), s.Name())
		assert.Equal(t, port, strconv.FormatInt(s.int("server.port"), 10))
		assert.Equal(t, "127.0.0.1", s.str("client.address"))
		switch s.str("url.path") {
		case "/big":
			assert.Equal(t, int64(1<<20), s.int("http.response.body.size"), "1 MiB in many writes")
		case "/go/post":
			assert.Equal(t, int64(1<<20), s.int("http.request.body.size"), "1 MiB in many writes")
		case "/status/503":
			assert.Equal(t, ptrace.StatusCodeError, s.Status().Code())
		}
	}
	for _, client := range []struct {
		name string
		pid  int
		want map[string]int
	}{{"curl", curl, curlWant}, {"python", py, pyWant}, {"go", goPid, goWant}, {"go post", post, postWant}} {
		got := h.waitTLSSpans(t, client.pid, ptrace.SpanKindClient, client.want)
		for _, s := range got {
			assert.Equal(t, "https", s.str("url.scheme"), client.name)
			assert.True(t, strings.HasPrefix(s.str("url.full"), "https://"), "%s: %s", client.name, s.str("url.full"))
			if pathOfURL(s.str("url.full")) == "/big" {
				assert.Equal(t, int64(1<<20), s.int("http.response.body.size"), client.name)
			}
		}
		t.Logf("%s: %d client spans", client.name, len(got))
	}
	t.Logf("server: %d spans; %s", len(served), h.tlsTelemetry(t))
	assert.LessOrEqual(t, h.selfMetric(t, "otelcol_receiver_ebpf_parse_failures", "reason", "undetected_bytes"), int64(0),
		"ciphertext is never offered to the parsers")
}

// waitTLSSpans waits for the spans of kind of process pid, as many as
// want counts, then checks that they are exactly those by path and status
// (a diff of the counts says what is missing or extra).
func (h *harness) waitTLSSpans(t *testing.T, pid int, kind ptrace.SpanKind, want map[string]int) []span {
	t.Helper()
	n := 0
	for _, v := range want {
		n += v
	}
	assert.Eventually(t, func() bool { return len(h.spansOf(pid, kind)) >= n },
		15*time.Second, 50*time.Millisecond, "pid %d: waiting for %d %v spans", pid, n, kind)
	time.Sleep(500 * time.Millisecond) // time enough for extra spans to show up
	got := h.spansOf(pid, kind)
	require.Equal(t, want, tlsCounts(got), "pid %d: %v spans by path and status", pid, kind)
	return got
}

// tlsTelemetry is the receiver's TLS self-telemetry, as text for logs.
func (h *harness) tlsTelemetry(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"ssl_entry", "ssl_return", "go_entry", "go_return"} {
		fmt.Fprintf(&b, "%s=%d ", p, h.selfMetric(t, "otelcol_receiver_ebpf_uprobe_hits", "probe", p))
	}
	for _, lib := range []string{"openssl", "go"} {
		fmt.Fprintf(&b, "events{%s}=%d ", lib, h.selfMetric(t, "otelcol_receiver_ebpf_tls_events", "library", lib))
	}
	fmt.Fprintf(&b, "not_tied=%d", h.selfMetric(t, "otelcol_receiver_ebpf_tls_events", "outcome", "not_tied"))
	return b.String()
}

// nginx (OpenSSL, many SSL_write calls for 1 MiB) under curl, Python and
// Go clients.
func TestTLSNginx(t *testing.T) {
	requireRoot(t)
	c := newCerts(t)
	pid, addr := startNginxTLS(t, c)
	tlsServerTest{pid: pid, addr: addr}.run(t, c)
}

// Python's http.server wrapped in ssl (OpenSSL's SSL_read_ex and
// SSL_write_ex through the system's libssl).
func TestTLSPythonServer(t *testing.T) {
	requireRoot(t)
	c := newCerts(t)
	srv := startPythonTLS(t, c)
	tlsServerTest{pid: srv.pid(), addr: srv.addr}.run(t, c)
}

// Node.js https: OpenSSL embedded in the node executable, fed through
// memory BIOs.
func TestTLSNodeServer(t *testing.T) {
	requireRoot(t)
	c := newCerts(t)
	srv := startNodeTLS(t, c)
	tlsServerTest{pid: srv.pid(), addr: srv.addr}.run(t, c)
}

// Go's net/http ServeTLS: curl and the Go client speak HTTP/2 to it, the
// Python client HTTP/1.1.
func TestTLSGoServer(t *testing.T) {
	requireRoot(t)
	c := newCerts(t)
	srv := startTLSGoServer(t, c)
	tlsServerTest{pid: srv.pid(), addr: srv.addr}.run(t, c)
}

// grpc-go over TLS: exact counts of every kind of call on both sides.
func TestTLSGRPC(t *testing.T) {
	requireRoot(t)
	c := newCerts(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "E2E_ROLE=tls-grpc-server", "E2E_ADDR=127.0.0.1:0", "E2E_CERT="+c.cert, "E2E_KEY="+c.key)
	srv := startReady(t, cmd)
	port := srv.addr[strings.LastIndexByte(srv.addr, ':')+1:]
	h := startReceiver(t, func(cfg *ebpfreceiver.Config) {
		cfg.Discovery.Pids = []int{srv.pid()}
		cfg.Discovery.OpenPorts = port
	})
	h.waitInstrumented(t, srv.pid())
	h.waitTLS(t, srv.pid())

	const unary, concurrent = 20, 100
	client := exec.Command(os.Args[0])
	client.Env = append(os.Environ(), "E2E_ROLE=tls-grpc-client", "E2E_TARGET="+srv.addr, "E2E_CA="+c.cert,
		"E2E_UNARY=20", "E2E_CONCURRENT=100")
	out, err := client.Output()
	require.NoError(t, err)
	require.Equal(t, "DONE 0", strings.TrimSpace(string(out)))
	want := map[string]int{
		"grpc.testing.TestService/UnaryCall OK":           unary - unary/5 + concurrent,
		"grpc.testing.TestService/UnaryCall NOT_FOUND":    unary / 5,
		"grpc.testing.TestService/StreamingOutputCall OK": 1,
		"grpc.testing.TestService/StreamingInputCall OK":  1,
		"grpc.testing.TestService/FullDuplexCall OK":      1,
	}
	const total = unary + 3 + concurrent
	served := h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, total)
	assert.Equal(t, want, rpcCounts(served))
	calls := h.waitSpans(t, client.Process.Pid, ptrace.SpanKindClient, total)
	assert.Equal(t, want, rpcCounts(calls))
	for _, s := range served {
		assert.Equal(t, "grpc", s.str("rpc.system.name"))
	}
	t.Logf("%s", h.tlsTelemetry(t))
}

// PostgreSQL with sslmode=require: pgx (Go's crypto/tls) and psql
// (libpq, OpenSSL) give exactly the spans, with exactly the attributes,
// they give in plaintext (TestDB).
func TestTLSPostgres(t *testing.T) {
	requireRoot(t)
	pg := dbservers.StartPostgresTLS(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(dbservers.PostgresDatabase))
	require.NoError(t, err)
	for _, q := range []string{
		"CREATE TABLE users (id int PRIMARY KEY, name text)",
		"INSERT INTO users SELECT g, 'user-' || g FROM generate_series(1, 10) g",
		"CREATE TABLE items (id int PRIMARY KEY, v text)",
	} {
		_, err := conn.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	conn.Close(ctx)
	holders := startHolders(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.OpenPorts = strconv.Itoa(pg.Port)
		c.Discovery.Pids = holders
		c.DB.QueryText = true
	})
	for _, pid := range holders {
		h.waitTLS(t, pid)
	}
	check := dbClientCheck{system: "postgresql", port: pg.Port}

	pid, rep := runDBPeer(t, goDBPeer("db-pgx", "E2E_DSN="+pg.TLSDSN(dbservers.PostgresDatabase), "E2E_BASE=1000"))
	want := pgxWant()
	require.Equal(t, rep.Ops, want.total())
	check.run(t, h, pid, want)

	args := []string{}
	for i := 1; i <= 5; i++ {
		args = append(args, "-c", fmt.Sprintf("SELECT name FROM users WHERE id = %d", i))
	}
	args = append(args, "-c", "UPDATE users SET name = 'zed' WHERE id = 3", "-c", "SELECT name FROM no_such_table WHERE id = 1")
	psql := pg.Psql(args...)
	psql.Env = append(psql.Env, "PGSSLMODE=require")
	pid = runCLI(t, psql, "", 1) // the last command failed
	check.run(t, h, pid, dbWant{}.
		add(5, pgOp("SELECT users", "SELECT", "users", "SELECT name FROM users WHERE id = ?", "")).
		add(1, pgOp("UPDATE users", "UPDATE", "users", "UPDATE users SET name = ? WHERE id = ?", "")).
		add(1, pgOp("SELECT no_such_table", "SELECT", "no_such_table", "SELECT name FROM no_such_table WHERE id = ?", "42P01")))
	t.Logf("%s", h.tlsTelemetry(t))
}

// uprobeLinks lists the uprobe links this process (the receiver's) holds:
// link id -> the file probed, from their fdinfo.
func uprobeLinks(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	fds, err := filepath.Glob("/proc/self/fdinfo/*")
	require.NoError(t, err)
	for _, f := range fds {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), "probe_multi\n") && !strings.Contains(string(b), "event_type:\tu") {
			continue // uprobe_multi and uretprobe_multi links; perf links of uprobes where they are missing
		}
		var id, path string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "link_id:\t"); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(line, "path:\t"); ok {
				path = v // uprobe_multi
			}
			if v, ok := strings.CutPrefix(line, "name:\t"); ok {
				path = v // perf
			}
		}
		out[id] = path
	}
	return out
}

// linksTo counts the links of links that probe a file at path (or at its
// former name, after it was replaced).
func linksTo(links map[string]string, path string) int {
	n := 0
	for _, p := range links {
		if strings.TrimSuffix(p, " (deleted)") == path {
			n++
		}
	}
	return n
}

// kernelLinks lists the ids of every link in the kernel.
func kernelLinks(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		ids[strconv.FormatUint(uint64(it.ID), 10)] = true
	}
	require.NoError(t, it.Err())
	return ids
}

// Probes come and go with the processes that map their files: a library
// is probed once for all its processes and unprobed with the last; a
// library replaced on disk while probed (as package managers replace
// them: a new file renamed over the old) crashes nothing, the processes
// that mapped the old file keep being traced and new ones are probed in
// the new file; shutdown leaves no uprobe in the kernel.
func TestTLSProbeLifecycle(t *testing.T) {
	requireRoot(t)
	c := newCerts(t)
	libDir := t.TempDir()
	lib := filepath.Join(libDir, "libssl.so.3")
	copyFile(t, "/usr/lib/x86_64-linux-gnu/libssl.so.3", lib)
	ports := []int{freePort(t), freePort(t), freePort(t), freePort(t)}
	server := func(port int) *peer {
		cmd := exec.Command("/usr/bin/python3", tlsFixture("server.py"), c.cert, c.key, strconv.Itoa(port))
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+libDir)
		return startReady(t, cmd)
	}
	get := func(p *peer, n int) {
		t.Helper()
		var urls []string
		for i := 0; i < n; i++ {
			urls = append(urls, "https://"+p.addr+"/life")
		}
		runCurlTLS(t, c.cert, urls)
	}
	a, b := server(ports[0]), server(ports[1])
	var watched []string
	for _, p := range ports {
		watched = append(watched, strconv.Itoa(p))
	}
	before := uprobeLinks(t)
	h := startReceiver(t, func(cfg *ebpfreceiver.Config) { cfg.Discovery.OpenPorts = strings.Join(watched, ",") })
	h.waitTLS(t, a.pid())
	h.waitTLS(t, b.pid())
	assert.Equal(t, 2, linksTo(uprobeLinks(t), lib), "the library two processes map is probed once (entries, returns)")
	get(a, 3)
	get(b, 3)
	h.waitSpans(t, a.pid(), ptrace.SpanKindServer, 3)
	h.waitSpans(t, b.pid(), ptrace.SpanKindServer, 3)

	// Exits release the probes with the last process.
	a.cmd.Process.Kill()
	a.cmd.Wait()
	time.Sleep(time.Second)
	assert.Equal(t, 2, linksTo(uprobeLinks(t), lib), "b still maps the library")
	b.cmd.Process.Kill()
	b.cmd.Wait()
	require.Eventually(t, func() bool { return linksTo(uprobeLinks(t), lib) == 0 }, 10*time.Second, 50*time.Millisecond,
		"the library's probes outlived its last process")

	// Replaced on disk while probed.
	old := server(ports[2])
	h.waitTLS(t, old.pid())
	get(old, 2)
	h.waitSpans(t, old.pid(), ptrace.SpanKindServer, 2)
	copyFile(t, "/usr/lib/x86_64-linux-gnu/libssl.so.3", lib+".new")
	require.NoError(t, os.Rename(lib+".new", lib))
	get(old, 3)
	h.waitSpans(t, old.pid(), ptrace.SpanKindServer, 5)
	renewed := server(ports[3])
	h.waitTLS(t, renewed.pid())
	get(renewed, 4)
	h.waitSpans(t, renewed.pid(), ptrace.SpanKindServer, 4)
	ours := uprobeLinks(t)
	assert.Equal(t, 4, linksTo(ours, lib), "the old file and the new one, each probed once")
	for id := range before {
		delete(ours, id)
	}

	// Shutdown leaves no uprobe behind, and the processes run on.
	h.stop(t)
	assert.Equal(t, before, uprobeLinks(t), "uprobe links held after shutdown")
	require.Eventually(t, func() bool {
		inKernel := kernelLinks(t)
		for id := range ours {
			if inKernel[id] {
				return false
			}
		}
		return true
	}, 5*time.Second, 20*time.Millisecond, "uprobe links %v still in the kernel after shutdown", ours)
	get(old, 1)
	get(renewed, 1)
	for _, p := range []*peer{old, renewed} {
		require.NoError(t, p.cmd.Process.Signal(syscall.Signal(0)), "pid %d is gone", p.pid())
	}
	t.Logf("links per library: 2 (uprobe_multi entries, uretprobe_multi returns); %d links taken off at shutdown", len(ours))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o755))
}

// A client that maps its TLS library after it was watched (Python
// imports ssl when it first needs it): its first handshake, seen as TLS
// without plaintext, has its process examined again and its libssl
// probed; what it does from then on is traced. The Go server it talks to
// gives every span.
func TestTLSLateLibrary(t *testing.T) {
	requireRoot(t)
	c := newCerts(t)
	srv := startTLSGoServer(t, c)
	port := srv.addr[strings.LastIndexByte(srv.addr, ':')+1:]
	h := startReceiver(t, func(cfg *ebpfreceiver.Config) {
		cfg.Discovery.Pids = []int{srv.pid()}
		cfg.Discovery.OpenPorts = port
	})
	h.waitTLS(t, srv.pid())
	const n = 60
	late := startPeer(t, exec.Command("/usr/bin/python3", tlsFixture("late_client.py"), c.cert, srv.addr,
		"https://"+srv.addr+"/late/x", strconv.Itoa(n)))
	require.Equal(t, fmt.Sprintf("DONE %d", n), late.readLine(t))
	py := late.pid()
	served := h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, n)
	assert.Equal(t, map[string]int{"/late/x 200": n}, tlsCounts(served))
	h.waitTLS(t, py)
	var calls []span
	require.Eventually(t, func() bool { calls = h.spansOf(py, ptrace.SpanKindClient); return len(calls) > 0 },
		10*time.Second, 50*time.Millisecond, "no client span once the client's libssl was probed")
	time.Sleep(500 * time.Millisecond)
	calls = h.spansOf(py, ptrace.SpanKindClient)
	assert.Equal(t, map[string]int{"/late/x 200": len(calls)}, tlsCounts(calls), "what is traced is right")
	assert.LessOrEqual(t, len(calls), n)
	t.Logf("client spans once its libssl was probed: %d of %d requests", len(calls), n)
}
