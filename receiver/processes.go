package receiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/resource"
)

// process is a watched process and how to describe it as a resource.
type process struct {
	discovery.Process
	fill func(pcommon.Map)
}

// processes is the table of watched processes, shared by the discovery loop
// (which adds) and the event loop (which reads and removes).
type processes struct {
	procRoot string
	host     string
	mu       sync.RWMutex
	byPid    map[uint32]*process
}

func newProcesses(procRoot, host string) *processes {
	return &processes{procRoot: procRoot, host: host, byPid: map[uint32]*process{}}
}

func (ps *processes) get(pid uint32) *process {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.byPid[pid]
}

// add records p and reports whether it is new (a new pid, or a reused one).
func (ps *processes) add(p discovery.Process) (*process, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pid := uint32(p.Pid)
	if old := ps.byPid[pid]; old != nil && old.StartTime == p.StartTime {
		return old, false
	}
	host := ps.host
	np := &process{Process: p, fill: func(m pcommon.Map) { resource.Fill(m, host, p) }}
	ps.byPid[pid] = np
	return np, true
}

func (ps *processes) remove(pid uint32) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.byPid, pid)
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
		found, err := scanner.Scan()
		if err != nil {
			r.logger().Debug("process scan incomplete", zap.Error(err))
		}
		for _, p := range found {
			r.adopt(p)
		}
		r.dropExited()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// adopt selects p in the kernel and logs it the first time.
func (r *Receiver) adopt(p discovery.Process) {
	if _, isNew := r.procs.add(p); !isNew {
		return
	}
	if err := r.tracer.Select(uint32(p.Pid)); err != nil {
		r.logger().Error("cannot watch process", zap.Int("pid", p.Pid), zap.Error(err))
		r.procs.remove(uint32(p.Pid))
		return
	}
	r.logInstrumented(p)
}

func (r *Receiver) logInstrumented(p discovery.Process) {
	r.logger().Info("instrumenting process",
		zap.String("service.instance.id", resource.InstanceID(r.hostname, p.Pid)),
		zap.String("service.name", p.ServiceName),
		zap.String("process.executable.path", p.ExePath),
		zap.Int("process.pid", p.Pid))
}

// dropExited forgets processes that exited without the kernel telling us
// (its exit event was lost) or whose pid now belongs to another process, so
// the kernel's pid map cannot grow stale.
func (r *Receiver) dropExited() {
	r.procs.mu.RLock()
	var gone []uint32
	for pid, p := range r.procs.byPid {
		now, err := discovery.Describe(r.opts.ProcRoot, int(pid))
		if err != nil || now.StartTime != p.StartTime {
			gone = append(gone, pid)
		}
	}
	r.procs.mu.RUnlock()
	for _, pid := range gone {
		r.procs.remove(pid)
		if err := r.tracer.Deselect(pid); err != nil {
			r.logger().Warn("cannot stop watching exited process", zap.Uint32("pid", pid), zap.Error(err))
		}
	}
}
