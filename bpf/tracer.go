package bpf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Event kinds, generated from enum event_kind (headers/events.h).
const (
	EventRead    = uint8(tracerEventKindEVENT_READ)
	EventWrite   = uint8(tracerEventKindEVENT_WRITE)
	EventClose   = uint8(tracerEventKindEVENT_CLOSE)
	EventExit    = uint8(tracerEventKindEVENT_EXIT)
	EventSelect  = uint8(tracerEventKindEVENT_SELECT)
	EventConnect = uint8(tracerEventKindEVENT_CONNECT)
	EventAccept  = uint8(tracerEventKindEVENT_ACCEPT)
	// The task probes' (tasks.go).
	EventNodeParser = uint8(tracerEventKindEVENT_NODE_PARSER)
	EventNodeSocket = uint8(tracerEventKindEVENT_NODE_SOCKET)
	EventGoStream   = uint8(tracerEventKindEVENT_GO_STREAM)
	EventGoHandler  = uint8(tracerEventKindEVENT_GO_HANDLER)
	// The forks of selected processes (headers/forks.h).
	EventFork = uint8(tracerEventKindEVENT_FORK)
	EventExec = uint8(tracerEventKindEVENT_EXEC)
)

// Event flags, generated from enum event_flag.
const (
	// EventFlagAfterLoss marks the first event of a connection after some
	// of its events were lost.
	EventFlagAfterLoss = uint8(tracerEventFlagEVENT_FLAG_AFTER_LOSS)
	// EventFlagContext: a read began a request; the event carries the
	// server span's trace id and span id, and the caller's span id from
	// its traceparent, if any.
	EventFlagContext = uint8(tracerEventFlagEVENT_FLAG_CONTEXT)
	// EventFlagInjected: a write began a request that went out with a
	// traceparent; the event carries the client span's ids and its parent.
	EventFlagInjected = uint8(tracerEventFlagEVENT_FLAG_INJECTED)
	// EventFlagNotInjected: a write began a request that could not carry
	// a traceparent; Event.Reason says why.
	EventFlagNotInjected = uint8(tracerEventFlagEVENT_FLAG_NOT_INJECTED)
	// EventFlagFramesShort: the HTTP/2 frames past the head could not all
	// be walked or copied.
	EventFlagFramesShort = uint8(tracerEventFlagEVENT_FLAG_FRAMES_SHORT)
)

// NotInjectedReasons name the reasons, generated from enum not_injected,
// why a request went out without a traceparent, as self-telemetry calls
// them.
var NotInjectedReasons = map[uint8]string{
	uint8(tracerNotInjectedNOT_INJECTED_UNTRACKED): "untracked_connection",
	uint8(tracerNotInjectedNOT_INJECTED_REUSED):    "reused_connection",
	uint8(tracerNotInjectedNOT_INJECTED_SOCKMAP):   "sockmap_in_use",
	uint8(tracerNotInjectedNOT_INJECTED_ZEROCOPY):  "zerocopy_socket",
	uint8(tracerNotInjectedNOT_INJECTED_FULL):      "sock_hash_full",
	uint8(tracerNotInjectedNOT_INJECTED_HEAD):      "head_too_large",
	uint8(tracerNotInjectedNOT_INJECTED_FAILED):    "not_inserted",
}

// Counters are the tracer's loss counters, summed over CPUs.
type Counters struct {
	LostData    uint64 // read/write events dropped: ring buffer full
	LostControl uint64 // connection, exit and select events dropped: ring buffer full
	LostArgs    uint64 // syscalls not followed: no memory for their arguments
	// LostRequests counts the lost read/write events whose bytes began a
	// request: requests no span will show.
	LostRequests uint64
}

// Event is the wire layout of one event, generated from struct event.
type Event = tracerEvent

// HeaderSize is the size of an event before its captured data.
const HeaderSize = int(unsafe.Offsetof(Event{}.Data))

