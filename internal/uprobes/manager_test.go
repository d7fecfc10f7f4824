package uprobes

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/gobinary"
)

func TestParseMaps(t *testing.T) {
	maps := `55d4c0a00000-55d4c0a02000 r--p 00000000 fe:00 247278 /usr/bin/python3.11
55d4c0a02000-55d4c0b00000 r-xp 00002000 fe:00 247278 /usr/bin/python3.11
7f0000000000-7f0000100000 r-xp 00020000 fe:00 1001 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f0000200000-7f0000300000 r-xp 00020000 fe:00 1001 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f0000400000-7f0000500000 r-xp 00000000 00:00 0
7f0000600000-7f0000700000 r-xp 00000000 fe:00 1002 /tmp/lib dir/libssl.so.3 (deleted)
7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0 [vdso]
garbage
`
	got, err := parseMaps(strings.NewReader(maps))
	require.NoError(t, err)
	assert.Equal(t, []mapping{
		{id: fileID{"fe:00", 247278}, start: 0x55d4c0a02000, end: 0x55d4c0b00000, path: "/usr/bin/python3.11"},
		{id: fileID{"fe:00", 1001}, start: 0x7f0000000000, end: 0x7f0000100000, path: "/usr/lib/x86_64-linux-gnu/libssl.so.3"},
		{id: fileID{"fe:00", 1002}, start: 0x7f0000600000, end: 0x7f0000700000, path: "/tmp/lib dir/libssl.so.3"},
	}, got)
	assert.Equal(t, "/proc/42/map_files/7f0000000000-7f0000100000", mapFile("/proc", 42, got[1]))
}

func TestLibraryNames(t *testing.T) {
	for path, want := range map[string]bool{
		"/usr/lib/x86_64-linux-gnu/libssl.so.3": true, "/usr/lib/libssl.so.1.1": true,
		"/usr/lib/x86_64-linux-gnu/libssl3.so": false, // NSS
		"/usr/lib/libcrypto.so.3":              false, "/usr/lib/libboringssl.so": true,
	} {
		assert.Equal(t, want, maybeOpenSSL(path), path)
	}
	assert.Equal(t, "libgnutls", unsupportedTLS("/usr/lib/x86_64-linux-gnu/libgnutls.so.30"))
	assert.Equal(t, "libnss3", unsupportedTLS("/usr/lib/x86_64-linux-gnu/libnss3.so"))
	assert.Equal(t, "", unsupportedTLS("/usr/lib/x86_64-linux-gnu/libssl.so.3"))
}

const systemLibssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3"

func TestOpenSSLFuncs(t *testing.T) {
	if _, err := os.Stat(systemLibssl); err != nil {
		t.Skip("no", systemLibssl)
	}
	funcs, err := opensslFuncs(systemLibssl)
	require.NoError(t, err)
	assert.Len(t, funcs, len(bpf.SSLSymbols), "OpenSSL 3 has every function probed")
	for fn, off := range funcs {
		assert.NotZero(t, off, bpf.SSLSymbols[fn])
	}
	_, err = opensslFuncs("/bin/sh")
	assert.ErrorIs(t, err, errNoSSL)
	// Node.js embeds OpenSSL and exports its functions: its executable is
	// probed itself.
	if node, err := exec.LookPath("node"); err == nil {
		node, _ = filepath.EvalSymlinks(node)
		if funcs, err := opensslFuncs(node); err == nil {
			assert.Contains(t, funcs, bpf.SSLRead)
		} else {
			assert.ErrorIs(t, err, errNoSSL, "node links libssl instead")
		}
	}
}

// fakeKernel records what is attached and detached.
type fakeKernel struct {
	mu       sync.Mutex
	attached map[string]int // path -> attachments not closed
	total    int
	goTarget bpf.GoTarget
	fail     error
}

type fakeCloser struct {
	k    *fakeKernel
	name string
}

