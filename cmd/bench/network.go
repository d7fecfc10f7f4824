package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The network bench: a bulk TCP transfer between two network namespaces
// joined by a veth pair, with the collector counting the flows of both
// interfaces (network.enabled) and with the collector not counting them,
// in alternating rounds; then, in a run of its own with kernel statistics
// on, the run time of the flow programs per run (one per packet, a GSO
// packet being one).

const (
	benchNsA, benchNsB = "flows-bench-a", "flows-bench-b"
	benchIfA, benchIfB = "fbencha", "fbenchb"
	benchAddrA         = "10.234.0.1"
	benchAddrB         = "10.234.0.2"
	benchPort          = 18490
)

// runNetworkRole runs an end of the transfer when the bench started itself
// as one: "flows-sink ADDR" or "flows-source ADDR DURATION".
func runNetworkRole(args []string) bool {
	if len(args) < 3 {
		return false
	}
	switch args[1] {
	case "flows-sink":
		sink(args[2])
	case "flows-source":
		d, _ := time.ParseDuration(args[3])
		source(args[2], d)
	default:
		return false
	}
	return true
}

func sink(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY")
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { io.Copy(io.Discard, c); c.Close() }()
	}
}

// source writes as fast as it can for d and prints the bytes written.
func source(addr string, d time.Duration) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	buf := make([]byte, 128<<10)
	var n int64
	for end := time.Now().Add(d); time.Now().Before(end); {
		m, err := c.Write(buf)
		n += int64(m)
		if err != nil {
			break
		}
	}
	c.Close()
	fmt.Println("BYTES", n)
}

func benchIP(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// benchNamespaces makes the two namespaces; the returned function removes
// them.
func benchNamespaces() (func(), error) {
	cleanup := func() {
		exec.Command("ip", "netns", "delete", benchNsA).Run()
		exec.Command("ip", "netns", "delete", benchNsB).Run()
	}
	cleanup() // a run killed before its end
	for _, args := range [][]string{
		{"netns", "add", benchNsA}, {"netns", "add", benchNsB},
		{"-n", benchNsA, "link", "add", benchIfA, "type", "veth", "peer", "name", benchIfB, "netns", benchNsB},
		{"-n", benchNsA, "addr", "add", benchAddrA + "/30", "dev", benchIfA},
		{"-n", benchNsB, "addr", "add", benchAddrB + "/30", "dev", benchIfB},
		{"-n", benchNsA, "link", "set", benchIfA, "up"}, {"-n", benchNsB, "link", "set", benchIfB, "up"},
	} {
		if err := benchIP(args...); err != nil {
			cleanup()
			return nil, err
		}
	}
	return cleanup, nil
}

func networkConfig(dir string, enabled bool) string {
	cfg := fmt.Sprintf(`receivers:
  ebpf:
    discovery:
      pids: [1]
    network:
      enabled: %t
      namespaces: all
      interfaces: [%s, %s]
      interval: 1s
exporters:
  nop:
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [ebpf]
      exporters: [nop]
`, enabled, benchIfA, benchIfB)
	path := filepath.Join(dir, fmt.Sprintf("network-%t.yaml", enabled))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		panic(err)
	}
	return path
}

type networkResult struct {
	gbps     []float64
	nsPacket float64
	packets  uint64
}

func runNetwork(collector string, rounds int, d time.Duration) error {
	cleanup, err := benchNamespaces()
	if err != nil {
		return err
	}
	defer cleanup()
	sinkCmd := exec.Command("ip", "netns", "exec", benchNsB, os.Args[0], "flows-sink", fmt.Sprintf("%s:%d", benchAddrB, benchPort))
	out, err := sinkCmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sinkCmd.Start(); err != nil {
		return err
	}
	defer func() { sinkCmd.Process.Kill(); sinkCmd.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); !strings.HasPrefix(line, "READY") {
		return fmt.Errorf("sink: %s", line)
	}
	dir, err := os.MkdirTemp("", "otelcol-ebpf-bench-network")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Both modes run the collector, so that the ratio is the network
	// layer's alone (its syscall hooks cost the transfer's syscalls too).
	modes := []mode{{"collector, network off", networkConfig(dir, false)}, {"collector, network.enabled", networkConfig(dir, true)}}
	res := make([]networkResult, len(modes))
	for r := 0; r < rounds; r++ {
		for i, m := range modes {
			gbps, err := transfer(collector, m, d, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			res[i].gbps = append(res[i].gbps, gbps)
		}
	}
	disableStats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: flow program run time not measured:", err)
	} else {
		defer disableStats.Close()
		if _, err := transfer(collector, modes[1], d, &res[1]); err != nil {
			return err
		}
	}
	printNetworkTable(modes, res, rounds, d)
	return nil
}

// transfer runs the source for d under mode m and returns Gbit/s; with st,
// it also measures the flow programs' run time per packet.
func transfer(collector string, m mode, d time.Duration, st *networkResult) (float64, error) {
	var col *exec.Cmd
	if m.config != "" {
		var err error
		if col, err = startCollector(collector, m.config); err != nil {
			return 0, err
		}
		defer func() { col.Process.Signal(os.Interrupt); col.Wait() }()
	}
	before := flowProgramStats(col)
	src := exec.Command("ip", "netns", "exec", benchNsA, os.Args[0], "flows-source",
		fmt.Sprintf("%s:%d", benchAddrB, benchPort), d.String())
	out, err := src.Output()
	if err != nil {
		return 0, fmt.Errorf("source: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(string(out), "BYTES")), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("source said %q", out)
	}
	if st != nil {
		after := flowProgramStats(col)
		if runs := after.runs - before.runs; runs > 0 {
			st.nsPacket = float64(after.runtime-before.runtime) / float64(runs)
			st.packets = runs
		}
	}
	return float64(n) * 8 / d.Seconds() / 1e9, nil
}

type progStats struct {
	runtime time.Duration
	runs    uint64
}

// flowProgramStats sums the statistics of the flow programs the collector
// holds (flows_ingress, flows_egress).
func flowProgramStats(collector *exec.Cmd) progStats {
	var s progStats
	if collector == nil {
		return s
	}
	for _, id := range programIDs(collector.Process.Pid) {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err1 := p.Info()
		st, err2 := p.Stats()
		if err1 == nil && err2 == nil && strings.HasPrefix(info.Name, "flows_") {
			s.runtime += st.Runtime
			s.runs += st.RunCount
		}
		p.Close()
	}
	return s
}

func printNetworkTable(modes []mode, res []networkResult, rounds int, d time.Duration) {
	base := mean(res[0].gbps)
	fmt.Printf("\nBulk TCP transfer between two network namespaces over a veth pair, %d alternating rounds of %v, %d CPUs\n\n",
		rounds, d, cpuCount())
	fmt.Println("| mode | Gbit/s (mean) | ratio | flow program ns / run (runs) |")
	fmt.Println("|---|---|---|---|")
	for i, m := range modes {
		kern := "-"
		if res[i].packets > 0 {
			kern = fmt.Sprintf("%.0f (%d)", res[i].nsPacket, res[i].packets)
		}
		fmt.Printf("| %s | %.2f | %.3f | %s |\n", m.name, mean(res[i].gbps), mean(res[i].gbps)/base, kern)
	}
}
