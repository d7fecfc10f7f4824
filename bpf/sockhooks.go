package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 sockhooks sockhooks.bpf.c -- -I/usr/include

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Hooks names the kernel hooks that see what selected processes read and
// write. Both sets send the same events.
type Hooks string

const (
	// HooksAuto uses the socket hooks where the kernel has them, else the
	// syscall tracepoints. The zero value.
	HooksAuto Hooks = ""
	// HooksSyscalls uses raw tracepoints on every syscall's entry and exit:
	// every kernel from 5.8, also those without kprobes and fentry. Every
	// syscall of every process pays a bit test.
	HooksSyscalls Hooks = "syscalls"
	// HooksSocket uses fentry/fexit on the kernel's inet send and receive
	// functions (5.15+, BTF trampolines): processes that move no bytes over
	// inet sockets pay nothing.
	HooksSocket Hooks = "socket"
)

// Hooks reports which hooks the tracer attached: HooksSyscalls or
// HooksSocket.
func (t *Tracer) Hooks() Hooks {
	if t.sock != nil {
		return HooksSocket
	}
	return HooksSyscalls
}

// syscallPrefix is what the syscall wrappers the socket hooks attach to
// are prefixed with, per architecture.
var syscallPrefix = map[string]string{"amd64": "__x64_", "arm64": "__arm64_"}

// SocketHooksSupported reports why the socket hooks cannot work on this
// kernel, or nil when they can. The answer is probed once, by loading a
// program of two helper calls at fentry of inet_sendmsg.
func SocketHooksSupported() error { return probeSocketHooks() }

