package mysql

// maxPayload is the largest payload of one wire packet. A packet of
// exactly this size is continued by the next one: together they carry one
// logical packet.
const maxPayload = 0xffffff

// packet is one logical packet as the connection sees it: its header's
// sequence id and length, and as much of its payload as was kept.
type packet struct {
	seq  uint8  // sequence id of its first wire packet
	size int    // payload length, continuations included
	data []byte // the kept prefix of the payload; aliases a segment or the reader's buffer
	// whole says data is the entire payload; else a gap or the keep limit
	// cut it.
	whole      bool
	start, end uint64 // times of the segments with its first and last byte
}

// reader frames the bytes of one direction into packets by their length
// headers. It counts through payload it does not keep, so a gap inside a
// packet keeps it in step; a gap that may hide a header loses the
// framing (lost) until the connection finds a packet start again.
type reader struct {
	hdr  [4]byte
	nh   int  // header bytes of the current wire packet read so far
	in   bool // inside a payload: size and left are valid
	size int  // payload length of the current wire packet
	left int  // its payload bytes still to come

	// The logical packet being assembled.
	seq   uint8
	total int    // payload bytes so far, continuations included
	keep  int    // payload bytes wanted of it
	buf   []byte // kept bytes, when the packet does not lie in one segment
	cut   bool   // a gap or the keep limit cut the kept bytes
	cont  bool   // the next wire packet continues this logical one
	start uint64

	lost bool // packet boundaries unknown
}

// reset forgets the packet in progress and takes the next byte as a
// packet start.
func (r *reader) reset() {
	buf := r.buf[:0]
	if cap(buf) > keepBuf {
		buf = nil
	}
	*r = reader{buf: buf}
}

// lose forgets the packet in progress: the next bytes are somewhere
// inside an unknown packet.
func (r *reader) lose() {
	r.reset()
	r.lost = true
}

// atBoundary says whether the next byte starts a packet.
func (r *reader) atBoundary() bool {
	return !r.lost && r.nh == 0 && !r.in && !r.cont
}

// packets hands c each packet that ends within d, the bytes of direction
// dir, and returns false when c asked to stop (it changed its mind about
// the bytes: the rest of d is not to be read as packets). c tells, at
// each packet's header, how many payload bytes to keep.
func (r *reader) packets(c *Conn, dir Direction, d []byte, ts uint64) bool {
	for len(d) > 0 && !r.lost {
		if !r.in {
			n := copy(r.hdr[r.nh:], d)
			r.nh += n
			d = d[n:]
			if r.nh < 4 {
				return true
			}
			if !r.header(c, dir, ts) {
				r.lose()
				return false
			}
		}
		// Payload bytes: a packet that lies whole in d is handed on
		// where it is; one that spans segments is copied up to keep.
		n := min(len(d), r.left)
		if r.left == r.size && n == r.left && !r.cont && r.total == 0 && len(r.buf) == 0 {
			p := packet{seq: r.seq, size: r.size, start: r.start, end: max(ts, r.start), data: d[:min(n, r.keep)]}
			p.whole = len(p.data) == p.size
			r.nh, r.in = 0, false
			d = d[n:]
			if !c.packet(dir, &p) {
				return false
			}
			continue
		}
		if want := r.keep - len(r.buf); want > 0 && !r.cut {
			r.buf = append(r.buf, d[:min(n, want)]...)
		}
		r.left -= n
		r.total += n
		d = d[n:]
		if r.left == 0 && !r.wireDone(c, dir, ts) {
			return false
		}
	}
	return true
}

// header reads a complete wire header. It returns false for a header that
// cannot be right: one the connection rejects, or a continuation whose
// sequence id does not follow.
func (r *reader) header(c *Conn, dir Direction, ts uint64) bool {
	size := int(r.hdr[0]) | int(r.hdr[1])<<8 | int(r.hdr[2])<<16
	seq := r.hdr[3]
	if r.cont {
		if seq != r.seq+uint8(r.total/maxPayload) {
			return false
		}
	} else {
		keep, ok := c.header(dir, seq, size)
		if !ok {
			return false
		}
		r.seq, r.total, r.start = seq, 0, ts
		r.buf, r.cut = r.buf[:0], false
		r.keep = keep
	}
	r.size, r.left, r.in = size, size, true
	return true
}

// wireDone ends a wire packet; a logical packet ends with the first wire
// packet shorter than maxPayload.
func (r *reader) wireDone(c *Conn, dir Direction, ts uint64) bool {
	r.nh, r.in = 0, false
	if r.size == maxPayload {
		r.cont = true
		return true
	}
	return r.emit(c, dir, ts)
}

// emit hands c the logical packet that just ended.
func (r *reader) emit(c *Conn, dir Direction, ts uint64) bool {
	r.cont = false
	p := packet{seq: r.seq, size: r.total, start: r.start, end: max(ts, r.start), data: r.buf}
	p.whole = !r.cut && len(p.data) == p.size
	r.total = 0
	ok := c.packet(dir, &p)
	r.buf = r.buf[:0]
	if cap(r.buf) > keepBuf {
		r.buf = nil
	}
	return ok
}

// skip accounts for n bytes that moved but were not captured, handing c
// a packet that ends inside them. It reports whether the framing
// survived: it does when the gap ends inside a payload, or exactly at a
// packet's end.
func (r *reader) skip(c *Conn, dir Direction, n int, ts uint64) bool {
	if r.lost {
		return false
	}
	if !r.in {
		// The gap hides a header, or a part of one.
		r.lose()
		return false
	}
	if r.total < r.keep {
		r.cut = true
	}
	if n < r.left {
		r.left -= n
		r.total += n
		return true
	}
	n -= r.left
	r.total += r.left
	r.left = 0
	r.nh, r.in = 0, false
	if r.size == maxPayload {
		// A continuation's header lies in the gap or right after it:
		// where the packet ends is not known. What was kept of it is
		// handed on, cut.
		r.cut = true
		r.emit(c, dir, ts)
		r.lose()
		return false
	}
	if !r.emit(c, dir, ts) || n > 0 {
		r.lose()
		return false
	}
	return !r.lost
}
