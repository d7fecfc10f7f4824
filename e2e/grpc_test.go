package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

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
