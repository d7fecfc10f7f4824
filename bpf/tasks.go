package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type task_counter -type task_proc -type go_http_binary -type go_serve_point tasks tasks.bpf.c -- -I/usr/include

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
)

// TaskRuntime is a runtime whose tasks the kernel reads (headers/tasks.h).
type TaskRuntime uint8

// The runtimes, as enum task_runtime numbers them.
const (
	TaskRuntimeGo      TaskRuntime = 1 // goroutines tell requests apart
	TaskRuntimeNode    TaskRuntime = 2 // async contexts do, in user space
	TaskRuntimeThreads TaskRuntime = 3 // a thread serving one request at a time does
)

// TaskProc is what the kernel is told of a selected process's runtime.
type TaskProc struct {
	Runtime TaskRuntime
	// GoidOffset is the offset of goid in Go's runtime.g; 0 when not
	// known (the kernel then reads no goroutine).
	GoidOffset uint32
	// NodeFields is the address of the Node.js main thread's
	// async_id_fields; 0 while not known.
	NodeFields uint64
}

// haveTaskRegs reports whether tracing programs may read the user
// registers of the current task (bpf_task_pt_regs, 5.15).
func haveTaskRegs() bool {
	return features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnTaskPtRegs) == nil
}

// TasksReadable reports whether the kernel reads the tasks of runtimes at
// syscalls (5.15): without it calls are linked by threads only.
func TasksReadable() bool { return modernKernel() && haveTaskRegs() }

// SetTaskProc tells the kernel process tgid's runtime.
func (t *Tracer) SetTaskProc(tgid uint32, p TaskProc) error {
	v := tasksTaskProc{NodeFields: p.NodeFields, GoidOffset: p.GoidOffset, Runtime: uint8(p.Runtime)}
	if err := t.objs.TaskProcs.Update(tgid, &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("describing the runtime of pid %d to the kernel: %w", tgid, err)
	}
	return nil
}

// ForgetTaskProc forgets process tgid's runtime (the kernel also does
// when it exits).
func (t *Tracer) ForgetTaskProc(tgid uint32) {
	_ = t.objs.TaskProcs.Delete(tgid)
}

// GoHandoff is what the net/http probes need of a Go binary: the file
// offsets of (*persistConn).roundTrip (and its link-time address) and of
// (*persistConn).writeLoop; and, to follow connections whose writer
// started before the probes, the offsets that lead from a persistConn to
// its descriptor (Conn 0: not known) and the *net.TCPConn itab's
// link-time address (0: not known).
type GoHandoff struct {
	RoundTrip, RoundTripAddr, WriteLoop uint64
	Itab                                uint64
	Conn, TCPFD, Sysfd                  uint32
}

// GoGRPC is what the gRPC probes need of a Go binary that uses grpc-go:
// the file offsets of the function that hands a stream's message to the
// transport and of the transport's reader, and the offset of the stream's
// id from the stream pointer the first gets.
type GoGRPC struct {
	Write, Reader uint64
	StreamID      uint32
}

// NodeProbes are the file offsets of the functions probed in a Node.js
// binary: llhttp_init and node::TCPWrap::New.
type NodeProbes struct {
	LLHTTPInit, TCPWrapNew uint64
}

// TaskCounters count what the task probes did, summed over CPUs.
type TaskCounters struct {
	// Hits of each probe, in any process that runs a probed file.
	RoundTrip, WriteLoop, GRPCWrite, GRPCReader, NodeParser, NodeSocket, NodeHooks uint64
	GRPCServe, H2Serve                                                             uint64
	// NoRoom counts hand-offs not kept: their map was full.
	NoRoom uint64
	// ServeUntold counts streams whose handler's connection the probes
	// could not follow to a socket (a conn of a type not named).
	ServeUntold uint64
}

// Tasks is the loaded set of task probes (tasks.bpf.c). They share the
// tracer's ring buffer, selection, loss counters and task maps; each
// probed file has its own links.
type Tasks struct {
	objs tasksObjects

	mu    sync.Mutex
	free  []uint32 // free indices of go_http_binaries
	next  uint32
	serve servePoints // indices of go_serve_points
}