// Options configure a Tracer.
type Options struct {
	SelfTgid       uint32 // never selected by connect()
	RingBufferSize int    // bytes, a power of two >= page size
	// Propagate makes selected processes' HTTP/1.x requests carry a
	// traceparent header (context_propagation: headers).
	Propagate bool
	// PropagateTCP makes selected processes' requests carry their client
	// span's context in a TCP header option, and reads it on the other
	// side (context_propagation: tcp; headers/tcp_option.h).
	PropagateTCP bool
	// Hooks chooses the kernel hooks (sockhooks.go); the zero value is
	// HooksAuto.
	Hooks Hooks
	// SampleMode and SampleBound are the receiver's sampler
	// (internal/sampling): the kernel decides the sampled flag of the
	// traces it starts the same way (headers/sampling.h).
	SampleMode  uint8
	SampleBound uint64

	// compat loads the programs as for kernels before 5.12 (tests).
	compat bool
}

// Tracer is the loaded and attached set of kernel programs and maps.
type Tracer struct {
	mu    sync.Mutex // serialises updates of the pid bitmap
	objs  tracerObjects
	links []link.Link
	prop  *propagation
	sock  *socketHooks // nil on the syscall path
	// HooksErr says why the socket hooks are not used although
	// Options.Hooks allowed them (HooksAuto): the syscall path is.
	HooksErr error
	// PropagationErr says why requests carry no traceparent although
	// Options.Propagate asked for it; the tracer works without it.
	PropagationErr error
	// vars are the constants the tracer was loaded with, by name: the
	// probes loaded later against its maps take the same.
	vars map[string][]byte
}

// Load loads the programs into the kernel and attaches them. The caller must
// Close the Tracer to detach and free everything. When propagation was asked
// for but cannot work here, the tracer is loaded without it and
// PropagationErr says why.
func Load(opts Options) (*Tracer, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising the memlock limit for eBPF maps: %w", err)
	}
	t, err := load(opts)
	if !opts.Propagate && !opts.PropagateTCP {
		return t, err
	}
	propErr := err // the tracer's planning needs bpf_loop (5.17)
	if err == nil {
		if t.prop, propErr = loadPropagation(&t.objs, opts.Propagate, opts.PropagateTCP); propErr == nil {
			return t, nil
		}
		t.Close() // without the sk_msg program the tracer's plans would only cost
	}
	opts.Propagate, opts.PropagateTCP = false, false
	if t, err = load(opts); err != nil {
		return nil, err
	}
	t.PropagationErr = propErr
	return t, nil
}

// modernKernel reports whether the kernel gives tracing programs task
// storage (5.12) and BTF task pointers (5.11).
func modernKernel() bool {
	return features.HaveMapType(ebpf.TaskStorage) == nil &&
		features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnTaskStorageGet) == nil &&
		features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnGetCurrentTaskBtf) == nil
}

