package http2

import (
	"encoding/binary"
	"math"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2/hpack"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// preface is what a client sends first on every HTTP/2 connection.
const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Frame types (RFC 9113 6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9
)

// Frame flags.
const (
	flagEndStream  = 0x1 // DATA, HEADERS
	flagAck        = 0x1 // SETTINGS, PING
	flagEndHeaders = 0x4 // HEADERS, PUSH_PROMISE, CONTINUATION
	flagPadded     = 0x8 // DATA, HEADERS, PUSH_PROMISE
	flagPriority   = 0x20
)

const (
	frameHeaderLen        = 9
	settingHeaderTableSze = 0x1
)

// state is where a side is in its bytes.
type state uint8

const (
	stStart   state = iota // nothing read yet
	stPreface              // inside the client's preface
	stHeader               // at or inside a frame header
	stPayload              // inside a frame's payload
	stLost                 // frame boundaries lost: waiting for a resync
)

type frameHeader struct {
	length int
	typ    uint8
	flags  uint8
	stream uint32
}

func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		length: int(b[0])<<16 | int(b[1])<<8 | int(b[2]),
		typ:    b[3],
		flags:  b[4],
		stream: binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1),
	}
}

// side is one direction of a connection: its frames and its HPACK table.
type side struct {
	dir   protocols.Direction
	st    state
	first bool // the next frame is the direction's first
	pref  int  // bytes of the preface matched

	hdr  [frameHeaderLen]byte
	hdrN int
	f    frameHeader
	left int // payload bytes of f still to come
	// The frame's payload so far was all seen (no gap), and the time,
	// thread and chosen context of the segment its first byte was in.
	whole  bool
	fStart uint64
	fTid   uint32
	fSeg   uint64 // the segment it began in, by number
	// fChosen is the chosen context of the segment the frame began in,
	// when no request that began in that segment took it before.
	fChosen   tracecontext.Chosen
	small     [8]byte // the first payload bytes of a small frame, a SETTINGS entry, a pad length
	smallN    int
	payOff    int // payload bytes of f consumed, seen or not
	badFrame  bool
	dataPad   int  // a PADDED DATA frame's pad length, -1 while unknown
	blockSkip bool // the frame's fragment is not kept (block lost or too long)

	// The header block in progress: HEADERS or PUSH_PROMISE and its
	// CONTINUATIONs.
	block       []byte
	blockOn     bool
	blockType   uint8
	blockStream uint32
	blockEnd    bool // END_STREAM was set on its HEADERS
	blockLost   bool // a part of it was not seen, or it was malformed
	blockTime   uint64
	blockTid    uint32
	blockChosen tracecontext.Chosen
	fragStart   int // where the current frame's payload begins in block

	dec    hpack.Decoder
	fields fields

	// The segment being consumed: its number, time, thread, and chosen
	// context while no request that began in it took it.
	segN      uint64
	segTime   uint64
	segTid    uint32
	segChosen tracecontext.Chosen
}

func (s *side) reset(dir protocols.Direction) {
	block, fields := s.block[:0], s.fields
	if cap(block) > keepBlock {
		block = nil
	}
	dec := s.dec
	*s = side{dir: dir, block: block, dec: dec, fields: fields, first: true}
	s.dec.Reset()
}

// now is the time of the segment at hand.
func (s *side) now() uint64 { return s.segTime }

// enter makes seg the segment at hand.
func (s *side) enter(seg *protocols.Segment) {
	s.segN++
	s.segTime, s.segTid, s.segChosen = seg.Time, seg.Tid, seg.Chosen
}

// consume reads the captured bytes b.
func (c *Conn) consume(s *side, b []byte) {
	for len(b) > 0 {
		switch s.st {
		case stStart:
			c.start(s, b[0])
		case stPreface:
			n := min(len(b), len(preface)-s.pref)
			if string(b[:n]) != preface[s.pref:s.pref+n] {
				c.noPreface(s)
				return
			}
			s.pref += n
			b = b[n:]
			if s.pref == len(preface) {
				c.decideRole(s.dir, true)
				s.st = stHeader
			}
		case stHeader:
			if s.hdrN == 0 {
				c.headerBegins(s)
			}
			n := copy(s.hdr[s.hdrN:], b)
			s.hdrN += n
			b = b[n:]
			if s.hdrN == frameHeaderLen {
				c.frameStart(s)
			}
		case stPayload:
			n := min(len(b), s.left)
			c.payload(s, b[:n])
			b = b[n:]
			s.left -= n
			s.payOff += n
			if s.left == 0 {
				c.frameEnd(s)
			}
		case stLost:
			return
		}
	}
}

