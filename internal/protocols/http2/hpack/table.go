package hpack

// entryOverhead is the size an entry counts beyond its name and value
// (RFC 7541 4.1).
const entryOverhead = 32

// entry is one dynamic table entry. An entry whose name is not known (it
// was inserted with the name of an entry that was lost) is a placeholder:
// it holds its place in the table, but a field that refers to it is
// unknown, and its size is a lower bound.
type entry struct {
	off        int // of its name in table.data; its value follows
	nlen, vlen int
	size       uint64 // the size it counts: exact, or a lower bound for a placeholder
	known      bool
}

// table is the decoder's copy of the dynamic table of one direction of a
// connection. It may know only the newest part of the real table: after a
// header block was missed, the entries the encoder inserted before are
// unknown (unknownTail), and indices past the known entries refer to them.
//
// Entries are evicted only when they are certainly gone from the real
// table, so a known index always names the same entry as the encoder's
// table does. Memory is bounded by hardCap bytes of names and values and
// hardCap/32 entries whatever the peer announces: entries dropped for that
// bound are treated as lost.
type table struct {
	ents []entry // ents[head:] are live, oldest first
	head int
	data []byte // names and values; live bytes start at ents[head].off
	size uint64 // sum of the live entries' sizes

	// maxSize is the encoder's current maximum table size, when maxKnown.
	// When it is not known, limit bounds it.
	maxSize  uint64
	maxKnown bool
	limit    uint64 // the largest SETTINGS_HEADER_TABLE_SIZE its decoder announced

	unknownTail  bool // older entries than ents[head] may exist, unknown
	placeholders int  // live entries that are not known
	hardCap      int
}

func (t *table) reset(hardCap int) {
	t.ents, t.head = t.ents[:0], 0
	t.data = t.data[:0]
	if cap(t.data) > 2*DefaultTableSize {
		// A table larger than the default was the exception: do not keep
		// its room for the next connection.
		t.ents, t.data = nil, nil
	}
	t.size = 0
	t.maxSize, t.maxKnown = DefaultTableSize, true
	t.limit = DefaultTableSize
	t.unknownTail, t.placeholders = false, 0
	t.hardCap = hardCap
}

// len is the number of entries the table holds.
func (t *table) len() int { return len(t.ents) - t.head }

// complete reports whether every entry of the real table is known.
func (t *table) complete() bool { return !t.unknownTail && t.placeholders == 0 }

// bound is the largest the real table can be: its maximum size if known,
// else the limit its decoder announced.
func (t *table) bound() uint64 {
	if t.maxKnown {
		return t.maxSize
	}
	return t.limit
}

// lose forgets every entry: a header block was missed, and the entries it
// may have inserted shift every index by an unknown amount.
func (t *table) lose() {
	t.ents, t.head = t.ents[:0], 0
	t.data = t.data[:0]
	t.size = 0
	t.placeholders = 0
	t.unknownTail = true
	t.maxKnown = false
}

// get returns the entry of dynamic index i (1 is the newest), and false
// when the table does not know it.
func (t *table) get(i uint64) (*entry, bool) {
	if i == 0 || i > uint64(t.len()) {
		return nil, false
	}
	e := &t.ents[len(t.ents)-int(i)]
	return e, e.known
}

func (t *table) name(e *entry) []byte  { return t.data[e.off : e.off+e.nlen] }
func (t *table) value(e *entry) []byte { return t.data[e.off+e.nlen : e.off+e.nlen+e.vlen] }

// setMaxSize applies a dynamic table size update.
func (t *table) setMaxSize(v uint64) {
	t.maxSize, t.maxKnown = v, true
	t.evict()
	if v == 0 {
		t.unknownTail = false // nothing is left, known or not
	}
	t.settle()
}

// add inserts an entry of name and value that counts size; known is
// false when its name or value is not known (size is then exact or a
// lower bound).
func (t *table) add(name, value []byte, size uint64, known bool) {
	if size > t.bound() {
		// Larger than the table can be: the table is emptied (RFC 7541
		// 4.4), the unknown entries with the rest, and nothing is added.
		t.ents, t.head, t.data, t.size, t.placeholders = t.ents[:0], 0, t.data[:0], 0, 0
		t.unknownTail = false
		return
	}
	if len(name)+len(value) > t.hardCap {
		known = false // too large to keep: it holds its place only
	}
	e := entry{size: size, known: known}
	if !known {
		t.placeholders++
	} else {
		e.nlen, e.vlen = len(name), len(value)
		e.off = t.room(e.nlen + e.vlen)
		copy(t.data[e.off:], name)
		copy(t.data[e.off+e.nlen:], value)
	}
	if t.head > 0 && len(t.ents) == cap(t.ents) {
		n := copy(t.ents, t.ents[t.head:])
		t.ents, t.head = t.ents[:n], 0
	}
	t.ents = append(t.ents, e)
	t.size += size
	t.evict()
	for t.len() > t.hardCap/entryOverhead {
		t.drop()
	}
	t.settle()
}

// room makes room for n more bytes at the end of data, within hardCap
// live bytes (dropping the oldest entries if need be), and returns where
// they go.
func (t *table) room(n int) int {
	for t.liveBytes()+n > t.hardCap && t.len() > 0 {
		t.drop()
	}
	if len(t.data)+n > cap(t.data) {
		live := t.data[t.liveStart():]
		shift := t.liveStart()
		if len(live)+n > cap(t.data) {
			grown := make([]byte, len(live), max(2*(len(live)+n), 256))
			copy(grown, live)
			t.data = grown
		} else {
			t.data = t.data[:copy(t.data, live)]
		}
		for i := t.head; i < len(t.ents); i++ {
			if t.ents[i].known {
				t.ents[i].off -= shift
			}
		}
	}
	off := len(t.data)
	t.data = t.data[:off+n]
	return off
}

// liveStart is where the bytes of the oldest known entry begin.
func (t *table) liveStart() int {
	for i := t.head; i < len(t.ents); i++ {
		if t.ents[i].known {
			return t.ents[i].off
		}
	}
	return len(t.data)
}

func (t *table) liveBytes() int { return len(t.data) - t.liveStart() }

// evict drops the oldest entries while the table is larger than it can
// be. Sizes are exact or lower bounds, so what it drops is certainly gone
// from the real table too.
func (t *table) evict() {
	for t.size > t.bound() && t.len() > 0 {
		t.pop()
	}
}

// drop forgets the oldest entry for want of memory: the real table still
// has it, so from now on older entries are unknown.
func (t *table) drop() {
	t.pop()
	t.unknownTail = true
}

func (t *table) pop() {
	e := &t.ents[t.head]
	t.size -= e.size
	if !e.known {
		t.placeholders--
	}
	*e = entry{}
	t.head++
	if t.head == len(t.ents) {
		t.ents, t.head, t.data = t.ents[:0], 0, t.data[:0]
	}
}

// settle decides whether unknown older entries can still exist: when the
// maximum size is known and the known entries leave no room for even the
// smallest entry, they cannot.
func (t *table) settle() {
	if t.unknownTail && t.maxKnown && t.size+entryOverhead > t.maxSize && t.maxSize <= uint64(t.hardCap) {
		t.unknownTail = false
	}
}
