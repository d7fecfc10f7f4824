package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type tls_counter -type ssl_fn -type go_fn tls tls.bpf.c -- -I/usr/include

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
)

// EventFlagTLS: the event carries the plaintext a TLS library moved
// (tls.bpf.c), on the socket its connection travels on.
const EventFlagTLS = uint8(tracerEventFlagEVENT_FLAG_TLS)

// SSLFunc names an OpenSSL function the TLS probes know, generated from
// enum ssl_fn (tls.bpf.c).
type SSLFunc uint8

// The OpenSSL functions probed. SSLRead and SSLWrite are the ones a
// library must have; the others are probed where they exist.
const (
	SSLRead      = SSLFunc(tlsSslFnSSL_FN_READ)
	SSLReadEx    = SSLFunc(tlsSslFnSSL_FN_READ_EX)
	SSLWrite     = SSLFunc(tlsSslFnSSL_FN_WRITE)
	SSLWriteEx   = SSLFunc(tlsSslFnSSL_FN_WRITE_EX)
	SSLHandshake = SSLFunc(tlsSslFnSSL_FN_HANDSHAKE)
	SSLFree      = SSLFunc(tlsSslFnSSL_FN_FREE)
)

// SSLSymbols are the functions' symbol names.
var SSLSymbols = map[SSLFunc]string{
	SSLRead: "SSL_read", SSLReadEx: "SSL_read_ex", SSLWrite: "SSL_write", SSLWriteEx: "SSL_write_ex",
	SSLHandshake: "SSL_do_handshake", SSLFree: "SSL_free",
}

// GoFunc is a crypto/tls function probed in a Go binary: where its entry
// is (an offset in the file, and its link-time address) and the file
// offsets of its RET instructions (probed for Read only).
type GoFunc struct {
	Entry     uint64
	EntryAddr uint64
	Returns   []uint64
}

// GoTarget is what the Go probes need of one binary.
type GoTarget struct {
	Read, Write GoFunc // (*crypto/tls.Conn).Read and .Write
	// Itab is the link-time address of the itab of *net.TCPConn as a
	// net.Conn: the probes report a tls.Conn only when its conn field
	// holds one. 0 when the binary does not say (no symbol table): the
	// probes then rely on the descriptor they find being a TCP socket.
	Itab uint64
	// Offsets of tls.Conn.conn, of the *netFD in net.TCPConn, and of the
	// descriptor (pfd.Sysfd) in net.netFD.
	Conn, TCPFD, Sysfd uint32
}

// TLSCounters count what the TLS probes did, summed over CPUs.
type TLSCounters struct {
	// Hits of the probes, by kind: each costs a trap into the kernel,
	// also in processes that are not watched but map a probed library.
	SSLEntry, SSLReturn, GoEntry, GoReturn uint64
	// Plaintext events handed to the ring buffer, by library (losses are
	// the tracer's LostData).
	SentOpenSSL, SentGo uint64
	// Untied counts OpenSSL calls that moved plaintext on an SSL object
	// whose socket was not known: not reported.
	Untied uint64
	// NotTCP counts Go calls on a tls.Conn over something else than a TCP
	// connection: not reported.
	NotTCP uint64
	// NoRoom counts calls not followed: no room for their arguments.
	NoRoom uint64
}

// TLS is the loaded set of TLS probe programs. They share the tracer's ring
// buffer, selection, loss counters and the maps that tie SSL objects to
// sockets; each probed binary or library has its own links.
type TLS struct {
	objs  tlsObjects
	multi bool // uprobe_multi links: one per program and file

	mu     sync.Mutex
	active *ebpf.Map // the tracer's tls_active
	nSSL   uint64    // libraries probed for SSL calls
	free   []uint32  // free indices of go_binaries
	next   uint32
}

// LoadTLS loads the TLS probe programs against the tracer's maps. They
// run only once a binary or library is attached (AttachOpenSSL, AttachGo).
func (t *Tracer) LoadTLS() (*TLS, error) {
	return t.loadTLS(features.HaveBPFLinkUprobeMulti() == nil)
}