func load(opts Options) (*Tracer, error) {
	spec, err := loadTracer()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded eBPF object: %w", err)
	}
	if err := configure(spec, opts); err != nil {
		return nil, err
	}
	t := &Tracer{vars: map[string][]byte{}}
	for name, v := range spec.Variables {
		t.vars[name] = v.Value
	}
	socket, err := t.loadSocketPath(spec, opts)
	if err != nil {
		return nil, err
	}
	if socket {
		return t, nil
	}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		return nil, fmt.Errorf("loading eBPF programs: %w", verifierDetail(err))
	}
	if err := t.attach(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func configure(spec *ebpf.CollectionSpec, opts Options) error {
	ring := uint32(spec.Maps["events"].MaxEntries)
	if opts.RingBufferSize > 0 {
		ring = uint32(opts.RingBufferSize)
	}
	spec.Maps["events"].MaxEntries = ring
	words, err := pidWords()
	if err != nil {
		return err
	}
	spec.Maps["pids"].MaxEntries = words
	modern := !opts.compat && modernKernel()
	for storage, byTid := range map[string]string{"inflight": "inflight_by_tid", "serving": "serving_by_tid"} {
		if modern {
			spec.Maps[byTid].MaxEntries = 1 // unused
			continue
		}
		// Task storage maps cannot be created here: an unused array instead.
		m := spec.Maps[storage]
		m.Type, m.Flags, m.MaxEntries = ebpf.Array, 0, 1
	}
	consts := map[string]any{"self_tgid": opts.SelfTgid, "wakeup_bytes": uint64(ring / 8),
		"propagate": boolU32(opts.Propagate), "modern": boolU32(modern), "task_regs": boolU32(modern && haveTaskRegs())}
	consts["propagate_tcp"] = boolU32(opts.PropagateTCP)
	consts["sample_mode"], consts["sample_bound"] = uint32(opts.SampleMode), opts.SampleBound
	if !opts.PropagateTCP { // the TCP option's maps, unused: as small as they can be
		for _, name := range []string{"tcp_out", "tcp_in", "tcp_plans"} {
			spec.Maps[name].MaxEntries = 1
		}
	}
	for name, nr := range syscallNumbers {
		consts[name] = nr
	}
	for name, v := range consts {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("eBPF object has no variable %q", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
	}
	return nil
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// pidWords sizes the selected-pid bitmap: one bit per possible pid.
func pidWords() (uint32, error) {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 0, fmt.Errorf("reading the largest pid: %w", err)
	}
	max, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("parsing kernel.pid_max %q: %w", b, err)
	}
	return uint32(max/64 + 1), nil
}

func verifierDetail(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("%w\nverifier log (last lines):\n%s", err, strings.Join(tail(ve.Log, 20), "\n"))
	}
	return err
}

func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

func (t *Tracer) attach() error {
	if err := t.attachRawTracepoints(map[string]*ebpf.Program{
		"sys_enter": t.objs.OnSysEnter,
		"sys_exit":  t.objs.OnSysExit,
	}); err != nil {
		return err
	}
	return t.attachProcessPrograms()
}

// attachProcessPrograms attaches what follows processes, on either path:
// their exits, and the forks of selected ones (headers/forks.h).
func (t *Tracer) attachProcessPrograms() error {
	return t.attachRawTracepoints(map[string]*ebpf.Program{
		"sched_process_exit": t.objs.OnProcessExit,
		"sched_process_fork": t.objs.OnProcessFork,
		"sched_process_exec": t.objs.OnProcessExec,
	})
}

func (t *Tracer) attachRawTracepoints(progs map[string]*ebpf.Program) error {
	for name, prog := range progs {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: name, Program: prog})
		if err != nil {
			return fmt.Errorf("attaching to raw tracepoint %s: %w", name, err)
		}
		t.links = append(t.links, l)
	}
	return nil
}

// Events is the ring buffer the programs write events to.
func (t *Tracer) Events() *ebpf.Map { return t.objs.Events }

// Select makes the kernel report the traffic of process tgid.
func (t *Tracer) Select(tgid uint32) error {
	return t.setSelected(tgid, true)
}

// Deselect stops reporting process tgid.
func (t *Tracer) Deselect(tgid uint32) error {
	return t.setSelected(tgid, false)
}

// setSelected flips one bit of the pid bitmap. The kernel also sets bits
// (connect to a watched port); a bit it sets while this read-modify-write
// runs can be lost, but it reports the process too, and user space selects
// it again.
func (t *Tracer) setSelected(tgid uint32, on bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	word := tgid / 64
	var bits uint64
	if err := t.objs.Pids.Lookup(word, &bits); err != nil {
		return fmt.Errorf("pid %d is beyond kernel.pid_max: %w", tgid, err)
	}
	if on {
		bits |= 1 << (tgid % 64)
	} else {
		bits &^= 1 << (tgid % 64)
	}
	if err := t.objs.Pids.Update(word, bits, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("updating the selection of pid %d: %w", tgid, err)
	}
	return nil
}

