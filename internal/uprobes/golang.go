package uprobes

import (
	"errors"
	"fmt"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/gobinary"
)

// The functions probed.
const (
	goRead  = "crypto/tls.(*Conn).Read"
	goWrite = "crypto/tls.(*Conn).Write"
)

// errNoGoTLS: a Go program that does not use crypto/tls.
var errNoGoTLS = errors.New("the Go program does not use crypto/tls")

// goLayoutKnown are the releases whose layout of what leads from a
// tls.Conn to its descriptor is known without DWARF: tls.Conn.conn at 0
// (an interface: itab, then data), net.TCPConn's *netFD at 0, and
// netFD.pfd.Sysfd at 16 (poll.FD begins with its fdMutex: a uint64 and
// two uint32). So it has been since before the register ABI
// (TestLayoutTableMatchesDWARF checks it against the toolchain that
// builds the tests); releases after the newest known need DWARF, lest a
// changed layout be read.
var goLayoutKnown = struct{ from, to gobinary.Version }{gobinary.Version{Major: 1, Minor: 17}, gobinary.Version{Major: 1, Minor: 26}}

// goTLSFields are the fields read, as DWARF names them; their sum gives
// the offsets of bpf.GoTarget.
var goTLSFields = []gobinary.Field{
	{Struct: "crypto/tls.Conn", Name: "conn"},
	{Struct: "net.TCPConn", Name: "conn"},
	{Struct: "net.conn", Name: "fd"},
	{Struct: "net.netFD", Name: "pfd"},
	{Struct: "internal/poll.FD", Name: "Sysfd"},
}

// goTarget reads what the Go probes need of the binary b: the entry and
// RET instructions of (*crypto/tls.Conn).Read and .Write, the layout
// that leads to the descriptor, and the TCP connection's itab. The error
// is a *socketOnly when b uses crypto/tls but cannot be probed, and
// errNoGoTLS when it does not use it.
func goTarget(b *gobinary.Binary) (bpf.GoTarget, error) {
	funcs, err := b.Funcs(goRead, goWrite)
	if err != nil {
		return bpf.GoTarget{}, &socketOnly{ReasonGoFunctions, err}
	}
	read, okRead := funcs[goRead]
	write, okWrite := funcs[goWrite]
	if !okRead || !okWrite {
		return bpf.GoTarget{}, errNoGoTLS
	}
	if _, err := b.RegisterABI(); err != nil {
		return bpf.GoTarget{}, &socketOnly{ReasonGoVersion, err}
	}
	var g bpf.GoTarget
	for _, f := range []struct {
		fn  gobinary.Func
		dst *bpf.GoFunc
	}{{read, &g.Read}, {write, &g.Write}} {
		if err := goFunc(b, f.fn, f.dst); err != nil {
			return bpf.GoTarget{}, &socketOnly{ReasonGoCode, err}
		}
	}
	if err := goLayout(b, &g); err != nil {
		return bpf.GoTarget{}, &socketOnly{ReasonGoLayout, err}
	}
	for _, name := range []string{"go:itab.*net.TCPConn,net.Conn", "go.itab.*net.TCPConn,net.Conn"} {
		if itab, err := b.Symbol(name); err == nil {
			g.Itab = itab
			break
		}
	}
	return g, nil
}

func goFunc(b *gobinary.Binary, f gobinary.Func, dst *bpf.GoFunc) error {
	entry, err := b.FileOffset(f.Entry)
	if err != nil {
		return err
	}
	rets, err := b.Returns(f)
	if err != nil {
		return err
	}
	if len(rets) == 0 {
		return fmt.Errorf("%s: no RET instruction found in %s", b.Path, f.Name)
	}
	*dst = bpf.GoFunc{Entry: entry, EntryAddr: f.Entry}
	for _, r := range rets {
		off, err := b.FileOffset(r)
		if err != nil {
			return err
		}
		dst.Returns = append(dst.Returns, off)
	}
	return nil
}

// goLayout fills the offsets from the Go version when its layout is known
// here, else from DWARF, which costs far more to read (hundreds of MB for
// a large binary) and which stripped binaries lack.
func goLayout(b *gobinary.Binary, g *bpf.GoTarget) error {
	if v := b.Version; v.AtLeast(goLayoutKnown.from.Major, goLayoutKnown.from.Minor) &&
		!v.AtLeast(goLayoutKnown.to.Major, goLayoutKnown.to.Minor+1) {
		g.Conn, g.TCPFD, g.Sysfd = 0, 0, 16
		return nil
	}
	offs, err := b.FieldOffsets(goTLSFields...)
	if err != nil {
		return fmt.Errorf("%w; the layout of %s's net connections is not known here without it (known: go%d.%d to go%d.%d)",
			err, b.GoVersion, goLayoutKnown.from.Major, goLayoutKnown.from.Minor, goLayoutKnown.to.Major, goLayoutKnown.to.Minor)
	}
	g.Conn, g.TCPFD, g.Sysfd = uint32(offs[0]), uint32(offs[1]+offs[2]), uint32(offs[3]+offs[4])
	return nil
}
