package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/correlate"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
)

// A front service serves GET /call/{id} by calling a backend for request
// id, with something of id in the call, while 32 keep-alive clients keep
// it busy. Each of its client spans is then right (under the server span
// of its request), wrong (under another request's) or unlinked (a root):
// a wrong parent is worse than none.
const (
	parentsRequests = 640
	parentsClients  = 32
)

// parentsFront is a front service under test.
type parentsFront struct {
	name string
	// start starts the backend and the front, and returns the front.
	start func(t *testing.T) *peer
	// queryText: the receiver records db.query.text (the calls' key).
	queryText bool
	// runtime: the receiver reads the front's runtime (Go, Node.js).
	runtime bool
	// callKey is what the client span of request id's call shows of id;
	// spanKey reads it from a client span (ok false: not such a call).
	callKey func(id int) string
	spanKey func(s span) (string, bool)
	// Bounds on the share of the calls: right at least, wrong at most.
	minRight, maxWrong float64
}

// The task probes' programs (bpf/tasks.bpf.c), for the leak checks; the
// kernel keeps 15 bytes of a name.
var taskProgramNames = []string{"go_round_trip", "go_write_loop", "go_grpc_write", "go_grpc_reader",
	"node_parser_ini", "node_socket", "node_hooks"}

func init() {
	for _, name := range taskProgramNames {
		ourProgramNames[name] = true
	}
}

// parentsShare counts the calls by what their parent is.
type parentsShare struct {
	calls, right, wrong, unlinked int
}

func (s parentsShare) String() string {
	pct := func(n int) float64 { return 100 * float64(n) / float64(max(s.calls, 1)) }
	return fmt.Sprintf("%d calls: %d right (%.1f%%), %d wrong (%.1f%%), %d unlinked (%.1f%%)",
		s.calls, s.right, pct(s.right), s.wrong, pct(s.wrong), s.unlinked, pct(s.unlinked))
}

// TestParents runs every front under load and checks the parents of its
// calls. The figures are logged for the README (grep PARENTS).
func TestParents(t *testing.T) {
	for _, f := range parentsFronts() {
		t.Run(f.name, func(t *testing.T) { testParents(t, f) })
	}
}

func testParents(t *testing.T, f parentsFront) {
	front := f.start(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.Pids = []int{front.pid()}
		c.DB.QueryText = f.queryText
	})
	h.waitInstrumented(t, front.pid())
	if os.Getenv("E2E_PARENTS_BEFORE") == "" {
		h.waitRuntimeRead(t, front, f.runtime)
	}
	began := time.Now()
	_, ok := runGoClient(t, "http://"+front.addr+"/call/{i}", parentsRequests, parentsClients)
	took := time.Since(began)
	require.Equal(t, parentsRequests, ok, "requests answered")
	servers := waitKeyed(t, h, front.pid(), ptrace.SpanKindServer, serverKey, parentsRequests)
	calls := waitKeyed(t, h, front.pid(), ptrace.SpanKindClient, f.spanKey, parentsRequests)
	share := countParents(servers, calls, f)
	t.Logf("PARENTS %s, %d clients: %s; %d requests in %v; receiver: %s",
		f.name, parentsClients, share, parentsRequests, took.Round(time.Millisecond), parentOutcomes(t, h))
	require.Equal(t, parentsRequests, share.calls, "one call per request")
	require.LessOrEqual(t, float64(share.wrong)/float64(share.calls), f.maxWrong, "wrong parents")
	require.GreaterOrEqual(t, float64(share.right)/float64(share.calls), f.minRight, "right parents")
}

// serverKey is the id of a front's request; ok is false for the requests
// of waitRuntimeRead.
func serverKey(s span) (string, bool) {
	id := lastSegment(s)
	_, err := strconv.Atoi(id)
	return id, err == nil
}