// loadTLS loads the probes for uprobe_multi links, or for a perf event
// link per probe (kernels before 6.6).
func (t *Tracer) loadTLS(multi bool) (*TLS, error) {
	spec, err := loadTls()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded TLS object: %w", err)
	}
	tm := &t.objs.tracerMaps
	// The tracer's constants (propagation, sampling, the kernel's
	// features): the probes plan and serve by the same rules.
	for name, v := range spec.Variables {
		if strings.HasPrefix(name, "unused_") {
			continue // anchors of the generated enums
		}
		value, ok := t.vars[name]
		if !ok {
			return nil, fmt.Errorf("the tracer has no variable %q for the TLS object", name)
		}
		if err := v.Set(value); err != nil {
			return nil, fmt.Errorf("setting %s of the TLS object: %w", name, err)
		}
	}
	if multi {
		for _, p := range spec.Programs {
			p.AttachType = ebpf.AttachTraceUprobeMulti
		}
	}
	opts := &ebpf.CollectionOptions{MapReplacements: shareMaps(spec, tm, tlsOwnMap)}
	l := &TLS{multi: multi, active: tm.TlsActive}
	if err := spec.LoadAndAssign(&l.objs, opts); err != nil {
		return nil, fmt.Errorf("loading the TLS probes: %w", verifierDetail(err))
	}
	return l, nil
}

// tlsOwnMap tells the maps the TLS object keeps for itself: scratch space
// (the probes run in the process's context, where another program on the
// CPU may run between their steps), loss and HTTP/2 frame state (a
// plaintext stream is not its ciphertext stream).
func tlsOwnMap(name string) bool {
	return strings.HasPrefix(name, "scratch") || strings.HasPrefix(name, "lossy_") || strings.HasPrefix(name, "frame_")
}

// Multi reports whether probes are attached with uprobe_multi links.
func (l *TLS) Multi() bool { return l.multi }

// probeSet is what one attachment holds: its links, and what it reserved.
type probeSet struct {
	l     *TLS
	links []link.Link
	ssl   bool    // counted in tls_active
	index *uint32 // its go_binaries entry
}

func (p *probeSet) Close() error {
	var errs []error
	for _, k := range p.links {
		errs = append(errs, k.Close())
	}
	p.links = nil
	if p.ssl {
		errs = append(errs, p.l.countSSL(-1))
		p.ssl = false
	}
	if p.index != nil {
		p.l.freeIndex(*p.index)
		p.index = nil
	}
	return errors.Join(errs...)
}

// probe is one uprobe: a file offset and its cookie.
type probe struct {
	offset, cookie uint64
}

// attach puts prog on every probe of the file at path, as entry or
// return probes: one uprobe_multi link, or a link per probe.
func (l *TLS) attach(ex *link.Executable, prog *ebpf.Program, probes []probe, ret bool) ([]link.Link, error) {
	if l.multi {
		opts := &link.UprobeMultiOptions{}
		for _, p := range probes {
			opts.Addresses = append(opts.Addresses, p.offset)
			opts.Cookies = append(opts.Cookies, p.cookie)
		}
		attach := ex.UprobeMulti
		if ret {
			attach = ex.UretprobeMulti
		}
		k, err := attach(nil, prog, opts)
		if err != nil {
			return nil, err
		}
		return []link.Link{k}, nil
	}
	var links []link.Link
	for _, p := range probes {
		attach := ex.Uprobe
		if ret {
			attach = ex.Uretprobe
		}
		k, err := attach("", prog, &link.UprobeOptions{Address: p.offset, Cookie: p.cookie})
		if err != nil {
			for _, k := range links {
				k.Close()
			}
			return nil, err
		}
		links = append(links, k)
	}
	return links, nil
}

// AttachOpenSSL probes the OpenSSL (or BoringSSL) code in the file at path
// (a library, an executable that embeds it, or a /proc/PID/map_files link
// to either), whose functions start at the given file offsets; SSLRead and
// SSLWrite are required. Every process that maps the file runs the probes;
// only selected processes' calls are reported. Close detaches them.
func (l *TLS) AttachOpenSSL(path string, funcs map[SSLFunc]uint64) (io.Closer, error) {
	if _, ok := funcs[SSLRead]; !ok {
		return nil, errors.New("no SSL_read to probe")
	}
	if _, ok := funcs[SSLWrite]; !ok {
		return nil, errors.New("no SSL_write to probe")
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	var entries, returns []probe
	for fn, off := range funcs {
		p := probe{offset: off, cookie: uint64(fn)}
		entries = append(entries, p)
		if fn != SSLFree {
			returns = append(returns, p)
		}
	}
	set := &probeSet{l: l}
	if err := l.countSSL(1); err != nil {
		return nil, err
	}
	set.ssl = true
	for _, step := range []struct {
		prog  *ebpf.Program
		ps    []probe
		ret   bool
		label string
	}{{l.objs.SslEnter, entries, false, "entries"}, {l.objs.SslReturn, returns, true, "returns"}} {
		links, err := l.attach(ex, step.prog, step.ps, step.ret)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("probing the SSL functions' %s in %s: %w", step.label, path, err)
		}
		set.links = append(set.links, links...)
	}
	return set, nil
}

