package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The parents bench: a Go service that calls another Go service for
// every request it serves (net/http on both sides, keep-alive), under wrk,
// without the collector and with it watching the calling service, in
// alternating rounds. With the collector the service's goroutines are
// read at its syscalls and net/http's hand-off of each call to its
// connection's writer is probed (internal/runtimes): the bench prints the
// throughput ratio, the task probes' hits per request and how the calls
// were linked, from the collector's own metrics.

// The ports of the parents bench (18600-18699 are its range).
const (
	parentsBackendPort   = 18610
	parentsFrontPort     = 18611
	parentsTelemetryPort = 18612
)

// The task probes, as the collector's uprobe_hits names them.
var parentsProbes = []string{"go_round_trip", "go_write_loop", "go_grpc_write", "go_grpc_reader",
	"node_parser_init", "node_socket", "node_hooks"}

func init() {
	// bench parents-front ADDR BACKEND: the calling service.
	if len(os.Args) > 3 && os.Args[1] == "parents-front" {
		serveParentsFront(os.Args[2], os.Args[3])
		os.Exit(0)
	}
}

// serveParentsFront answers each request with what the backend answered
// to a call it makes while serving.
func serveParentsFront(addr, backend string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	fmt.Println("READY")
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := client.Get("http://" + backend + "/")
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		io.Copy(w, resp.Body)
		resp.Body.Close()
	}))
}

type parentsResult struct {
	rpsWithout, rpsWith []float64
	hitsPerReq          []float64
	linked, unlinked    float64 // calls, over the runs with the collector
}

// parentsTarget is a calling service of the bench.
type parentsTarget struct {
	name  string
	start func() (*exec.Cmd, error)
	rule  string // the rule that links its calls, which shows its probes are in place
}

// parentsRounds bounds the rounds of each target: the bench stays within
// a minute.
const parentsRounds = 2

// runParents runs the parents bench and prints its table.
func runParents(collector string, rounds int, d time.Duration, conns int) error {
	backend, err := startServer(parentsBackendPort)
	if err != nil {
		return err
	}
	defer backend.Process.Kill()
	dir, err := os.MkdirTemp("", "otelcol-ebpf-bench-parents")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	targets := []parentsTarget{
		{"Go net/http", startParentsFront, "task"},
		{"Node.js http", startParentsNodeFront, "task"},
	}
	results := make([]parentsResult, len(targets))
	for i, tg := range targets {
		front, err := tg.start()
		if err != nil {
			return fmt.Errorf("parents, %s: %w", tg.name, err)
		}
		err = measureParentsTarget(collector, dir, front.Process.Pid, tg, min(rounds, parentsRounds), d, conns, &results[i])
		front.Process.Kill()
		front.Wait()
		if err != nil {
			return fmt.Errorf("parents, %s: %w", tg.name, err)
		}
	}
	fmt.Printf("\nParents: a service calling a Go service for each request it serves (keep-alive) under wrk -t2 -c%d, "+
		"%d alternating rounds of %v, %d CPUs, %s\n\n", conns, min(rounds, parentsRounds), d, cpuCount(), time.Now().Format("2006-01-02"))
	fmt.Println("| calling service | req/s without | req/s with | ratio | task probe hits / request | calls linked | calls unlinked |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for i, tg := range targets {
		res := results[i]
		without, with := mean(res.rpsWithout), mean(res.rpsWith)
		fmt.Printf("| %s | %.0f | %.0f | %.3f | %.2f | %.0f | %.0f |\n", tg.name, without, with, with/without,
			mean(res.hitsPerReq), res.linked, res.unlinked)
	}
	return nil
}

func measureParentsTarget(collector, dir string, pid int, tg parentsTarget, rounds int, d time.Duration, conns int, res *parentsResult) error {
	config := filepath.Join(dir, "parents.yaml")
	if err := os.WriteFile(config, []byte(telemetryConfig(pid, parentsTelemetryPort)), 0o644); err != nil {
		return err
	}
	for r := 0; r < rounds; r++ {
		rps, _, err := wrk(parentsFrontPort, d, conns)
		if err != nil {
			return fmt.Errorf("no collector: %w", err)
		}
		res.rpsWithout = append(res.rpsWithout, rps)
		if err := measureParents(collector, config, tg.rule, d, conns, res); err != nil {
			return fmt.Errorf("collector: %w", err)
		}
	}
	return nil
}

