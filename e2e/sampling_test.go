package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// headerLog is an unwatched backend that keeps the traceparent each
// /back/{id} came with.
type headerLog struct {
	mu   sync.Mutex
	seen map[string]string
	addr string
}

func startHeaderLog(t *testing.T) *headerLog {
	t.Helper()
	hl := &headerLog{seen: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hl.mu.Lock()
		hl.seen[r.URL.Path] = r.Header.Get("traceparent")
		hl.mu.Unlock()
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	hl.addr = ln.Addr().String()
	return hl
}

func (hl *headerLog) header(path string) string {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	return hl.seen[path]
}

// With parentbased_traceidratio and context propagation, a watched front
// (its calls to an unwatched backend go out with a traceparent, one
// connection each) gets N requests: some carry no traceparent, some a
// sampled one, some an unsampled one. The flag the kernel put on the wire
// is the decision the receiver made: the front's server and client spans
// of a request exist exactly when the backend saw the sampled flag, roots
// are decided by the SDK's ratio rule on the trace id, remote parents are
// followed; the metrics count every request.
func TestSamplingFollowsTheWire(t *testing.T) {
	requireRoot(t)
	back := startHeaderLog(t)
	front := startGoServer(t, "E2E_DOWNSTREAM="+back.addr, "E2E_DOWNSTREAM_CLOSE=1")
	const ratio = 0.5
	smp, err := sampling.New(sampling.ParentBasedTraceIDRatio, ratio)
	require.NoError(t, err)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.Pids = []int{front.pid()}
		c.ContextPropagation = "headers"
		c.Sampler = ebpfreceiver.SamplerConfig{Name: sampling.ParentBasedTraceIDRatio, Ratio: ratio}
	})
	h.waitInstrumented(t, front.pid())

	const n = 240 // a third each: no traceparent, a sampled one, an unsampled one
	incoming := make([]string, n)
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range n {
		req, err := http.NewRequest("GET", fmt.Sprintf("http://%s/front/%d", front.addr, i), nil)
		require.NoError(t, err)
		if i%3 != 0 {
			incoming[i] = randomTraceparent(i%3 == 1)
			req.Header.Set("traceparent", incoming[i])
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
	}
	h.waitRequestCount(t, front.pid(), "http.server.request.duration", n)
	h.waitRequestCount(t, front.pid(), "http.client.request.duration", n)

	kept, roots, rootsKept := 0, 0, 0
	want := map[string]bool{} // trace id -> sampled, from the wire
	for i := range n {
		wire, ok := tracecontext.Parse(back.header(fmt.Sprintf("/back/%d", i)))
		require.True(t, ok, "request %d reached the backend with a traceparent", i)
		sampled := sampling.SampledFlags(wire.Flags)
		if in, ok := tracecontext.Parse(incoming[i]); ok {
			require.Equal(t, in.TraceID, wire.TraceID, "request %d continues its caller's trace", i)
			require.Equal(t, sampling.SampledFlags(in.Flags), sampled, "request %d follows its caller's decision", i)
		} else {
			roots++
			require.Equal(t, smp.Sampled(wire.TraceID), sampled, "request %d: a root is decided by its trace id", i)
			if sampled {
				rootsKept++
			}
		}
		want[hex.EncodeToString(wire.TraceID[:])] = sampled
		if sampled {
			kept++
		}
	}
	t.Logf("%d of %d requests sampled (%d of %d roots at ratio %v)", kept, n, rootsKept, roots, ratio)
	assert.Greater(t, rootsKept, 0)
	assert.Less(t, rootsKept, roots)

	server := h.waitSpans(t, front.pid(), ptrace.SpanKindServer, kept)
	calls := h.waitSpans(t, front.pid(), ptrace.SpanKindClient, kept)
	for _, s := range append(server, calls...) {
		trace := s.TraceID()
		sampled, ok := want[hex.EncodeToString(trace[:])]
		assert.True(t, ok && sampled, "span %s of trace %x is of a sampled request", s.Name(), trace)
		assert.Equal(t, uint32(1), s.Flags()&1)
	}
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_spans", "outcome", "unsampled") == int64(2*(n-kept))
	}, 10*time.Second, 50*time.Millisecond, "every span left out is counted")
	time.Sleep(300 * time.Millisecond) // nothing more comes
	assert.Len(t, h.spansOf(front.pid(), ptrace.SpanKindServer), kept)
}

// randomTraceparent is a caller's context, sampled or not.
func randomTraceparent(sampled bool) string {
	var b [24]byte
	rand.Read(b[:])
	flags := "00"
	if sampled {
		flags = "01"
	}
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-" + flags
}
