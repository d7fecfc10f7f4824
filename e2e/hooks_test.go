package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// hookProgramNames are the programs that see reads and writes: the
// tracer's (bpf/tracer.bpf.c) and the socket hooks (bpf/sockhooks.bpf.c).
var hookProgramNames = map[string]bool{"on_sys_enter": true, "on_sys_exit": true, "on_process_exit": true,
	"send4_enter": true, "send4_exit": true, "recv4_enter": true, "recv4_exit": true,
	"send6_enter": true, "send6_exit": true, "recv6_enter": true, "recv6_exit": true,
	"sendfile_exit": true, "close_enter": true, "connect_enter": true, "connect_exit": true, "accept_exit": true}

// The socket hooks' programs count for the leak checks.
func init() {
	for name := range hookProgramNames {
		ourProgramNames[name] = true
	}
	peerRoles["hookload"] = func() {
		runHookLoad(os.Getenv("E2E_URL"), envInt("E2E_CONNS"), time.Duration(envInt("E2E_MILLIS"))*time.Millisecond)
	}
}

// hookModes are the values of hooks: this kernel can run: syscalls
// always, socket where it has fentry (the 6.1 kernel of make vmtest; not
// the development kernel).
func hookModes() []string {
	if bpf.SocketHooksSupported() == nil {
		return []string{"syscalls", "socket"}
	}
	return []string{"syscalls"}
}

// programsPerReceiver is how many programs a receiver with the default
// options loads: the tracer's three on the syscall path; the 13 socket
// hooks and the process-exit program where the kernel has fentry.
func programsPerReceiver() int {
	if bpf.SocketHooksSupported() == nil {
		return 14
	}
	return 3
}

// hookPrograms keeps the programs of ids that are hooks (hookProgramNames).
func hookPrograms(t *testing.T, ids map[ebpf.ProgramID]bool) map[ebpf.ProgramID]bool {
	t.Helper()
	out := map[ebpf.ProgramID]bool{}
	for id := range ids {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		if info, err := p.Info(); err == nil && hookProgramNames[info.Name] {
			out[id] = true
		}
		p.Close()
	}
	return out
}

// spanKey is what a span says that does not change from one run to the
// next: its name, kind, status and attributes, the server's port replaced.
func spanKey(s span, port string) string {
	var attrs []string
	s.Attributes().Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "client.port", "network.peer.port", "network.local.port":
			return true // ephemeral
		}
		attrs = append(attrs, k+"="+strings.ReplaceAll(v.AsString(), port, "PORT"))
		return true
	})
	sort.Strings(attrs)
	return fmt.Sprintf("%s %v %v [%s]", s.Name(), s.Kind(), s.Status().Code(), strings.Join(attrs, " "))
}

