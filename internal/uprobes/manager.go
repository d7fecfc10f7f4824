// Package uprobes puts the TLS probes (bpf.TLS) on the binaries and
// libraries of watched processes, and takes them off again.
//
// A process's executable and libraries are found in /proc/PID/maps and
// reached through /proc/PID/map_files, which leads to the very inode the
// process mapped: in a container, and after the file was replaced on
// disk. The kernel places uprobes on an inode, so each file (device and
// inode) is probed once, however many watched processes map it, and its
// probes are taken off when the last of them ends. Every process that maps
// a probed file runs its probes (the kernel cannot place them for some
// processes only and keep one probe per file); the probes report only
// watched processes, and a process that is not watched pays the trap.
//
// What is probed:
//   - OpenSSL 1.1 and 3.x (and BoringSSL) in a shared libssl, or embedded
//     in the executable when its symbols say so (Node.js exports them);
//   - Go's crypto/tls, in Go executables from go1.17 (amd64; arm64 from
//     go1.18), stripped ones included: their table of functions survives
//     stripping (see package gobinary).
//
// Anything else never fails the receiver: a process that uses a TLS
// library the probes cannot follow (GnuTLS, NSS, a Go release or layout
// not known here, a library without the SSL functions) is traced at the
// socket level only, which is logged once per file and counted by reason.
//
// The work runs on a goroutine of its own, in the order it was asked for:
// reading a binary of 100 MB takes a while, and the callers (process
// discovery, the event loop) must not wait for it.
package uprobes // import "github.com/otelcol-ebpf/ebpfreceiver/internal/uprobes"

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/gobinary"
)

// Kernel attaches probes: *bpf.TLS, or a fake in tests.
type Kernel interface {
	AttachOpenSSL(path string, funcs map[bpf.SSLFunc]uint64) (io.Closer, error)
	AttachGo(path string, target bpf.GoTarget) (io.Closer, error)
}

// The libraries probed, as Result.Probed names them.
const (
	LibOpenSSL = "openssl"
	LibGo      = "go"
)

// Reasons a process is traced at the socket level only.
const (
	// ReasonUnsupported: it uses a TLS library the probes do not follow
	// (GnuTLS, NSS, wolfSSL, mbed TLS, s2n, Botan).
	ReasonUnsupported = "unsupported_library"
	// ReasonSSLSymbols: a libssl (or an executable) with some SSL
	// functions but not SSL_read and SSL_write.
	ReasonSSLSymbols = "openssl_symbols_missing"
	// ReasonGoVersion: a Go release before the register ABI, or an
	// architecture without one known here.
	ReasonGoVersion = "go_version"
	// ReasonGoFunctions: a Go binary whose table of functions is gone.
	ReasonGoFunctions = "go_functions_missing"
	// ReasonGoCode: crypto/tls's machine code could not be decoded.
	ReasonGoCode = "go_code"
	// ReasonGoLayout: no DWARF, and a Go release whose layout of network
	// connections is not known here.
	ReasonGoLayout = "go_layout_unknown"
	// ReasonAttach: the kernel refused the probes.
	ReasonAttach = "attach_failed"
)

// socketOnly is why a file that holds TLS code cannot be probed.
type socketOnly struct {
	reason string
	err    error
}

func (e *socketOnly) Error() string { return e.err.Error() }
func (e *socketOnly) Unwrap() error { return e.err }

// Result says how a process's TLS is traced, after Add.
type Result struct {
	Pid int
	// Probed lists the probed files it maps, as "openssl /usr/lib/.../libssl.so.3".
	Probed []string
	// SocketOnly is why its TLS is traced at the socket level only, ""
	// when it is probed or uses no TLS library that can be seen.
	SocketOnly string
	// Err says more of SocketOnly.
	Err error
}

// Options configure a Manager.
type Options struct {
	// ProcRoot is where the host's /proc is.
	ProcRoot string
	Logger   *zap.Logger
	// OnResult, if set, is called on the manager's goroutine after each
	// Add.
	OnResult func(Result)
}

// Manager owns the probes of the watched processes' files.
type Manager struct {
	kernel Kernel
	opts   Options

	mu     sync.Mutex
	queue  []request
	wake   chan struct{}
	done   chan struct{}
	closed bool
	counts Counts
	probed []string // what Probed returns

	// The goroutine's own.
	files map[fileID]*file
	procs map[int]*proc
}

// Counts are the watched processes by how their TLS is traced.
type Counts struct {
	Probed     int            // with at least one probed file
	SocketOnly map[string]int // by reason
}

type request struct {
	pid   int
	start uint64 // the process's start time: a reused pid is another process
	add   bool
	sync  chan struct{} // a Sync marker
}