// LoadTasks loads the task probes against the tracer's maps. They run only
// once a file is attached (AttachGo, AttachNode, FindNodeHooks).
func (t *Tracer) LoadTasks() (*Tasks, error) {
	spec, err := loadTasks()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded task probes: %w", err)
	}
	tm := &t.objs.tracerMaps
	spec.Maps["pids"].MaxEntries = tm.Pids.MaxEntries()
	spec.Maps["events"].MaxEntries = tm.Events.MaxEntries()
	modern := modernKernel()
	consts := map[string]any{"wakeup_bytes": uint64(tm.Events.MaxEntries() / 8), "modern": boolU32(modern),
		"task_regs": boolU32(modern && haveTaskRegs())}
	for name, v := range consts {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s of the task probes: %w", name, err)
		}
	}
	// Its own scratch event: a probe runs in the process's context, where
	// another program may run on the CPU between its steps.
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
		"events": tm.Events, "pids": tm.Pids, "counters": tm.Counters,
		"task_procs": tm.TaskProcs, "go_writers": tm.GoWriters, "go_callers": tm.GoCallers,
		"go_readers": tm.GoReaders, "go_fd_callers": tm.GoFdCallers,
	}}
	if !modern {
		// Task storage cannot be made here: unused arrays instead.
		for _, m := range spec.Maps {
			if m.Type == ebpf.TaskStorage {
				m.Type, m.Flags, m.MaxEntries = ebpf.Array, 0, 1
			}
		}
	}
	k := &Tasks{}
	if err := spec.LoadAndAssign(&k.objs, opts); err != nil {
		return nil, fmt.Errorf("loading the task probes: %w", verifierDetail(err))
	}
	return k, nil
}

// links closes a set of probes.
type links []link.Link

