package receiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/resource"
)

// process is a watched process and how to describe it as a resource. A
// pid reused by another process is another *process: what is keyed by it
// (metric series, batches) never mixes the two.
type process struct {
	discovery.Process
	host string
	// identity is what the node shows of its container and pod.
	identity k8s.Identity
	// pods is what the API says of them; nil without the API.
	pods *k8s.Watcher
	// forkOf is the selected process that forked this one, which the
	// kernel selected with it (adoptFork); 0 for the others.
	forkOf int
}

// tickNs is the length of the clock tick process start times are counted
// in (USER_HZ, 100 on Linux).
const tickNs = 10_000_000

// startedBy reports whether the process had started by kernel time ns: an
// exit reported at ns cannot be a process's that started after it (a pid
// reused before the event was read). Start times count from boot, suspend
// included, and ns does not: a suspended machine errs on the side of not
// ending, and discovery ends the process later.
func (p *process) startedBy(ns uint64) bool { return p.StartTime*tickNs <= ns }

// Fill writes the process's resource attributes (redmetrics.Resource):
// the process, its container and pod as the node shows them, and what the
// API says of the pod when it is watched. The API's service.name is taken
// only when the process names no service of its own.
func (p *process) Fill(attrs pcommon.Map) {
	resource.Fill(attrs, p.host, p.Process)
	p.identity.Fill(attrs)
	if p.pods == nil || !p.identity.InPod() {
		return
	}
	if info, ok := p.pods.Lookup(p.identity.PodUID, p.identity.ContainerID); ok {
		info.Fill(attrs)
		if !p.ServiceNamed {
			info.FillService(attrs)
		}
	}
}

// processes is the table of watched processes, shared by the discovery loop
// (which adds) and the event loop (which reads and removes).
type processes struct {
	procRoot string
	host     string
	pods     *k8s.Watcher // nil without the API
	mu       sync.RWMutex
	byPid    map[uint32]*process
	services map[string]int // processes per service name
	execed   []int          // processes that ran a new program (markExeced)
}

func newProcesses(procRoot, host string) *processes {
	return &processes{procRoot: procRoot, host: host, byPid: map[uint32]*process{}, services: map[string]int{}}
}

func (ps *processes) get(pid uint32) *process {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.byPid[pid]
}

// getOrDescribe returns process pid, described now if it is not known (its
// description was lost with a race between the kernel and discovery).
func (ps *processes) getOrDescribe(pid uint32) *process {
	if p := ps.get(pid); p != nil {
		return p
	}
	p, _ := ps.add(ps.describe(pid, ""))
	return p
}

// add records p and reports whether it is new (a new pid, or a reused one).
func (ps *processes) add(p discovery.Process) (*process, bool) {
	return ps.insert(p, 0, func() k8s.Identity { return k8s.Identify(ps.procRoot, p.Pid) })
}

// insert records p, forked by process forkOf (0: not a fork), in the
// container and pod identify says, and reports whether it is new.
func (ps *processes) insert(p discovery.Process, forkOf int, identify func() k8s.Identity) (*process, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pid := uint32(p.Pid)
	if old := ps.byPid[pid]; old != nil {
		if old.StartTime == p.StartTime {
			return old, false
		}
		ps.services[old.ServiceName]--
	}
	np := &process{Process: p, host: ps.host, identity: identify(), pods: ps.pods, forkOf: forkOf}
	ps.byPid[pid] = np
	ps.services[p.ServiceName]++
	return np, true
}

// addFork records p, forked by parent and not yet running a program of
// its own: in parent's container and pod. It reports whether p is new.
func (ps *processes) addFork(p discovery.Process, parent *process) (*process, bool) {
	return ps.insert(p, parent.Pid, func() k8s.Identity { return parent.identity })
}

// markExeced notes that process pid ran a new program, for the discovery
// loop to read it afresh (takeExeced).
func (ps *processes) markExeced(pid int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.execed = append(ps.execed, pid)
}

// takeExeced returns the pids markExeced noted since the last call.
func (ps *processes) takeExeced() []int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pids := ps.execed
	ps.execed = nil
	return pids
}

// remove forgets p, if it is still the process of its pid, and reports
// whether it was the last process of its service.
func (ps *processes) remove(p *process) (removed, lastOfService bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pid := uint32(p.Pid)
	if ps.byPid[pid] != p {
		return false, false
	}
	delete(ps.byPid, pid)
	ps.services[p.ServiceName]--
	if ps.services[p.ServiceName] > 0 {
		return true, false
	}
	delete(ps.services, p.ServiceName)
	return true, true
}

func (ps *processes) count() int {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return len(ps.byPid)
}

// describe finds process pid in /proc, for processes the kernel selected by
// itself. A process already gone is described by the command name the
// kernel saw, if any.
func (ps *processes) describe(pid uint32, comm string) discovery.Process {
	p, err := discovery.Describe(ps.procRoot, int(pid))
	if err != nil {
		if comm == "" {
			comm = "unknown"
		}
		return discovery.Process{Pid: int(pid), ExeName: comm, ServiceName: comm}
	}
	return p
}

