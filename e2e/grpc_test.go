package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// rpcCounts counts spans by method and status.
func rpcCounts(spans []span) map[string]int {
	n := map[string]int{}
	for _, s := range spans {
		n[s.str("rpc.method")+" "+s.str("rpc.response.status_code")]++
	}
	return n
}

// A grpc-go server and client, both watched: one span per RPC on each
// side, unary and streaming, OK and not, and 100 calls at once with 64 KiB
// messages each way on one connection, whatever sits where in a read.
func TestGRPCGo(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "E2E_ROLE=grpc-server", "E2E_ADDR=127.0.0.1:0")
	srv := startReady(t, cmd)
	port := srv.addr[strings.LastIndexByte(srv.addr, ':')+1:]
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.Pids = []int{srv.pid()}
		c.Discovery.OpenPorts = port // the client is selected at connect()
	})
	h.waitInstrumented(t, srv.pid())

	const unary, concurrent = 20, 100
	client := exec.Command(os.Args[0])
	client.Env = append(os.Environ(), "E2E_ROLE=grpc-client", "E2E_TARGET="+srv.addr,
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
	var calls []span
	for _, s := range h.spansOf(client.Process.Pid, ptrace.SpanKindClient) {
		calls = append(calls, s)
	}
	assert.Equal(t, want, rpcCounts(calls))
	for _, s := range served {
		assert.Equal(t, "grpc", s.str("rpc.system.name"))
		assert.Equal(t, s.str("rpc.method"), s.Name())
		assert.Equal(t, ptrace.StatusCodeUnset, s.Status().Code(), "NOT_FOUND is no error of the server's")
	}
	for _, s := range calls {
		if s.str("rpc.response.status_code") == "NOT_FOUND" {
			assert.Equal(t, ptrace.StatusCodeError, s.Status().Code(), "any non-OK is an error on the client")
		}
	}
	h.waitRequestCount(t, srv.pid(), "rpc.server.call.duration", total)
	h.waitRequestCount(t, client.Process.Pid, "rpc.client.call.duration", total)
}

// A grpc-go server on a Unix socket, watched: the receiver traces TCP, so
// its RPCs make no span, and the handler probe, which sees every stream's
// handler start, counts each one as a connection it cannot follow instead
// of passing over it in silence.
func TestGRPCOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "grpc.sock")
	srv := startReady(t, role("grpc-server", "E2E_NETWORK=unix", "E2E_ADDR="+sock))
	h := startReceiver(t, func(c *ebpfreceiver.Config) { c.Discovery.Pids = []int{srv.pid()} })
	h.waitInstrumented(t, srv.pid())
	h.waitRuntimeOf(t, srv.pid())

	const unary, streams = 20, 20 + 3 // and one of each streaming kind
	runToDone(t, role("grpc-client", "E2E_TARGET=unix://"+sock, "E2E_UNARY=20", "E2E_CONCURRENT=0"))
	untold := func() int64 {
		return h.selfMetric(t, "otelcol_receiver_ebpf_uprobe_misses", "reason", "untold_connection")
	}
	require.Eventually(t, func() bool { return untold() >= streams }, 5*time.Second, 20*time.Millisecond,
		"streams counted as on a connection the probe cannot follow: %d", untold())
	time.Sleep(200 * time.Millisecond)
	assert.EqualValues(t, streams, untold(), "one per stream, none twice")
	assert.GreaterOrEqual(t, h.selfMetric(t, "otelcol_receiver_ebpf_uprobe_hits", "probe", "go_grpc_serve"), int64(streams))
	assert.Empty(t, h.spansOf(srv.pid(), ptrace.SpanKindServer), "no span from a Unix socket's bytes")
	assert.Zero(t, h.selfMetric(t, "otelcol_receiver_ebpf_uprobe_misses", "reason", "no_room"))
}