func (c fakeCloser) Close() error {
	c.k.mu.Lock()
	defer c.k.mu.Unlock()
	c.k.attached[c.name]--
	if c.k.attached[c.name] == 0 {
		delete(c.k.attached, c.name)
	}
	return nil
}

func (k *fakeKernel) attach(kind, path string) (io.Closer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return nil, k.fail
	}
	// The path is a map_files link: name the file it leads to.
	target, err := os.Readlink(path)
	if err != nil {
		return nil, err
	}
	name := kind + " " + target
	k.attached[name]++
	k.total++
	return fakeCloser{k, name}, nil
}

func (k *fakeKernel) AttachOpenSSL(path string, funcs map[bpf.SSLFunc]uint64) (io.Closer, error) {
	return k.attach("openssl", path)
}

func (k *fakeKernel) AttachGo(path string, target bpf.GoTarget) (io.Closer, error) {
	k.mu.Lock()
	k.goTarget = target
	k.mu.Unlock()
	return k.attach("go", path)
}

func (k *fakeKernel) snapshot() (map[string]int, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := map[string]int{}
	for n, c := range k.attached {
		m[n] = c
	}
	return m, k.total
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("reading other processes' map_files needs root, which CI has")
	}
	t.Skip("reading other processes' map_files needs root")
}

// startProcess runs cmd until the test ends, once it printed a line.
func startProcess(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make([]byte, 64)
	n, err := out.Read(line)
	require.NoError(t, err, "%v printed nothing", cmd.Args)
	require.Contains(t, string(line[:n]), "ready")
	return cmd.Process.Pid
}

func pythonWithSSL(t *testing.T) int {
	t.Helper()
	return startProcess(t, exec.Command("/usr/bin/python3", "-c", "import ssl, sys, time; print('ready', flush=True); time.sleep(60)"))
}

func startTime(t *testing.T, pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	var start uint64
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	_, err = fmt.Sscan(fields[19], &start)
	require.NoError(t, err)
	return start
}

// Two processes map one libssl: it is probed once, and its probes go with
// the last of them. A later process is probed again.
func TestOneProbePerFile(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	k := &fakeKernel{attached: map[string]int{}}
	var mu sync.Mutex
	var results []Result
	m := New(k, Options{OnResult: func(r Result) { mu.Lock(); results = append(results, r); mu.Unlock() }})
	m.Start()
	defer m.Close()

	a, b := pythonWithSSL(t), pythonWithSSL(t)
	m.Add(a, startTime(t, a))
	m.Add(b, startTime(t, b))
	m.Add(a, startTime(t, a)) // again: nothing new
	m.Sync()
	attached, total := k.snapshot()
	require.Len(t, attached, 1, "%v", attached)
	for name, n := range attached {
		assert.True(t, strings.HasPrefix(name, "openssl /") && strings.Contains(name, "libssl.so"), name)
		assert.Equal(t, 1, n)
	}
	assert.Equal(t, 1, total)
	assert.Equal(t, Counts{Probed: 2, SocketOnly: map[string]int{}}, m.Counts())
	assert.Len(t, m.Probed(), 1)
	mu.Lock()
	require.Len(t, results, 3)
	assert.Len(t, results[0].Probed, 1)
	assert.Empty(t, results[0].SocketOnly)
	mu.Unlock()

	m.Remove(a, startTime(t, a))
	m.Remove(b, 12345) // another process that had pid b: not b
	m.Sync()
	attached, _ = k.snapshot()
	assert.Len(t, attached, 1, "b still maps it")
	m.Remove(b, startTime(t, b))
	m.Sync()
	attached, _ = k.snapshot()
	assert.Empty(t, attached, "the last process is gone")
	assert.Equal(t, Counts{SocketOnly: map[string]int{}}, m.Counts())
	assert.Empty(t, m.Probed())

	c := pythonWithSSL(t)
	m.Add(c, startTime(t, c))
	m.Sync()
	_, total = k.snapshot()
	assert.Equal(t, 2, total)
}

