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

// The functions of net/http probed for the hand-off of a request from the
// goroutine that asks to the one that writes it.
const (
	goRoundTrip = "net/http.(*persistConn).roundTrip"
	goWriteLoop = "net/http.(*persistConn).writeLoop"
)

// goSyscallsInGo is the first release whose syscall wrappers are Go
// (ABIInternal) code, where g is in its register at the syscall.
var goSyscallsInGo = gobinary.Version{Major: 1, Minor: 19}

// examineGo reads the Go executable at path; ok is false when it is not
// Go. The file's probes are placed here.
func (m *Manager) examineGo(path string) (*file, bool) {
	b, err := gobinary.Open(path)
	switch {
	case errors.Is(err, gobinary.ErrNotGo):
		return nil, false
	case err != nil:
		return &file{kind: Go, why: err}, true
	}
	defer b.Close()
	f := &file{kind: Go}
	if _, err := b.RegisterABI(); err != nil {
		f.why = err
		return f, true
	}
	if !b.Version.AtLeast(goSyscallsInGo.Major, goSyscallsInGo.Minor) {
		f.why = fmt.Errorf("%s: built by %s, whose syscall wrappers are assembly: the goroutine is not known at a syscall (go1.19 on)",
			path, b.GoVersion)
		return f, true
	}
	if f.goid, err = b.GoidOffset(); err != nil {
		f.why = err
		return f, true
	}
	if !m.opts.Tasks {
		return f, true // nothing would read what the probes give
	}
	var probed []string
	if h, err := goHandoff(b); err == nil {
		c, err := m.kernel.AttachGo(path, h)
		if err != nil {
			f.why = errors.Join(f.why, fmt.Errorf("probing net/http in %s: %w", path, err))
		} else {
			f.closers, probed = append(f.closers, c), append(probed, "net/http")
		}
	} else if !errors.Is(err, errNotUsed) {
		f.why = errors.Join(f.why, err)
	}
	if g, err := grpcTarget(b); err == nil {
		c, err := m.kernel.AttachGoGRPC(path, g)
		if err != nil {
			f.why = errors.Join(f.why, fmt.Errorf("probing grpc-go in %s: %w", path, err))
		} else {
			f.closers, probed = append(f.closers, c), append(probed, "grpc-go")
		}
	} else if !errors.Is(err, errNotUsed) {
		f.why = errors.Join(f.why, err)
	}
	f.handoff = len(probed) > 0 && f.why == nil
	probed = m.probeServe(b, path, f, probed)
	if len(probed) > 0 {
		m.opts.Logger.Info("task probes attached", zap.String("runtime", "go"), zap.String("path", path),
			zap.String("go.version", b.GoVersion), zap.Uint32("goid_offset", f.goid), zap.Strings("hand-offs", probed))
	}
	return f, true
}

// errNotUsed: a Go program that does not use what a hand-off probe is for
// (net/http's client, grpc-go's).
var errNotUsed = errors.New("not used by the Go program")

func goHandoff(b *gobinary.Binary) (bpf.GoHandoff, error) {
	funcs, err := b.Funcs(goRoundTrip, goWriteLoop)
	if err != nil {
		return bpf.GoHandoff{}, err
	}
	rt, ok1 := funcs[goRoundTrip]
	wl, ok2 := funcs[goWriteLoop]
	if !ok1 || !ok2 {
		return bpf.GoHandoff{}, errNotUsed
	}
	h := bpf.GoHandoff{RoundTripAddr: rt.Entry}
	if h.RoundTrip, err = b.FileOffset(rt.Entry); err != nil {
		return h, err
	}
	if h.WriteLoop, err = b.FileOffset(wl.Entry); err != nil {
		return h, err
	}
	goConnLayout(b, &h)
	return h, nil
}

// goConnFields lead from a persistConn to its connection's descriptor.
var goConnFields = []gobinary.Field{
	{Struct: "net/http.persistConn", Name: "conn"},
	{Struct: "net.TCPConn", Name: "conn"},
	{Struct: "net.conn", Name: "fd"},
	{Struct: "net.netFD", Name: "pfd"},
	{Struct: "internal/poll.FD", Name: "Sysfd"},
}

