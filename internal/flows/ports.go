package flows

import (
	"fmt"
	"net/netip"
)

// PortMode says which ports a flow keeps: the cardinality of flows is
// mostly the ephemeral ports of the connecting sides.
type PortMode string

const (
	// PortsListening keeps the port of the side that listens (the
	// server's) and drops the connecting side's, which the kernel picked
	// from its ephemeral range and which would make a series per
	// connection.
	PortsListening PortMode = "listening"
	// PortsNone drops both: flows are summed per address pair.
	PortsNone PortMode = "none"
	// PortsAll keeps both: a series per connection.
	PortsAll PortMode = "all"
)

// Validate names a mode that is not one.
func (m PortMode) Validate() error {
	switch m {
	case PortsListening, PortsNone, PortsAll:
		return nil
	}
	return fmt.Errorf("%q must be listening, none or all", string(m))
}

// portSide tells the listening side of a flow.
type portSide interface {
	Listening(ep netip.AddrPort, proto uint8, flowNetns uint64) bool
	Ephemeral(port uint16) bool
}

// reduce drops the ports the mode does not keep. With PortsListening the
// side that listens is the one with a listening socket on this node; for
// flows between other hosts, the side whose port is not in the ephemeral
// range when the other's is. When neither tells, both ports stay: a
// wrong guess would merge flows that are not the same.
func (m PortMode) reduce(src, dst netip.AddrPort, proto uint8, flowNetns uint64, ps portSide) (netip.AddrPort, netip.AddrPort) {
	noPort := func(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr(), 0) }
	switch m {
	case PortsAll:
		return src, dst
	case PortsNone:
		return noPort(src), noPort(dst)
	}
	switch {
	case ps.Listening(dst, proto, flowNetns):
		return noPort(src), dst
	case ps.Listening(src, proto, flowNetns):
		return src, noPort(dst)
	case ps.Ephemeral(src.Port()) && !ps.Ephemeral(dst.Port()):
		return noPort(src), dst
	case ps.Ephemeral(dst.Port()) && !ps.Ephemeral(src.Port()):
		return src, noPort(dst)
	}
	return src, dst
}
