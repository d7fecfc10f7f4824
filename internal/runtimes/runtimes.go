// Package runtimes reads which runtime a watched process runs on, and
// readies the kernel to tell its tasks apart, so that the calls a process
// makes while serving many requests at once go under the right request
// (internal/correlate):
//
//   - Go: the kernel reads the goroutine at each syscall from the user
//     registers (bpf/headers/tasks.h); it needs the offset of goid in
//     runtime.g (from DWARF, or the Go release). net/http's Transport
//     writes requests from another goroutine than the one that asked;
//     two probes on net/http (bpf/tasks.bpf.c) hand the asker over, once
//     per file (device and inode) however many processes run it.
//     grpc-go's and net/http's (or x/net's) HTTP/2 servers read a
//     stream's request on one goroutine and serve it on another: a probe
//     at the handler's entry names the goroutine, the stream and the
//     socket (golang_serve.go), the struct offsets it follows read from
//     DWARF or the releases known, its itabs from the symbol table or,
//     stripped, from .itablink.
//   - Node.js: the kernel reads the main thread's async ids at each
//     syscall, from async_id_fields, which a probe on
//     AsyncHooks::push_async_context, placed in that one process until
//     its first hit, leads to; a probe on llhttp_init (per file) gives
//     each connection served the context its requests run in.
//   - Anything else runs its requests on threads: the kernel and the
//     correlation trust a thread that serves one request at a time.
//
// A process whose runtime cannot be read (a stripped Go binary of an
// unknown release, a Node.js without its symbols) is still traced: its
// calls are linked only when that is sure, and the result says why.
//
// The work runs on a goroutine of its own, in the order it was asked
// for: reading a binary of 100 MB takes a while, and the callers (process
// discovery) must not wait for it.
package runtimes // import "github.com/otelcol-ebpf/ebpfreceiver/internal/runtimes"

import (
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// Kind is a runtime.
type Kind uint8

// The runtimes.
const (
	Threads Kind = iota // none whose tasks are read
	Go
	Node
)

func (k Kind) String() string {
	switch k {
	case Go:
		return "go"
	case Node:
		return "nodejs"
	}
	return "threads"
}

// Kernel is what the manager needs of the kernel: *Kernel in the
// receiver, a fake in tests.
type Kernel interface {
	SetTaskProc(tgid uint32, p bpf.TaskProc) error
	ForgetTaskProc(tgid uint32)
	AttachGo(path string, h bpf.GoHandoff) (io.Closer, error)
	AttachGoGRPC(path string, g bpf.GoGRPC) (io.Closer, error)
	AttachGoServe(path string, points []bpf.GoServePoint) (io.Closer, error)
	AttachNode(path string, p bpf.NodeProbes) (io.Closer, error)
	FindNodeHooks(path string, pid int, push uint64) (io.Closer, error)
	NodeHooks(pid int) (uint64, bool)
}

// Result says what was read of a process's runtime. A process gets one
// Result once its runtime is read, and, for Node.js, a second one when
// its async contexts were found (Tasks set).
type Result struct {
	Pid   int
	Start uint64 // the process's start time: a reused pid is another process
	Kind  Kind
	// Tasks: the kernel reads the process's tasks at its syscalls.
	Tasks bool
	// Handoff: the runtime's hand-offs between tasks are probed (Go's
	// net/http Transport).
	Handoff bool
	// Why is what is missing, when Tasks or Handoff is false; nil when
	// nothing is.
	Why error
}

// Options configure a Manager.
type Options struct {
	ProcRoot string
	Logger   *zap.Logger
	// OnResult is called on the manager's goroutine with each Result.
	OnResult func(Result)
	// Tasks says the kernel can read tasks at syscalls (bpf.TasksReadable).
	Tasks bool
	// FindFor bounds how long a Node.js process's async contexts are
	// looked for (its first callback shows them); 0 means a minute.
	FindFor time.Duration
}

// Manager reads the runtimes of watched processes and owns the probes
// put on their files.
type Manager struct {
	kernel Kernel
	opts   Options

	mu     sync.Mutex
	queue  []request
	wake   chan struct{}
	done   chan struct{}
	closed bool

	// The goroutine's own.
	files   map[fileID]*file
	procs   map[int]*proc
	finding map[int]*finding
}

type request struct {
	pid   int
	start uint64
	add   bool
	sync  chan struct{}
}

// fileID is a file by device and inode: the kernel places uprobes on an
// inode, whatever path leads to it.
type fileID struct {
	dev, inode uint64
}

// file is a probed executable (or library), and what it is.
type file struct {
	kind    Kind
	closers []io.Closer // its probes
	users   int
	goid    uint32 // Go: offset of goid in runtime.g; 0 unknown
	handoff bool   // Go: net/http's hand-off probed
	node    *nodeFile
	why     error
}

type proc struct {
	start uint64
	file  fileID
}

// finding is a Node.js process whose async contexts are looked for.
type finding struct {
	start  uint64
	probe  io.Closer
	until  time.Time
	result Result
}

// New returns a manager that works through kernel. Start runs it.
func New(kernel Kernel, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.FindFor == 0 {
		opts.FindFor = time.Minute
	}
	return &Manager{kernel: kernel, opts: opts, wake: make(chan struct{}, 1), done: make(chan struct{}),
		files: map[fileID]*file{}, procs: map[int]*proc{}, finding: map[int]*finding{}}
}

// Start runs the manager's goroutine; Close stops it.
func (m *Manager) Start() { go m.run() }

// Add asks for process pid (started at start, in clock ticks since boot)
// to be read.
func (m *Manager) Add(pid int, start uint64) { m.enqueue(request{pid: pid, start: start, add: true}) }

// Remove asks for process pid to be forgotten: the probes of the files no
// other watched process runs go.
func (m *Manager) Remove(pid int, start uint64) { m.enqueue(request{pid: pid, start: start}) }

// Sync waits until what was asked before it is done.
func (m *Manager) Sync() {
	ch := make(chan struct{})
	if m.enqueue(request{sync: ch}) {
		<-ch
	}
}

func (m *Manager) enqueue(r request) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.queue = append(m.queue, r)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true
}

