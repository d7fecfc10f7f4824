package gobinary

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// The pclntab is read piecemeal, without holding it whole: the test
// binary of this module has a pclntab of 35 MB, of which a lookup needs
// the function table (8 bytes a function) and the few names asked for.
//
// Its layout since Go 1.16 (runtime/symtab.go, pcHeader):
//
//	magic uint32, 0, 0, quantum uint8, ptrSize uint8,
//	nfunc, nfiles, [textStart (1.18+)], funcnameOffset, cuOffset,
//	filetabOffset, pctabOffset, pclnOffset: ptrSize words
//
// At pclnOffset, the function table: nfunc+1 pairs (entry, funcoff), 4
// bytes each since 1.18 (entry relative to the text start), ptrSize
// before; at pclnOffset+funcoff each function's _func, whose first field
// is its entry and whose second (4 bytes) its name's offset in the
// function name table at funcnameOffset, NUL-terminated.

// The pclntab magics (internal/abi).
const (
	magic116 = 0xfffffffa
	magic118 = 0xfffffff0
	magic120 = 0xfffffff1
)

// chunk is how much of the file is read at a time.
const chunk = 1 << 20

// pclntab is the header of a Go 1.16+ pclntab.
type pclntab struct {
	r         io.ReaderAt // the section
	size      int64
	ptrSize   int
	since118  bool
	nfunc     int
	textStart uint64
	nameOff   int64 // of the function name table
	nameEnd   int64
	funcOff   int64 // of the function table
}

func (b *Binary) readPclntab() (*pclntab, error) {
	sec := b.elf.Section(".gopclntab")
	if sec == nil {
		return nil, errors.New("no .gopclntab section: the binary's table of functions is gone (packed, or stripped beyond what Go keeps)")
	}
	if sec.Type == elf.SHT_NOBITS || sec.Flags&elf.SHF_COMPRESSED != 0 {
		return nil, errors.New(".gopclntab is empty or compressed")
	}
	text := b.elf.Section(".text")
	if text == nil {
		return nil, errors.New("no .text section")
	}
	hdr := make([]byte, 8+9*8)
	n, err := sec.ReadAt(hdr, 0)
	if n < 16 {
		return nil, fmt.Errorf("reading the .gopclntab header: %w", err)
	}
	hdr = hdr[:n]
	t := &pclntab{r: sec, size: int64(sec.Size), ptrSize: int(hdr[7]), textStart: text.Addr}
	magic := binary.LittleEndian.Uint32(hdr)
	if b.elf.ByteOrder == binary.BigEndian {
		magic = binary.BigEndian.Uint32(hdr)
	}
	var words []int // positions of nfunc, funcnameOffset, cuOffset, pclnOffset
	switch magic {
	case magic118, magic120:
		t.since118, words = true, []int{0, 3, 4, 7}
	case magic116:
		words = []int{0, 2, 3, 6}
	default:
		return nil, errOldPclntab
	}
	if t.ptrSize != 4 && t.ptrSize != 8 || len(hdr) < 8+(words[3]+1)*t.ptrSize {
		return nil, fmt.Errorf("malformed .gopclntab header")
	}
	word := func(i int) int64 { return int64(b.uint(hdr[8+i*t.ptrSize:], t.ptrSize)) }
	nfunc := word(words[0])
	t.nameOff, t.nameEnd, t.funcOff = word(words[1]), word(words[2]), word(words[3])
	field := int64(t.ptrSize)
	if t.since118 {
		field = 4
	}
	// Every count and offset within the section: a hostile binary must
	// not make the reader allocate or seek beyond it.
	if nfunc <= 0 || t.nameOff < 0 || t.nameOff > t.nameEnd || t.nameEnd > t.size || t.funcOff < 0 ||
		t.funcOff >= t.size || nfunc > (t.size-t.funcOff)/(2*field) {
		return nil, fmt.Errorf("malformed .gopclntab header")
	}
	t.nfunc = int(nfunc)
	return t, nil
}

// errOldPclntab: a pclntab from before Go 1.16, read with debug/gosym.
var errOldPclntab = errors.New("pclntab older than Go 1.16")

func (b *Binary) uint(p []byte, size int) uint64 {
	if size == 4 {
		return uint64(b.elf.ByteOrder.Uint32(p))
	}
	return b.elf.ByteOrder.Uint64(p)
}

// findFuncs finds the functions named names.
func (b *Binary) findFuncs(names []string) (map[string]Func, error) {
	t, err := b.readPclntab()
	if errors.Is(err, errOldPclntab) {
		return b.findFuncsGosym(names)
	}
	if err != nil {
		return nil, err
	}
	// Where the names are in the name table: offset -> name.
	at, err := find(io.NewSectionReader(t.r, t.nameOff, t.nameEnd-t.nameOff), names)
	if err != nil {
		return nil, fmt.Errorf("reading function names: %w", err)
	}
	found := map[string]Func{}
	if len(at) == 0 {
		return found, nil
	}
	// The function table, then each function's name offset.
	field := t.ptrSize
	if t.since118 {
		field = 4
	}
	table := make([]byte, (2*t.nfunc+1)*field)
	if _, err := t.r.ReadAt(table, t.funcOff); err != nil {
		return nil, fmt.Errorf("reading the function table: %w", err)
	}
	entry := func(i int) uint64 {
		e := b.uint(table[2*i*field:], field)
		if t.since118 {
			e += t.textStart
		}
		return e
	}
	order := make([]int32, t.nfunc)
	for i := range order {
		order[i] = int32(i)
	}
	funcoff := func(i int32) int64 { return int64(b.uint(table[(2*int(i)+1)*field:], field)) }
	sort.Slice(order, func(x, y int) bool { return funcoff(order[x]) < funcoff(order[y]) })
	// The _func records, in the order they lie in the file, a chunk at a
	// time.
	var buf []byte
	var bufAt int64 = -1
	for _, i := range order {
		off := t.funcOff + funcoff(i) + int64(field) // _func.nameOff
		if off < bufAt || off+4 > bufAt+int64(len(buf)) {
			n := min(int64(chunk), t.size-off)
			if n < 4 {
				return nil, fmt.Errorf("function %d lies past the end of .gopclntab", i)
			}
			buf = make([]byte, n)
			if _, err := t.r.ReadAt(buf, off); err != nil && err != io.EOF {
				return nil, fmt.Errorf("reading function records: %w", err)
			}
			bufAt = off
		}
		nameOff := int64(int32(b.elf.ByteOrder.Uint32(buf[off-bufAt:])))
		if name, ok := at[nameOff]; ok {
			found[name] = Func{Name: name, Entry: entry(int(i)), End: entry(int(i) + 1)}
		}
	}
	return found, nil
}

