package gobinary

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"
)

// fakeELF lays out a little-endian ELF64 executable whose sections are
// .text (at 0x401000, code), .gopclntab (pclntab), .symtab and .strtab,
// and one executable segment over .text: what the readers here look at.
func fakeELF(code, pclntab, symtab, strtab []byte) []byte {
	type sec struct {
		name       string
		typ        elf.SectionType
		flags      elf.SectionFlag
		addr       uint64
		data       []byte
		link, size uint32
	}
	secs := []sec{{}, {".text", elf.SHT_PROGBITS, elf.SHF_ALLOC | elf.SHF_EXECINSTR, 0x401000, code, 0, 0},
		{".gopclntab", elf.SHT_PROGBITS, elf.SHF_ALLOC, 0x500000, pclntab, 0, 0},
		{".symtab", elf.SHT_SYMTAB, 0, 0, symtab, 4, 24}, {".strtab", elf.SHT_STRTAB, 0, 0, strtab, 0, 0},
		{".shstrtab", elf.SHT_STRTAB, 0, 0, nil, 0, 0}}
	var shstr bytes.Buffer
	shstr.WriteByte(0)
	names := make([]uint32, len(secs))
	for i, s := range secs[1:] {
		names[i+1] = uint32(shstr.Len())
		shstr.WriteString(s.name + "\x00")
	}
	secs[len(secs)-1].data = shstr.Bytes()
	const ehsize, phsize, shsize = 64, 56, 64
	var body bytes.Buffer
	offs := make([]uint64, len(secs))
	dataStart := uint64(ehsize + phsize)
	for i, s := range secs {
		offs[i] = dataStart + uint64(body.Len())
		body.Write(s.data)
	}
	shoff := dataStart + uint64(body.Len())
	le := binary.LittleEndian
	var out bytes.Buffer
	h := make([]byte, ehsize)
	copy(h, "\x7fELF\x02\x01\x01")
	le.PutUint16(h[16:], uint16(elf.ET_EXEC))
	le.PutUint16(h[18:], uint16(elf.EM_X86_64))
	le.PutUint32(h[20:], 1)
	le.PutUint64(h[32:], ehsize)
	le.PutUint64(h[40:], shoff)
	le.PutUint16(h[52:], ehsize)
	le.PutUint16(h[54:], phsize)
	le.PutUint16(h[56:], 1)
	le.PutUint16(h[58:], shsize)
	le.PutUint16(h[60:], uint16(len(secs)))
	le.PutUint16(h[62:], uint16(len(secs)-1))
	out.Write(h)
	p := make([]byte, phsize)
	le.PutUint32(p[0:], uint32(elf.PT_LOAD))
	le.PutUint32(p[4:], uint32(elf.PF_R|elf.PF_X))
	le.PutUint64(p[8:], offs[1])
	le.PutUint64(p[16:], 0x401000)
	le.PutUint64(p[32:], uint64(len(code)))
	le.PutUint64(p[40:], uint64(len(code)))
	out.Write(p)
	out.Write(body.Bytes())
	for i, s := range secs {
		sh := make([]byte, shsize)
		le.PutUint32(sh[0:], names[i])
		le.PutUint32(sh[4:], uint32(s.typ))
		le.PutUint64(sh[8:], uint64(s.flags))
		le.PutUint64(sh[16:], s.addr)
		le.PutUint64(sh[24:], offs[i])
		le.PutUint64(sh[32:], uint64(len(s.data)))
		le.PutUint32(sh[40:], s.link)
		le.PutUint64(sh[56:], uint64(s.size))
		out.Write(sh)
	}
	return out.Bytes()
}

// pclntab120 lays out a Go 1.20 pclntab of the functions named names,
// each 16 bytes of code long.
func pclntab120(names ...string) []byte {
	le := binary.LittleEndian
	var nametab bytes.Buffer
	nameOffs := make([]uint32, len(names))
	for i, n := range names {
		nameOffs[i] = uint32(nametab.Len())
		nametab.WriteString(n + "\x00")
	}
	const hdr = 8 + 8*8
	funcnameOffset := uint64(hdr)
	pclnOffset := funcnameOffset + uint64(nametab.Len())
	functab := make([]byte, (2*len(names)+1)*4)
	funcs := make([]byte, 0)
	for i := range names {
		le.PutUint32(functab[8*i:], uint32(16*i))
		le.PutUint32(functab[8*i+4:], uint32(len(functab)+len(funcs)))
		f := make([]byte, 8)
		le.PutUint32(f[0:], uint32(16*i))
		le.PutUint32(f[4:], nameOffs[i])
		funcs = append(funcs, f...)
	}
	le.PutUint32(functab[8*len(names):], uint32(16*len(names)))
	out := make([]byte, hdr)
	le.PutUint32(out, magic120)
	out[6], out[7] = 1, 8
	for i, w := range []uint64{uint64(len(names)), 0, 0x401000, funcnameOffset, pclnOffset, pclnOffset, pclnOffset, pclnOffset} {
		le.PutUint64(out[8+8*i:], w)
	}
	out = append(out, nametab.Bytes()...)
	out = append(out, functab...)
	return append(out, funcs...)
}

func openFake(t testing.TB, data []byte) *Binary {
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	return &Binary{Path: "fake", r: bytes.NewReader(data), elf: ef, Arch: "amd64"}
}

func TestFakePclntab(t *testing.T) {
	code := bytes.Repeat([]byte{0x90}, 48)
	code[15], code[47] = 0xc3, 0xc3
	b := openFake(t, fakeELF(code, pclntab120("main.a", "crypto/tls.(*Conn).Read", "main.c"), nil, []byte{0}))
	if b == nil {
		t.Fatal("the fake ELF does not parse")
	}
	found, err := b.Funcs("crypto/tls.(*Conn).Read", "main.c", "nope")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Func{"crypto/tls.(*Conn).Read": {"crypto/tls.(*Conn).Read", 0x401010, 0x401020}, "main.c": {"main.c", 0x401020, 0x401030}}
	if len(found) != 2 || found["main.c"] != want["main.c"] || found["crypto/tls.(*Conn).Read"] != want["crypto/tls.(*Conn).Read"] {
		t.Fatalf("found %v, want %v", found, want)
	}
	rets, err := b.Returns(found["main.c"])
	if err != nil || len(rets) != 1 || rets[0] != 0x40102f {
		t.Fatalf("returns %x, %v", rets, err)
	}
}

// Whatever a binary holds, reading it never panics, and what is found
// lies within it.
func FuzzBinary(f *testing.F) {
	code := bytes.Repeat([]byte{0x90}, 48)
	code[15], code[47] = 0xc3, 0xc3
	f.Add(code, pclntab120("main.a", "crypto/tls.(*Conn).Read", "main.c"), []byte("\x00main.a\x00"), make([]byte, 48))
	f.Add([]byte{0xc3}, []byte{0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8}, []byte{0}, []byte{})
	f.Fuzz(func(t *testing.T, code, pclntab, strtab, symtab []byte) {
		b := openFake(t, fakeELF(code, pclntab, symtab, strtab))
		if b == nil {
			return
		}
		found, err := b.Funcs("crypto/tls.(*Conn).Read", "main.a", "main.c")
		if err == nil {
			for _, fn := range found {
				if rets, err := b.Returns(fn); err == nil {
					for _, r := range rets {
						if r < fn.Entry || r >= fn.End {
							t.Fatalf("RET at %#x outside %v", r, fn)
						}
					}
				}
			}
		}
		b.Symbol("main.a")
		LookupSymbols(b.elf, elf.SHT_SYMTAB, "main.a", "")
	})
}