// startParentsNodeFront runs e2e/testdata/parents/front.js on the
// parents front port: it calls the backend for each request.
func startParentsNodeFront() (*exec.Cmd, error) {
	script, err := filepath.Abs(filepath.Join("e2e", "testdata", "parents", "front.js"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", script, fmt.Sprintf("127.0.0.1:%d", parentsBackendPort))
	cmd.Env = append(os.Environ(), fmt.Sprintf("PARENTS_PORT=%d", parentsFrontPort))
	return startReadyCmd(cmd)
}

func startParentsFront() (*exec.Cmd, error) {
	return startReadyCmd(exec.Command(os.Args[0], "parents-front", fmt.Sprintf("127.0.0.1:%d", parentsFrontPort),
		fmt.Sprintf("127.0.0.1:%d", parentsBackendPort)))
}

// startReadyCmd starts cmd and waits for it to say READY.
func startReadyCmd(cmd *exec.Cmd) (*exec.Cmd, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "READY") {
		cmd.Process.Kill()
		return nil, fmt.Errorf("%v: %s", cmd.Args, line)
	}
	return cmd, nil
}

// measureParents runs wrk against the front with a collector watching
// it, once its runtime was read and its probes placed.
func measureParents(collector, config, rule string, d time.Duration, conns int, res *parentsResult) error {
	col, err := startCollector(collector, config)
	if err != nil {
		return err
	}
	defer func() { col.Process.Signal(os.Interrupt); col.Wait() }()
	// The probes are in place once the front's calls are linked by their
	// task: the first requests show it (a Node.js front's async contexts
	// are found at its first callback).
	deadline := time.Now().Add(15 * time.Second)
	for parentsScrape("otelcol_receiver_ebpf_client_parents", `rule="`+rule+`"`) < 1 {
		if time.Now().After(deadline) {
			return fmt.Errorf("the collector did not link the front's calls by goroutine")
		}
		if resp, err := warmClient.Get(fmt.Sprintf("http://127.0.0.1:%d/", parentsFrontPort)); err == nil {
			resp.Body.Close()
		}
		time.Sleep(200 * time.Millisecond)
	}
	hits0 := parentsHits()
	linked0 := parentsScrape("otelcol_receiver_ebpf_client_parents", `outcome="linked"`)
	unlinked0 := parentsScrape("otelcol_receiver_ebpf_client_parents", `outcome="unlinked"`)
	rps, requests, err := wrk(parentsFrontPort, d, conns)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // past the next publication of the counts
	res.rpsWith = append(res.rpsWith, rps)
	res.hitsPerReq = append(res.hitsPerReq, (parentsHits()-hits0)/float64(requests))
	res.linked += parentsScrape("otelcol_receiver_ebpf_client_parents", `outcome="linked"`) - linked0
	res.unlinked += parentsScrape("otelcol_receiver_ebpf_client_parents", `outcome="unlinked"`) - unlinked0
	return nil
}

// warmClient makes a connection per request: one the front accepted
// before its probes were in place would never show them.
var warmClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}

func parentsHits() float64 {
	total := 0.0
	for _, p := range parentsProbes {
		total += parentsScrape("otelcol_receiver_ebpf_uprobe_hits", `probe="`+p+`"`)
	}
	return total
}

// parentsScrape sums the samples of the collector's own metric name whose
// labels contain label.
func parentsScrape(name, label string) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", parentsTelemetryPort))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, label) {
			continue
		}
		if rest := line[len(name):]; rest != "" && rest[0] != '{' && rest[0] != ' ' && !strings.HasPrefix(rest, "_total") {
			continue
		}
		v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		total += v
	}
	return total
}
