package main

import (
	"fmt"
	"os/exec"
	"sort"
	"time"

	"github.com/cilium/ebpf"
)

// progStat is what the kernel counted of one of the collector's programs.
type progStat struct {
	runs    uint64
	runtime time.Duration
}

// programStats reads the statistics of the programs the collector holds
// open, by program name (the kernel's, cut to 15 bytes).
func programStats(collector *exec.Cmd) map[string]progStat {
	out := map[string]progStat{}
	if collector == nil {
		return out
	}
	for _, id := range programIDs(collector.Process.Pid) {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		st, err2 := p.Stats()
		p.Close()
		if err != nil || err2 != nil {
			continue
		}
		s := out[info.Name]
		s.runs += st.RunCount
		s.runtime += st.Runtime
		out[info.Name] = s
	}
	return out
}

// perProgram sums, over the runs of one mode, each program's runs and run
// time per request, so that a mode's kernel time can be told by program.
type perProgram map[string]*struct{ runs, ns, requests float64 }

// add counts what programs did between before and after, over requests.
func (pp perProgram) add(before, after map[string]progStat, requests int) {
	for name, a := range after {
		b := before[name]
		e := pp[name]
		if e == nil {
			e = &struct{ runs, ns, requests float64 }{}
			pp[name] = e
		}
		e.runs += float64(a.runs - b.runs)
		e.ns += float64((a.runtime - b.runtime).Nanoseconds())
		e.requests += float64(requests)
	}
}

// total is the run time of every program per request.
func (pp perProgram) total() float64 {
	t := 0.0
	for _, e := range pp {
		t += e.ns / max(e.requests, 1)
	}
	return t
}

// print writes where a mode's kernel time per request goes, program by
// program, the largest first.
func (pp perProgram) print(mode string) {
	if len(pp) == 0 {
		return
	}
	names := make([]string, 0, len(pp))
	for n, e := range pp {
		if e.runs > 0 { // probes of runtimes the bench does not run
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		return pp[names[i]].ns/max(pp[names[i]].requests, 1) > pp[names[j]].ns/max(pp[names[j]].requests, 1)
	})
	fmt.Printf("\nkernel time per request, %s (bpf_stats; every process's syscalls count, wrk's too):\n\n", mode)
	fmt.Println("| program | runs / req | ns / run | ns / req |")
	fmt.Println("|---|---|---|---|")
	for _, n := range names {
		e := pp[n]
		req := max(e.requests, 1)
		fmt.Printf("| %s | %.2f | %.0f | %.0f |\n", n, e.runs/req, e.ns/max(e.runs, 1), e.ns/req)
	}
}
