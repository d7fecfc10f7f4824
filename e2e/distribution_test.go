package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The built otelcol-ebpf binary, as a user runs it: spans come out of the
// debug exporter one line each, and the receiver logs the instance id of
// every process it watches. `make test` builds it and sets OTELCOL_EBPF_BIN.
func TestDistribution(t *testing.T) {
	srv := startGoServer(t)
	cfg := fmt.Sprintf(`receivers:
  ebpf:
    discovery:
      pids: [%d]
      poll_interval: 100ms
    print_spans: text
exporters:
  debug:
    verbosity: normal
service:
  pipelines:
    traces:
      receivers: [ebpf]
      exporters: [debug]
`, srv.pid())
	out := runCollector(t, cfg).out

	instance := fmt.Sprintf("%s:%d", hostname(t), srv.pid())
	require.Eventually(t, func() bool { return out.has("instrumenting process", instance) },
		20*time.Second, 50*time.Millisecond, "no log line names %s:\n%s", instance, out)
	resp, err := http.Get("http://" + srv.addr + "/from/the/distribution")
	require.NoError(t, err)
	resp.Body.Close()
	require.Eventually(t, func() bool {
		return out.has("GET /from/the/distribution", "http.response.status_code=200", "url.path=/from/the/distribution")
	}, 10*time.Second, 50*time.Millisecond, "no span line:\n%s", out)
	require.Eventually(t, func() bool {
		return out.has(") HTTP 200 GET /from/the/distribution [127.0.0.1:", "]->[", "svc=[e2e.test] traceparent=[00-")
	}, 10*time.Second, 50*time.Millisecond, "no text line (print_spans: text):\n%s", out)
}

// collector is a running otelcol-ebpf binary.
type collector struct {
	cmd *exec.Cmd
	out *lines // what it printed
}

// runCollector runs the built distribution on cfg until the test ends,
// with env added to its environment. `make test` builds it and sets
// OTELCOL_EBPF_BIN.
func runCollector(t *testing.T, cfg string, env ...string) *collector {
	t.Helper()
	requireRoot(t)
	bin := os.Getenv("OTELCOL_EBPF_BIN")
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("OTELCOL_EBPF_BIN is not set: run the tests with `make test`, which builds the distribution")
		}
		t.Skip("OTELCOL_EBPF_BIN is not set: `make test` builds the distribution and sets it")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	c := &collector{cmd: exec.Command(bin, "--config", path), out: &lines{}}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.Env = append(os.Environ(), env...)
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() { c.stop() })
	return c
}

// stop ends the collector as a user would, with an interrupt.
func (c *collector) stop() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(os.Interrupt)
		c.cmd.Wait()
	}
}

// lines collects a process's output, safe to read while it is written.
type lines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// has reports whether one line holds all of parts.
func (l *lines) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(l.buf.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(sc.Text(), p)
		}
		if all {
			return true
		}
	}
	return false
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
