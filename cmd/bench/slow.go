package main

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

// The slow-handler bench: a Go HTTP server whose handler takes 1 ms
// (a sleep, as a service waiting on its own backend would), under wrk,
// without the collector and with the collector selecting it, in
// alternating rounds. The receiver's cost per request is the same as for
// the main bench's instant handler, but here it is small beside the
// request's own time: the ratio is what a real service would see.

// slowPort is where the slow server listens (18700-18799 are this
// bench's range).
const slowPort = 18710

// slowHandlerTime is how long the slow server takes over each request.
const slowHandlerTime = time.Millisecond

func init() {
	// bench serve-slow ADDR: the slow server.
	if len(os.Args) > 2 && os.Args[1] == "serve-slow" {
		serve(os.Args[2], slowHandlerTime)
		os.Exit(0)
	}
}

// runSlow measures requests/second of the slow server under wrk with conns
// connections, without the collector and with the collector selecting
// the server (traces and metrics), and prints a Markdown table.
func runSlow(collector string, rounds int, d time.Duration, conns int) error {
	server, err := startReadyCmd(exec.Command(os.Args[0], "serve-slow", fmt.Sprintf("127.0.0.1:%d", slowPort)))
	if err != nil {
		return err
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	dir, err := os.MkdirTemp("", "otelcol-ebpf-bench-slow")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	modes := []mode{
		{"no collector", ""},
		{"collector, server not selected", writeConfig(dir, "slow-unselected", "pids: [1]", "")},
		{"collector, server selected", writeConfig(dir, "slow-selected", fmt.Sprintf("pids: [%d]", server.Process.Pid), "")},
	}
	results, err := measureModes(collector, modes, slowPort, rounds, d, conns)
	if err != nil {
		return fmt.Errorf("slow handler: %w", err)
	}
	printTable(fmt.Sprintf("Slow handler: Go HTTP server whose handler sleeps %v, under wrk -t2 -c%d "+
		"(at most %.0f req/s), %d alternating rounds of %v, %d CPUs, %s",
		slowHandlerTime, conns, float64(conns)/slowHandlerTime.Seconds(), rounds, d, cpuCount(), time.Now().Format("2006-01-02")),
		modes, results)
	return nil
}
