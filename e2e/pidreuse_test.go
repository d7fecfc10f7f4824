package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// startWithPid starts the command mk makes so that it gets pid want: the
// kernel's last pid is set just below it (the trick CRIU uses), and the
// start is retried when another fork or thread took the number first.
func startWithPid(t *testing.T, want int, mk func() *exec.Cmd) *peer {
	t.Helper()
	for range 50 {
		require.NoError(t, os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(want-1)), 0))
		p := startPeer(t, mk())
		if p.pid() == want {
			return p
		}
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		p.cmd.Wait()
	}
	t.Fatalf("no process could be started with pid %d", want)
	return nil
}

func pythonServer(port int) func() *exec.Cmd {
	return func() *exec.Cmd {
		return exec.Command("python3", "-m", "http.server", "--bind", "127.0.0.1", strconv.Itoa(port))
	}
}

func getN(t *testing.T, url string, n int) {
	t.Helper()
	for range n {
		resp, err := http.Get(url)
		require.NoError(t, err)
		resp.Body.Close()
	}
}

// instrumented counts the log lines that said pid is watched.
func (h *harness) instrumented(pid int) int {
	n := 0
	for _, e := range h.logs.FilterMessage("instrumenting process").All() {
		if e.ContextMap()["process.pid"] == int64(pid) {
			n++
		}
	}
	return n
}

// A pid the kernel gives again after its process exited is a new process:
// one that is not selected is not reported under the old one's name, and
// one that is gets its own identity.
func TestPidReuse(t *testing.T) {
	srv := startGoServer(t)
	port, err := strconv.Atoi(srv.addr[strings.LastIndexByte(srv.addr, ':')+1:])
	require.NoError(t, err)
	// A second watched server: its spans prove the receiver read the
	// events of what happened before them.
	probe := startGoServer(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.OpenPorts = strconv.Itoa(port)
		c.Discovery.Pids = []int{probe.pid()}
	})
	h.waitInstrumented(t, srv.pid())
	h.waitInstrumented(t, probe.pid())
	getN(t, "http://"+srv.addr+"/before", 3)
	pid := srv.pid()
	h.waitSpans(t, pid, ptrace.SpanKindServer, 3)
	goName := h.spansOf(pid, ptrace.SpanKindServer)[0].resStr("process.executable.name")
	syscall.Kill(pid, syscall.SIGKILL)
	srv.cmd.Wait()

	// Not selected (another port): nothing of it is reported.
	other := freePort(t)
	unselected := startWithPid(t, pid, pythonServer(other))
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", other))
	getN(t, fmt.Sprintf("http://127.0.0.1:%d/unselected", other), 3)
	time.Sleep(600 * time.Millisecond) // two discovery scans: time to wrongly select it
	getN(t, "http://"+probe.addr+"/probe", 1)
	h.waitSpans(t, probe.pid(), ptrace.SpanKindServer, 1)
	require.Len(t, h.spansOf(pid, ptrace.SpanKindServer), 3, "the new process's requests are not reported")
	require.Equal(t, 1, h.instrumented(pid))
	syscall.Kill(pid, syscall.SIGKILL)
	unselected.cmd.Wait()

	// Selected (the watched port): reported as itself.
	startWithPid(t, pid, pythonServer(port))
	waitListening(t, srv.addr)
	require.Eventually(t, func() bool { return h.instrumented(pid) == 2 }, 10*time.Second, 20*time.Millisecond)
	getN(t, "http://"+srv.addr+"/after", 2)
	spans := h.waitSpans(t, pid, ptrace.SpanKindServer, 5)
	names := map[string]string{}
	for _, s := range spans {
		names[s.str("url.path")] = s.resStr("process.executable.name")
	}
	require.Equal(t, goName, names["/before"])
	require.True(t, strings.HasPrefix(names["/after"], "python3"), "the new process is described anew: %q", names["/after"])
}
