package runtimes

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/gobinary"
)

// A Go HTTP/2 server reads a stream's request on its connection's reader
// goroutine and serves it on another one: the calls the handler makes are
// on that goroutine. A probe at the handler's entry (bpf/tasks.bpf.c,
// go_grpc_serve and go_h2_serve) names the goroutine, the stream and the
// connection's socket, following struct fields whose offsets come from
// DWARF, else from the releases below (read in their sources); a release
// not listed, without DWARF, is not probed: a wrong offset would name a
// wrong stream.

// The handler entries probed.
const (
	grpcHandleStream = "google.golang.org/grpc.(*Server).handleStream"
	httpRunHandler   = "net/http.(*http2serverConn).runHandler"
	xnetRunHandler   = "golang.org/x/net/http2.(*serverConn).runHandler"
)

// The modules whose layouts the tables know.
const (
	grpcModule = "google.golang.org/grpc"
	xnetModule = "golang.org/x/net"
)

// serveEntry is one handler entry: its function, and the struct fields
// that lead from its arguments to the stream's id and the server's
// net.Conn.
type serveEntry struct {
	fn   string
	name string // as the log says what is probed
	kind bpf.GoServeKind
	// conn is the server connection's net.Conn field; id the fields
	// summed from handleStream's stream to its id (grpc-go), or rws,
	// stream and id (net/http, x/net).
	conn gobinary.Field
	id   []gobinary.Field
	// module is the module whose release the table is keyed by, "" for
	// the standard library (the Go release); known says the offsets of a
	// release: conn, then id's.
	module string
	known  func(minor int) ([]uint32, bool)
	// transport is the itab handleStream's transport must have (grpc-go).
	transport *itabRef
}

var serveEntries = []serveEntry{
	{
		fn: grpcHandleStream, name: "grpc-go server", kind: bpf.GoServeGRPC,
		conn: gobinary.Field{Struct: grpcTransport + "http2Server", Name: "conn"},
		id: []gobinary.Field{{Struct: grpcTransport + "ServerStream", Name: "Stream"},
			{Struct: grpcTransport + "Stream", Name: "id"}},
		// 1.83.2 and 1.85.0: http2Server's conn follows an int64 and a
		// channel; ServerStream embeds Stream first, whose id is at 108.
		module: grpcModule, known: minorsFrom(83, 85, []uint32{16, 0, 108}),
		transport: &itabRef{symbols: []string{"go:itab.*" + grpcTransport + "http2Server," + grpcTransport + "ServerTransport"},
			recv: grpcTransport + "(*http2Server)", methods: []string{"Close", "Drain", "HandleStreams", "Peer"},
			module: grpcModule, known: minorsFrom(83, 85, nil)},
	},
	{
		fn: httpRunHandler, name: "net/http HTTP/2 server", kind: bpf.GoServeH2,
		conn: gobinary.Field{Struct: "net/http.http2serverConn", Name: "conn"},
		id: []gobinary.Field{{Struct: "net/http.http2responseWriter", Name: "rws"},
			{Struct: "net/http.http2responseWriterState", Name: "stream"}, {Struct: "net/http.http2stream", Name: "id"}},
		// go1.26: serverConn's conn follows two pointers; rws and stream
		// come first; a stream's id follows its serverConn.
		known: minorsFrom(26, 26, []uint32{16, 0, 0, 8}),
	},
	{
		fn: xnetRunHandler, name: "x/net HTTP/2 server", kind: bpf.GoServeH2,
		conn: gobinary.Field{Struct: "golang.org/x/net/http2.serverConn", Name: "conn"},
		id: []gobinary.Field{{Struct: "golang.org/x/net/http2.responseWriter", Name: "rws"},
			{Struct: "golang.org/x/net/http2.responseWriterState", Name: "stream"},
			{Struct: "golang.org/x/net/http2.stream", Name: "id"}},
		// v0.57.0 to v0.62.0, laid out as net/http's copy.
		module: xnetModule, known: minorsFrom(57, 62, []uint32{16, 0, 0, 8}),
	},
}

// minorsFrom knows offs for the minor releases from to to.
func minorsFrom(from, to int, offs []uint32) func(int) ([]uint32, bool) {
	return func(minor int) ([]uint32, bool) { return offs, from <= minor && minor <= to }
}

// itabRef is an itab: its symbols (go1.20 on, and before), and, for a
// binary without a symbol table, the concrete type's methods' prefix and
// the interface's methods in their order (gobinary.Binary.ItabOf), for the
// releases of module known says (nil: any).
type itabRef struct {
	symbols []string
	recv    string
	methods []string
	module  string
	known   func(minor int) ([]uint32, bool)
}

