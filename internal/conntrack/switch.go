package conntrack

import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"

// Switcher is a parser whose connection may go on in another protocol: an
// HTTP/1.1 request upgraded to h2c by a 101 response, which HTTP/2 then
// answers. The table asks it after each Feed.
type Switcher interface {
	// Switched reports, once, that the latest Feed switched the connection
	// to protocol to; the segment's last rest bytes are to's already. to is
	// nil when the connection did not switch.
	Switched() (to protocols.Protocol, rest int)
	// HandOver readies next, a parser of to, to go on with what the switch
	// left open (the request the new protocol answers). next is nil when
	// to is not parsed here: the Switcher then reports that itself.
	HandOver(next protocols.Parser, out protocols.Sink)
}

// switchOver gives connection c a parser of the protocol its parser said
// the connection switched to in segment seg, and feeds it the rest of seg.
func (t *Table) switchOver(c *Conn, dir protocols.Direction, seg *protocols.Segment) {
	sw := c.switcher
	to, rest := sw.Switched()
	if to == nil {
		return
	}
	if !t.parses(to) {
		sw.HandOver(nil, c.Sink)
		return
	}
	old, oldProto := c.parser, c.proto
	t.start(c, to, c.Role)
	sw.HandOver(c.parser, c.Sink)
	old.Close(seg.Time, c.Sink) // it holds nothing more: this readies it for another connection
	t.spareParser(oldProto, old)
	if rest <= 0 || rest > seg.Len {
		return
	}
	t.restOf(seg, rest)
	c.parser.Feed(dir, &t.rest, c.Sink)
	clear(t.restExt) // let the event's buffers go
	t.rest = protocols.Segment{}
}

// parses reports whether the table's registry has protocol p.
func (t *Table) parses(p protocols.Protocol) bool {
	for _, q := range t.registry.Protocols() {
		if q == p {
			return true
		}
	}
	return false
}

// restOf makes t.rest the segment of seg's last rest bytes: what it
// captured of them, at offsets from their start. The context the kernel
// chose went with the request the segment began, so none is kept.
func (t *Table) restOf(seg *protocols.Segment, rest int) {
	off := seg.Len - rest
	r := protocols.Segment{Len: rest, Time: seg.Time, Tid: seg.Tid}
	if off < len(seg.Data) {
		r.Data = seg.Data[off:]
	}
	if len(r.Data) < rest {
		r.Tail = seg.Tail
		if len(r.Tail) > rest {
			r.Tail = r.Tail[len(r.Tail)-rest:]
		}
	}
	t.restExt = t.restExt[:0]
	for _, e := range seg.Extents {
		switch end := e.Off + len(e.Data); {
		case e.Off >= off:
			t.restExt = append(t.restExt, protocols.Extent{Off: e.Off - off, Data: e.Data})
		case end > off:
			t.restExt = append(t.restExt, protocols.Extent{Off: 0, Data: e.Data[off-e.Off:]})
		}
	}
	r.Extents = t.restExt
	t.rest = r
}
