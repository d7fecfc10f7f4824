// Command bench measures what the receiver costs the services it watches:
// requests/second of a Go HTTP server under wrk without the collector, with
// the collector not selecting it, and with the collector selecting it, in
// alternating rounds; plus the collector's CPU time, peak memory, and the
// kernel programs' run time per request. It prints a Markdown table. Then
// the same for a grpc-go server under a Go client's concurrent unary calls
// (calls/second without and with the collector selecting it), and for
// HTTPS servers (nginx, Go) under wrk, with the TLS uprobes' hits per
// request (tls.go). Then a Go HTTP server whose handler takes 1 ms
// (slow.go), and a Go PostgreSQL client watched on its side (postgres.go).
//
// Usage: go run ./cmd/bench --collector _build/otelcol-ebpf
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

type mode struct {
	name   string
	config string // collector config; "" runs no collector
}

func main() {
	if runNetworkRole(os.Args) {
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serve(os.Args[2], 0)
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "serve-grpc" {
		serveGRPC(os.Args[2])
		return
	}
	if len(os.Args) > 4 && os.Args[1] == "serve-tls" {
		serveTLS(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	collector := flag.String("collector", "_build/otelcol-ebpf", "the otelcol-ebpf binary")
	rounds := flag.Int("rounds", 3, "rounds of every mode")
	duration := flag.Duration("duration", 5*time.Second, "wrk duration of one run")
	conns := flag.Int("connections", 8, "wrk connections")
	grpcDuration := flag.Duration("grpc-duration", 5*time.Second, "duration of one gRPC run; 0 skips the gRPC bench")
	grpcCalls := flag.Int("grpc-concurrency", 16, "unary gRPC calls at once")
	httpBench := flag.Bool("http", true, "run the HTTP bench")
	networkDuration := flag.Duration("network-duration", 2*time.Second, "duration of one bulk transfer of the network bench; 0 skips it")
	tlsDuration := flag.Duration("tls-duration", 3*time.Second, "wrk duration of one run of the TLS bench; 0 skips it")
	parentsDuration := flag.Duration("parents-duration", 4*time.Second, "wrk duration of one run of the parents bench (parents.go); 0 skips it")
	slowDuration := flag.Duration("slow-duration", 3*time.Second, "wrk duration of one run of the 1 ms handler bench (slow.go); 0 skips it")
	pgDuration := flag.Duration("pg-duration", 3*time.Second, "duration of one run of the Postgres client bench (postgres.go); 0 skips it")
	pgConns := flag.Int("pg-connections", 8, "connections of the Postgres client bench, each querying in a loop")
	flag.Parse()
	if *httpBench {
		exitOn(run(*collector, *rounds, *duration, *conns))
	}
	if *grpcDuration > 0 {
		exitOn(runGRPC(*collector, *rounds, *grpcDuration, *grpcCalls))
	}
	if *networkDuration > 0 {
		exitOn(runNetwork(*collector, *rounds, *networkDuration))
	}
	if *tlsDuration > 0 {
		exitOn(runTLS(*collector, *rounds, *tlsDuration, *conns))
	}
	if *parentsDuration > 0 {
		exitOn(runParents(*collector, *rounds, *parentsDuration, *conns))
	}
	if *slowDuration > 0 {
		exitOn(runSlow(*collector, *rounds, *slowDuration, *conns))
	}
	if *pgDuration > 0 {
		exitOn(runPostgres(*collector, *rounds, *pgDuration, *pgConns))
	}
}

// exitOn ends the bench when one of its parts failed.
func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// serve is the measured server: small responses, keep-alive, each after
// delay (none for the main bench; the slow-handler bench's 1 ms).
func serve(addr string, delay time.Duration) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY")
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Write([]byte("hello, world\n"))
	}))
}

type result struct {
	rps         []float64
	cpuPer10k   []float64 // collector CPU seconds per 10,000 requests
	kernelNsReq []float64 // kernel program run time per request
	programs    perProgram
	rssIdleKB   int
	rssLoadKB   int // at the end of a run: what the load keeps resident
	rssPeakKB   int
}

func run(collector string, rounds int, d time.Duration, conns int) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk not found: run `make setup`")
	}
	port := 18080
	server, err := startServer(port)
	if err != nil {
		return err
	}
	defer server.Process.Kill()
	dir, err := os.MkdirTemp("", "otelcol-ebpf-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	modes := []mode{
		{"no collector", ""},
		{"collector, server not selected", writeConfig(dir, "unselected", "pids: [1]", "")},
		{"collector, server selected", writeConfig(dir, "selected", fmt.Sprintf("pids: [%d]", server.Process.Pid), "")},
		{"collector, server selected, context_propagation: headers", writeConfig(dir, "propagating",
			fmt.Sprintf("pids: [%d]", server.Process.Pid), "context_propagation: headers")},
		{"collector, server selected, sampler traceidratio 0.1", writeConfig(dir, "sampled",
			fmt.Sprintf("pids: [%d]", server.Process.Pid), "sampler: {name: traceidratio, ratio: 0.1}")},
	}
	results, err := measureModes(collector, modes, port, rounds, d, conns)
	if err != nil {
		return err
	}
	printTable(fmt.Sprintf("Go HTTP server under wrk -t2 -c%d, %d alternating rounds of %v, %d CPUs, %s",
		conns, rounds, d, cpuCount(), time.Now().Format("2006-01-02")), modes, results)
	return nil
}