// netConnMethods are net.Conn's, in an itab's order.
var netConnMethods = []string{"Close", "LocalAddr", "Read", "RemoteAddr", "SetDeadline", "SetReadDeadline",
	"SetWriteDeadline", "Write"}

// connItab is the itab of the concrete type T of package pkg as a
// net.Conn.
func connItab(pkg, T string) *itabRef {
	return &itabRef{symbols: []string{"go:itab.*" + pkg + "." + T + ",net.Conn", "go.itab.*" + pkg + "." + T + ",net.Conn"},
		recv: pkg + ".(*" + T + ")", methods: netConnMethods}
}

// find is the link-time address of the itab in b.
func (r *itabRef) find(b *gobinary.Binary) (uint64, error) {
	var err error
	for _, name := range r.symbols {
		var addr uint64
		if addr, err = b.Symbol(name); err == nil {
			return addr, nil
		}
	}
	if !errors.Is(err, gobinary.ErrNoSymbols) {
		return 0, err
	}
	if r.known != nil {
		version, minor, ok := releaseOf(b, r.module)
		if _, known := r.known(minor); !ok || !known {
			return 0, fmt.Errorf("%w, and the methods of %s's interface in %s are not known here", err, r.recv, version)
		}
	}
	return b.ItabOf(r.recv, r.methods)
}

// serveWrap is a net.Conn that wraps the one the server reads: its itab
// and its field holding the wrapped net.Conn (first in each, which is
// what a binary without DWARF is taken to have).
type serveWrap struct {
	itab  *itabRef
	field gobinary.Field
}

var serveWraps = []serveWrap{
	{connItab("crypto/tls", "Conn"), gobinary.Field{Struct: "crypto/tls.Conn", Name: "conn"}},
	{connItab("google.golang.org/grpc/internal/credentials", "syscallConn"),
		gobinary.Field{Struct: "google.golang.org/grpc/internal/credentials.syscallConn", Name: "Conn"}},
	{connItab("golang.org/x/net/http2/h2c", "bufConn"),
		gobinary.Field{Struct: "golang.org/x/net/http2/h2c.bufConn", Name: "Conn"}},
}

// tcpItab is *net.TCPConn's itab as a net.Conn.
var tcpItab = connItab("net", "TCPConn")

// goServe finds the handler entries of b and what their probes need.
// Entries that cannot be probed surely are left out, and said in the
// error; errNotUsed when b serves no HTTP/2.
func goServe(b *gobinary.Binary) ([]bpf.GoServePoint, error) {
	points, _, err := goServeNamed(b)
	return points, err
}

// goServeNamed is goServe, with the names of the servers probed.
func goServeNamed(b *gobinary.Binary) ([]bpf.GoServePoint, []string, error) {
	names := make([]string, len(serveEntries))
	for i, e := range serveEntries {
		names[i] = e.fn
	}
	funcs, err := b.Funcs(names...)
	if err != nil {
		return nil, nil, err
	}
	var points []bpf.GoServePoint
	var errs []error
	names = names[:0]
	for _, e := range serveEntries {
		fn, ok := funcs[e.fn]
		if !ok {
			continue
		}
		p, err := servePoint(b, e, fn)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s in %s: %w", e.fn, b.Path, err))
			continue
		}
		points, names = append(points, p), append(names, e.name)
	}
	if len(points) == 0 && len(errs) == 0 {
		return nil, nil, errNotUsed
	}
	return points, names, errors.Join(errs...)
}

// servePoint is what the probe at entry e (function fn) of b needs.
func servePoint(b *gobinary.Binary, e serveEntry, fn gobinary.Func) (bpf.GoServePoint, error) {
	p := bpf.GoServePoint{Kind: e.kind, Addr: fn.Entry}
	var err error
	if p.Offset, err = b.FileOffset(fn.Entry); err != nil {
		return p, err
	}
	// The itabs: without them, no conn can be told.
	if p.TCPItab, err = tcpItab.find(b); err != nil {
		return p, fmt.Errorf("the *net.TCPConn itab: %w", err)
	}
	if e.transport != nil {
		if p.TransportItab, err = e.transport.find(b); err != nil {
			return p, fmt.Errorf("grpc-go's transport itab: %w", err)
		}
	}
	if err := serveOffsets(b, e, &p); err != nil {
		return p, err
	}
	return p, serveWrapsOf(b, &p)
}