// file is a file some watched process maps that holds, or may hold, TLS
// code: probed, or known to be unprobeable, or neither.
type file struct {
	closers []io.Closer
	probed  []string // "openssl /path"
	reason  string   // socket-only reason, "" when probed or without TLS
	err     error
	users   int
}

type proc struct {
	start uint64
	files []fileID
	held  map[fileID]bool
	state string // "probed", a socket-only reason, or ""
}

// New returns a manager that attaches with kernel. Start runs it.
func New(kernel Kernel, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	return &Manager{kernel: kernel, opts: opts, wake: make(chan struct{}, 1), done: make(chan struct{}),
		files: map[fileID]*file{}, procs: map[int]*proc{}, counts: Counts{SocketOnly: map[string]int{}}}
}

// Start runs the manager's goroutine; Close stops it.
func (m *Manager) Start() { go m.run() }

// Add asks for process pid (started at start, in clock ticks since boot)
// to be probed: its files now, and those it mapped since, when asked again.
func (m *Manager) Add(pid int, start uint64) { m.enqueue(request{pid: pid, start: start, add: true}) }

// Remove asks for process pid to be forgotten: the probes of the files no
// other watched process maps go.
func (m *Manager) Remove(pid int, start uint64) { m.enqueue(request{pid: pid, start: start}) }

// Sync waits until what was asked before it is done.
func (m *Manager) Sync() {
	ch := make(chan struct{})
	if m.enqueue(request{sync: ch}) {
		<-ch
	}
}

// Counts returns the watched processes by how their TLS is traced.
func (m *Manager) Counts() Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := Counts{Probed: m.counts.Probed, SocketOnly: make(map[string]int, len(m.counts.SocketOnly))}
	for r, n := range m.counts.SocketOnly {
		c.SocketOnly[r] = n
	}
	return c
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

func (m *Manager) run() {
	defer close(m.done)
	for range m.wake {
		for {
			m.mu.Lock()
			if len(m.queue) == 0 || m.closed {
				closed := m.closed
				m.mu.Unlock()
				if closed {
					return
				}
				break
			}
			r := m.queue[0]
			m.queue[0] = request{}
			m.queue = m.queue[1:]
			m.mu.Unlock()
			m.handle(r)
			if r.sync == nil {
				m.snapshot()
			}
		}
	}
}

func (m *Manager) handle(r request) {
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
	for id, f := range m.files {
		errs = append(errs, f.close())
		delete(m.files, id)
	}
	clear(m.procs)
	return errors.Join(errs...)
}

func (f *file) close() error {
	var errs []error
	for _, c := range f.closers {
		errs = append(errs, c.Close())
	}
	f.closers = nil
	return errors.Join(errs...)
}

// add probes the files process pid maps that it does not hold yet.
func (m *Manager) add(pid int, start uint64) {
	p := m.procs[pid]
	if p != nil && p.start != start {
		m.release(pid, p) // the pid's earlier process
		p = nil
	}
	maps, err := mappedFiles(m.opts.ProcRoot, pid)
	if err != nil {
		if p == nil {
			return // gone already
		}
		maps = nil
	}
	if p == nil {
		p = &proc{start: start, held: map[fileID]bool{}}
		m.procs[pid] = p
	}
	exe := m.executable(pid)
	for _, mp := range maps {
		if p.held[mp.id] {
			continue
		}
		isExe := mp.id == exe
		if !isExe && !maybeOpenSSL(mp.path) && unsupportedTLS(mp.path) == "" {
			continue
		}
		f := m.files[mp.id]
		if f == nil {
			f = m.examine(pid, mp, isExe)
			m.files[mp.id] = f
		}
		f.users++
		p.held[mp.id] = true
		p.files = append(p.files, mp.id)
	}
	m.settle(pid, p)
}

// executable is the file id of process pid's executable.
func (m *Manager) executable(pid int) fileID {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(m.opts.ProcRoot, strconv.Itoa(pid), "exe"), &st); err != nil {
		return fileID{}
	}
	dev := uint64(st.Dev)
	return fileID{dev: fmt.Sprintf("%02x:%02x", unix.Major(dev), unix.Minor(dev)), inode: st.Ino}
}

// examine finds the TLS code of one file and probes it.
func (m *Manager) examine(pid int, mp mapping, isExe bool) *file {
	f := &file{}
	if lib := unsupportedTLS(mp.path); lib != "" {
		f.reason, f.err = ReasonUnsupported, fmt.Errorf("%s is %s, whose TLS the probes do not follow (OpenSSL, BoringSSL and Go's crypto/tls)", mp.path, lib)
		m.logSocketOnly(pid, mp.path, f)
		return f
	}
	path := filePath(m.opts.ProcRoot, pid, mp)
	m.examineOpenSSL(f, path, mp)
	if isExe {
		m.examineGo(f, path, mp)
	}
	if len(f.probed) > 0 {
		f.reason, f.err = "", nil
	} else if f.reason != "" {
		m.logSocketOnly(pid, mp.path, f)
	}
	return f
}