// AttachGo probes crypto/tls in the Go binary at path. Every process that
// runs it runs the probes; only selected processes' calls are reported.
// Close detaches them.
func (l *TLS) AttachGo(path string, g GoTarget) (io.Closer, error) {
	if len(g.Read.Returns) == 0 {
		return nil, errors.New("no RET instruction to probe in (*crypto/tls.Conn).Read")
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	index, err := l.takeIndex()
	if err != nil {
		return nil, err
	}
	set := &probeSet{l: l, index: &index}
	b := tlsGoBinary{Itab: g.Itab, Conn: g.Conn, TcpFd: g.TCPFD, Sysfd: g.Sysfd}
	if err := l.objs.GoBinaries.Update(index, &b, ebpf.UpdateAny); err != nil {
		set.Close()
		return nil, fmt.Errorf("describing %s to the Go probes: %w", path, err)
	}
	var entries, returns []probe
	for _, f := range []struct {
		fn GoFunc
		id tlsGoFn
	}{{g.Read, tlsGoFnGO_FN_READ}, {g.Write, tlsGoFnGO_FN_WRITE}} {
		entries = append(entries, probe{offset: f.fn.Entry, cookie: f.fn.EntryAddr<<24 | uint64(index)<<8 | uint64(f.id)})
		if f.id != tlsGoFnGO_FN_READ {
			continue
		}
		for _, r := range f.fn.Returns {
			returns = append(returns, probe{offset: r, cookie: uint64(f.id)})
		}
	}
	// Write is reported at its entry (tls.bpf.c): only Read's RET
	// instructions are probed. The RET probes first: a call whose entry
	// is seen before its RET is probed is merely forgotten, never
	// reported wrong.
	for _, step := range []struct {
		prog  *ebpf.Program
		ps    []probe
		label string
	}{{l.objs.GoTlsReturn, returns, "returns"}, {l.objs.GoTlsEnter, entries, "entries"}} {
		links, err := l.attach(ex, step.prog, step.ps, false)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("probing crypto/tls's %s in %s: %w", step.label, path, err)
		}
		set.links = append(set.links, links...)
	}
	return set, nil
}

// countSSL changes the number of libraries probed for SSL calls, which
// the tracer reads before it looks for a thread's SSL call.
func (l *TLS) countSSL(delta int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nSSL = uint64(int64(l.nSSL) + int64(delta))
	if err := l.active.Update(uint32(0), l.nSSL, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("counting the probed TLS libraries: %w", err)
	}
	return nil
}

func (l *TLS) takeIndex() (uint32, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		i := l.free[n-1]
		l.free = l.free[:n-1]
		return i, nil
	}
	if l.next >= l.objs.GoBinaries.MaxEntries() {
		return 0, fmt.Errorf("%d Go binaries are probed already", l.next)
	}
	l.next++
	return l.next - 1, nil
}

func (l *TLS) freeIndex(i uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.free = append(l.free, i)
}

// Counters reads the TLS probes' counters, summed over CPUs.
func (l *TLS) Counters() (TLSCounters, error) {
	var c TLSCounters
	for i, dst := range map[tlsTlsCounter]*uint64{
		tlsTlsCounterTLS_HITS_SSL_ENTRY: &c.SSLEntry, tlsTlsCounterTLS_HITS_SSL_RETURN: &c.SSLReturn,
		tlsTlsCounterTLS_HITS_GO_ENTRY: &c.GoEntry, tlsTlsCounterTLS_HITS_GO_RETURN: &c.GoReturn,
		tlsTlsCounterTLS_SENT_OPENSSL: &c.SentOpenSSL, tlsTlsCounterTLS_SENT_GO: &c.SentGo,
		tlsTlsCounterTLS_UNTIED: &c.Untied, tlsTlsCounterTLS_NOT_TCP: &c.NotTCP, tlsTlsCounterTLS_NO_ROOM: &c.NoRoom,
	} {
		var perCPU []uint64
		if err := l.objs.TlsCounters.Lookup(uint32(i), &perCPU); err != nil {
			return c, fmt.Errorf("reading TLS counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return c, nil
}

// ProgramIDs are the kernel ids of the TLS programs (for leak checks).
func (l *TLS) ProgramIDs() []ebpf.ProgramID {
	return programIDs(l.objs.SslEnter, l.objs.SslReturn, l.objs.GoTlsEnter, l.objs.GoTlsReturn)
}

// Close frees the programs and maps; the attachments must be closed first.
func (l *TLS) Close() error { return l.objs.Close() }
