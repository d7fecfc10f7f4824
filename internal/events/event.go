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
	// Context is what the kernel chose for the request this event begins,
	// with context propagation on; Context.Kind says whether it did.
	Context Context
}

// ContextKind says what Event.Context holds.
type ContextKind uint8

const (
	// NoContext: the kernel chose nothing.
	NoContext ContextKind = iota
	// Served: a read began a request; TraceID and SpanID are its server
	// span's, ParentID the caller's span from its traceparent (or zero).
	Served
	// Injected: a write began a request that went out with a
	// traceparent carrying TraceID and SpanID; ParentID is the request its
	// thread was serving (or zero).
	Injected
	// NotInjected: a write began a request that could not carry one.
	NotInjected
)

// Context is a span's trace context as the kernel chose it.
type Context struct {
	Kind     ContextKind
	Flags    byte // W3C trace flags
	TraceID  [16]byte
	SpanID   [8]byte
	ParentID [8]byte
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
	decodeContext(raw, &e.Context)
	e.Data = raw[bpf.HeaderSize : bpf.HeaderSize+capLen]
	return nil
}

func decodeContext(raw []byte, c *Context) {
	switch flags := raw[25]; {
	case flags&bpf.EventFlagContext != 0:
		c.Kind = Served
	case flags&bpf.EventFlagInjected != 0:
		c.Kind = Injected
	case flags&bpf.EventFlagNotInjected != 0:
		c.Kind = NotInjected
		return
	default:
		c.Kind = NoContext
		return
	}
	c.Flags = raw[26]
	c.TraceID = [16]byte(raw[96:112])
	c.SpanID = [8]byte(raw[112:120])
	c.ParentID = [8]byte(raw[120:128])
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
