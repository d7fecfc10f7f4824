// Package gobinary reads, from the ELF file of a Go program, what probing
// it from the kernel needs: the Go version and build information, where
// each function begins and ends, where its RET instructions are, the file
// offset of an address, the addresses of data symbols, the offsets of
// struct fields, and the facts of Go's register ABI.
//
// Functions are found through the pclntab, the runtime's own table of
// functions, which every Go binary keeps: also binaries stripped of their
// symbol table (go build -ldflags=-s, strip). What needs the symbol table
// (data symbols such as itabs) or DWARF (struct layouts) says so when they
// are gone, and callers fall back to what the Go version tells.
//
// Nothing here runs the program or reads a process's memory: a Binary is
// a file, and what it says holds for every process that runs it.
package gobinary // import "github.com/otelcol-ebpf/ebpfreceiver/internal/gobinary"

import (
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrNotGo is returned by Open for a file that is not a Go program.
var ErrNotGo = errors.New("not a Go binary")

// ErrNoSymbols is returned for what needs the symbol table of a binary
// that has none (stripped).
var ErrNoSymbols = errors.New("the binary has no symbol table")

// ErrNoDWARF is returned for what needs the DWARF of a binary that has
// none (built with -ldflags=-w or stripped).
var ErrNoDWARF = errors.New("the binary has no DWARF")

// Binary is an open Go executable. It is not safe for concurrent use.
type Binary struct {
	Path string
	// GoVersion is the toolchain that built it, as "go1.26.8".
	GoVersion string
	// Version is GoVersion parsed.
	Version Version
	// Arch is its GOARCH: "amd64", "arm64", ...
	Arch string
	// Build is its build information (main module, dependencies,
	// settings).
	Build *buildinfo.BuildInfo

	file  io.Closer
	r     io.ReaderAt // the file
	elf   *elf.File
	dwarf *dwarf.Data // nil: not read yet
}

// Func is a function's code: [Entry, End) in link-time addresses.
type Func struct {
	Name       string
	Entry, End uint64
}

// Open reads the Go binary at path: its build information and its table
// of functions. It returns ErrNotGo (wrapped) for a file that is not a Go
// program, and an error that says why for a Go program whose table of
// functions cannot be read.
func Open(path string) (*Binary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	b, err := open(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

func open(path string, f *os.File) (*Binary, error) {
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: not ELF: %v", path, ErrNotGo, err)
	}
	info, err := buildinfo.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrNotGo, err)
	}
	b := &Binary{Path: path, GoVersion: info.GoVersion, Build: info, file: f, r: f, elf: ef, Arch: goarch(ef.Machine)}
	for _, s := range info.Settings {
		if s.Key == "GOARCH" {
			b.Arch = s.Value
		}
	}
	b.Version, _ = ParseVersion(info.GoVersion)
	if _, err := b.readPclntab(); err != nil && !errors.Is(err, errOldPclntab) {
		return nil, fmt.Errorf("%s: reading its functions: %w", path, err)
	}
	return b, nil
}

func goarch(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "amd64"
	case elf.EM_AARCH64:
		return "arm64"
	case elf.EM_386:
		return "386"
	}
	return strings.ToLower(strings.TrimPrefix(m.String(), "EM_"))
}

// Close closes the file.
func (b *Binary) Close() error { return b.file.Close() }

// Stripped reports whether the binary has no symbol table.
func (b *Binary) Stripped() bool { return b.elf.SectionByType(elf.SHT_SYMTAB) == nil }

// Func returns the function named name, as the runtime names it
// ("crypto/tls.(*Conn).Read").
func (b *Binary) Func(name string) (Func, bool) {
	found, err := b.Funcs(name)
	if err != nil {
		return Func{}, false
	}
	f, ok := found[name]
	return f, ok
}

// Funcs finds the functions named names in one pass over the binary's
// table of functions; those it does not have are not in the map. Each
// call reads the table anew, without holding it: look up together what
// is needed together.
func (b *Binary) Funcs(names ...string) (map[string]Func, error) {
	found, err := b.findFuncs(names)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Path, err)
	}
	return found, nil
}

// Symbol returns the link-time address of the symbol name (data symbols
// such as "go:itab.*net.TCPConn,net.Conn" included); ErrNoSymbols when the
// binary is stripped.
func (b *Binary) Symbol(name string) (uint64, error) {
	found, err := b.findSymbols([]string{name})
	if err != nil {
		return 0, err
	}
	a, ok := found[name]
	if !ok {
		return 0, fmt.Errorf("%s: no symbol %q", b.Path, name)
	}
	return a, nil
}

// FileOffset is where the code at link-time address addr is in the file:
// what uprobes are placed by.
func (b *Binary) FileOffset(addr uint64) (uint64, error) {
	for _, p := range b.elf.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= addr && addr < p.Vaddr+p.Filesz {
			return addr - p.Vaddr + p.Off, nil
		}
	}
	return 0, fmt.Errorf("%s: address %#x is in no executable segment", b.Path, addr)
}

