// Package hpack decodes HPACK header blocks (RFC 7541) for an observer of
// an HTTP/2 connection: one that sees the blocks a peer sent, but may miss
// some, and must then never name a field wrongly.
//
// A Decoder holds the dynamic table of one direction of a connection. When
// a header block was missed (Lose), the entries inserted before it are
// unknown: the Decoder still decodes every field that refers only to the
// static table, to literals, or to entries inserted after the loss, and it
// reports the other fields as unknown rather than guess them. The table is
// known in full again after a dynamic table size update to 0, or once the
// entries inserted since the loss fill the table so that no older one can
// be left (Complete).
//
// Memory is bounded whatever the peer announces: the table keeps at most
// HardCap bytes of names and values and HardCap/32 entries (a peer that
// announces a larger table costs only the knowledge of its oldest entries),
// and one decoded string is kept up to MaxString bytes. A Decoder never
// panics on what a peer sends, and it copies nothing it does not keep.
package hpack // import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2/hpack"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Limits.
const (
	// DefaultTableSize is the dynamic table size every connection starts
	// with (SETTINGS_HEADER_TABLE_SIZE's initial value).
	DefaultTableSize = 4096
	// HardCap bounds the bytes of names and values a table keeps.
	HardCap = 64 << 10
	// MaxString bounds the bytes one decoded string is kept to; a field
	// with a longer name or value is reported unknown.
	MaxString = 64 << 10
)

// Handler receives the fields of a header block, in order.
type Handler interface {
	// Field is a decoded field; name and value are valid only during
	// the call. sensitive marks a never-indexed literal.
	Field(name, value []byte, sensitive bool)
	// Unknown is a field the decoder cannot know: it refers to a table
	// entry that was lost, or its name or value is longer than MaxString.
	Unknown()
}

// Errors that make a header block invalid. The connection's peer treats
// them as a connection error, so a Decoder that returned one has lost its
// table.
var (
	errTruncated       = errors.New("hpack: header block ends inside a field")
	errIntOverflow     = errors.New("hpack: integer does not fit 32 bits")
	errIndexZero       = errors.New("hpack: index 0")
	errLateSizeUpdate  = errors.New("hpack: dynamic table size update after a field")
	errSizeOverLimit   = errors.New("hpack: dynamic table size update over the announced limit")
	errStringTruncated = errors.New("hpack: string longer than the header block")
)

// Decoder decodes the header blocks of one direction of a connection. The
// zero value is not ready: call Reset first.
type Decoder struct {
	t   table
	buf []byte // decoded Huffman strings of the field at hand
}

// Reset readies the decoder for a new connection: an empty table of the
// default size, known in full.
func (d *Decoder) Reset() {
	d.t.reset(HardCap)
	if cap(d.buf) > 4<<10 {
		d.buf = nil // a long string was the exception
	}
}

// Lose tells the decoder that a header block of its direction was missed
// (or may have been): the entries it holds are no longer where their
// indices say.
func (d *Decoder) Lose() { d.t.lose() }

// Complete reports whether the decoder knows every entry of the peer's
// dynamic table, so that no field of a block can be unknown.
func (d *Decoder) Complete() bool { return d.t.complete() }

// Known is the number of dynamic table entries the decoder knows.
func (d *Decoder) Known() int { return d.t.len() - d.t.placeholders }

// Memory is the number of bytes the decoder holds.
func (d *Decoder) Memory() int {
	return cap(d.t.data) + cap(d.t.ents)*int(unsafe.Sizeof(entry{})) + cap(d.buf)
}

// SetLimit records a SETTINGS_HEADER_TABLE_SIZE value that the receiver
// of this direction announced: the most the encoder may size its table
// to. Updates are checked against the largest value announced, since the
// encoder may not have seen a smaller one yet.
func (d *Decoder) SetLimit(v uint32) {
	d.t.limit = max(d.t.limit, uint64(v))
}

// Decode decodes one complete header block. It stops at the first error:
// the block is then invalid, the peer's decoder fails the connection, and
// this decoder has lost its table.
func (d *Decoder) Decode(block []byte, h Handler) error {
	err := d.decode(block, h)
	if err != nil {
		d.t.lose()
	}
	return err
}

func (d *Decoder) decode(p []byte, h Handler) error {
	fields := false
	for len(p) > 0 {
		var err error
		b := p[0]
		switch {
		case b&0x80 != 0: // indexed field (6.1)
			var i uint64
			if i, p, err = readInt(p, 7); err != nil {
				return err
			}
			if err = d.indexed(i, h); err != nil {
				return err
			}
		case b&0xc0 == 0x40: // literal with incremental indexing (6.2.1)
			p, err = d.literal(p, 6, true, false, h)
		case b&0xe0 == 0x20: // dynamic table size update (6.3)
			if fields {
				return errLateSizeUpdate
			}
			var v uint64
			if v, p, err = readInt(p, 5); err != nil {
				return err
			}
			if v > d.t.limit {
				return fmt.Errorf("%w: %d > %d", errSizeOverLimit, v, d.t.limit)
			}
			d.t.setMaxSize(v)
			continue
		case b&0xf0 == 0x10: // literal never indexed (6.2.3)
			p, err = d.literal(p, 4, false, true, h)
		default: // literal without indexing (6.2.2)
			p, err = d.literal(p, 4, false, false, h)
		}
		if err != nil {
			return err
		}
		fields = true
	}
	return nil
}