// gap steps over n bytes moved but not captured.
func (c *Conn) gap(s *side, n int) {
	for n > 0 {
		switch s.st {
		case stStart, stPreface, stHeader:
			// A frame header was in the gap: where frames begin is lost.
			c.loseFraming(s)
			return
		case stPayload:
			m := min(n, s.left)
			c.payloadGap(s, m)
			n -= m
			s.left -= m
			s.payOff += m
			if s.left == 0 {
				c.frameEnd(s)
			}
		case stLost:
			return
		}
	}
}

// start decides what the first bytes of a direction are: the client's
// preface, or (on the server's side) frames.
func (c *Conn) start(s *side, b byte) {
	client := c.clientSide()
	switch {
	case client == s, client == nil && b == preface[0]:
		s.st = stPreface
	default:
		s.st = stHeader
	}
}

// begin looks at the first segment of a direction: one that begins with
// neither the client's preface nor a server's first SETTINGS frame is
// the middle of a connection, and may begin at a frame boundary.
func (c *Conn) begin(s *side) {
	if len(c.pieces) == 0 || c.pieces[0].Off != 0 {
		return // its start was not captured: gap decides
	}
	b := c.pieces[0].Data
	c.start(s, b[0])
	if s.st == stPreface {
		if n := min(len(b), len(preface)); string(b[:n]) != preface[:n] {
			c.noPreface(s)
		}
		return
	}
	if len(b) >= frameHeaderLen && !serverPrefacePrefix(b[:frameHeaderLen]) {
		c.noPreface(s)
		s.first = false
	}
}

// noPreface gives up a direction whose first bytes are not HTTP/2's: a
// connection seen from its middle.
func (c *Conn) noPreface(s *side) {
	c.fail(&c.stats.NoPreface, reasonNoPreface)
	s.st = stLost
	s.dec.Lose()
}

// headerBegins notes where the frame whose header begins now began: its
// time and thread are a request's or a response's when it starts one.
func (c *Conn) headerBegins(s *side) {
	s.fStart, s.fTid, s.fSeg, s.fChosen = s.segTime, s.segTid, s.segN, s.segChosen
}

// frameStart reads a complete frame header.
func (c *Conn) frameStart(s *side) {
	f := parseFrameHeader(s.hdr[:])
	s.f, s.hdrN = f, 0
	s.left, s.payOff, s.smallN = f.length, 0, 0
	s.whole, s.badFrame, s.blockSkip = true, false, false
	s.dataPad = -1
	if s.first {
		s.first = false
		if f.typ != frameSettings || f.flags&flagAck != 0 || f.stream != 0 || f.length%6 != 0 {
			// A server's first frame is a SETTINGS frame; anything else
			// is the middle of a connection.
			c.noPreface(s)
			return
		}
		if c.clientSide() != s {
			c.decideRole(s.dir, false)
		}
	}
	if !validFrame(&f) {
		s.badFrame = true
		c.fail(&c.stats.BadFrames, reasonBadFrame)
	}
	if s.blockOn && (f.typ != frameContinuation || f.stream != s.blockStream) {
		// A header block must go on in CONTINUATION frames of its stream
		// and nothing else: the peer fails the connection; the block is
		// lost.
		s.blockLost = true
		c.blockDone(s)
	}
	if !s.badFrame {
		c.frameBegins(s)
	}
	s.st = stPayload
	if s.left == 0 {
		c.frameEnd(s)
	}
}

// validFrame checks what RFC 9113 requires of each frame type's stream
// and length; frames of unknown types are valid, and ignored.
func validFrame(f *frameHeader) bool {
	switch f.typ {
	case frameData, frameHeaders, frameContinuation:
		return f.stream != 0
	case framePriority:
		return f.stream != 0 && f.length == 5
	case frameRSTStream:
		return f.stream != 0 && f.length == 4
	case frameSettings:
		return f.stream == 0 && f.length%6 == 0 && (f.flags&flagAck == 0 || f.length == 0)
	case framePushPromise:
		return f.stream != 0 && f.length >= 4
	case framePing:
		return f.stream == 0 && f.length == 8
	case frameGoAway:
		return f.stream == 0 && f.length >= 8
	case frameWindowUpdate:
		return f.length == 4
	}
	return true
}

