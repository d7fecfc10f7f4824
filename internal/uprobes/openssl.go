package uprobes

import (
	"debug/elf"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/gobinary"
)

// errNoSSL: the file defines no SSL functions (it is not OpenSSL).
var errNoSSL = errors.New("no SSL functions")

// opensslFuncs finds the SSL functions the probes know in the ELF file at
// path and returns their file offsets. It looks at the exported symbols
// first (a shared libssl, or an executable that embeds and exports it,
// such as Node.js), then at the symbol table. errNoSSL (wrapped) when the
// file defines none; an error naming what is missing when it defines some
// but not SSL_read and SSL_write.
func opensslFuncs(path string) (map[bpf.SSLFunc]uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := map[string]bpf.SSLFunc{}
	var names []string
	for fn, name := range bpf.SSLSymbols {
		want[name] = fn
		names = append(names, name)
	}
	funcs := map[bpf.SSLFunc]uint64{}
	for _, table := range []elf.SectionType{elf.SHT_DYNSYM, elf.SHT_SYMTAB} {
		syms, err := gobinary.LookupSymbols(f, table, names...)
		if err != nil && !errors.Is(err, gobinary.ErrNoSymbols) {
			return nil, fmt.Errorf("%s: reading symbols: %w", path, err)
		}
		for name, s := range syms {
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 {
				continue
			}
			if off, ok := fileOffset(f, s.Value); ok {
				funcs[want[name]] = off
			}
		}
		if len(funcs) == len(want) {
			break
		}
	}
	_, read := funcs[bpf.SSLRead]
	_, write := funcs[bpf.SSLWrite]
	switch {
	case len(funcs) == 0:
		return nil, fmt.Errorf("%s: %w", path, errNoSSL)
	case !read || !write:
		return nil, fmt.Errorf("%s: defines SSL functions but not SSL_read and SSL_write", path)
	}
	return funcs, nil
}

// fileOffset is where the code at address addr lies in the file.
func fileOffset(f *elf.File, addr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= addr && addr < p.Vaddr+p.Filesz {
			return addr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// unsupportedTLS names the TLS library a file is by its name, for the
// libraries the probes do not know: a process that maps one of them and
// no OpenSSL is traced at the socket level only.
func unsupportedTLS(path string) string {
	base := filepath.Base(path)
	for _, lib := range []string{"libgnutls", "libnss3", "libwolfssl", "libmbedtls", "libs2n", "libbotan"} {
		if strings.HasPrefix(base, lib+".so") || strings.HasPrefix(base, lib+"-") {
			return lib
		}
	}
	return ""
}

// maybeOpenSSL says whether a mapped file may define the SSL functions:
// libssl itself (OpenSSL 1.1, 3.x, BoringSSL's shared build), not NSS's
// libssl3.so, whose SSL functions are others.
func maybeOpenSSL(path string) bool {
	base := filepath.Base(path)
	return strings.HasPrefix(base, "libssl.so") || strings.HasPrefix(base, "libssl-") ||
		strings.HasPrefix(base, "libboringssl")
}