// indexed emits the field of index i.
func (d *Decoder) indexed(i uint64, h Handler) error {
	name, value, known, err := d.lookup(i)
	if err != nil {
		return err
	}
	if known {
		h.Field(name, value, false)
	} else {
		h.Unknown()
	}
	return nil
}

// lookup returns the name and value of index i, known false when the
// table does not know it.
func (d *Decoder) lookup(i uint64) (name, value []byte, known bool, err error) {
	switch {
	case i == 0:
		return nil, nil, false, errIndexZero
	case i <= uint64(len(staticTable)):
		s := &staticBytes[i-1]
		return s.name, s.value, true, nil
	}
	i -= uint64(len(staticTable))
	if e, ok := d.t.get(i); ok {
		return d.t.name(e), d.t.value(e), true, nil
	}
	if i <= uint64(d.t.len()) || d.t.unknownTail {
		return nil, nil, false, nil // a placeholder, or an entry lost
	}
	return nil, nil, false, fmt.Errorf("hpack: index %d past the dynamic table's %d entries", i+uint64(len(staticTable)), d.t.len())
}

// literal decodes a literal field whose name index has prefix bits, and
// inserts it into the table when index is set.
func (d *Decoder) literal(p []byte, prefix uint8, index, sensitive bool, h Handler) ([]byte, error) {
	ni, p, err := readInt(p, prefix)
	if err != nil {
		return p, err
	}
	d.buf = d.buf[:0]
	var name []byte
	nameKnown, nameLen := true, 0
	if ni > 0 {
		if name, _, nameKnown, err = d.lookup(ni); err != nil {
			return p, err
		}
		if index && ni > uint64(len(staticTable)) {
			// Inserting may move or evict the entry the name is in.
			d.buf = append(d.buf, name...)
			name = d.buf
		}
		nameLen = len(name)
	} else if name, nameLen, p, err = d.str(p); err != nil {
		return p, err
	}
	value, valueLen, p, err := d.str(p)
	if err != nil {
		return p, err
	}
	whole := nameKnown && len(name) == nameLen && len(value) == valueLen
	if whole {
		h.Field(name, value, sensitive)
	} else {
		h.Unknown()
	}
	if index {
		// The size is exact when the name is known, and a lower bound
		// (the name's length unknown) when it is not.
		size := uint64(nameLen) + uint64(valueLen) + entryOverhead
		d.t.add(name, value, size, whole)
	}
	return p, nil
}

// str reads a string literal (5.2). Its bytes are the block's own when it
// is not Huffman-coded, else decoded into d.buf; n is its full length, of
// which s holds at most MaxString bytes.
func (d *Decoder) str(p []byte) (s []byte, n int, rest []byte, err error) {
	if len(p) == 0 {
		return nil, 0, p, errTruncated
	}
	huff := p[0]&0x80 != 0
	l, p, err := readInt(p, 7)
	if err != nil {
		return nil, 0, p, err
	}
	if l > uint64(len(p)) {
		return nil, 0, p, errStringTruncated
	}
	raw, rest := p[:l], p[l:]
	if !huff {
		if len(raw) > MaxString {
			return raw[:MaxString], len(raw), rest, nil
		}
		return raw, len(raw), rest, nil
	}
	start := len(d.buf)
	d.buf, n, err = appendHuffman(d.buf, raw, MaxString)
	if err != nil {
		return nil, 0, rest, err
	}
	return d.buf[start:], n, rest, nil
}

// readInt reads an integer with an n-bit prefix (5.1) that fits 32 bits.
func readInt(p []byte, n uint8) (uint64, []byte, error) {
	if len(p) == 0 {
		return 0, p, errTruncated
	}
	mask := uint64(1)<<n - 1
	v := uint64(p[0]) & mask
	p = p[1:]
	if v < mask {
		return v, p, nil
	}
	for shift := uint(0); ; shift += 7 {
		if len(p) == 0 {
			return 0, p, errTruncated
		}
		b := p[0]
		p = p[1:]
		v += uint64(b&0x7f) << shift
		if v > 1<<32-1 {
			return 0, p, errIntOverflow
		}
		if b&0x80 == 0 {
			return v, p, nil
		}
		if shift >= 28 {
			return 0, p, errIntOverflow
		}
	}
}

// staticBytes is staticTable as byte slices, which Handler takes.
var staticBytes = func() (t [len(staticTable)]struct{ name, value []byte }) {
	for i, e := range staticTable {
		t[i].name, t[i].value = []byte(e.name), []byte(e.value)
	}
	return t
}()
