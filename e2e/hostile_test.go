package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// What a peer may send never crashes or stalls the receiver: after each
// case, a plain request still gives its span.
func TestHostileInput(t *testing.T) {
	srv := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h.waitInstrumented(t, srv.pid())
	dial := func() net.Conn {
		c, err := net.Dial("tcp", srv.addr)
		require.NoError(t, err)
		return c
	}
	drain := func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, c)
		c.Close()
	}
	spansFor := func(path string) []span {
		var out []span
		for _, s := range h.spansOf(srv.pid(), ptrace.SpanKindServer) {
			if s.str("url.path") == path {
				out = append(out, s)
			}
		}
		return out
	}
	failures := func(reason string) int64 {
		return max(h.selfMetric(t, "otelcol_receiver_ebpf_parse_failures", "reason", reason), 0)
	}
	cases := []struct {
		name  string
		send  func()
		path  string
		spans int // spans for path
		// With no span for path, what proves the receiver looked: the
		// parse failures by reason it must count.
		failures map[string]int64
	}{
		{"64 KiB header line", func() {
			c := dial()
			fmt.Fprintf(c, "GET /bighead HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\nConnection: close\r\n\r\n", strings.Repeat("a", 64<<10))
			drain(c)
		}, "/bighead", 1, map[string]int64{"head_too_large": 1}},
		{"request written one byte at a time", func() {
			c := dial()
			for _, b := range []byte("GET /onebyte HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") {
				c.Write([]byte{b})
				time.Sleep(time.Millisecond)
			}
			drain(c)
		}, "/onebyte", 1, nil},
		{"slowloris: a head that never ends", func() {
			c := dial()
			for _, b := range []byte("GET /slow HTTP/1.1\r\nHost: x\r\nX-A: ") {
				c.Write([]byte{b})
				time.Sleep(20 * time.Millisecond)
			}
			c.Close()
		}, "/slow", 1, nil}, // the cut request still shows, as an error without a response
		{"connection reset mid-response", func() {
			c := dial()
			fmt.Fprint(c, "GET /large HTTP/1.1\r\nHost: x\r\n\r\n")
			io.ReadFull(c, make([]byte, 1000))
			c.(*net.TCPConn).SetLinger(0) // close with RST
			c.Close()
		}, "/large", 1, nil},
		{"request without a response read", func() {
			c := dial()
			fmt.Fprint(c, "GET /hangup HTTP/1.1\r\nHost: x\r\n\r\n")
			c.Close()
		}, "/hangup", 1, nil},
		{"binary garbage, TLS, HTTP/2 preface", func() {
			for _, junk := range [][]byte{bytes.Repeat([]byte{0xff, 0x00, 0x13}, 3000), {0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")} {
				c := dial()
				c.Write(junk)
				drain(c)
			}
		}, "/", 0, map[string]int64{"undetected_bytes": 2}}, // garbage and TLS; the HTTP/2 preface is a protocol
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]int64{}
			for reason := range tc.failures {
				before[reason] = failures(reason)
			}
			spansBefore := len(h.spansOf(srv.pid(), ptrace.SpanKindServer))
			tc.send()
			probe := fmt.Sprintf("/probe/%d", i)
			resp, err := http.Get("http://" + srv.addr + probe)
			require.NoError(t, err, "the server still answers")
			resp.Body.Close()
			require.Eventually(t, func() bool { return len(spansFor(probe)) == 1 }, 10*time.Second, 20*time.Millisecond,
				"the receiver still makes spans after %s", tc.name)
			got := spansFor(tc.path)
			assert.Len(t, got, tc.spans)
			for reason, n := range tc.failures {
				assert.Eventually(t, func() bool { return failures(reason)-before[reason] >= n }, 5*time.Second, 20*time.Millisecond,
					"%s: %d failures counted (%d before)", reason, failures(reason), before[reason])
			}
			if tc.spans == 0 {
				assert.Len(t, h.spansOf(srv.pid(), ptrace.SpanKindServer), spansBefore+1, "only the probe made a span")
			}
			if tc.path == "/slow" && len(got) == 1 {
				assert.Equal(t, ptrace.StatusCodeError, got[0].Status().Code())
				assert.Zero(t, got[0].int("http.response.status_code"))
			}
		})
	}
	assert.Positive(t, h.selfMetric(t, "otelcol_receiver_ebpf_events_read", "", ""))
}

