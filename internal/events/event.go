// Package events decodes what the kernel programs send through the ring
// buffer into Go values, without copying the captured bytes.
package events // import "github.com/otelcol-ebpf/ebpfreceiver/internal/events"

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// Kind says what happened.
type Kind uint8

// The kinds of events, as the kernel numbers them.
const (
	Read   Kind = bpf.EventRead   // the process read bytes from a socket
	Write  Kind = bpf.EventWrite  // the process wrote bytes to a socket
	Close  Kind = bpf.EventClose  // the process closed a socket
	Exit   Kind = bpf.EventExit   // a selected process exited
	Select Kind = bpf.EventSelect // the kernel selected a process that connected to a watched port
)

const (
	afInet  = 2
	afInet6 = 10
	tailMax = 16
)

// Event is one decoded record. Data and Tail alias the record they were
// decoded from: valid until the next record is read.
type Event struct {
	Kind   Kind
	Pid    uint32 // process (thread group) id
	Tid    uint32
	FD     uint32
	Time   uint64 // kernel monotonic clock, ns
	Sock   uint64 // kernel socket address: with Pid, the connection's identity
	Local  netip.AddrPort
	Remote netip.AddrPort
	Len    uint32 // bytes the syscall moved; Data holds a prefix of them
	// AfterLoss: events of this connection were lost just before this one.
	AfterLoss bool
	Data      []byte
	Tail      []byte // last bytes moved, when Data does not reach them
}

// Decode fills e from one ring buffer record. It rejects records that are
// too short or claim more bytes than they carry, so a malformed record can
// never make a reader slice out of bounds.
func Decode(raw []byte, e *Event) error {
	if len(raw) < bpf.HeaderSize {
		return fmt.Errorf("event of %d bytes is shorter than its %d-byte header", len(raw), bpf.HeaderSize)
	}
	le := binary.LittleEndian
	capLen := int(le.Uint16(raw[6:]))
	if bpf.HeaderSize+capLen > len(raw) {
		return fmt.Errorf("event claims %d captured bytes but carries %d", capLen, len(raw)-bpf.HeaderSize)
	}
	tailLen := int(raw[24])
	if tailLen > tailMax {
		return fmt.Errorf("event claims a %d-byte tail, at most %d fit", tailLen, tailMax)
	}
	e.Kind = Kind(raw[0])
	e.AfterLoss = raw[25]&bpf.EventFlagAfterLoss != 0
	e.Pid = le.Uint32(raw[8:])
	e.Tid = le.Uint32(raw[12:])
	e.FD = le.Uint32(raw[16:])
	e.Len = le.Uint32(raw[20:])
	e.Time = le.Uint64(raw[32:])
	e.Sock = le.Uint64(raw[40:])
	e.Local = addrPort(raw[1], raw[48:64], le.Uint16(raw[2:]))
	e.Remote = addrPort(raw[1], raw[64:80], le.Uint16(raw[4:]))
	e.Tail = raw[80 : 80+tailLen]
	e.Data = raw[bpf.HeaderSize : bpf.HeaderSize+capLen]
	return nil
}

func addrPort(family byte, b []byte, port uint16) netip.AddrPort {
	var a netip.Addr
	switch family {
	case afInet:
		a = netip.AddrFrom4([4]byte(b[:4]))
	case afInet6:
		a = netip.AddrFrom16([16]byte(b)).Unmap()
	default:
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, port)
}
