package gobinary

import (
	"debug/elf"
	"debug/gosym"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tlsProgram is a tiny Go program that uses crypto/tls.
const tlsProgram = `package main

import (
	"crypto/tls"
	"fmt"
	"os"
)

func main() {
	c, err := tls.Dial("tcp", os.Args[1], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	b := make([]byte, 100)
	c.Read(b)
}
`

var (
	buildOnce sync.Once
	built     map[string]string
	buildErr  error
)

// buildTLSProgram builds tlsProgram as it comes, without DWARF and symbol
// table (-ldflags=-s -w), and as a position-independent executable.
func buildTLSProgram(t *testing.T) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gobinary")
		if err != nil {
			buildErr = err
			return
		}
		src := filepath.Join(dir, "main.go")
		if buildErr = os.WriteFile(src, []byte(tlsProgram), 0o644); buildErr != nil {
			return
		}
		built = map[string]string{}
		for name, args := range map[string][]string{
			"plain":    nil,
			"stripped": {"-ldflags=-s -w"},
			"pie":      {"-buildmode=pie"},
		} {
			out := filepath.Join(dir, name)
			cmd := exec.Command("go", append(append([]string{"build", "-o", out}, args...), src)...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GO111MODULE=off", "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				buildErr = errors.New(string(b))
				return
			}
			built[name] = out
		}
	})
	require.NoError(t, buildErr)
	return built
}

func TestReturnsOfTLSConn(t *testing.T) {
	if _, ok := abis[runtime.GOARCH]; !ok {
		t.Skip("no decoder for", runtime.GOARCH)
	}
	for name, path := range buildTLSProgram(t) {
		t.Run(name, func(t *testing.T) {
			b, err := Open(path)
			require.NoError(t, err)
			defer b.Close()
			assert.Equal(t, runtime.Version(), b.GoVersion)
			assert.Equal(t, runtime.GOARCH, b.Arch)
			assert.Equal(t, name == "stripped", b.Stripped())
			abi, err := b.RegisterABI()
			require.NoError(t, err)
			assert.NotEmpty(t, abi.IntArgs)
			for _, fn := range []string{"crypto/tls.(*Conn).Read", "crypto/tls.(*Conn).Write"} {
				f, ok := b.Func(fn)
				require.True(t, ok, fn)
				rets, err := b.Returns(f)
				require.NoError(t, err)
				require.NotEmpty(t, rets, fn)
				code, err := b.Code(f)
				require.NoError(t, err)
				for _, r := range rets {
					require.Less(t, r, f.End)
					require.GreaterOrEqual(t, r, f.Entry)
					if runtime.GOARCH == "amd64" {
						assert.Equal(t, byte(0xc3), code[r-f.Entry], "%s: RET at %#x", fn, r)
					}
					off, err := b.FileOffset(r)
					require.NoError(t, err)
					entry, err := b.FileOffset(f.Entry)
					require.NoError(t, err)
					assert.Equal(t, r-f.Entry, off-entry)
				}
			}
		})
	}
}

// The layout the TLS probes read, from DWARF, and the itab that tells a
// TCP connection, from the symbol table; neither in a stripped binary.
func TestFieldOffsetsAndSymbols(t *testing.T) {
	paths := buildTLSProgram(t)
	b, err := Open(paths["plain"])
	require.NoError(t, err)
	defer b.Close()
	offs, err := b.FieldOffsets(
		Field{"crypto/tls.Conn", "conn"}, Field{"net.TCPConn", "conn"}, Field{"net.conn", "fd"},
		Field{"net.netFD", "pfd"}, Field{"internal/poll.FD", "Sysfd"})
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 0, 0, 0, 16}, offs)
	_, err = b.FieldOffsets(Field{"net.netFD", "nosuchfield"})
	assert.ErrorContains(t, err, "no field net.netFD.nosuchfield")
	itab, err := b.Symbol("go:itab.*net.TCPConn,net.Conn")
	require.NoError(t, err)
	assert.NotZero(t, itab)

	s, err := Open(paths["stripped"])
	require.NoError(t, err)
	defer s.Close()
	_, err = s.FieldOffsets(Field{"crypto/tls.Conn", "conn"})
	assert.ErrorIs(t, err, ErrNoDWARF)
	_, err = s.Symbol("go:itab.*net.TCPConn,net.Conn")
	assert.ErrorIs(t, err, ErrNoSymbols)
}