// discover scans /proc every poll interval and selects what the criteria
// match. A selected process stays selected until it exits.
func (r *Receiver) discover(ctx context.Context) {
	scanner := discovery.NewScanner(r.opts.ProcRoot, r.opts.Criteria)
	for _, pid := range r.opts.Criteria.Pids {
		if p, err := discovery.Describe(r.opts.ProcRoot, pid); err != nil {
			r.logger().Warn("configured pid is not running; it will be watched once it is", zap.Int("pid", pid), zap.Error(err))
		} else {
			r.adopt(p)
		}
	}
	tick := time.NewTicker(r.opts.PollInterval)
	defer tick.Stop()
	for {
		for _, pid := range r.procs.takeExeced() {
			scanner.Forget(pid)
		}
		found, err := scanner.Scan()
		if err != nil {
			r.logger().Debug("process scan incomplete", zap.Error(err))
		}
		for _, p := range found {
			r.adopt(p)
		}
		r.findEnded()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// adopt selects p in the kernel and logs it the first time.
func (r *Receiver) adopt(p discovery.Process) {
	np, isNew := r.procs.add(p)
	if !isNew {
		return
	}
	if err := r.tracer.Select(uint32(p.Pid)); err != nil {
		r.logger().Error("cannot watch process", zap.Int("pid", p.Pid), zap.Error(err))
		r.procs.remove(np)
		return
	}
	r.logInstrumented(np)
	r.tlsAdopted(np)
	r.parentsAdopted(np)
}

// adoptFork takes process pid, which the kernel selected when selected
// process parent forked it (bpf/headers/forks.h), at kernel time ts. Until
// it runs a program of its own, when the kernel deselects it and says so
// (execEnded), it runs the parent's with the parent's environment: it is
// described as the parent, with its own pid and start, in the parent's
// container. Pre-fork servers fork often, so it is logged at debug level.
// A parent not known here is left to /proc to describe the child.
func (r *Receiver) adoptFork(pid, parent uint32, ts uint64) {
	pp := r.procs.get(parent)
	if pp == nil {
		r.adopt(r.procs.describe(pid, ""))
		return
	}
	p := pp.Process
	p.Pid = int(pid)
	start, err := discovery.StartTime(r.opts.ProcRoot, p.Pid)
	if err != nil {
		start = ts / tickNs // gone already: it started at the fork
	}
	p.StartTime = start
	np, isNew := r.procs.addFork(p, pp)
	if !isNew {
		return
	}
	r.logger().Debug("instrumenting forked process", zap.Int("process.pid", p.Pid), zap.Int("parent.pid", pp.Pid),
		zap.String("service.name", p.ServiceName))
	r.tlsAdopted(np)
	r.parentsAdopted(np)
}

func (r *Receiver) logInstrumented(p *process) {
	fields := []zap.Field{
		zap.String("service.instance.id", resource.InstanceID(r.hostname, p.Pid)),
		zap.String("service.name", p.ServiceName),
		zap.String("process.executable.path", p.ExePath),
		zap.Int("process.pid", p.Pid),
	}
	if id := p.identity; id.ContainerID != "" || id.InPod() {
		fields = append(fields, zap.String("container.id", id.ContainerID), zap.String("k8s.pod.uid", id.PodUID),
			zap.String("k8s.namespace.name", id.Namespace), zap.String("k8s.pod.name", id.PodName))
	}
	r.logger().Info("instrumenting process", fields...)
}

// findEnded finds processes that exited without the kernel telling us (its
// exit event was lost) or whose pid now belongs to another process, and
// hands them to the event loop, which ends them.
func (r *Receiver) findEnded() {
	r.procs.mu.RLock()
	var gone []*process
	for pid, p := range r.procs.byPid {
		now, err := discovery.Describe(r.opts.ProcRoot, int(pid))
		if err != nil || now.StartTime != p.StartTime {
			gone = append(gone, p)
		}
	}
	r.procs.mu.RUnlock()
	for _, p := range gone {
		select {
		case r.ended <- p:
		default: // the loop is behind: the next scan finds it again
		}
	}
}

// processEnded is the one place a watched process ends, on the event
// loop's goroutine: from the kernel's exit event (by pid) or from discovery
// (the process it found gone). The kernel stops reporting it, its
// connections end, what links to its requests goes, its metric series are
// emitted once more and dropped, and its service's routes are forgotten
// with its last process.
func (l *eventLoop) processEnded(p *process, ts uint64) {
	r := l.r
	removed, last := r.procs.remove(p)
	if !removed {
		return // already ended, or its pid is another process's now
	}
	if err := r.tracer.Deselect(uint32(p.Pid)); err != nil {
		r.logger().Warn("cannot stop watching exited process", zap.Int("pid", p.Pid), zap.Error(err))
	}
	l.ended(uint32(p.Pid), ts)
	r.tlsEnded(p)
	r.parentsEnded(p)
	r.agg.Forget(p)
	if last {
		r.opts.Protocols.Routes.Forget(p.ServiceName)
		r.opts.Protocols.RPCMethods.Forget(p.ServiceName)
	}
}
