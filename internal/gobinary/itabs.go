package gobinary

import (
	"debug/elf"
	"errors"
	"fmt"
)

// An itab (runtime.itab, internal/abi.ITab) pairs a concrete type with an
// interface it implements: on 64-bit, the interface's type (*InterfaceType)
// at 0, the concrete type at 8, its hash at 16, then one function pointer
// per method of the interface, in the interface's order (exported methods
// by name). An interface value holds its itab: a probe that meets one
// tells the concrete type behind it by the itab's address. The linker
// lists the itabs it made in .itablink, also in a binary stripped of its
// symbol table; their functions are named in the pclntab, which stays.
const (
	itabFun = 24
	// interfaceMethods is the offset of len(Methods) in an
	// InterfaceType: abi.Type (48 bytes), PkgPath (a pointer), then the
	// slice Methods.
	interfaceMethods = 64
	// maxItabMethods bounds the methods of an interface looked for.
	maxItabMethods = 64
	// unreachableMethod is what the linker puts in an itab for a method
	// no interface call reaches (go1.16 on).
	unreachableMethod = "runtime.unreachableMethod"
)

// ItabOf finds the itab of the concrete type recv, as its methods' names
// begin ("net.(*TCPConn)"), as an interface whose methods are methods, in
// the interface's order (exported ones sorted by name): the one entry of
// .itablink whose interface has exactly that many methods and whose
// functions are recv's methods of those names, in order. It reads
// pointers from the file: a position-independent executable's are made at
// load, so it has none to read. None found, or several (two interfaces of
// the same methods), is an error: an itab is never guessed.
func (b *Binary) ItabOf(recv string, methods []string) (uint64, error) {
	if b.elf.Class != elf.ELFCLASS64 {
		return 0, fmt.Errorf("%s: itabs are read in 64-bit binaries only", b.Path)
	}
	if b.elf.Type != elf.ET_EXEC {
		return 0, fmt.Errorf("%s: a position-independent executable's itabs are made at load: %w", b.Path, ErrNoSymbols)
	}
	if len(methods) == 0 || len(methods) > maxItabMethods {
		return 0, fmt.Errorf("%s: an interface of %d methods", b.Path, len(methods))
	}
	names := make([]string, len(methods))
	for i, m := range methods {
		names[i] = recv + "." + m
	}
	funcs, err := b.Funcs(append(names, unreachableMethod)...)
	if err != nil {
		return 0, err
	}
	// A method no interface call reaches has unreachableMethod in the
	// itab (the linker leaves it out); one that is there names recv.
	want := make([]uint64, len(names))
	unreachable, real := funcs[unreachableMethod].Entry, false
	for i, n := range names {
		if f, ok := funcs[n]; ok {
			want[i], real = f.Entry, true
		}
	}
	if !real {
		return 0, fmt.Errorf("%s: none of the methods of %s is in the binary: no such itab", b.Path, recv)
	}
	sec := b.elf.Section(".itablink")
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return 0, fmt.Errorf("%s: no .itablink section", b.Path)
	}
	if sec.Size%8 != 0 || sec.Size > 1<<24 {
		return 0, fmt.Errorf("%s: malformed .itablink section", b.Path)
	}
	links, err := sec.Data()
	if err != nil {
		return 0, fmt.Errorf("%s: reading .itablink: %w", b.Path, err)
	}
	var found []uint64
	itab := make([]byte, itabFun+8*len(want))
	for off := 0; off < len(links); off += 8 {
		at := b.elf.ByteOrder.Uint64(links[off:])
		if b.readAddr(at, itab) != nil || !b.funsAre(itab[itabFun:], want, unreachable) {
			continue
		}
		if n, err := b.interfaceMethods(b.elf.ByteOrder.Uint64(itab)); err != nil || n != uint64(len(want)) {
			continue // a larger interface that begins with these methods
		}
		found = append(found, at)
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("%s: no itab of %s with the methods %v", b.Path, recv, methods)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("%s: %d itabs of %s with the methods %v: which is which is not told", b.Path, len(found), recv, methods)
}

// funsAre reports whether the function pointers of an itab are want,
// where a method left out may be unreachable (want 0: the method is not
// in the binary at all), and one is there at least.
func (b *Binary) funsAre(funs []byte, want []uint64, unreachable uint64) bool {
	real := false
	for i, w := range want {
		switch got := b.elf.ByteOrder.Uint64(funs[8*i:]); {
		case w != 0 && got == w:
			real = true
		case unreachable != 0 && got == unreachable:
		default:
			return false
		}
	}
	return real
}

// interfaceMethods is how many methods the interface type at addr has.
func (b *Binary) interfaceMethods(addr uint64) (uint64, error) {
	var n [8]byte
	if err := b.readAddr(addr+interfaceMethods, n[:]); err != nil {
		return 0, err
	}
	return b.elf.ByteOrder.Uint64(n[:]), nil
}

// readAddr reads the file's bytes at link-time address addr into p.
func (b *Binary) readAddr(addr uint64, p []byte) error {
	for _, s := range b.elf.Progs {
		if s.Type == elf.PT_LOAD && s.Vaddr <= addr && addr+uint64(len(p)) <= s.Vaddr+s.Filesz && addr+uint64(len(p)) > addr {
			_, err := b.r.ReadAt(p, int64(s.Off+addr-s.Vaddr))
			return err
		}
	}
	return errors.New("address in no loaded segment of the file")
}