// frameBegins starts a valid frame: a header block's frames open or go on
// with the block.
func (c *Conn) frameBegins(s *side) {
	f := &s.f
	switch f.typ {
	case frameHeaders, framePushPromise:
		s.blockOn, s.blockType, s.blockStream = true, f.typ, f.stream
		s.blockEnd = f.typ == frameHeaders && f.flags&flagEndStream != 0
		s.blockLost = false
		s.blockTime, s.blockTid = s.fStart, s.fTid
		s.blockChosen = tracecontext.Chosen{}
		if f.typ == frameHeaders && c.clientSide() == s {
			// A segment's chosen context goes to the first request that
			// begins in it, and to no other.
			s.blockChosen = s.fChosen
			if s.fSeg == s.segN {
				s.segChosen = tracecontext.Chosen{}
			}
		}
		s.block = s.block[:0]
		s.fragStart = 0
	case frameContinuation:
		if !s.blockOn {
			s.badFrame = true
			c.fail(&c.stats.BadFrames, reasonBadFrame)
			return
		}
		s.fragStart = len(s.block)
	}
	if (f.typ == frameHeaders || f.typ == framePushPromise || f.typ == frameContinuation) && s.blockOn {
		s.blockSkip = s.blockLost
		if !s.blockSkip && len(s.block)+f.length > maxBlock {
			c.fail(&c.stats.BlockTooLarge, reasonBlockTooLarge)
			s.blockLost, s.blockSkip = true, true
		}
	}
}

// payload reads captured payload bytes of the frame at hand.
func (c *Conn) payload(s *side, b []byte) {
	if s.badFrame {
		return
	}
	switch s.f.typ {
	case frameHeaders, framePushPromise, frameContinuation:
		if !s.blockSkip {
			s.block = append(s.block, b...)
		}
	case frameSettings:
		c.settings(s, b)
	case frameRSTStream, frameGoAway:
		if s.whole && s.smallN < len(s.small) {
			s.smallN += copy(s.small[s.smallN:], b)
		}
	case frameData:
		if s.payOff == 0 && s.f.flags&flagPadded != 0 {
			s.dataPad = int(b[0])
		}
	}
}

// payloadGap steps over n payload bytes that were not captured.
func (c *Conn) payloadGap(s *side, n int) {
	s.whole = false
	if s.badFrame {
		return
	}
	switch s.f.typ {
	case frameHeaders, framePushPromise, frameContinuation:
		s.blockLost, s.blockSkip = true, true
	case frameSettings:
		// A SETTINGS_HEADER_TABLE_SIZE may have been in it: the other
		// side's table may now be as large as any value.
		c.sides[1-s.dir].dec.SetLimit(math.MaxUint32)
	}
}

// settings reads SETTINGS entries, 6 bytes each, as they come.
func (c *Conn) settings(s *side, b []byte) {
	if !s.whole {
		return // entries after a gap are out of step
	}
	for len(b) > 0 {
		n := copy(s.small[s.smallN:6], b)
		s.smallN += n
		b = b[n:]
		if s.smallN == 6 {
			s.smallN = 0
			id := binary.BigEndian.Uint16(s.small[0:2])
			v := binary.BigEndian.Uint32(s.small[2:6])
			if id == settingHeaderTableSze {
				// The sender decodes what the other side encodes.
				c.sides[1-s.dir].dec.SetLimit(v)
			}
		}
	}
}

// frameEnd completes the frame at hand.
func (c *Conn) frameEnd(s *side) {
	s.st = stHeader
	if s.badFrame {
		if s.f.typ == frameHeaders || s.f.typ == framePushPromise || s.f.typ == frameContinuation {
			c.loseTable(s)
		}
		return
	}
	f := &s.f
	switch f.typ {
	case frameData:
		n := f.length
		if f.flags&flagPadded != 0 {
			n -= 1 + max(s.dataPad, 0)
		}
		c.data(s, f.stream, max(n, 0), f.flags&flagEndStream != 0)
	case frameHeaders, framePushPromise, frameContinuation:
		if !s.blockSkip && !c.trimFragment(s) {
			s.blockLost = true
		}
		if f.flags&flagEndHeaders != 0 {
			c.blockDone(s)
		}
	case frameRSTStream:
		code, known := uint32(0), s.smallN >= 4
		if known {
			code = binary.BigEndian.Uint32(s.small[0:4])
		}
		c.rstStream(s, f.stream, code, known)
	case frameGoAway:
		if s.smallN >= 8 {
			c.goAway(s, binary.BigEndian.Uint32(s.small[0:4])&(1<<31-1))
		}
	}
}