// hookWorkload is the traffic the hooks are compared on: keep-alive GETs
// from a Go client (selected by its connect to the watched port),
// requests and responses with bodies larger than the capture, status
// codes, a chunked response. It returns the client's pid and how many
// requests the server and the client saw.
func hookWorkload(t *testing.T, addr string) (clientPid, served, sent int) {
	t.Helper()
	clientPid, ok := runGoClient(t, "http://"+addr+"/users/{i}", 20, 2)
	require.Equal(t, 20, ok)
	get := func(path string) {
		resp, err := http.Get("http://" + addr + path)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, path := range []string{"/status/503", "/status/404", "/chunked", "/body/20000/3", "/body/100/4"} {
		get(path)
	}
	for _, size := range []int{10, 5000, 30000} {
		resp, err := http.Post("http://"+addr+"/upload", "application/octet-stream", bytes.NewReader(make([]byte, size)))
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return clientPid, 20 + 5 + 3, 20
}

// The same traffic seen through each set of hooks the kernel offers gives
// exactly the same spans and request counts: user space cannot tell the
// hooks apart. Where the kernel has no fentry, the syscall path alone is
// checked (exact counts).
func TestHooksSameSpans(t *testing.T) {
	requireRoot(t)
	spansBy := map[string]map[string]int{}
	for _, mode := range hookModes() {
		t.Run(mode, func(t *testing.T) {
			srv := startGoServer(t)
			port := srv.addr[strings.LastIndexByte(srv.addr, ':')+1:]
			h := startReceiver(t, func(c *ebpfreceiver.Config) {
				c.Hooks = mode
				c.Discovery.Pids = []int{srv.pid()}
				c.Discovery.OpenPorts = port // selects the Go client at connect
				c.Routes.Patterns = []string{"/status/{code}", "/body/{size}/{seed}"}
			})
			h.waitInstrumented(t, srv.pid())
			clientPid, served, sent := hookWorkload(t, srv.addr)
			keys := map[string]int{}
			for _, s := range h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, served) {
				keys[spanKey(s, port)]++
			}
			for _, s := range h.waitSpans(t, clientPid, ptrace.SpanKindClient, sent) {
				keys[spanKey(s, port)]++
			}
			h.waitRequestCount(t, srv.pid(), "http.server.request.duration", uint64(served))
			h.waitRequestCount(t, clientPid, "http.client.request.duration", uint64(sent))
			spansBy[mode] = keys
		})
	}
	if len(spansBy) == 2 {
		require.Equal(t, spansBy["syscalls"], spansBy["socket"], "the spans of both hooks")
		t.Logf("HOOKS syscalls and socket: %d distinct spans, the same", len(spansBy["socket"]))
	}
}

// Context propagation on loopback, through each set of hooks: the first
// request of each connection reaches the server with a traceparent that
// is its client span's context, and the server span is its child.
func TestHooksPropagation(t *testing.T) {
	requireRoot(t)
	for _, mode := range hookModes() {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "E2E_ROLE=echo", "E2E_ADDR=127.0.0.1:0")
			srv := startReady(t, cmd)
			port := srv.addr[strings.LastIndexByte(srv.addr, ':')+1:]
			h := startReceiver(t, func(c *ebpfreceiver.Config) {
				c.Hooks = mode
				c.ContextPropagation = "headers"
				c.Discovery.Pids = []int{srv.pid()}
				c.Discovery.OpenPorts = port // selects the client at connect()
			})
			h.waitInstrumented(t, srv.pid())
			const n = 10
			client, done := startEchoClient(t, "http://"+srv.addr+"/tp/{i}", n, 2, false, "E2E_CLOSE=1")
			answers := done()
			clientSpans := byLastSegment(h.waitSpans(t, client.pid(), ptrace.SpanKindClient, n+1))
			serverSpans := byLastSegment(h.waitSpans(t, srv.pid(), ptrace.SpanKindServer, n+1))
			for i := 0; i < n; i++ {
				key := strconv.Itoa(i)
				got, c, s := answers[key], clientSpans[key], serverSpans[key]
				require.Equal(t, spanContext(c), got.traceparent, "request %d: the header is the client span's context", i)
				if i%2 == 1 {
					require.Equal(t, echo{got.traceparent, i, i, 1}, got, "request %d: the body is intact", i)
				}
				require.Equal(t, c.TraceID(), s.TraceID(), "request %d", i)
				require.Equal(t, c.SpanID(), s.ParentSpanID(), "request %d", i)
			}
			require.Equal(t, ownTraceparent, answers["own"].traceparent, "a request's own traceparent is left as it is")
		})
	}
}

// runHookLoad sends GET requests to url over conns keep-alive connections
// for d and prints how many got a response.
func runHookLoad(url string, conns int, d time.Duration) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}}
	var done atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				resp, err := client.Get(url)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Println("DONE", done.Load())
	os.Exit(0)
}

// hookLoad runs the load generator for d and returns how many requests
// got a response.
func hookLoad(t *testing.T, addr string, conns int, d time.Duration) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "E2E_ROLE=hookload", "E2E_URL=http://"+addr+"/",
		"E2E_CONNS="+strconv.Itoa(conns), "E2E_MILLIS="+strconv.Itoa(int(d.Milliseconds())))
	p := startPeer(t, cmd)
	line := p.readLine(t)
	n, err := strconv.Atoi(strings.TrimPrefix(line, "DONE "))
	require.NoError(t, err, "load generator said %q", line)
	return n
}

// hookRuns is what the kernel counted of the hook programs' runs (with
// kernel.bpf_stats_enabled): how many, how long, how many it skipped
// because another program was running on the CPU.
type hookRuns struct {
	runs, misses uint64
	time         time.Duration
}

func (a hookRuns) minus(b hookRuns) hookRuns {
	return hookRuns{a.runs - b.runs, a.misses - b.misses, a.time - b.time}
}

// hookStats sums the statistics of the hook programs loaded now.
func hookStats(t *testing.T) hookRuns {
	t.Helper()
	var sum hookRuns
	for id := range hookPrograms(t, ourProgramIDs(t)) {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if st, err := p.Stats(); err == nil {
			sum.runs += st.RunCount
			sum.misses += st.RecursionMisses
			sum.time += st.Runtime
		}
		p.Close()
	}
	return sum
}

// costs is what one phase measured, summed over rounds.
type costs struct {
	requests int
	hookRuns
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}
