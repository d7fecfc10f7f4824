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

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	require.NoError(t, err)
	return h
}

// A Go net/http server, one keep-alive connection, 100 requests: 100 server
// spans with the right content, and a request count of 100.
func TestGoServerKeepAlive(t *testing.T) {
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h.waitInstrumented(t, srv.pid())

	_, ok := runGoClient(t, "http://"+srv.addr+"/users/42?token=secret", 100, 1)
	require.Equal(t, 100, ok)

	got := h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 100)
	port := srv.addr[strings.LastIndexByte(srv.addr, ':')+1:]
	for _, s := range got {
		assert.Equal(t, "GET /users/*", s.Name())
		assert.Equal(t, "GET", s.str("http.request.method"))
		assert.Equal(t, "/users/42", s.str("url.path"))
		assert.Equal(t, "/users/*", s.str("http.route"))
		assert.Equal(t, int64(200), s.int("http.response.status_code"))
		assert.Equal(t, "1.1", s.str("network.protocol.version"))
		assert.Equal(t, "127.0.0.1", s.str("client.address"))
		assert.Equal(t, port, strconv.FormatInt(s.int("server.port"), 10))
		assert.Equal(t, int64(5), s.int("http.response.body.size"))
		_, hasQuery := s.Attributes().Get("url.query")
		assert.False(t, hasQuery, "the query string is not recorded unless configured")
		assert.Equal(t, ptrace.StatusCodeUnset, s.Status().Code())
		assert.True(t, s.ParentSpanID().IsEmpty(), "no traceparent: a root span")
		assert.Less(t, s.StartTimestamp(), s.EndTimestamp())
		assert.Equal(t, fmt.Sprintf("%s:%d", hostname(t), srv.pid()), s.resStr("service.instance.id"))
		assert.Equal(t, "e2e.test", s.resStr("process.executable.name"))
		assert.Equal(t, "e2e.test", s.resStr("service.name"))
	}
	now := time.Now()
	start := got[0].StartTimestamp().AsTime()
	assert.WithinDuration(t, now, start, time.Minute, "span times are wall-clock times")
	h.waitRequestCount(t, srv.pid(), "http.server.request.duration", 100)
}

// Concurrent clients on many connections: every request gives one span.
func TestGoServerConcurrentClients(t *testing.T) {
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h.waitInstrumented(t, srv.pid())

	_, ok := runGoClient(t, "http://"+srv.addr+"/", 400, 8)
	require.Equal(t, 400, ok)
	h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 400)
	h.waitRequestCount(t, srv.pid(), "http.server.request.duration", 400)
}

// Status codes: 5xx is an error on a server span, 4xx is not; chunked
// responses end at their last chunk.
func TestStatusAndChunked(t *testing.T) {
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.Pids = []int{srv.pid()}
		c.Routes.Patterns = []string{"/status/{code}"}
	})
	h.waitInstrumented(t, srv.pid())
	for _, path := range []string{"/status/503", "/status/404", "/chunked", "/status/204"} {
		resp, err := http.Get("http://" + srv.addr + path)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	got := h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 4)
	byPath := map[string]span{}
	for _, s := range got {
		byPath[s.str("url.path")] = s
	}
	assert.Equal(t, ptrace.StatusCodeError, byPath["/status/503"].Status().Code())
	assert.Equal(t, "GET /status/{code}", byPath["/status/503"].Name())
	assert.Equal(t, ptrace.StatusCodeUnset, byPath["/status/404"].Status().Code())
	assert.Equal(t, int64(404), byPath["/status/404"].int("http.response.status_code"))
	assert.Equal(t, int64(204), byPath["/status/204"].int("http.response.status_code"))
	assert.Equal(t, int64(len("part 0\npart 1\npart 2\n")), byPath["/chunked"].int("http.response.body.size"))
}

// A request that carries a traceparent joins that trace.
func TestTraceparentIsHonoured(t *testing.T) {
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h.waitInstrumented(t, srv.pid())
	req, err := http.NewRequest("GET", "http://"+srv.addr+"/traced", nil)
	require.NoError(t, err)
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	s := h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 1)[0]
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.TraceID().String())
	assert.Equal(t, "b7ad6b7169203331", s.ParentSpanID().String())
}

