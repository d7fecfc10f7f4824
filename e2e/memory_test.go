package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// slowSink is an OTLP/gRPC backend that answers every export after a
// pause: the slow backend of a production incident.
type slowSink struct {
	ptraceotlp.UnimplementedGRPCServer
	pause time.Duration
	spans atomic.Int64
}

func (s *slowSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	time.Sleep(s.pause)
	s.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

func startSlowSink(t *testing.T, pause time.Duration) (*slowSink, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sink := &slowSink{pause: pause}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, sink)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return sink, ln.Addr().String()
}

// floodConfig is a collector watching pid and exporting to a slow sink,
// with memory_limiter first when limitMiB is not zero: the recommended
// production shape of the README.
func floodConfig(pid int, sink string, telemetryPort, limitMiB int) string {
	processors := "[batch]"
	limiter := ""
	if limitMiB > 0 {
		processors = "[memory_limiter, batch]"
		limiter = fmt.Sprintf(`  memory_limiter:
    check_interval: 100ms
    limit_mib: %d
    spike_limit_mib: %d
`, limitMiB, limitMiB/4)
	}
	return fmt.Sprintf(`receivers:
  ebpf:
    discovery:
      pids: [%d]
      poll_interval: 100ms
processors:
%s  batch: {}
exporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
    retry_on_failure:
      enabled: false
    sending_queue:
      queue_size: 1000
service:
  telemetry:
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
  pipelines:
    traces:
      receivers: [ebpf]
      processors: %s
      exporters: [otlp_grpc]
`, pid, limiter, sink, telemetryPort, processors)
}

// selfMetrics scrapes the collector's own metrics: the sum of each name's
// samples whose labels contain every given pair.
func selfMetrics(t *testing.T, port int) func(name string, labels ...string) int64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return func(name string, labels ...string) int64 {
		var total int64
		sc := bufio.NewScanner(strings.NewReader(string(body)))
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
				continue
			}
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				match = match && strings.Contains(line, labels[i]+`="`+labels[i+1]+`"`)
			}
			if match {
				v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				total += int64(v)
			}
		}
		return total
	}
}

// peakRSS is the process's high-water mark of resident memory, in MiB.
func peakRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return kb >> 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// flood sends requests over conns keep-alive connections until d passed,
// and returns how many were answered. Each request has a long path of its
// own, as scanners send: every span carries its own.
func flood(t *testing.T, url string, conns int, d time.Duration) int64 {
	pad := strings.Repeat("x", 400)
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	var served atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				resp, err := client.Get(url + "/" + strconv.Itoa(i) + "/" + pad)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				served.Add(1)
			}
		}()
	}
	wg.Wait()
	return served.Load()
}

// A flood of requests while the backend answers slowly: with
// memory_limiter first in the pipeline the collector stays alive and
// under its limit plus the margin the README documents, and every request
// is either a span handed on or a span counted as refused, dropped or lost.
func TestMemoryBoundedUnderSlowBackend(t *testing.T) {
	// The margin: the binary's code and the Go runtime (about 60 MiB of
	// a 116 MB binary's pages during start-up), the 8 MiB ring buffer
	// (mapped twice), and what the garbage collector has not returned yet;
	// the memory limiter counts only the heap in use. Measured 77-81 MiB.
	const limitMiB, marginMiB = 80, 100
	srv := startGoServer(t)
	for _, limit := range []int{0, limitMiB} {
		t.Run(fmt.Sprintf("memory_limiter=%d", limit), func(t *testing.T) {
			// A backend that answers nothing while the test runs: every
			// span sent stays in the collector.
			sink, addr := startSlowSink(t, time.Minute)
			telemetry := freePort(t)
			var env []string
			if limit > 0 { // as the README and the chart advise: the Go runtime's own limit a little above
				env = append(env, fmt.Sprintf("GOMEMLIMIT=%dMiB", limit*5/4))
			}
			col := runCollector(t, floodConfig(srv.pid(), addr, telemetry, limit), env...)
			instance := fmt.Sprintf("%s:%d", hostname(t), srv.pid())
			require.Eventually(t, func() bool { return col.out.has("instrumenting process", instance) },
				20*time.Second, 50*time.Millisecond, "not watching:\n%s", col.out)

			served := flood(t, "http://"+srv.addr+"/flood", 16, 20*time.Second)
			time.Sleep(time.Second) // the last events read and batched
			peak := peakRSS(t, col.cmd.Process.Pid)
			m := selfMetrics(t, telemetry)
			sent := m("otelcol_receiver_ebpf_spans", "outcome", "sent")
			refused := m("otelcol_receiver_ebpf_spans", "outcome", "refused")
			dropped := m("otelcol_receiver_ebpf_spans", "outcome", "dropped")
			lost := m("otelcol_receiver_ebpf_requests_lost")
			t.Logf("MEMORY memory_limiter limit_mib=%d: %d requests served, peak RSS %d MiB; spans sent %d, refused %d (memory_limit %d), dropped %d, lost %d; backend got %d",
				limit, served, peak, sent, refused, m("otelcol_receiver_ebpf_spans", "reason", "memory_limit"), dropped, lost, sink.spans.Load())
			require.Nil(t, col.cmd.ProcessState, "the collector is still running")
			if limit == 0 {
				return // the figure without a limit, for the README
			}
			require.Equal(t, served, sent+refused+dropped+lost, "every request is a span handed on, or counted")
			require.Positive(t, refused, "the memory limiter refused some: the flood outran the backend")
			require.LessOrEqual(t, peak, limit+marginMiB, "peak RSS within limit_mib plus the documented margin")
		})
	}
}