// findEvery is how often the processes whose async contexts are looked
// for are checked.
const findEvery = 20 * time.Millisecond

func (m *Manager) run() {
	defer close(m.done)
	tick := time.NewTicker(findEvery)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-m.wake:
			if !ok {
				return
			}
			m.drain()
		case <-tick.C:
			m.checkFinding()
		}
	}
}

func (m *Manager) drain() {
	for {
		m.mu.Lock()
		if len(m.queue) == 0 || m.closed {
			m.mu.Unlock()
			return
		}
		r := m.queue[0]
		m.queue[0] = request{}
		m.queue = m.queue[1:]
		m.mu.Unlock()
		switch {
		case r.sync != nil:
			close(r.sync)
		case r.add:
			m.add(r.pid, r.start)
		default:
			if p := m.procs[r.pid]; p != nil && p.start == r.start {
				m.release(r.pid, p)
			}
		}
	}
}

// Close stops the goroutine and takes every probe off.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	pending := m.queue
	m.queue = nil
	m.mu.Unlock()
	for _, r := range pending {
		if r.sync != nil {
			close(r.sync)
		}
	}
	close(m.wake)
	<-m.done
	var errs []error
	for pid, f := range m.finding {
		errs = append(errs, f.probe.Close())
		delete(m.finding, pid)
	}
	for id, f := range m.files {
		errs = append(errs, f.close())
		delete(m.files, id)
	}
	clear(m.procs)
	return errors.Join(errs...)
}

// add reads process pid's runtime and readies the kernel for it.
func (m *Manager) add(pid int, start uint64) {
	if p := m.procs[pid]; p != nil {
		if p.start == start {
			return
		}
		m.release(pid, p) // the pid's earlier process
	}
	exe := filepath.Join(m.opts.ProcRoot, strconv.Itoa(pid), "exe")
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		return // gone already
	}
	id := fileID{dev: uint64(st.Dev), inode: st.Ino}
	f := m.files[id]
	if f == nil {
		f = m.examine(exe)
		m.files[id] = f
	}
	f.users++
	m.procs[pid] = &proc{start: start, file: id}
	res := Result{Pid: pid, Start: start, Kind: f.kind, Handoff: f.handoff, Why: f.why}
	tp := bpf.TaskProc{Runtime: bpf.TaskRuntimeThreads}
	switch f.kind {
	case Go:
		tp = bpf.TaskProc{Runtime: bpf.TaskRuntimeGo, GoidOffset: f.goid}
		res.Tasks = f.goid != 0 && m.opts.Tasks
	case Node:
		tp = bpf.TaskProc{Runtime: bpf.TaskRuntimeNode}
	}
	if f.kind != Threads && !m.opts.Tasks {
		res.Why = errors.Join(res.Why, errors.New("the kernel gives its programs no user registers (bpf_task_pt_regs, Linux 5.15)"))
	}
	if err := m.kernel.SetTaskProc(uint32(pid), tp); err != nil {
		res.Tasks, res.Why = false, errors.Join(res.Why, err)
	}
	if f.kind == Node && f.node != nil && m.opts.Tasks {
		m.findNode(pid, start, exe, f, res)
	}
	m.report(res)
}

// examine reads the runtime of the executable at path, and probes it.
func (m *Manager) examine(path string) *file {
	if f, ok := m.examineGo(path); ok {
		return f
	}
	if f, ok := m.examineNode(path); ok {
		return f
	}
	return &file{kind: Threads}
}

func (m *Manager) report(res Result) {
	fields := []zap.Field{zap.Int("process.pid", res.Pid), zap.String("runtime", res.Kind.String()),
		zap.Bool("tasks", res.Tasks), zap.Bool("handoff", res.Handoff)}
	if res.Why != nil {
		fields = append(fields, zap.NamedError("missing", res.Why))
	}
	m.opts.Logger.Debug("runtime read", fields...)
	if m.opts.OnResult != nil {
		m.opts.OnResult(res)
	}
}

// release forgets process pid: the files no other process runs lose
// their probes.
func (m *Manager) release(pid int, p *proc) {
	if f := m.finding[pid]; f != nil {
		f.probe.Close()
		delete(m.finding, pid)
	}
	m.kernel.ForgetTaskProc(uint32(pid))
	delete(m.procs, pid)
	f := m.files[p.file]
	if f == nil {
		return
	}
	if f.users--; f.users > 0 {
		return
	}
	if err := f.close(); err != nil {
		m.opts.Logger.Warn("taking task probes off failed", zap.Error(err))
	}
	delete(m.files, p.file)
}

func (f *file) close() error {
	var errs []error
	for _, c := range f.closers {
		errs = append(errs, c.Close())
	}
	f.closers = nil
	return errors.Join(errs...)
}