func (ls links) Close() error {
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// attachAt puts prog at each file offset of the file at path; pid > 0
// limits the probes to that process.
func attachAt(path string, pid int, probes map[*ebpf.Program]uint64) (io.Closer, error) {
	cookies := map[*ebpf.Program][2]uint64{}
	for prog, off := range probes {
		cookies[prog] = [2]uint64{off, 0}
	}
	return attachCookies(path, pid, cookies)
}

// attachCookies is attachAt with a cookie for each probe: program ->
// {file offset, cookie}.
func attachCookies(path string, pid int, probes map[*ebpf.Program][2]uint64) (io.Closer, error) {
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	var ls links
	for prog, at := range probes {
		l, err := ex.Uprobe("", prog, &link.UprobeOptions{Address: at[0], Cookie: at[1], PID: pid})
		if err != nil {
			ls.Close()
			return nil, fmt.Errorf("probing %s at %#x: %w", path, at[0], err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// AttachGo probes net/http's hand-off of requests to connection writers
// in the Go binary at path. Every process that runs it runs the probes;
// only selected processes' are kept.
func (k *Tasks) AttachGo(path string, h GoHandoff) (io.Closer, error) {
	index, err := k.takeIndex()
	if err != nil {
		return nil, err
	}
	v := tasksGoHttpBinary{Itab: h.Itab, Conn: h.Conn, TcpFd: h.TCPFD, Sysfd: h.Sysfd}
	if err := k.objs.GoHttpBinaries.Update(index, &v, ebpf.UpdateAny); err != nil {
		k.freeIndex(index)
		return nil, fmt.Errorf("describing %s to the net/http probes: %w", path, err)
	}
	c, err := attachCookies(path, 0, map[*ebpf.Program][2]uint64{
		k.objs.GoWriteLoop: {h.WriteLoop, 0}, k.objs.GoRoundTrip: {h.RoundTrip, h.RoundTripAddr<<16 | uint64(index)}})
	if err != nil {
		k.freeIndex(index)
		return nil, err
	}
	return closerFunc(func() error {
		err := c.Close()
		k.freeIndex(index)
		return err
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (k *Tasks) takeIndex() (uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if n := len(k.free); n > 0 {
		i := k.free[n-1]
		k.free = k.free[:n-1]
		return i, nil
	}
	if k.next >= k.objs.GoHttpBinaries.MaxEntries() {
		return 0, fmt.Errorf("%d Go binaries are probed already", k.next)
	}
	k.next++
	return k.next - 1, nil
}

func (k *Tasks) freeIndex(i uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.free = append(k.free, i)
}

// AttachGoGRPC probes the hand-over of gRPC messages, and the readers of
// gRPC transports, in the Go binary at path, which uses grpc-go.
func (k *Tasks) AttachGoGRPC(path string, g GoGRPC) (io.Closer, error) {
	return attachCookies(path, 0, map[*ebpf.Program][2]uint64{
		k.objs.GoGrpcReader: {g.Reader, 0}, k.objs.GoGrpcWrite: {g.Write, uint64(g.StreamID)}})
}

// AttachNode probes llhttp_init and TCPWrap::New in the Node.js binary at
// path.
func (k *Tasks) AttachNode(path string, p NodeProbes) (io.Closer, error) {
	return attachAt(path, 0, map[*ebpf.Program]uint64{k.objs.NodeParserInit: p.LLHTTPInit, k.objs.NodeSocket: p.TCPWrapNew})
}

// FindNodeHooks probes AsyncHooks::push_async_context, at file offset
// push, in process pid only, until NodeHooks finds what it saw; the
// caller closes it then.
func (k *Tasks) FindNodeHooks(path string, pid int, push uint64) (io.Closer, error) {
	return attachAt(path, pid, map[*ebpf.Program]uint64{k.objs.NodeHooks: push})
}

// NodeHooks returns the address of process pid's AsyncHooks, once the
// probe FindNodeHooks placed saw it, and forgets it.
func (k *Tasks) NodeHooks(pid int) (uint64, bool) {
	var addr uint64
	if err := k.objs.NodeHooksFound.LookupAndDelete(uint32(pid), &addr); err != nil {
		return 0, false
	}
	return addr, true
}

// Counters reads the task probes' counters, summed over CPUs.
func (k *Tasks) Counters() (TaskCounters, error) {
	var c TaskCounters
	for i, dst := range map[tasksTaskCounter]*uint64{
		tasksTaskCounterTASK_HITS_ROUND_TRIP: &c.RoundTrip, tasksTaskCounterTASK_HITS_WRITE_LOOP: &c.WriteLoop,
		tasksTaskCounterTASK_HITS_GRPC_WRITE: &c.GRPCWrite, tasksTaskCounterTASK_HITS_GRPC_READER: &c.GRPCReader,
		tasksTaskCounterTASK_HITS_NODE_PARSER: &c.NodeParser, tasksTaskCounterTASK_HITS_NODE_SOCKET: &c.NodeSocket,
		tasksTaskCounterTASK_HITS_NODE_HOOKS: &c.NodeHooks, tasksTaskCounterTASK_NO_ROOM: &c.NoRoom,
		tasksTaskCounterTASK_HITS_GRPC_SERVE: &c.GRPCServe, tasksTaskCounterTASK_HITS_H2SERVE: &c.H2Serve,
		tasksTaskCounterTASK_SERVE_UNTOLD: &c.ServeUntold,
	} {
		var perCPU []uint64
		if err := k.objs.TaskCounters.Lookup(uint32(i), &perCPU); err != nil {
			return c, fmt.Errorf("reading task counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return c, nil
}

// ProgramIDs are the kernel ids of the task probes (for leak checks).
func (k *Tasks) ProgramIDs() []ebpf.ProgramID {
	return programIDs(k.objs.GoWriteLoop, k.objs.GoRoundTrip, k.objs.GoGrpcWrite, k.objs.GoGrpcReader,
		k.objs.NodeParserInit, k.objs.NodeSocket, k.objs.NodeHooks, k.objs.GoGrpcServe, k.objs.GoH2Serve)
}

// Close frees the programs and maps; the attachments must be closed first.
func (k *Tasks) Close() error { return k.objs.Close() }