// measureModes measures every mode in alternating rounds, then the kernel
// programs' run time in a run of its own per mode with a collector:
// kernel statistics slow every program down, so the throughput figures
// leave those runs out.
func measureModes(collector string, modes []mode, port, rounds int, d time.Duration, conns int) ([]result, error) {
	results := make([]result, len(modes))
	for r := 0; r < rounds; r++ {
		for i, m := range modes {
			if err := measure(collector, m, port, d, conns, &results[i], false); err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
		}
	}
	disableStats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: kernel program run time not measured:", err)
		return results, nil
	}
	defer disableStats.Close()
	for i, m := range modes {
		if m.config == "" {
			continue
		}
		if err := measure(collector, m, port, d, conns, &results[i], true); err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return results, nil
}

func startServer(port int) (*exec.Cmd, error) {
	cmd := exec.Command(os.Args[0], "serve", fmt.Sprintf("127.0.0.1:%d", port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "READY") {
		return nil, fmt.Errorf("server: %s", line)
	}
	return cmd, nil
}

func writeConfig(dir, name, selector, option string) string {
	cfg := fmt.Sprintf(`receivers:
  ebpf:
    %s
    discovery:
      %s
exporters:
  nop:
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [ebpf]
      exporters: [nop]
    metrics:
      receivers: [ebpf]
      exporters: [nop]
`, option, selector)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		panic(err)
	}
	return path
}

// telemetryConfig is a collector config that watches process pid and
// serves its own metrics for Prometheus on 127.0.0.1:port, where a bench
// reads what the receiver counted (spans, probe hits, links).
func telemetryConfig(pid, port int) string {
	return fmt.Sprintf(`receivers:
  ebpf:
    discovery:
      pids: [%d]
      poll_interval: 100ms
exporters:
  nop:
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
      exporters: [nop]
    metrics:
      receivers: [ebpf]
      exporters: [nop]
`, pid, port)
}

func measure(collector string, m mode, port int, d time.Duration, conns int, res *result, kernelStats bool) error {
	var col *exec.Cmd
	if m.config != "" {
		var err error
		if col, err = startCollector(collector, m.config); err != nil {
			return err
		}
		defer func() { col.Process.Signal(os.Interrupt); col.Wait() }()
		if !kernelStats {
			res.rssIdleKB = max(res.rssIdleKB, status(col.Process.Pid, "VmRSS"))
		}
	}
	cpu0 := cpuSeconds(col)
	kern0 := programStats(col)
	rps, requests, err := wrk(port, d, conns)
	if err != nil {
		return err
	}
	if kernelStats {
		if res.programs == nil {
			res.programs = perProgram{}
		}
		res.programs.add(kern0, programStats(col), requests)
		res.kernelNsReq = []float64{res.programs.total()}
		return nil
	}
	res.rps = append(res.rps, rps)
	if col != nil {
		res.cpuPer10k = append(res.cpuPer10k, (cpuSeconds(col)-cpu0)/float64(requests)*10000)
		res.rssLoadKB = max(res.rssLoadKB, status(col.Process.Pid, "VmRSS"))
		res.rssPeakKB = max(res.rssPeakKB, status(col.Process.Pid, "VmHWM"))
	}
	return nil
}

// startCollector starts the collector and waits until its programs are
// attached (it logs "Everything is ready").
func startCollector(bin, config string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, "--config", config)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Everything is ready") {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			return nil, fmt.Errorf("collector exited before it was ready")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("collector not ready after 30s")
	}
	go io.Copy(io.Discard, errPipe)
	time.Sleep(time.Second) // the first /proc scan selects the server
	return cmd, nil
}

var wrkRequests = regexp.MustCompile(`(\d+) requests in`)

func wrk(port int, d time.Duration, conns int) (float64, int, error) {
	out, err := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+d.String(),
		fmt.Sprintf("http://127.0.0.1:%d/", port)).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	m := wrkRequests.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("wrk said: %s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return float64(n) / d.Seconds(), n, nil
}

func cpuSeconds(cmd *exec.Cmd) float64 {
	if cmd == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ = 100)
}

func status(pid int, field string) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

// programIDs lists the ids of the kernel programs pid holds open, each
// once: a program's fd and its links' fds all name it.
func programIDs(pid int) []ebpf.ProgramID {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, _ := os.ReadDir(dir)
	var ids []ebpf.ProgramID
	seen := map[ebpf.ProgramID]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if id := ebpf.ProgramID(n); err == nil && !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
	}
	return ids
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// printTable writes a Markdown table of modes' results under title, the
// first mode the base of the ratios, and where each mode's kernel time
// goes.
func printTable(title string, modes []mode, res []result) {
	base := mean(res[0].rps)
	fmt.Printf("\n%s\n\n", title)
	fmt.Println("| mode | req/s (mean) | ratio | collector CPU s / 10k req | kernel ns / req | collector RSS idle / under load / peak |")
	fmt.Println("|---|---|---|---|---|---|")
	for i, m := range modes {
		r := res[i]
		cpu, kern, rss := "-", "-", "-"
		if m.config != "" {
			cpu = fmt.Sprintf("%.3f", mean(r.cpuPer10k))
			kern = fmt.Sprintf("%.0f", mean(r.kernelNsReq))
			rss = fmt.Sprintf("%d MB / %d MB / %d MB", r.rssIdleKB/1024, r.rssLoadKB/1024, r.rssPeakKB/1024)
		}
		fmt.Printf("| %s | %.0f | %.3f | %s | %s | %s |\n", m.name, mean(r.rps), mean(r.rps)/base, cpu, kern, rss)
	}
	for i, m := range modes {
		res[i].programs.print(m.name)
	}
}

func cpuCount() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0
	}
	return set.Count()
}
