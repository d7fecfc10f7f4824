// Package events decodes what the kernel programs send through the ring
// buffer into Go values, without copying the captured bytes. The layout is
// bpf.Event, generated from the C struct: every offset here is taken from
// it, so the two cannot drift apart.
package events // import "github.com/otelcol-ebpf/ebpfreceiver/internal/events"

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"unsafe"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// Kind says what happened.
type Kind uint8

// The kinds of events, as the kernel numbers them.
const (
	Read    Kind = Kind(bpf.EventRead)    // the process read bytes from a socket
	Write   Kind = Kind(bpf.EventWrite)   // the process wrote bytes to a socket
	Close   Kind = Kind(bpf.EventClose)   // the process closed a socket
	Exit    Kind = Kind(bpf.EventExit)    // a selected process exited
	Select  Kind = Kind(bpf.EventSelect)  // the kernel selected a process that connected to a watched port
	Connect Kind = Kind(bpf.EventConnect) // the process connected a socket: it is the connection's client
	Accept  Kind = Kind(bpf.EventAccept)  // the process accepted a connection: it is the server
	// What the task probes report (bpf/tasks.bpf.c): Node.js made the
	// HTTP parser of the connection its main thread accepted last
	// (TaskClock is the async context its requests run in); Node.js made
	// a socket (its async id is TaskClock + 1, made in context Task with
	// trigger TaskTrigger); a Go goroutine (Task) writes on gRPC stream
	// TaskTrigger of the grpc-go transport at TaskClock (the reads of the
	// transport's reader goroutine carry that address in TaskTrigger).
	NodeParser Kind = Kind(bpf.EventNodeParser)
	NodeSocket Kind = Kind(bpf.EventNodeSocket)
	GoStream   Kind = Kind(bpf.EventGoStream)
	// GoHandler: a Go server's goroutine (Task) begins to serve HTTP/2
	// stream TaskTrigger of the connection Sock (grpc-go's handleStream,
	// net/http's runHandler).
	GoHandler Kind = Kind(bpf.EventGoHandler)
	// Fork: selected process FD (a tgid) forked process Pid, which the
	// kernel selected with it (bpf/headers/forks.h). Exec: process Pid,
	// selected as a fork, ran a new program and is no longer selected.
	Fork Kind = Kind(bpf.EventFork)
	Exec Kind = Kind(bpf.EventExec)
)

const (
	afInet  = 2
	afInet6 = 10
	tailMax = len(bpf.Event{}.Tail)
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
	Netns  uint32 // inode of the socket's network namespace
	Local  netip.AddrPort
	Remote netip.AddrPort
	Len    uint32 // bytes the syscall moved; Data holds a prefix of them
	// AfterLoss: events of this connection were lost just before this one.
	AfterLoss bool
	Data      []byte
	Tail      []byte // last bytes moved, when Data does not reach them
	// Extents are more runs of the bytes moved, past Data (HTTP/2 frames),
	// as records: a little-endian uint32 offset, a uint16 length and the
	// bytes; NextExtent reads them.
	Extents []byte
	// FramesShort: the kernel could not walk or copy all the HTTP/2 frames
	// of the syscall.
	FramesShort bool
	// TLS: the bytes are the plaintext a TLS library read or wrote, on
	// the socket its connection travels on, not the bytes on the wire.
	TLS bool
	// Chosen is what the kernel chose for the request the event begins,
	// with context propagation on; Chosen.Kind says whether it did.
	Chosen tracecontext.Chosen
	// Task, TaskTrigger and TaskClock are the runtime's task the syscall
	// ran for, 0 when not known (bpf/headers/tasks.h): in Go the
	// goroutine id (of the goroutine a write was made for); in Node.js
	// the bits of the float64 async ids of the running callback, of what
	// scheduled it, and of the latest one given out.
	Task, TaskTrigger, TaskClock uint64
}

// The offsets of the fields of bpf.Event.
var ev bpf.Event