// Client spans: the Go client is selected because it connects to a watched
// port; curl is selected by its executable's path.
func TestClientSpans(t *testing.T) {
	srv := startGoServer(t)
	port := srv.addr[strings.LastIndexByte(srv.addr, ':')+1:]
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.OpenPorts = port
		c.Discovery.ExePath = `/curl$`
	})
	h.waitInstrumented(t, srv.pid())

	clientPid, ok := runGoClient(t, "http://"+srv.addr+"/from-go", 20, 1)
	require.Equal(t, 20, ok)
	got := h.waitSpans(t, clientPid, ptrace.SpanKindClient, 20)
	for _, s := range got {
		assert.Equal(t, "GET", s.Name())
		assert.Equal(t, "http://"+srv.addr+"/from-go", s.str("url.full"))
		assert.Equal(t, int64(200), s.int("http.response.status_code"))
		assert.Equal(t, port, strconv.FormatInt(s.int("server.port"), 10))
	}
	h.waitRequestCount(t, clientPid, "http.client.request.duration", 20)

	// curl: one process, three requests on one keep-alive connection. It is
	// selected by connect() to the watched port before its first byte.
	url := "http://" + srv.addr + "/from-curl"
	cmd := exec.Command("curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", url, url, url)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	curlSpans := h.waitSpans(t, cmd.Process.Pid, ptrace.SpanKindClient, 3)
	assert.Equal(t, "curl", curlSpans[0].resStr("process.executable.name"))
	// 20 Go client requests + 3 curl requests reached the server.
	h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 23)
}

// python3 -m http.server writes with send(); curl fetches twice.
func TestPythonServer(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>hi</p>\n"), 0o644))
	port := freePort(t)
	cmd := exec.Command("python3", "-m", "http.server", "--bind", "127.0.0.1", strconv.Itoa(port))
	cmd.Dir = dir
	py := startPeer(t, cmd)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{py.pid()} })
	h.waitInstrumented(t, py.pid())

	for _, path := range []string{"/index.html", "/missing"} {
		out, err := exec.Command("curl", "-sS", "-o", "/dev/null", "http://"+addr+path).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	got := h.waitSpans(t, py.pid(), ptrace.SpanKindServer, 2)
	status := map[string]int64{}
	for _, s := range got {
		status[s.str("url.path")] = s.int("http.response.status_code")
		assert.Equal(t, "1.1", s.str("network.protocol.version"))
	}
	assert.Equal(t, map[string]int64{"/index.html": 200, "/missing": 404}, status)
}

// haproxy in TCP mode in front of the Go server: haproxy forwards bytes
// without parsing them, and still shows one server span (the request it
// read) and one client span (the request it wrote) per request.
func TestHAProxyTCPMode(t *testing.T) {
	srv := startGoServer(t)
	hap, addr := startHAProxy(t, srv.addr)

	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid(), hap.pid()} })
	h.waitInstrumented(t, srv.pid())
	h.waitInstrumented(t, hap.pid())

	_, ok := runGoClient(t, "http://"+addr+"/via/haproxy", 50, 2)
	require.Equal(t, 50, ok)
	h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 50)
	in := h.waitSpans(t, hap.pid(), ptrace.SpanKindServer, 50)
	out := h.waitSpans(t, hap.pid(), ptrace.SpanKindClient, 50)
	assert.Equal(t, "haproxy", in[0].resStr("service.name"))
	assert.Equal(t, "/via/haproxy", in[0].str("url.path"))
	assert.Equal(t, "http://"+addr+"/via/haproxy", out[0].str("url.full"), "the Host header names the proxy")
	assert.Equal(t, strings.Split(srv.addr, ":")[0], out[0].str("network.peer.address"))
}

// Bytes that are not HTTP on a watched port give no span, and do not upset
// the HTTP that follows on other connections.
func TestNonHTTPTraffic(t *testing.T) {
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h.waitInstrumented(t, srv.pid())
	for _, payload := range [][]byte{
		{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03}, // TLS ClientHello
		[]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
		[]byte("\x00\x01garbage\xff\xfe\r\n\r\n"),
	} {
		c, err := net.Dial("tcp", srv.addr)
		require.NoError(t, err)
		c.Write(payload)
		c.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, c)
		c.Close()
	}
	resp, err := http.Get("http://" + srv.addr + "/after-garbage")
	require.NoError(t, err)
	resp.Body.Close()
	got := h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 1)
	assert.Equal(t, "/after-garbage", got[0].str("url.path"))
}

// Shutdown leaves no program of ours in the kernel, and the receiver starts
// again afterwards.
func TestShutdownDetachesEverything(t *testing.T) {
	requireRoot(t)
	before := ourProgramIDs(t)
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h.waitInstrumented(t, srv.pid())
	ours := map[ebpf.ProgramID]bool{}
	for id := range ourProgramIDs(t) {
		if !before[id] {
			ours[id] = true
		}
	}
	assert.Len(t, hookPrograms(t, ours), programsPerReceiver(), "the receiver loads its hooks once for both signals")
	h.stop(t)
	// The kernel frees a closed program after an RCU grace period.
	assert.Eventually(t, func() bool {
		now := ourProgramIDs(t)
		for id := range ours {
			if now[id] {
				return false
			}
		}
		return true
	}, 5*time.Second, 20*time.Millisecond, "programs %v still loaded after shutdown", ours)

	h2 := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h2.waitInstrumented(t, srv.pid())
	resp, err := http.Get("http://" + srv.addr + "/again")
	require.NoError(t, err)
	resp.Body.Close()
	h2.waitSpans(t, srv.pid(), ptrace.SpanKindServer, 1)
}