// serveOffsets fills the offsets of p from DWARF, else from the releases
// the tables know.
func serveOffsets(b *gobinary.Binary, e serveEntry, p *bpf.GoServePoint) error {
	fields := append(append([]gobinary.Field{e.conn}, e.id...), goConnFields[1:]...)
	offs, err := b.FieldOffsets(fields...)
	if err == nil {
		for _, o := range offs {
			if o < 0 || o > 1<<16 {
				return fmt.Errorf("DWARF gives a field offset of %d", o)
			}
		}
		n := 1 + len(e.id)
		setServeOffsets(e, p, u32s(offs[:n]))
		p.TCPFD, p.Sysfd = uint32(offs[n]+offs[n+1]), uint32(offs[n+2]+offs[n+3])
		return nil
	}
	if !errors.Is(err, gobinary.ErrNoDWARF) {
		return err
	}
	if !b.Version.AtLeast(1, 21) || b.Version.AtLeast(1, 27) {
		return fmt.Errorf("%w, and where %s keeps a connection's descriptor is not known here (known: go1.21 to go1.26)", err, b.GoVersion)
	}
	p.TCPFD, p.Sysfd = 0, 16
	version, minor, ok := releaseOf(b, e.module)
	if ok {
		if offs, known := e.known(minor); known {
			setServeOffsets(e, p, offs)
			return nil
		}
	}
	if version == "" {
		version = "its release"
	}
	return fmt.Errorf("%w, and the layout of %s is not known here", err, version)
}

func setServeOffsets(e serveEntry, p *bpf.GoServePoint, offs []uint32) {
	p.Conn = offs[0]
	switch e.kind {
	case bpf.GoServeGRPC:
		p.ID = offs[1] + offs[2]
	case bpf.GoServeH2:
		p.RWS, p.Stream, p.ID = offs[1], offs[2], offs[3]
	}
}

func u32s(offs []int64) []uint32 {
	out := make([]uint32, len(offs))
	for i, o := range offs {
		out[i] = uint32(o)
	}
	return out
}

// serveWrapsOf names the wrapper conns b has, and where they keep the
// conn they wrap: DWARF, else the first field, as in every release.
func serveWrapsOf(b *gobinary.Binary, p *bpf.GoServePoint) error {
	for _, w := range serveWraps {
		itab, err := w.itab.find(b)
		if err != nil {
			continue // not in the program
		}
		off := int64(0)
		if offs, err := b.FieldOffsets(w.field); err == nil {
			off = offs[0]
		} else if !errors.Is(err, gobinary.ErrNoDWARF) {
			return err
		}
		p.Wraps = append(p.Wraps, bpf.GoWrap{Itab: itab, Conn: uint32(off)})
	}
	if len(p.Wraps) > bpf.GoServeWraps {
		p.Wraps = p.Wraps[:bpf.GoServeWraps]
	}
	return nil
}

// releaseOf is the release the table of module is keyed by: the Go
// release's minor for the standard library (""), else the module's minor
// version, from the build information or the paths of its source files.
// ok is false for a module replaced (a fork) or not found.
func releaseOf(b *gobinary.Binary, module string) (version string, minor int, ok bool) {
	if module == "" {
		return b.GoVersion, b.Version.Minor, b.Version.Major == 1
	}
	if b.Build != nil {
		for _, d := range b.Build.Deps {
			if d.Path == module {
				if d.Replace != nil {
					return module + " (replaced)", 0, false
				}
				version = d.Version
			}
		}
	}
	if version == "" {
		v, found, err := b.ModuleVersion(module)
		if err != nil || !found {
			return "", 0, false
		}
		version = v
	}
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return module + "@" + version, 0, false
	}
	n, err := strconv.Atoi(parts[1])
	return module + "@" + version, n, err == nil
}

// probeServe places the handler probes of the Go binary b (at path) on
// file f, and adds what it probed to probed. What cannot be probed is
// logged, once per file: calls its handlers make are then left without
// a parent where another rule does not tell.
func (m *Manager) probeServe(b *gobinary.Binary, path string, f *file, probed []string) []string {
	points, names, err := goServeNamed(b)
	if errors.Is(err, errNotUsed) {
		return probed
	}
	if err != nil {
		m.opts.Logger.Warn("some HTTP/2 handlers of a Go program cannot be probed; the calls they make are linked only where another rule tells",
			zap.String("path", path), zap.Error(err))
	}
	if len(points) == 0 {
		return probed
	}
	c, err := m.kernel.AttachGoServe(path, points)
	if err != nil {
		m.opts.Logger.Warn("probing the HTTP/2 handlers of a Go program failed", zap.String("path", path), zap.Error(err))
		return probed
	}
	f.closers = append(f.closers, c)
	return append(probed, names...)
}