// goConnLayout fills the offsets that lead from a persistConn to its
// descriptor, from DWARF, else from the Go release (the same from go1.21
// to go1.26: persistConn.conn at 80, net.TCPConn's *netFD at 0, its
// Sysfd at 16); unknown, they stay 0, and only connections whose writer
// goroutine started after the probes are followed.
func goConnLayout(b *gobinary.Binary, h *bpf.GoHandoff) {
	if offs, err := b.FieldOffsets(goConnFields...); err == nil {
		h.Conn, h.TCPFD, h.Sysfd = uint32(offs[0]), uint32(offs[1]+offs[2]), uint32(offs[3]+offs[4])
	} else if b.Version.AtLeast(1, 21) && !b.Version.AtLeast(1, 27) {
		h.Conn, h.TCPFD, h.Sysfd = 80, 0, 16
	}
	for _, name := range []string{"go:itab.*net.TCPConn,net.Conn", "go.itab.*net.TCPConn,net.Conn"} {
		if itab, err := b.Symbol(name); err == nil {
			h.Itab = itab
			break
		}
	}
}

// The functions of grpc-go where a goroutine hands a message of its
// stream to the transport's writer: write(s *ClientStream, ...) since
// grpc-go 1.67, Write(s *Stream, ...) before.
const (
	grpcTransport = "google.golang.org/grpc/internal/transport."
	grpcWrite     = grpcTransport + "(*http2Client).write"
	grpcWriteOld  = grpcTransport + "(*http2Client).Write"
	grpcReader    = grpcTransport + "(*http2Client).reader"
)

// grpcStreamIDs is the offset of a stream's id from the stream pointer
// grpc-go's write gets, by grpc-go release, for binaries without DWARF
// (checked in the sources of 1.83.2 and 1.85.0: ClientStream embeds
// Stream first, whose id follows six strings and interfaces, a map and
// the state). Other releases need DWARF.
var grpcStreamIDs = []struct {
	fromMinor, toMinor int
	offset             uint32
}{
	{83, 85, 108},
}

// grpcTarget reads what the gRPC probes need of b: where its write and
// its transports' reader are, and where a stream's id is (DWARF, else the
// grpc-go release).
func grpcTarget(b *gobinary.Binary) (bpf.GoGRPC, error) {
	funcs, err := b.Funcs(grpcWrite, grpcWriteOld, grpcReader)
	if err != nil {
		return bpf.GoGRPC{}, err
	}
	write, clientStream := funcs[grpcWrite]
	if !clientStream {
		var ok bool
		if write, ok = funcs[grpcWriteOld]; !ok {
			return bpf.GoGRPC{}, errNotUsed
		}
	}
	reader, ok := funcs[grpcReader]
	if !ok {
		return bpf.GoGRPC{}, fmt.Errorf("%s: grpc-go without (*http2Client).reader", b.Path)
	}
	id, err := grpcStreamID(b, clientStream)
	if err != nil {
		return bpf.GoGRPC{}, err
	}
	g := bpf.GoGRPC{StreamID: id}
	if g.Write, err = b.FileOffset(write.Entry); err != nil {
		return bpf.GoGRPC{}, err
	}
	if g.Reader, err = b.FileOffset(reader.Entry); err != nil {
		return bpf.GoGRPC{}, err
	}
	return g, nil
}

func grpcStreamID(b *gobinary.Binary, clientStream bool) (uint32, error) {
	fields := []gobinary.Field{{Struct: grpcTransport + "Stream", Name: "id"}}
	if clientStream {
		fields = append(fields, gobinary.Field{Struct: grpcTransport + "ClientStream", Name: "Stream"})
	}
	offs, err := b.FieldOffsets(fields...)
	if err == nil {
		var sum int64
		for _, o := range offs {
			sum += o
		}
		return uint32(sum), nil
	}
	minor, ok := grpcMinor(b)
	for _, r := range grpcStreamIDs {
		if ok && clientStream && r.fromMinor <= minor && minor <= r.toMinor {
			return r.offset, nil
		}
	}
	return 0, fmt.Errorf("grpc-go's layout: %w, and where its release keeps a stream's id is not known here (known: 1.83 to 1.85)", err)
}

// grpcMinor is the minor version of grpc-go the binary was built with,
// from its build information, else from the paths of its source files.
func grpcMinor(b *gobinary.Binary) (int, bool) {
	version := ""
	if b.Build != nil {
		for _, d := range b.Build.Deps {
			if d.Path == "google.golang.org/grpc" {
				if d.Replace != nil {
					return 0, false // a fork: its layout is its own
				}
				version = d.Version
			}
		}
	}
	if version == "" {
		v, ok, err := b.ModuleVersion("google.golang.org/grpc")
		if err != nil || !ok {
			return 0, false
		}
		version = v
	}
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 || parts[0] != "1" {
		return 0, false
	}
	n, err := strconv.Atoi(parts[1])
	return n, err == nil
}