const (
	offKind       = unsafe.Offsetof(ev.Kind)
	offFamily     = unsafe.Offsetof(ev.Family)
	offLport      = unsafe.Offsetof(ev.Lport)
	offRport      = unsafe.Offsetof(ev.Rport)
	offCapLen     = unsafe.Offsetof(ev.CapLen)
	offPid        = unsafe.Offsetof(ev.Pid)
	offTid        = unsafe.Offsetof(ev.Tid)
	offFd         = unsafe.Offsetof(ev.Fd)
	offLen        = unsafe.Offsetof(ev.Len)
	offTailLen    = unsafe.Offsetof(ev.TailLen)
	offFlags      = unsafe.Offsetof(ev.Flags)
	offTraceFlags = unsafe.Offsetof(ev.TraceFlags)
	offReason     = unsafe.Offsetof(ev.Reason)
	offNetns      = unsafe.Offsetof(ev.Netns)
	offTs         = unsafe.Offsetof(ev.Ts)
	offSock       = unsafe.Offsetof(ev.Sock)
	offLaddr      = unsafe.Offsetof(ev.Laddr)
	offRaddr      = unsafe.Offsetof(ev.Raddr)
	offTail       = unsafe.Offsetof(ev.Tail)
	offTraceID    = unsafe.Offsetof(ev.TraceId)
	offSpanID     = unsafe.Offsetof(ev.SpanId)
	offParentID   = unsafe.Offsetof(ev.ParentId)
	offExtLen     = unsafe.Offsetof(ev.ExtLen)
	offTask       = unsafe.Offsetof(ev.Task)
	offTaskTrig   = unsafe.Offsetof(ev.TaskTrigger)
	offTaskClock  = unsafe.Offsetof(ev.TaskClock)
)

// extentHeader is the size of an extent record's header.
const extentHeader = 6

var le = binary.LittleEndian

// Decode fills e from one ring buffer record. It rejects records that are
// too short or claim more bytes than they carry, so a malformed record can
// never make a reader slice out of bounds.
func Decode(raw []byte, e *Event) error {
	if len(raw) < bpf.HeaderSize {
		return fmt.Errorf("event of %d bytes is shorter than its %d-byte header", len(raw), bpf.HeaderSize)
	}
	capLen, extLen := int(le.Uint16(raw[offCapLen:])), int(le.Uint16(raw[offExtLen:]))
	if bpf.HeaderSize+capLen+extLen > len(raw) {
		return fmt.Errorf("event claims %d captured bytes and %d of extents but carries %d", capLen, extLen, len(raw)-bpf.HeaderSize)
	}
	tailLen := int(raw[offTailLen])
	if tailLen > tailMax {
		return fmt.Errorf("event claims a %d-byte tail, at most %d fit", tailLen, tailMax)
	}
	e.Kind = Kind(raw[offKind])
	e.AfterLoss = raw[offFlags]&bpf.EventFlagAfterLoss != 0
	e.FramesShort = raw[offFlags]&bpf.EventFlagFramesShort != 0
	e.TLS = raw[offFlags]&bpf.EventFlagTLS != 0
	e.Pid = le.Uint32(raw[offPid:])
	e.Tid = le.Uint32(raw[offTid:])
	e.FD = le.Uint32(raw[offFd:])
	e.Len = le.Uint32(raw[offLen:])
	e.Time = le.Uint64(raw[offTs:])
	e.Sock = le.Uint64(raw[offSock:])
	e.Netns = le.Uint32(raw[offNetns:])
	family := raw[offFamily]
	e.Local = addrPort(family, raw[offLaddr:offLaddr+16], le.Uint16(raw[offLport:]))
	e.Remote = addrPort(family, raw[offRaddr:offRaddr+16], le.Uint16(raw[offRport:]))
	e.Tail = raw[offTail : offTail+uintptr(tailLen)]
	e.Task, e.TaskTrigger, e.TaskClock = le.Uint64(raw[offTask:]), le.Uint64(raw[offTaskTrig:]), le.Uint64(raw[offTaskClock:])
	decodeChosen(raw, &e.Chosen)
	e.Data = raw[bpf.HeaderSize : bpf.HeaderSize+capLen]
	e.Extents = nil
	if extLen > 0 {
		e.Extents = raw[bpf.HeaderSize+capLen : bpf.HeaderSize+capLen+extLen]
	}
	return nil
}

// NextExtent reads the first extent record of b: the offset of its bytes
// in the syscall's bytes, the bytes, and the records after it. ok is false
// at the end, and for a record that claims more bytes than b holds.
func NextExtent(b []byte) (off int, data, rest []byte, ok bool) {
	if len(b) < extentHeader {
		return 0, nil, nil, false
	}
	n := int(le.Uint16(b[4:]))
	if extentHeader+n > len(b) {
		return 0, nil, nil, false
	}
	return int(le.Uint32(b)), b[extentHeader : extentHeader+n], b[extentHeader+n:], true
}