// waitKeyed waits until process pid has n spans of kind that spanKey
// knows, then checks that no more come, and returns them.
func waitKeyed(t *testing.T, h *harness, pid int, kind ptrace.SpanKind, spanKey func(span) (string, bool), n int) []span {
	t.Helper()
	calls := func() []span {
		var out []span
		for _, s := range h.spansOf(pid, kind) {
			if _, ok := spanKey(s); ok {
				out = append(out, s)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(calls()) >= n }, 15*time.Second, 50*time.Millisecond,
		"pid %d: waiting for %d %v spans (%d)", pid, n, kind, len(calls()))
	time.Sleep(500 * time.Millisecond) // time enough for extra spans to show up
	got := calls()
	require.Len(t, got, n, "pid %d: %v spans", pid, kind)
	return got
}

// countParents sorts the calls by their parent: the server span of the
// request they were made for (right), another server span (wrong), none
// (unlinked).
func countParents(servers, calls []span, f parentsFront) parentsShare {
	type request struct {
		id    int
		trace pcommon.TraceID
	}
	bySpan := map[pcommon.SpanID]request{}
	for _, s := range servers {
		id, err := strconv.Atoi(lastSegment(s))
		if err == nil {
			bySpan[s.SpanID()] = request{id, s.TraceID()}
		}
	}
	var sh parentsShare
	for _, c := range calls {
		key, _ := f.spanKey(c)
		sh.calls++
		r, ok := bySpan[c.ParentSpanID()]
		switch {
		case c.ParentSpanID().IsEmpty():
			sh.unlinked++
		case ok && f.callKey(r.id) == key && r.trace == c.TraceID():
			sh.right++
		default:
			sh.wrong++
			if os.Getenv("E2E_DEBUG_LINKS") != "" {
				fmt.Printf("call %q has parent %s (request %d, %v)\n", key, c.ParentSpanID(), r.id, ok)
			}
		}
	}
	return sh
}

// parentOutcomes lists the receiver's counts of calls made while serving,
// by the rule that linked them or the reason none did.
func parentOutcomes(t *testing.T, h *harness) string {
	var out []string
	for _, r := range correlate.RuleNames {
		if n := h.selfMetric(t, "otelcol_receiver_ebpf_client_parents", "rule", r); n > 0 {
			out = append(out, fmt.Sprintf("linked by %s=%d", r, n))
		}
	}
	for _, r := range correlate.ReasonNames {
		if n := h.selfMetric(t, "otelcol_receiver_ebpf_client_parents", "reason", r); n > 0 {
			out = append(out, fmt.Sprintf("unlinked %s=%d", r, n))
		}
	}
	for _, p := range []string{"go_round_trip", "go_write_loop", "go_grpc_write", "go_grpc_reader", "node_parser_init", "node_socket", "node_hooks"} {
		if n := h.selfMetric(t, "otelcol_receiver_ebpf_uprobe_hits", "probe", p); n > 0 {
			out = append(out, fmt.Sprintf("%s hits=%d", p, n))
		}
	}
	return strings.Join(out, ", ")
}

// waitRuntimeRead waits until the receiver read the runtime of front and,
// with tasks, found how to tell its tasks apart: calls made before would
// be left unlinked. A Node.js front shows its async contexts at its first
// callback: requests of ids the test does not count wake it up.
func (h *harness) waitRuntimeRead(t *testing.T, front *peer, tasks bool) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	warm := 0
	require.Eventually(t, func() bool {
		for _, e := range h.logs.FilterMessage("parents: runtime of process read").All() {
			m := e.ContextMap()
			if m["process.pid"] == int64(front.pid()) && (!tasks || m["tasks"] == true) {
				t.Logf("runtime of the front: %v", m)
				return true
			}
		}
		if warm++; warm%10 == 0 {
			if resp, err := client.Get(fmt.Sprintf("http://%s/call/warm%d", front.addr, warm)); err == nil {
				resp.Body.Close()
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "the runtime of pid %d was never read", front.pid())
}

// waitRuntimeOf waits until the receiver read the runtime of process pid
// (its tasks need not be told apart).
func (h *harness) waitRuntimeOf(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, e := range h.logs.FilterMessage("parents: runtime of process read").All() {
			if e.ContextMap()["process.pid"] == int64(pid) {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "the runtime of pid %d was never read", pid)
}

func parentsFronts() []parentsFront {
	httpKey := func(s span) (string, bool) {
		id, ok := strings.CutPrefix(pathOfURL(s.str("url.full")), "/work/")
		if _, err := strconv.Atoi(id); err != nil {
			return "", false // a request of waitRuntimeRead's
		}
		return id, ok
	}
	return []parentsFront{
		{name: "go-http", runtime: true, start: goFront(frontHTTP, goBackend), callKey: strconv.Itoa, spanKey: httpKey,
			minRight: 0.99, maxWrong: 0.005},
		{name: "node-http", runtime: true, start: scriptFront("node", "front.js"), callKey: strconv.Itoa, spanKey: httpKey,
			minRight: 0.99, maxWrong: 0.005},
		{name: "python-http", start: scriptFront("/usr/bin/python3", "front.py"), callKey: strconv.Itoa, spanKey: httpKey,
			minRight: 0.99, maxWrong: 0.005},
		// java.net.http.HttpClient writes its requests from a thread of its
		// own: the thread tells nothing, and most calls stay unlinked, as
		// before the runtimes were read (3.9% right, no wrong, measured).
		{name: "java-http", start: javaFront, callKey: strconv.Itoa, spanKey: httpKey,
			minRight: 0.02, maxWrong: 0.005},
		{name: "go-mysql", runtime: true, start: goFront(frontMySQL, mariaDBBackend), queryText: true, callKey: strconv.Itoa,
			spanKey: prefixKey("db.query.text", "SELECT ? AS c"), minRight: 0.99, maxWrong: 0.005},
		{name: "go-redis", runtime: true, start: goFront(frontRedis, redisBackend), queryText: true, callKey: redisText,
			spanKey: redisKey, minRight: 0.99, maxWrong: 0.005},
		{name: "go-grpc", runtime: true, start: goFront(frontGRPC, grpcBackend), callKey: strconv.Itoa,
			spanKey: prefixKey("rpc.method", "parents.Echo/Call"), minRight: 0.99, maxWrong: 0.005},
	}
}

// prefixKey reads a call's key from attribute attr after prefix.
func prefixKey(attr, prefix string) func(span) (string, bool) {
	return func(s span) (string, bool) { return strings.CutPrefix(s.str(attr), prefix) }
}

// redisKey is a Redis call's db.query.text, when it is one of redisCall's.
func redisKey(s span) (string, bool) {
	text := s.str("db.query.text")
	for _, c := range redisCommands {
		if strings.HasPrefix(text, c+" ") {
			return text, true
		}
	}
	return "", false
}

// goBackend starts the Go HTTP server peer, unwatched.
func goBackend(t *testing.T) string { return startGoServer(t).addr }

func mariaDBBackend(t *testing.T) string {
	return dbservers.StartMariaDB(t).DSN(dbservers.MariaDBDatabase)
}

func redisBackend(t *testing.T) string { return dbservers.StartRedis(t).Addr }

func grpcBackend(t *testing.T) string {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "E2E_ROLE=parents-grpc-backend")
	return startReady(t, cmd).addr
}

// goFront starts the Go front of mode, calling the backend start gives.
func goFront(mode string, backend func(*testing.T) string) func(t *testing.T) *peer {
	return func(t *testing.T) *peer {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "E2E_ROLE=parents-go-front", "E2E_MODE="+mode, "E2E_BACKEND="+backend(t))
		return startReady(t, cmd)
	}
}

// scriptFront starts a front script of testdata/parents with interpreter,
// calling a Go backend.
func scriptFront(interpreter, script string) func(t *testing.T) *peer {
	return func(t *testing.T) *peer {
		path, err := filepath.Abs(filepath.Join("testdata", "parents", script))
		require.NoError(t, err)
		return startReady(t, exec.Command(interpreter, path, goBackend(t)))
	}
}

// javaFront compiles testdata/parents/Front.java and starts it.
func javaFront(t *testing.T) *peer {
	dir := t.TempDir()
	out, err := exec.Command("javac", "-d", dir, filepath.Join("testdata", "parents", "Front.java")).CombinedOutput()
	require.NoError(t, err, "javac: %s", out)
	return startReady(t, exec.Command("java", "-cp", dir, "Front", goBackend(t)))
}

// taskProbeFDs counts what this process holds of the task probes: the
// links that keep them in place (links) and every descriptor that names
// one of their programs (all). Other processes on the machine may load
// programs of the same names: only this process's descriptors count.
func taskProbeFDs(t *testing.T) (links, all int) {
	progs := map[string]bool{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		id = next
		p, err := ebpf.NewProgramFromID(next)
		if err != nil {
			continue
		}
		if info, err := p.Info(); err == nil && slices.Contains(taskProgramNames, info.Name) {
			progs[strconv.Itoa(int(next))] = true
		}
		p.Close()
	}
	entries, err := os.ReadDir("/proc/self/fdinfo")
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok && progs[strings.TrimSpace(v)] {
				all++
				if strings.Contains(string(b), "link_type:") {
					links++
				}
			}
		}
	}
	return links, all
}

// The task probes go with the last process that runs a probed binary, and
// every program goes with the receiver.
func TestParentsProbesGoAway(t *testing.T) {
	front := goFront(frontHTTP, goBackend)(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{front.pid()} })
	h.waitInstrumented(t, front.pid())
	h.waitRuntimeRead(t, front, true)
	// net/http's roundTrip and writeLoop, grpc-go's write and reader: the
	// test binary has both, and is probed once.
	links, _ := taskProbeFDs(t)
	require.Equal(t, 4, links)
	require.NoError(t, front.cmd.Process.Kill())
	front.cmd.Wait()
	require.Eventually(t, func() bool { links, _ := taskProbeFDs(t); return links == 0 }, 10*time.Second, 50*time.Millisecond,
		"the probes of the exited front's binary stayed")
	_, all := taskProbeFDs(t)
	require.Positive(t, all, "the programs stay loaded while the receiver runs")
	h.stop(t)
	_, all = taskProbeFDs(t)
	require.Zero(t, all, "the receiver's programs went with it")
}