var probeSocketHooks = sync.OnceValue(func() error {
	if _, ok := syscallPrefix[runtime.GOARCH]; !ok {
		return fmt.Errorf("no socket hooks for %s", runtime.GOARCH)
	}
	if !modernKernel() {
		return errors.New("the kernel gives tracing programs no task storage (5.12)")
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:       ebpf.Tracing,
		AttachType: ebpf.AttachTraceFEntry,
		AttachTo:   "inet_sendmsg",
		License:    "GPL",
		Instructions: asm.Instructions{
			asm.FnGetCurrentTaskBtf.Call(),
			asm.Mov.Reg(asm.R1, asm.R0),
			asm.FnTaskPtRegs.Call(), // 5.15
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if errors.Is(err, unix.EPERM) {
		// Not memlock, as the library's hint guesses: the tracer removed
		// that limit, and its own tracing programs load.
		return fmt.Errorf("loading a program at fentry of inet_sendmsg: the kernel refused it (%w); "+
			"this kernel build or its lockdown allows no fentry programs", unix.EPERM)
	}
	if err != nil {
		return fmt.Errorf("loading a program at fentry of inet_sendmsg: %w", err)
	}
	return prog.Close()
})

// loadSocketPath loads the tracer's maps and the socket hooks, unless the
// options ask for syscalls; it reports whether it did. With HooksAuto a
// failure is kept in t.HooksErr and the caller loads the syscall path.
func (t *Tracer) loadSocketPath(spec *ebpf.CollectionSpec, opts Options) (bool, error) {
	if opts.Hooks == HooksSyscalls || (opts.compat && opts.Hooks == HooksAuto) {
		return false, nil
	}
	err := probeSocketHooks()
	if err == nil {
		err = t.attachSocketPath(spec)
	}
	switch {
	case err == nil:
		return true, nil
	case opts.Hooks == HooksSocket:
		return false, fmt.Errorf("hooks: socket: %w", err)
	}
	t.HooksErr = err
	return false, nil
}

// attachSocketPath loads the tracer's maps and its process programs (exit,
// fork, exec; not its syscall programs), then the socket hooks against
// those maps, and attaches them. On error nothing is left loaded.
func (t *Tracer) attachSocketPath(spec *ebpf.CollectionSpec) (err error) {
	var core struct {
		tracerMaps
		OnProcessExit *ebpf.Program `ebpf:"on_process_exit"`
		OnProcessFork *ebpf.Program `ebpf:"on_process_fork"`
		OnProcessExec *ebpf.Program `ebpf:"on_process_exec"`
	}
	if err := spec.LoadAndAssign(&core, nil); err != nil {
		return fmt.Errorf("loading the tracer's maps: %w", verifierDetail(err))
	}
	t.objs = tracerObjects{tracerMaps: core.tracerMaps}
	t.objs.OnProcessExit, t.objs.OnProcessFork, t.objs.OnProcessExec = core.OnProcessExit, core.OnProcessFork, core.OnProcessExec
	defer func() {
		if err != nil {
			t.Close()
			*t = Tracer{}
		}
	}()
	if t.sock, err = loadSocketHooks(spec, &t.objs.tracerMaps); err != nil {
		return err
	}
	return t.attachProcessPrograms()
}

// socketHooks is the loaded and attached set of socket hooks
// (sockhooks.bpf.c).
type socketHooks struct {
	objs  sockhooksObjects
	links []link.Link
}

// loadSocketHooks loads the socket hooks with the tracer's constants
// (tracer, as configured) and maps, and attaches them.
func loadSocketHooks(tracer *ebpf.CollectionSpec, maps *tracerMaps) (*socketHooks, error) {
	spec, err := loadSockhooks()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded socket hooks: %w", err)
	}
	for name, v := range spec.Variables {
		from, ok := tracer.Variables[name]
		if !ok {
			return nil, fmt.Errorf("the tracer has no variable %q for the socket hooks", name)
		}
		if err := v.Set(from.Value); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	prefix := syscallPrefix[runtime.GOARCH]
	for _, p := range spec.Programs {
		if strings.HasPrefix(p.AttachTo, "sys_") {
			p.AttachTo = prefix + p.AttachTo
		}
	}
	spec.Maps["sock_calls_by_tid"].MaxEntries = 1 // task storage holds the calls (5.12+)
	replace := shareMaps(spec, maps, nil)
	s := &socketHooks{}
	if err := spec.LoadAndAssign(&s.objs, &ebpf.CollectionOptions{MapReplacements: replace}); err != nil {
		return nil, fmt.Errorf("loading the socket hooks: %w", verifierDetail(err))
	}
	if err := s.attach(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// shareMaps makes spec use the tracer's maps of the same names, except
// those own names: it returns them as MapReplacements.
func shareMaps(spec *ebpf.CollectionSpec, maps *tracerMaps, own func(name string) bool) map[string]*ebpf.Map {
	shared := mapsByName(maps)
	replace := map[string]*ebpf.Map{}
	for name, ms := range spec.Maps {
		m, ok := shared[name]
		if !ok || (own != nil && own(name)) {
			continue
		}
		// The tracer's maps were sized and typed at load: take them as they are.
		ms.Type, ms.MaxEntries, ms.Flags = m.Type(), m.MaxEntries(), m.Flags()
		replace[name] = m
	}
	return replace
}

// mapsByName lists the maps of a bpf2go maps struct by their names.
func mapsByName(maps any) map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	v := reflect.ValueOf(maps).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("ebpf")
		if m, ok := v.Field(i).Interface().(*ebpf.Map); ok && m != nil && name != "" {
			out[name] = m
		}
	}
	return out
}

func (s *socketHooks) programs() []*ebpf.Program {
	p := &s.objs.sockhooksPrograms
	return []*ebpf.Program{p.Send4Enter, p.Send4Exit, p.Recv4Enter, p.Recv4Exit,
		p.Send6Enter, p.Send6Exit, p.Recv6Enter, p.Recv6Exit,
		p.SendfileExit, p.CloseEnter, p.ConnectEnter, p.ConnectExit, p.AcceptExit}
}

func (s *socketHooks) attach() error {
	for _, p := range s.programs() {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			info, _ := p.Info()
			name := ""
			if info != nil {
				name = info.Name
			}
			return fmt.Errorf("attaching socket hook %s: %w", name, err)
		}
		s.links = append(s.links, l)
	}
	return nil
}

func (s *socketHooks) programIDs() []ebpf.ProgramID {
	return programIDs(s.programs()...)
}

// Close detaches the hooks and frees their own maps; the shared ones are
// the tracer's to close.
func (s *socketHooks) Close() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	s.links = nil
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}