func decodeChosen(raw []byte, c *tracecontext.Chosen) {
	switch flags := raw[offFlags]; {
	case flags&bpf.EventFlagContext != 0:
		c.Kind = tracecontext.Served
	case flags&bpf.EventFlagInjected != 0:
		c.Kind = tracecontext.Injected
	case flags&bpf.EventFlagNotInjected != 0:
		*c = tracecontext.Chosen{Kind: tracecontext.NotInjected, Reason: raw[offReason]}
		return
	default:
		*c = tracecontext.Chosen{}
		return
	}
	c.Reason = 0
	c.Flags = raw[offTraceFlags]
	c.TraceID = [16]byte(raw[offTraceID : offTraceID+16])
	c.SpanID = [8]byte(raw[offSpanID : offSpanID+8])
	c.ParentID = [8]byte(raw[offParentID : offParentID+8])
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

// Encode lays e out as the kernel would send it: the inverse of Decode,
// for tests and benchmarks that feed made-up events.
func Encode(e *Event) []byte {
	raw := make([]byte, bpf.HeaderSize+len(e.Data))
	raw[offKind] = byte(e.Kind)
	le.PutUint32(raw[offPid:], e.Pid)
	le.PutUint32(raw[offTid:], e.Tid)
	le.PutUint32(raw[offFd:], e.FD)
	le.PutUint32(raw[offLen:], e.Len)
	le.PutUint64(raw[offTs:], e.Time)
	le.PutUint64(raw[offSock:], e.Sock)
	le.PutUint32(raw[offNetns:], e.Netns)
	le.PutUint64(raw[offTask:], e.Task)
	le.PutUint64(raw[offTaskTrig:], e.TaskTrigger)
	le.PutUint64(raw[offTaskClock:], e.TaskClock)
	if e.AfterLoss {
		raw[offFlags] |= bpf.EventFlagAfterLoss
	}
	encodeAddr(raw, e.Local, offLaddr, offLport)
	encodeAddr(raw, e.Remote, offRaddr, offRport)
	raw[offTailLen] = byte(copy(raw[offTail:offTail+uintptr(tailMax)], e.Tail))
	encodeChosen(raw, &e.Chosen)
	le.PutUint16(raw[offCapLen:], uint16(copy(raw[bpf.HeaderSize:], e.Data)))
	if len(e.Extents) > 0 {
		raw = append(raw, e.Extents...)
		le.PutUint16(raw[offExtLen:], uint16(len(e.Extents)))
	}
	if e.FramesShort {
		raw[offFlags] |= bpf.EventFlagFramesShort
	}
	if e.TLS {
		raw[offFlags] |= bpf.EventFlagTLS
	}
	return raw
}

// AppendExtent appends to records the record of an extent: data at
// offset off of a syscall's bytes (the inverse of NextExtent).
func AppendExtent(records []byte, off int, data []byte) []byte {
	records = le.AppendUint32(records, uint32(off))
	records = le.AppendUint16(records, uint16(len(data)))
	return append(records, data...)
}

func encodeAddr(raw []byte, ap netip.AddrPort, addrOff, portOff uintptr) {
	if !ap.IsValid() {
		return
	}
	raw[offFamily] = afInet6
	if ap.Addr().Is4() {
		raw[offFamily] = afInet
		a := ap.Addr().As4()
		copy(raw[addrOff:], a[:])
	} else {
		a := ap.Addr().As16()
		copy(raw[addrOff:], a[:])
	}
	le.PutUint16(raw[portOff:], ap.Port())
}

func encodeChosen(raw []byte, c *tracecontext.Chosen) {
	switch c.Kind {
	case tracecontext.NotChosen:
		return
	case tracecontext.Served:
		raw[offFlags] |= bpf.EventFlagContext
	case tracecontext.Injected:
		raw[offFlags] |= bpf.EventFlagInjected
	case tracecontext.NotInjected:
		raw[offFlags] |= bpf.EventFlagNotInjected
		raw[offReason] = c.Reason
		return
	}
	raw[offTraceFlags] = c.Flags
	copy(raw[offTraceID:], c.TraceID[:])
	copy(raw[offSpanID:], c.SpanID[:])
	copy(raw[offParentID:], c.ParentID[:])
}
