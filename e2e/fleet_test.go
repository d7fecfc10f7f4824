package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // what exporters send by default
)

// The fleet on loopback, both tiers this distribution (OTELCOL_EBPF_BIN):
// an agent (ebpf receiver -> otlp_grpc exporter) and a gateway (otlp
// receiver -> tail_sampling -> otlp_grpc exporter) feeding a sink in the
// test. The gateway also sends everything it receives, unsampled, to a
// second sink: what reached it before sampling.
//
// n requests through a watched server and client, a tenth of them
// answered 500 and a tenth slow: every span the agent emits (a server and
// a client span per request, as many as the agent counts as sent) reaches
// the gateway once; the sampled sink holds exactly the spans of the error
// and the slow traces, each whole, and nothing else.
func TestFleetAgentGatewayTailSampling(t *testing.T) {
	requireRoot(t)
	const (
		n                = 80
		gateway          = "127.0.0.1:18530"
		agentTelemetry   = 18532
		gatewayTelemetry = 18533
	)
	all, sampled := startTraceSink(t), startTraceSink(t)
	gw := runCollector(t, fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
processors:
  tail_sampling:
    decision_wait: 2s
    num_traces: 10000
    expected_new_traces_per_sec: 200
    policies:
      - name: errors
        type: status_code
        status_code: {status_codes: [ERROR]}
      - name: slow
        type: latency
        latency: {threshold_ms: %d}
exporters:
  otlp_grpc/all:
    endpoint: %s
    tls: {insecure: true}
  otlp_grpc/sampled:
    endpoint: %s
    tls: {insecure: true}
service:
  telemetry:
    metrics:
      readers:
        - pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}
  pipelines:
    traces/all:
      receivers: [otlp]
      exporters: [otlp_grpc/all]
    traces/sampled:
      receivers: [otlp]
      processors: [tail_sampling]
      exporters: [otlp_grpc/sampled]
`, gateway, fleetSlowThreshold.Milliseconds(), all.addr, sampled.addr, gatewayTelemetry))
	waitListening(t, gateway)

	srv := startReady(t, fleetServerCmd())
	cli := startWaitClient(t, "", "E2E_TARGET="+srv.addr, "E2E_PREFIX=/r", "E2E_REQUESTS="+strconv.Itoa(n), "E2E_CONCURRENCY=4")
	agent := runCollector(t, fmt.Sprintf(`receivers:
  ebpf:
    discovery:
      pids: [%d, %d]
      poll_interval: 100ms
exporters:
  otlp_grpc:
    endpoint: %s
    tls: {insecure: true}
service:
  telemetry:
    metrics:
      readers:
        - pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}
  pipelines:
    traces:
      receivers: [ebpf]
      exporters: [otlp_grpc]