// Selected lists the processes the kernel currently reports.
func (t *Tracer) Selected() ([]uint32, error) {
	var (
		word uint32
		bits uint64
		tgid []uint32
	)
	it := t.objs.Pids.Iterate()
	for it.Next(&word, &bits) {
		for b := uint32(0); bits != 0; b++ {
			if bits&1 != 0 {
				tgid = append(tgid, word*64+b)
			}
			bits >>= 1
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("listing selected pids: %w", err)
	}
	return tgid, nil
}

// WatchConnectPort makes a connect() to port select the calling process.
func (t *Tracer) WatchConnectPort(port uint16) error {
	if err := t.objs.ConnectPorts.Update(uint32(port), uint8(1), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("watching connect port %d: %w", port, err)
	}
	return nil
}

// TrackingMap is a kernel map that tracks syscalls or requests.
type TrackingMap struct {
	Name string
	m    *ebpf.Map
}

// TrackingMaps lists the hash maps whose size says whether something
// leaks, with propagation on: plans (writes from entry to exit),
// process_serving (requests being served per process), forwardable
// (served requests a proxy may forward; an LRU bounded by its capacity)
// and sock_states (connections of selected processes, from connect to
// close).
// What lives in a thread's task storage (syscall arguments from entry to
// exit; the request a thread serves) is freed with the thread: it cannot
// leak, and the kernel cannot list it. Before 5.12 the latter is the
// serving map, listed too.
func (t *Tracer) TrackingMaps() []TrackingMap {
	if t.prop == nil {
		return nil
	}
	maps := []TrackingMap{{"plans", t.objs.Plans}, {"process_serving", t.objs.ProcessServing},
		{"forwardable", t.objs.Forwardable}, {"sock_states", t.objs.SockStates}}
	if t.objs.ServingByTid.MaxEntries() > 1 {
		maps = append(maps, TrackingMap{"serving", t.objs.ServingByTid})
	}
	return maps
}

// Entries counts the map's entries.
func (m TrackingMap) Entries() (int, error) {
	var (
		key, val []byte
		n        int
	)
	it := m.m.Iterate()
	for it.Next(&key, &val) {
		n++
	}
	if err := it.Err(); err != nil {
		return n, fmt.Errorf("counting the entries of map %s: %w", m.Name, err)
	}
	return n, nil
}

// Capacity is how many entries the map can hold.
func (m TrackingMap) Capacity() int { return int(m.m.MaxEntries()) }

// PidCapacity is how many processes the pid bitmap can hold.
func (t *Tracer) PidCapacity() int { return int(t.objs.Pids.MaxEntries()) * 64 }

// Counters reads the loss counters, summed over CPUs.
func (t *Tracer) Counters() (Counters, error) {
	var c Counters
	for i, dst := range map[tracerCounter]*uint64{
		tracerCounterCOUNTER_LOST_DATA: &c.LostData, tracerCounterCOUNTER_LOST_CONTROL: &c.LostControl,
		tracerCounterCOUNTER_LOST_ARGS: &c.LostArgs, tracerCounterCOUNTER_LOST_REQUESTS: &c.LostRequests,
	} {
		var perCPU []uint64
		if err := t.objs.Counters.Lookup(uint32(i), &perCPU); err != nil {
			return c, fmt.Errorf("reading counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return c, nil
}

// ProgramIDs are the kernel ids of the loaded programs (for leak checks).
func (t *Tracer) ProgramIDs() []ebpf.ProgramID {
	ids := programIDs(t.objs.OnSysEnter, t.objs.OnSysExit, t.objs.OnProcessExit, t.objs.OnProcessFork, t.objs.OnProcessExec)
	if t.prop != nil {
		ids = append(ids, t.prop.programIDs()...)
	}
	if t.sock != nil {
		ids = append(ids, t.sock.programIDs()...)
	}
	return ids
}

func programIDs(progs ...*ebpf.Program) []ebpf.ProgramID {
	var ids []ebpf.ProgramID
	for _, p := range progs {
		if p == nil { // not loaded: the other path's
			continue
		}
		if info, err := p.Info(); err == nil {
			if id, ok := info.ID(); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// Close detaches every program and frees every map.
func (t *Tracer) Close() error {
	var errs []error
	if t.prop != nil {
		errs = append(errs, t.prop.Close())
		t.prop = nil
	}
	if t.sock != nil {
		errs = append(errs, t.sock.Close())
		t.sock = nil
	}
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}