// trimFragment cuts the padding, the priority fields and the promised
// stream id off the frame's payload in block, leaving the fragment of the
// header block. It returns false for a malformed frame.
func (c *Conn) trimFragment(s *side) bool {
	frag := s.block[s.fragStart:]
	pad := 0
	if s.f.typ != frameContinuation && s.f.flags&flagPadded != 0 {
		if len(frag) == 0 {
			return false
		}
		pad = int(frag[0])
		frag = frag[1:]
	}
	skip := 0
	switch {
	case s.f.typ == frameHeaders && s.f.flags&flagPriority != 0:
		skip = 5
	case s.f.typ == framePushPromise:
		skip = 4
	}
	if skip+pad > len(frag) {
		return false
	}
	frag = frag[skip : len(frag)-pad]
	n := copy(s.block[s.fragStart:], frag)
	s.block = s.block[:s.fragStart+n]
	return true
}

// blockDone decodes a complete header block and hands its fields on.
func (c *Conn) blockDone(s *side) {
	s.blockOn = false
	f := &s.fields
	f.reset()
	lost := s.blockLost
	if lost {
		c.loseTable(s)
	} else if err := s.dec.Decode(s.block, f); err != nil {
		lost = true
		c.fail(&c.stats.TablesLost, reasonTableLost)
	}
	if f.tooLong > 0 {
		c.fail(&c.stats.ValueTooLong, reasonValueTooLong)
	}
	if cap(s.block) > keepBlock {
		s.block = nil
	} else {
		s.block = s.block[:0]
	}
	if s.blockType == framePushPromise {
		c.fail(&c.stats.PushIgnored, reasonPush)
		return
	}
	c.headers(s, s.blockStream, s.blockEnd, lost, f)
}

// loseTable tells a side's decoder that a header block was missed.
func (c *Conn) loseTable(s *side) {
	s.dec.Lose()
	c.fail(&c.stats.TablesLost, reasonTableLost)
}

// loseFraming gives up a direction whose frame boundaries were in a gap:
// a header block may have gone with them.
func (c *Conn) loseFraming(s *side) {
	if s.st == stStart || s.st == stPreface {
		c.noPreface(s)
		return
	}
	c.fail(&c.stats.FramingLost, reasonFramingLost)
	if s.blockOn {
		s.blockOn = false
		s.block = s.block[:0]
	}
	s.st, s.hdrN = stLost, 0
	c.loseTable(s)
	c.endsLost(s)
}

// resync looks for frame boundaries again in a direction that lost them:
// a segment captured whole that is a chain of well-formed frames ending
// exactly at its end starts at a frame boundary.
func (c *Conn) resync(s *side, seg *protocols.Segment) bool {
	n := segLen(seg)
	if !whole(c.pieces, n) || !frameChain(c.pieces[0].Data) {
		return false
	}
	c.stats.Resyncs++
	s.st, s.hdrN, s.first = stHeader, 0, false
	return true
}

// frameChain reports whether b is a chain of well-formed frames of the
// known types, with the flags their types define, ending exactly at b's
// end, that does not begin inside a header block.
func frameChain(b []byte) bool {
	first := true
	for len(b) > 0 {
		if len(b) < frameHeaderLen || b[5]&0x80 != 0 {
			return false
		}
		f := parseFrameHeader(b)
		if f.typ > frameContinuation || !validFrame(&f) || f.flags&^definedFlags[f.typ] != 0 ||
			first && f.typ == frameContinuation || frameHeaderLen+f.length > len(b) {
			return false
		}
		b = b[frameHeaderLen+f.length:]
		first = false
	}
	return true
}

// definedFlags are the flags each frame type defines.
var definedFlags = [...]uint8{
	frameData:         flagEndStream | flagPadded,
	frameHeaders:      flagEndStream | flagEndHeaders | flagPadded | flagPriority,
	framePriority:     0,
	frameRSTStream:    0,
	frameSettings:     flagAck,
	framePushPromise:  flagEndHeaders | flagPadded,
	framePing:         flagAck,
	frameGoAway:       0,
	frameWindowUpdate: 0,
	frameContinuation: flagEndHeaders,
}
