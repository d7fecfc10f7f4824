//go:build vmtest

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/otelcol-ebpf/ebpfreceiver"
)

// The cost of each set of hooks: the throughput of a Go HTTP server under
// a Go load generator relative to no receiver at all, and the hook
// programs' runs and run time per request (the kernel's bpf_stats, for
// every process of the machine: the load generator's and the receiver's
// syscalls count too). For a server the receiver selects (traces and
// metrics on), and for one it does not select (what every other process of
// the node pays). Built only into make vmtest's test binary (tag vmtest): it runs in the
// VM, where both sets exist; the machine is emulated and shares two host cores, so the
// throughput ratios are noisy (the phases alternate, rounds times) and the
// run times are emulated nanoseconds: compare them with each other only.
// The runs per request do not depend on the machine.
func TestHookCost(t *testing.T) {
	requireRoot(t)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	require.NoError(t, err)
	defer stats.Close()
	const conns, rounds = 8, 2
	d := 2 * time.Second
	selected, other := startGoServer(t), startGoServer(t)
	measured := map[string]*costs{}
	measure := func(name string, srv *peer) {
		hookLoad(t, srv.addr, conns, d/4) // warm up
		before := hookStats(t)
		n := hookLoad(t, srv.addr, conns, d)
		c := measured[name]
		if c == nil {
			c = &costs{}
			measured[name] = c
		}
		run := hookStats(t).minus(before)
		c.requests += n
		c.runs, c.misses, c.time = c.runs+run.runs, c.misses+run.misses, c.time+run.time
	}
	names := []string{"bare"}
	for _, mode := range hookModes() {
		names = append(names, mode+"/selected", mode+"/unselected")
	}
	for range rounds {
		measure("bare", selected)
		measure("bare", other)
		for _, mode := range hookModes() {
			h := startReceiver(t, func(c *ebpfreceiver.Config) {
				c.Hooks = mode
				c.Discovery.Pids = []int{selected.pid()}
				// Discovery's scans of /proc would weigh on the emulated
				// CPUs: the hooks are measured, not the scans.
				c.Discovery.PollInterval = time.Minute
				c.Metrics.Interval = time.Minute
			})
			h.waitInstrumented(t, selected.pid())
			measure(mode+"/selected", selected)
			measure(mode+"/unselected", other)
			h.stop(t)
		}
	}
	bare := float64(measured["bare"].requests) / 2 // two servers per round
	var b strings.Builder
	for _, name := range names[1:] {
		c := measured[name]
		perReq := func(v float64) float64 { return v / float64(max(c.requests, 1)) }
		fmt.Fprintf(&b, "\nHOOKCOST   %-19s throughput %.2f of bare, %5.1f hook runs and %6.0f ns (emulated) per request, %d runs skipped",
			name, float64(c.requests)/bare, perReq(float64(c.runs)), perReq(float64(c.time.Nanoseconds())), c.misses)
	}
	fmt.Printf("HOOKCOST kernel %s (emulated), Go server, %d keep-alive connections, %d rounds of %v: bare %.0f req/s%s\n",
		kernelRelease(), conns, rounds, d, bare/rounds/d.Seconds(), b.String())
}