`, srv.pid(), cli.p.pid(), gateway, agentTelemetry))
	for _, pid := range []int{srv.pid(), cli.p.pid()} {
		instance := fmt.Sprintf("%s:%d", hostname(t), pid)
		require.Eventually(t, func() bool { return agent.out.has("instrumenting process", instance) },
			30*time.Second, 50*time.Millisecond, "the agent never watched %s:\n%s", instance, agent.out)
	}

	cli.release(t)
	got, statuses := cli.done(t)
	require.Equal(t, n, got)
	wantErrors, wantSlow := 0, 0
	for i := 0; i < n; i++ {
		switch fleetOutcome(i) {
		case fleetError:
			wantErrors++
		case fleetSlowOutcome:
			wantSlow++
		}
	}
	require.Equal(t, map[int]int{200: n - wantErrors, 500: wantErrors}, statuses)

	// Before sampling: every span the agent sent, once.
	require.Eventually(t, func() bool { return all.count() >= 2*n }, 30*time.Second, 100*time.Millisecond,
		"the gateway passed on %d of %d spans:\nagent:\n%s\ngateway:\n%s", all.count(), 2*n, agent.out, gw.out)
	require.Eventually(t, func() bool {
		return scrape(t, agentTelemetry, "otelcol_exporter_sent_spans", `exporter="otlp_grpc"`) == 2*n
	}, 10*time.Second, 100*time.Millisecond, "the agent's exporter counts %d spans sent, want %d",
		scrape(t, agentTelemetry, "otelcol_exporter_sent_spans", `exporter="otlp_grpc"`), 2*n)
	require.Eventually(t, func() bool {
		return scrape(t, gatewayTelemetry, "otelcol_receiver_accepted_spans", `receiver="otlp"`) == 2*n
	}, 10*time.Second, 100*time.Millisecond, "the gateway's receiver counts %d spans accepted, want %d",
		scrape(t, gatewayTelemetry, "otelcol_receiver_accepted_spans", `receiver="otlp"`), 2*n)
	time.Sleep(500 * time.Millisecond) // time enough for a duplicate to show up
	received := all.spans()
	require.Len(t, received, 2*n, "spans at the gateway")
	bySpanID := map[pcommon.SpanID]sunkSpan{}
	for _, s := range received {
		require.NotContains(t, bySpanID, s.spanID, "span %s reached the gateway twice", s.spanID)
		bySpanID[s.spanID] = s
	}

	// Each request: one server and one client span, the server's parent the
	// client, in a trace of their own.
	type request struct{ server, client sunkSpan }
	requests := map[int]*request{}
	for _, s := range received {
		i, err := strconv.Atoi(s.path[strings.LastIndexByte(s.path, '/')+1:])
		require.NoError(t, err, "span of %q", s.path)
		r := requests[i]
		if r == nil {
			r = &request{}
			requests[i] = r
		}
		switch {
		case s.kind == ptrace.SpanKindServer && s.pid == srv.pid():
			require.Zero(t, r.server.spanID, "request %d: two server spans", i)
			r.server = s
		case s.kind == ptrace.SpanKindClient && s.pid == cli.p.pid():
			require.Zero(t, r.client.spanID, "request %d: two client spans", i)
			r.client = s
		default:
			t.Fatalf("request %d: a %v span of pid %d", i, s.kind, s.pid)
		}
	}
	require.Len(t, requests, n)
	wantSampled := map[pcommon.TraceID]int{} // -> request
	for i, r := range requests {
		require.NotZero(t, r.server.spanID, "request %d: no server span", i)
		require.NotZero(t, r.client.spanID, "request %d: no client span", i)
		require.Equal(t, r.client.traceID, r.server.traceID, "request %d: one trace", i)
		require.Equal(t, r.client.spanID, r.server.parent, "request %d: the server span is the client's child", i)
		wantStatus := ptrace.StatusCodeUnset
		if fleetOutcome(i) == fleetError {
			wantStatus = ptrace.StatusCodeError
		}
		assert.Equal(t, wantStatus, r.server.status, "request %d: server span status", i)
		assert.Equal(t, wantStatus, r.client.status, "request %d: client span status", i)
		if fleetOutcome(i) != fleetFast {
			wantSampled[r.server.traceID] = i
		}
		if d := r.client.end - r.client.start; fleetOutcome(i) == fleetSlowOutcome {
			assert.GreaterOrEqual(t, d, fleetSlow, "request %d: slow", i)
		} else {
			assert.Less(t, d, fleetSlowThreshold, "request %d: fast, or the latency policy keeps it", i)
		}
	}
	require.Len(t, wantSampled, wantErrors+wantSlow)

	// After sampling: the error and slow traces, whole, and nothing else.
	// The gateway decides decision_wait after a trace's first span.
	require.Eventually(t, func() bool { return sampled.count() >= 2*len(wantSampled) }, 30*time.Second, 100*time.Millisecond,
		"the gateway sampled %d spans, want %d:\n%s", sampled.count(), 2*len(wantSampled), gw.out)
	time.Sleep(3 * time.Second) // a decision_wait more: a fast trace kept would show up now
	kept := map[pcommon.TraceID]int{}
	for _, s := range sampled.spans() {
		i, want := wantSampled[s.traceID]
		assert.True(t, want, "a trace that is neither an error nor slow was kept: %s %s", s.kind, s.path)
		orig, ok := bySpanID[s.spanID]
		require.True(t, ok, "the gateway sampled span %s it never received", s.spanID)
		assert.Equal(t, orig, s, "request %d: the sampled span as the agent sent it", i)
		kept[s.traceID]++
	}
	for tid, i := range wantSampled {
		assert.Equal(t, 2, kept[tid], "request %d (%s): its trace's spans kept", i, []string{"", "error", "slow"}[fleetOutcome(i)])
	}
	t.Logf("%d requests: %d spans at the gateway, %d errors and %d slow traces sampled (%d spans); agent RSS %d KiB",
		n, len(received), wantErrors, wantSlow, sampled.count(), rssKiB(agent.cmd.Process.Pid))
}

// fleetSlowThreshold is the gateway's latency policy: fast requests stay
// far below it on a busy machine, slow ones far above.
const fleetSlowThreshold = 350 * time.Millisecond

func fleetServerCmd() *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "E2E_ROLE=fleet-server", "E2E_ADDR=127.0.0.1:0")
	return cmd
}

// sunkSpan is what the tests read of a span a sink received.
type sunkSpan struct {
	traceID         pcommon.TraceID
	spanID, parent  pcommon.SpanID
	kind            ptrace.SpanKind
	status          ptrace.StatusCode
	path            string // url.path, or the path of url.full
	pid             int
	start, end      time.Duration // since the epoch
	resourceService string
	res             map[string]string // the resource's attributes
}

// traceSink is an OTLP/gRPC traces server in the test process: what an
// exporter of the gateway sends to.
type traceSink struct {
	ptraceotlp.UnimplementedGRPCServer
	addr string
	mu   sync.Mutex
	got  []sunkSpan
}

func startTraceSink(t *testing.T) *traceSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &traceSink{addr: ln.Addr().String()}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, s)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return s
}

func (s *traceSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	var batch []sunkSpan
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		pid, _ := rs.Resource().Attributes().Get("process.pid")
		svc, _ := rs.Resource().Attributes().Get("service.name")
		res := map[string]string{}
		rs.Resource().Attributes().Range(func(k string, v pcommon.Value) bool {
			res[k] = v.AsString()
			return true
		})
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				path := ""
				if v, ok := sp.Attributes().Get("url.path"); ok {
					path = v.Str()
				} else if v, ok := sp.Attributes().Get("url.full"); ok {
					path = pathOf(v.Str())
				}
				batch = append(batch, sunkSpan{traceID: sp.TraceID(), spanID: sp.SpanID(), parent: sp.ParentSpanID(),
					kind: sp.Kind(), status: sp.Status().Code(), path: path, pid: int(pid.Int()),
					start: time.Duration(sp.StartTimestamp()), end: time.Duration(sp.EndTimestamp()), resourceService: svc.AsString(), res: res})
			}
		}
	}
	s.mu.Lock()
	s.got = append(s.got, batch...)
	s.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

func (s *traceSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// spansOf are the spans of process pid received so far.
func (s *traceSink) spansOf(pid int) []sunkSpan {
	var out []sunkSpan
	for _, sp := range s.spans() {
		if sp.pid == pid {
			out = append(out, sp)
		}
	}
	return out
}

// reset forgets what was received.
func (s *traceSink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = nil
}

func (s *traceSink) spans() []sunkSpan {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunkSpan(nil), s.got...)
}

// scrape sums the samples of a collector's own metric (its Prometheus
// name, with or without _total) whose labels hold label; -1 when the
// endpoint does not answer.
func scrape(t *testing.T, port int, metric, label string) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok || (name != metric && name != metric+"_total") || !strings.Contains(rest, label) {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			total += v
		}
	}
	return int(total)
}

// rssKiB is process pid's resident set, 0 if unknown.
func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