// Code returns the machine code of f.
func (b *Binary) Code(f Func) ([]byte, error) {
	if f.End <= f.Entry || f.End-f.Entry > 1<<24 {
		return nil, fmt.Errorf("%s: function %s has no sensible bounds [%#x, %#x)", b.Path, f.Name, f.Entry, f.End)
	}
	off, err := b.FileOffset(f.Entry)
	if err != nil {
		return nil, err
	}
	code := make([]byte, f.End-f.Entry)
	if _, err := b.r.ReadAt(code, int64(off)); err != nil {
		return nil, fmt.Errorf("%s: reading the code of %s: %w", b.Path, f.Name, err)
	}
	return code, nil
}

// Returns lists the link-time addresses of f's RET instructions, found by
// decoding its machine code from its entry: a probe on any other byte
// would break an instruction, so an instruction that cannot be decoded
// fails the whole function.
func (b *Binary) Returns(f Func) ([]uint64, error) {
	code, err := b.Code(f)
	if err != nil {
		return nil, err
	}
	offs, err := returns(b.Arch, code)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", b.Path, f.Name, err)
	}
	addrs := make([]uint64, len(offs))
	for i, o := range offs {
		addrs[i] = f.Entry + uint64(o)
	}
	return addrs, nil
}

// Field names a field of a struct type as DWARF names them: the type with
// its package path ("crypto/tls.Conn"), the field as declared ("conn").
type Field struct {
	Struct, Name string
}

// FieldOffsets returns the byte offsets of fields in their structs, read
// from DWARF in one pass; ErrNoDWARF when the binary has none.
func (b *Binary) FieldOffsets(fields ...Field) ([]int64, error) {
	if b.dwarf == nil {
		if b.elf.Section(".debug_info") == nil && b.elf.Section(".zdebug_info") == nil {
			return nil, ErrNoDWARF
		}
		d, err := b.elf.DWARF()
		if err != nil {
			return nil, fmt.Errorf("%s: reading DWARF: %w", b.Path, err)
		}
		b.dwarf = d
	}
	want := map[string]map[string]int{} // struct -> field -> index in fields
	for i, f := range fields {
		if want[f.Struct] == nil {
			want[f.Struct] = map[string]int{}
		}
		want[f.Struct][f.Name] = i
	}
	offs := make([]int64, len(fields))
	found := make([]bool, len(fields))
	r := b.dwarf.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: reading DWARF: %w", b.Path, err)
		}
		if e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType {
			if e.Tag != dwarf.TagCompileUnit && e.Children {
				r.SkipChildren()
			}
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		members, ok := want[name]
		if !ok || !e.Children {
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		if err := readMembers(r, members, offs, found); err != nil {
			return nil, fmt.Errorf("%s: struct %s: %w", b.Path, name, err)
		}
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("%s: DWARF has no field %s.%s", b.Path, fields[i].Struct, fields[i].Name)
		}
	}
	return offs, nil
}

// readMembers reads the members of the struct whose children r is at.
func readMembers(r *dwarf.Reader, members map[string]int, offs []int64, found []bool) error {
	for {
		m, err := r.Next()
		if err != nil {
			return err
		}
		if m == nil || m.Tag == 0 {
			return nil
		}
		if m.Children {
			r.SkipChildren()
		}
		if m.Tag != dwarf.TagMember {
			continue
		}
		name, _ := m.Val(dwarf.AttrName).(string)
		i, ok := members[name]
		if !ok {
			continue
		}
		off, ok := m.Val(dwarf.AttrDataMemberLoc).(int64)
		if !ok {
			return fmt.Errorf("field %s has no constant offset", name)
		}
		offs[i], found[i] = off, true
	}
}

// Version is a Go release: 1.26.8 is {1, 26, 8}.
type Version struct {
	Major, Minor, Patch int
}

// ParseVersion parses "go1.26.8", "go1.21rc2", "go1.22.1 X:boringcrypto"
// and the like.
func ParseVersion(s string) (Version, error) {
	rest, ok := strings.CutPrefix(s, "go")
	if !ok {
		return Version{}, fmt.Errorf("go version %q does not begin with \"go\"", s)
	}
	if i := strings.IndexAny(rest, " -+"); i >= 0 {
		rest = rest[:i]
	}
	var v Version
	for i, part := range strings.SplitN(rest, ".", 3) {
		if j := strings.IndexFunc(part, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			part = part[:j] // "21rc2"
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			return Version{}, fmt.Errorf("go version %q: %w", s, err)
		}
		*[]*int{&v.Major, &v.Minor, &v.Patch}[i] = n
	}
	return v, nil
}

// AtLeast reports whether v is release major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

func (v Version) String() string { return fmt.Sprintf("go%d.%d.%d", v.Major, v.Minor, v.Patch) }