// Thousands of short connections, and processes that start and exit: every
// map returns to its baseline, and the heap to near its start. Context
// propagation is on, so its maps are checked too.
func TestNoLeaks(t *testing.T) {
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.ExePath = `e2e\.test$`
		c.ContextPropagation = "headers"
	})
	gauge := func(name, key, value string) int64 { return h.selfMetric(t, name, key, value) }
	require.Eventually(t, func() bool { return gauge("otelcol_receiver_ebpf_processes", "", "") >= 0 }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	baseProcs := gauge("otelcol_receiver_ebpf_processes", "", "")
	basePids := gauge("otelcol_receiver_ebpf_map_entries", "map", "selected_pids")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	for round := 0; round < 3; round++ {
		var servers []*peer
		for i := 0; i < 5; i++ {
			servers = append(servers, startGoServer(t))
		}
		for _, s := range servers {
			h.waitInstrumented(t, s.pid())
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "E2E_ROLE=client", "E2E_URL=http://"+servers[0].addr+"/short", "E2E_REQUESTS=1000", "E2E_CONCURRENCY=8", "E2E_CLOSE=1")
		out, err := cmd.Output()
		require.NoError(t, err)
		require.Equal(t, "DONE 1000", strings.TrimSpace(string(out)))
		// The maps checked below held something: their return to zero means it.
		require.Positive(t, gauge("otelcol_receiver_ebpf_map_entries", "map", "process_serving"))
		for _, s := range servers {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	}
	require.Eventually(t, func() bool {
		return gauge("otelcol_receiver_ebpf_processes", "", "") == baseProcs &&
			gauge("otelcol_receiver_ebpf_map_entries", "map", "selected_pids") == basePids &&
			gauge("otelcol_receiver_ebpf_connections", "", "") == 0 &&
			gauge("otelcol_receiver_ebpf_map_entries", "map", "plans") == 0 &&
			gauge("otelcol_receiver_ebpf_map_entries", "map", "process_serving") == 0
	}, 10*time.Second, 50*time.Millisecond, "processes %d (base %d), selected pids %d (base %d), connections %d, plans %d, process_serving %d",
		gauge("otelcol_receiver_ebpf_processes", "", ""), baseProcs,
		gauge("otelcol_receiver_ebpf_map_entries", "map", "selected_pids"), basePids,
		gauge("otelcol_receiver_ebpf_connections", "", ""), gauge("otelcol_receiver_ebpf_map_entries", "map", "plans"),
		gauge("otelcol_receiver_ebpf_map_entries", "map", "process_serving"))
	// The per-thread state lives in task storage on this kernel, freed with
	// the thread; only older kernels list it (as "serving").
	assert.Positive(t, gauge("otelcol_receiver_ebpf_propagation_requests", "outcome", "injected"), "the clients' requests carried a traceparent")

	// Spans still on their way (a ring-buffer backlog on a loaded machine,
	// a batch not yet flushed) are not a leak: they reach the sinks within
	// seconds, and a leak stays however long the test waits.
	var grown int64
	for try := 0; try < 20; try++ {
		h.traces.Reset() // what the test kept is not the receiver's
		h.metrics.Reset()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		grown = int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("LEAKS: heap %d KiB before, %d KiB after 3000 short connections and 15 processes (look %d)", before.HeapAlloc>>10, after.HeapAlloc>>10, try+1)
		if grown < 8<<20 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	assert.Less(t, grown, int64(8<<20), "the heap returns near its start")
}