func (m *Manager) examineOpenSSL(f *file, path string, mp mapping) {
	funcs, err := opensslFuncs(path)
	switch {
	case errors.Is(err, errNoSSL):
		return
	case err != nil:
		f.reason, f.err = ReasonSSLSymbols, err
		return
	}
	c, err := m.kernel.AttachOpenSSL(path, funcs)
	if err != nil {
		f.reason, f.err = ReasonAttach, fmt.Errorf("%s: %w", mp.path, err)
		return
	}
	f.closers = append(f.closers, c)
	f.probed = append(f.probed, LibOpenSSL+" "+mp.path)
	m.opts.Logger.Info("TLS probes attached", zap.String("library", LibOpenSSL), zap.String("path", mp.path),
		zap.Int("functions", len(funcs)))
}

func (m *Manager) examineGo(f *file, path string, mp mapping) {
	b, err := gobinary.Open(path)
	switch {
	case errors.Is(err, gobinary.ErrNotGo):
		return
	case err != nil:
		f.reason, f.err = ReasonGoFunctions, err
		return
	}
	defer b.Close()
	target, err := goTarget(b)
	var so *socketOnly
	switch {
	case errors.Is(err, errNoGoTLS):
		return
	case errors.As(err, &so):
		f.reason, f.err = so.reason, so.err
		return
	case err != nil:
		f.reason, f.err = ReasonGoCode, err
		return
	}
	c, err := m.kernel.AttachGo(path, target)
	if err != nil {
		f.reason, f.err = ReasonAttach, fmt.Errorf("%s: %w", mp.path, err)
		return
	}
	f.closers = append(f.closers, c)
	f.probed = append(f.probed, LibGo+" "+mp.path)
	m.opts.Logger.Info("TLS probes attached", zap.String("library", LibGo), zap.String("path", mp.path),
		zap.String("go.version", b.GoVersion), zap.Bool("stripped", b.Stripped()), zap.Bool("itab", target.Itab != 0),
		zap.Int("returns", len(target.Read.Returns)+len(target.Write.Returns)))
}

// logSocketOnly says once per file why its processes are traced at the
// socket level only.
func (m *Manager) logSocketOnly(pid int, path string, f *file) {
	m.opts.Logger.Warn("TLS traffic of processes using this file is traced at the socket level only "+
		"(receiver_ebpf_tls_processes counts them by reason; logged once per file)",
		zap.Int("process.pid", pid), zap.String("path", path), zap.String("reason", f.reason), zap.Error(f.err))
}

// settle works out how process p's TLS is traced now, counts it, and
// reports it.
func (m *Manager) settle(pid int, p *proc) {
	res := Result{Pid: pid}
	for _, id := range p.files {
		f := m.files[id]
		res.Probed = append(res.Probed, f.probed...)
		if res.SocketOnly == "" && f.reason != "" {
			res.SocketOnly, res.Err = f.reason, f.err
		}
	}
	state := res.SocketOnly
	if len(res.Probed) > 0 {
		state, res.SocketOnly, res.Err = "probed", "", nil
	}
	sort.Strings(res.Probed)
	if state != p.state {
		m.count(p.state, -1)
		m.count(state, 1)
		p.state = state
		if state == "probed" {
			m.opts.Logger.Info("tracing TLS plaintext", zap.Int("process.pid", pid), zap.String("probes", strings.Join(res.Probed, ", ")))
		}
	}
	if m.opts.OnResult != nil {
		m.opts.OnResult(res)
	}
}

func (m *Manager) count(state string, delta int) {
	if state == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if state == "probed" {
		m.counts.Probed += delta
		return
	}
	m.counts.SocketOnly[state] += delta
	if m.counts.SocketOnly[state] == 0 {
		delete(m.counts.SocketOnly, state)
	}
}

// release forgets process pid: the files no other process holds lose
// their probes.
func (m *Manager) release(pid int, p *proc) {
	for _, id := range p.files {
		f := m.files[id]
		if f == nil {
			continue
		}
		if f.users--; f.users > 0 {
			continue
		}
		if err := f.close(); err != nil {
			m.opts.Logger.Warn("taking TLS probes off failed", zap.Strings("probes", f.probed), zap.Error(err))
		}
		delete(m.files, id)
	}
	m.count(p.state, -1)
	delete(m.procs, pid)
}

// Probed lists the files probed now, as Result.Probed names them, once
// what was asked before is done.
func (m *Manager) Probed() []string {
	m.Sync()
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.probed...)
}

// snapshot keeps the list Probed returns.
func (m *Manager) snapshot() {
	var out []string
	for _, f := range m.files {
		out = append(out, f.probed...)
	}
	sort.Strings(out)
	m.mu.Lock()
	m.probed = out
	m.mu.Unlock()
}