func TestNotGo(t *testing.T) {
	_, err := Open("/bin/sh")
	assert.ErrorIs(t, err, ErrNotGo)
	_, err = Open("/nonexistent")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]Version{
		"go1.26.8": {1, 26, 8}, "go1.21rc2": {1, 21, 0}, "go1.22.1 X:boringcrypto": {1, 22, 1}, "go1.17": {1, 17, 0},
	} {
		v, err := ParseVersion(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, v, s)
	}
	_, err := ParseVersion("devel +abc")
	assert.Error(t, err)
	assert.True(t, Version{1, 17, 0}.AtLeast(1, 17))
	assert.False(t, Version{1, 16, 9}.AtLeast(1, 17))
	assert.True(t, Version{2, 0, 0}.AtLeast(1, 17))
}

func TestReturnsDecoding(t *testing.T) {
	// sub rsp,8; ret; int3; int3; ret
	rets, err := returns("amd64", []byte{0x48, 0x83, 0xec, 0x08, 0xc3, 0xcc, 0xcc, 0xc3})
	require.NoError(t, err)
	assert.Equal(t, []int{4, 7}, rets)
	for _, bad := range [][]byte{{0xc3, 0x0f}, {0xc3, 0x48}, {0xff, 0xff}} { // truncated, unknown
		_, err = returns("amd64", bad)
		assert.Error(t, err, "% x", bad)
	}
	// nop; ret (x30); ret x1
	rets, err = returns("arm64", []byte{0x1f, 0x20, 0x03, 0xd5, 0xc0, 0x03, 0x5f, 0xd6, 0x20, 0x00, 0x5f, 0xd6})
	require.NoError(t, err)
	assert.Equal(t, []int{4, 8}, rets)
	_, err = returns("riscv64", nil)
	assert.Error(t, err)
}

// The piecemeal reading of the pclntab and of the symbol table finds what
// debug/gosym and debug/elf find reading them whole.
func TestLookupsAgreeWithTheStandardLibrary(t *testing.T) {
	for name, path := range buildTLSProgram(t) {
		t.Run(name, func(t *testing.T) {
			b, err := Open(path)
			require.NoError(t, err)
			defer b.Close()
			data, err := b.elf.Section(".gopclntab").Data()
			require.NoError(t, err)
			table, err := gosym.NewTable(nil, gosym.NewLineTable(data, b.elf.Section(".text").Addr))
			require.NoError(t, err)
			names := []string{"runtime.main", "crypto/tls.(*Conn).Read", "main.main", "no.such.function",
				table.Funcs[0].Name, table.Funcs[len(table.Funcs)-1].Name}
			found, err := b.Funcs(names...)
			require.NoError(t, err)
			for _, n := range names {
				want := table.LookupFunc(n)
				if want == nil {
					assert.NotContains(t, found, n)
					continue
				}
				assert.Equal(t, Func{Name: n, Entry: want.Entry, End: want.End}, found[n], n)
			}
			if b.Stripped() {
				return
			}
			all, err := b.elf.Symbols()
			require.NoError(t, err)
			syms, err := LookupSymbols(b.elf, elf.SHT_SYMTAB, "runtime.main", "go:itab.*net.TCPConn,net.Conn", "nope")
			require.NoError(t, err)
			assert.Len(t, syms, 2)
			for _, s := range all {
				if got, ok := syms[s.Name]; ok {
					assert.Equal(t, s, got)
				}
			}
		})
	}
}

func TestLookupSymbolsInALibrary(t *testing.T) {
	const libssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
	f, err := elf.Open(libssl)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	syms, err := LookupSymbols(f, elf.SHT_DYNSYM, "SSL_read", "SSL_write", "SSL_nothing")
	require.NoError(t, err)
	require.Len(t, syms, 2)
	all, err := f.DynamicSymbols()
	require.NoError(t, err)
	for _, s := range all {
		if s.Name == "SSL_read" {
			assert.Equal(t, s.Value, syms["SSL_read"].Value)
			assert.Equal(t, elf.STT_FUNC, elf.ST_TYPE(syms["SSL_read"].Info))
		}
	}
	_, err = LookupSymbols(f, elf.SHT_SYMTAB, "SSL_read")
	assert.ErrorIs(t, err, ErrNoSymbols, "Debian strips its libraries' symbol tables")
}
