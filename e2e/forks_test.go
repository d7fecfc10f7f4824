package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// childOf asks url of the forking server and returns the pid of the child
// that answered.
func childOf(t *testing.T, url string) int64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	pid, err := strconv.ParseInt(strings.TrimPrefix(string(body), "child "), 10, 64)
	require.NoError(t, err, "the server said %q", body)
	return pid
}

// A selected server that forks a child per connection (pre-fork servers,
// PostgreSQL backends and inetd-style servers do the same): each child is
// watched from its first syscall, though it lives a few milliseconds, far
// less than a scan of /proc takes to find it. Its spans are under its own
// pid and its parent's service. A child that runs a new program (exec) is
// no longer watched: the new program is not selected.
func TestForkedChildren(t *testing.T) {
	cmd := exec.Command("/usr/bin/python3", filepath.Join("testdata", "forks", "forking_server.py"))
	cmd.Env = append(os.Environ(), "OTEL_SERVICE_NAME=forking-shop")
	srv := startReady(t, cmd)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h.waitInstrumented(t, srv.pid())

	const n = 20
	paths := map[int64]string{} // by the child that answered
	for i := 0; i < n; i++ {
		path := fmt.Sprintf("/forked/%d", i)
		paths[childOf(t, "http://"+srv.addr+path)] = path
	}
	require.Len(t, paths, n, "a child per connection")
	spans := waitServiceSpans(t, h, n)
	hostname, err := os.Hostname()
	require.NoError(t, err)
	for _, s := range spans {
		pid, _ := s.res.Get("process.pid")
		assert.Equal(t, paths[pid.Int()], s.str("url.path"), "child %d: the span of the request it answered", pid.Int())
		assert.Equal(t, "GET", s.str("http.request.method"))
		assert.Equal(t, int64(200), s.int("http.response.status_code"))
		assert.Equal(t, fmt.Sprintf("%s:%d", hostname, pid.Int()), s.resStr("service.instance.id"))
		assert.True(t, strings.HasPrefix(s.resStr("process.executable.name"), "python3"), s.resStr("process.executable.name"))
	}
	assert.Empty(t, h.spansOf(srv.pid(), ptrace.SpanKindServer), "the parent serves nothing itself")

	// A child answers /exec, then runs a new program that calls the server.
	_, port, _ := net.SplitHostPort(srv.addr)
	execed := childOf(t, "http://"+srv.addr+"/exec?port="+port)
	line := srv.readLine(t)
	require.Equal(t, fmt.Sprintf("EXECED %d 200", execed), line, "the new program made its call")
	spans = waitServiceSpans(t, h, n+2) // /exec, and /after-exec answered by another child
	paths[execed] = "/exec?port=" + port
	var after []span
	for _, s := range spans {
		if s.str("url.path") == "/after-exec" {
			after = append(after, s)
		}
	}
	require.Len(t, after, 1, "the new program's call was served")
	pid, _ := after[0].res.Get("process.pid")
	assert.NotEqual(t, execed, pid.Int(), "by another child")
	assert.Len(t, h.spansOf(int(execed), ptrace.SpanKindServer), 1, "the child's request, answered before the exec")
	assert.Empty(t, h.spansOf(int(execed), ptrace.SpanKindClient), "the new program's call is not watched")
	t.Logf("FORKS %d children of a forking server, one span each under its own pid; a child that ran a new program: %d client spans",
		n, len(h.spansOf(int(execed), ptrace.SpanKindClient)))
}

// waitServiceSpans waits for n server spans of the forking server's
// service, then checks that no more come.
func waitServiceSpans(t *testing.T, h *harness, n int) []span {
	t.Helper()
	spans := func() []span { return h.spansWhere("service.name", "forking-shop", ptrace.SpanKindServer) }
	require.Eventually(t, func() bool { return len(spans()) >= n }, 15*time.Second, 50*time.Millisecond,
		"%d of %d server spans", len(spans()), n)
	time.Sleep(500 * time.Millisecond) // time enough for extra spans to show up
	got := spans()
	require.Len(t, got, n, "one server span per request, none more")
	return got
}