// A refused attachment is a socket-only process, never an error of the
// receiver's.
func TestAttachFailureIsSocketOnly(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	k := &fakeKernel{attached: map[string]int{}, fail: errors.New("no uprobes here")}
	m := New(k, Options{})
	m.Start()
	defer m.Close()
	p := pythonWithSSL(t)
	m.Add(p, startTime(t, p))
	m.Sync()
	assert.Equal(t, Counts{SocketOnly: map[string]int{ReasonAttach: 1}}, m.Counts())
	m.Remove(p, startTime(t, p))
	m.Sync()
	assert.Equal(t, Counts{SocketOnly: map[string]int{}}, m.Counts())
}

// A Go program that uses crypto/tls: its executable gets entry and RET
// probes, with the layout from DWARF when it has it, from its Go version
// when stripped.
func TestGoProgram(t *testing.T) {
	requireRoot(t)
	for _, flavour := range []string{"plain", "stripped"} {
		t.Run(flavour, func(t *testing.T) {
			bin := buildGoProgram(t, flavour)
			k := &fakeKernel{attached: map[string]int{}}
			m := New(k, Options{})
			m.Start()
			defer m.Close()
			pid := startProcess(t, exec.Command(bin))
			m.Add(pid, startTime(t, pid))
			m.Sync()
			attached, _ := k.snapshot()
			require.Equal(t, map[string]int{"go " + bin: 1}, attached)
			g := k.goTarget
			assert.NotEmpty(t, g.Read.Returns)
			assert.NotEmpty(t, g.Write.Returns)
			assert.NotZero(t, g.Read.Entry)
			assert.Equal(t, uint32(16), g.Sysfd)
			assert.Equal(t, flavour == "plain", g.Itab != 0, "the itab comes from the symbol table")
		})
	}
}

// The layout table agrees with what DWARF says of the toolchain at hand,
// when it is one the table covers.
func TestLayoutTableMatchesDWARF(t *testing.T) {
	b, err := gobinary.Open(buildGoProgram(t, "plain"))
	require.NoError(t, err)
	defer b.Close()
	var table bpf.GoTarget
	require.NoError(t, goLayout(b, &table))
	offs, err := b.FieldOffsets(goTLSFields...)
	require.NoError(t, err)
	assert.Equal(t, table.Conn, uint32(offs[0]))
	assert.Equal(t, table.TCPFD, uint32(offs[1]+offs[2]))
	assert.Equal(t, table.Sysfd, uint32(offs[3]+offs[4]))
}

// A Go program that does not use crypto/tls is not probed, and not
// counted: it has no TLS to miss.
func TestGoProgramWithoutTLS(t *testing.T) {
	b, err := gobinary.Open(os.Args[0]) // this test binary
	require.NoError(t, err)
	defer b.Close()
	_, err = goTarget(b)
	if err != nil {
		assert.ErrorIs(t, err, errNoGoTLS)
	}
}

var (
	goBuildMu sync.Mutex
	goBuilt   = map[string]string{}
)

// buildGoProgram builds a Go program that makes a TLS connection object
// and waits.
func buildGoProgram(t *testing.T, flavour string) string {
	t.Helper()
	goBuildMu.Lock()
	defer goBuildMu.Unlock()
	if p, ok := goBuilt[flavour]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "uprobes-go")
	require.NoError(t, err)
	src := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(src, []byte(`package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	c := tls.Client(a, &tls.Config{})
	fmt.Println("ready")
	if len(fmt.Sprint(c)) < 0 {
		c.Write(nil)
		c.Read(nil)
	}
	time.Sleep(time.Minute)
}
`), 0o644))
	out := filepath.Join(dir, flavour)
	args := []string{"build", "-o", out}
	if flavour == "stripped" {
		args = append(args, "-ldflags=-s -w")
	}
	cmd := exec.Command("go", append(args, src)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GO111MODULE=off", "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	goBuilt[flavour] = out
	return out // kept for the other tests; TestMain removes it
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, p := range goBuilt {
		os.RemoveAll(filepath.Dir(p))
	}
	os.Exit(code)
}