// find returns the offsets in r at which one of names begins, NUL-
// terminated (a name may also show at the end of a longer one: those
// offsets are no function's and are never looked up).
func find(r io.Reader, names []string) (map[int64]string, error) {
	at := map[int64]string{}
	longest := 0
	for _, n := range names {
		longest = max(longest, len(n)+1)
	}
	buf := make([]byte, chunk+longest)
	var base int64 // offset of buf[0]
	keep := 0      // bytes carried over from the previous chunk
	for {
		n, err := io.ReadFull(r, buf[keep:])
		data := buf[:keep+n]
		for _, name := range names {
			pat := append([]byte(name), 0)
			for from := 0; ; {
				i := bytes.Index(data[from:], pat)
				if i < 0 {
					break
				}
				at[base+int64(from+i)] = name
				from += i + 1
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return at, nil
		}
		if err != nil {
			return nil, err
		}
		// Carry the end over: a name may straddle two chunks.
		keep = min(longest, len(data))
		copy(buf, data[len(data)-keep:])
		base += int64(len(data) - keep)
	}
}

// findFuncsGosym reads a pclntab from before Go 1.16 with debug/gosym,
// which holds it whole.
func (b *Binary) findFuncsGosym(names []string) (map[string]Func, error) {
	data, err := b.elf.Section(".gopclntab").Data()
	if err != nil {
		return nil, err
	}
	table, err := gosym.NewTable(nil, gosym.NewLineTable(data, b.elf.Section(".text").Addr))
	if err != nil {
		return nil, fmt.Errorf("parsing .gopclntab: %w", err)
	}
	found := map[string]Func{}
	for _, n := range names {
		if f := table.LookupFunc(n); f != nil {
			found[n] = Func{Name: n, Entry: f.Entry, End: f.End}
		}
	}
	return found, nil
}

// findSymbols finds the values of the symbols named names in the symbol
// table.
func (b *Binary) findSymbols(names []string) (map[string]uint64, error) {
	syms, err := LookupSymbols(b.elf, elf.SHT_SYMTAB, names...)
	if err != nil {
		return nil, err
	}
	found := map[string]uint64{}
	for n, s := range syms {
		if s.Value != 0 {
			found[n] = s.Value
		}
	}
	return found, nil
}

// LookupSymbols finds the symbols named names in the symbol table of
// type typ (elf.SHT_SYMTAB, or elf.SHT_DYNSYM for the exported ones) of
// any ELF file, defined ones only, reading the table piecemeal: the
// symbol table of a large program holds hundreds of thousands, which
// elf.File.Symbols would all make. ErrNoSymbols when there is no such
// table.
func LookupSymbols(f *elf.File, typ elf.SectionType, names ...string) (map[string]elf.Symbol, error) {
	symtab := f.SectionByType(typ)
	if symtab == nil || int(symtab.Link) >= len(f.Sections) {
		return nil, ErrNoSymbols
	}
	at, err := find(f.Sections[symtab.Link].Open(), names)
	if err != nil {
		return nil, fmt.Errorf("reading symbol names: %w", err)
	}
	found := map[string]elf.Symbol{}
	if len(at) == 0 {
		return found, nil
	}
	size := 24 // Elf64_Sym: name, info, other, shndx, value, size
	if f.Class == elf.ELFCLASS32 {
		size = 16 // Elf32_Sym: name, value, size, info, other, shndx
	}
	o := f.ByteOrder
	r := symtab.Open()
	buf := make([]byte, chunk/size*size)
	for {
		n, err := io.ReadFull(r, buf)
		for p := 0; p+size <= n; p += size {
			raw := buf[p : p+size]
			name, ok := at[int64(o.Uint32(raw))]
			if !ok {
				continue
			}
			s := elf.Symbol{Name: name}
			if size == 24 {
				s.Info, s.Other, s.Section = raw[4], raw[5], elf.SectionIndex(o.Uint16(raw[6:]))
				s.Value, s.Size = o.Uint64(raw[8:]), o.Uint64(raw[16:])
			} else {
				s.Value, s.Size = uint64(o.Uint32(raw[4:])), uint64(o.Uint32(raw[8:]))
				s.Info, s.Other, s.Section = raw[12], raw[13], elf.SectionIndex(o.Uint16(raw[14:]))
			}
			if s.Section != elf.SHN_UNDEF {
				found[name] = s
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
