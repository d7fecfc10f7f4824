package runtimes

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/gobinary"
)

var (
	serveOnce  sync.Once
	serveBuilt map[string]string
	serveErr   error
)

// buildServe builds testdata/goserve (grpc-go, net/http and x/net
// servers, with the module's releases of them) with DWARF, without it
// (-w), stripped of its symbol table too (-s -w), and so as a
// position-independent executable.
func buildServe(t *testing.T) map[string]string {
	t.Helper()
	serveOnce.Do(func() {
		dir, err := os.MkdirTemp("", "goserve")
		if err != nil {
			serveErr = err
			return
		}
		serveBuilt = map[string]string{}
		for name, args := range map[string][]string{"dwarf": nil, "nodwarf": {"-ldflags=-w"}, "stripped": {"-ldflags=-s -w"},
			"pie-stripped": {"-buildmode=pie", "-ldflags=-s -w"}} {
			out := filepath.Join(dir, name)
			cmd := exec.Command("go", append(append([]string{"build", "-o", out}, args...), "./testdata/goserve")...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				serveErr = errors.New(string(b))
				return
			}
			serveBuilt[name] = out
		}
	})
	require.NoError(t, serveErr)
	return serveBuilt
}

func servePointsOf(t *testing.T, path string) ([]bpf.GoServePoint, error) {
	t.Helper()
	b, err := gobinary.Open(path)
	require.NoError(t, err)
	defer b.Close()
	return goServe(b)
}

// The three handler entries are found with DWARF, and the tables give the
// same offsets without it (the releases of go.mod and the toolchain that
// runs the tests are in them); the offsets are the ones the sources show.
func TestGoServePoints(t *testing.T) {
	built := buildServe(t)
	withDWARF, err := servePointsOf(t, built["dwarf"])
	require.NoError(t, err)
	require.Len(t, withDWARF, 3)
	withoutDWARF, err := servePointsOf(t, built["nodwarf"])
	require.NoError(t, err)
	assert.Equal(t, withDWARF, withoutDWARF, "the tables agree with DWARF")

	b, err := gobinary.Open(built["dwarf"])
	require.NoError(t, err)
	defer b.Close()
	funcs, err := b.Funcs(grpcHandleStream, httpRunHandler, xnetRunHandler)
	require.NoError(t, err)
	tcp, err := b.Symbol("go:itab.*net.TCPConn,net.Conn")
	require.NoError(t, err)
	transport, err := b.Symbol(serveEntries[0].transport.symbols[0])
	require.NoError(t, err)
	tlsItab, err := b.Symbol(serveWraps[0].itab.symbols[0])
	require.NoError(t, err)
	grpcTLSItab, err := b.Symbol(serveWraps[1].itab.symbols[0])
	require.NoError(t, err)
	h2cItab, err := b.Symbol(serveWraps[2].itab.symbols[0])
	require.NoError(t, err)
	wraps := []bpf.GoWrap{{Itab: tlsItab, Conn: 0}, {Itab: grpcTLSItab, Conn: 0}, {Itab: h2cItab, Conn: 0}}
	for i, want := range []bpf.GoServePoint{
		{Kind: bpf.GoServeGRPC, Addr: funcs[grpcHandleStream].Entry, TCPItab: tcp, TransportItab: transport,
			Conn: 16, TCPFD: 0, Sysfd: 16, ID: 108, Wraps: wraps},
		{Kind: bpf.GoServeH2, Addr: funcs[httpRunHandler].Entry, TCPItab: tcp, Conn: 16, TCPFD: 0, Sysfd: 16,
			RWS: 0, Stream: 0, ID: 8, Wraps: wraps},
		{Kind: bpf.GoServeH2, Addr: funcs[xnetRunHandler].Entry, TCPItab: tcp, Conn: 16, TCPFD: 0, Sysfd: 16,
			RWS: 0, Stream: 0, ID: 8, Wraps: wraps},
	} {
		got := withDWARF[i]
		assert.NotZero(t, got.Offset)
		want.Offset = got.Offset
		assert.Equal(t, want, got, "point %d", i)
	}
}

// Without the symbol table (go test's binaries), the itabs are found
// by their methods, and are the ones the symbols name; a
// position-independent executable's itab pointers are made at load:
// nothing is probed in one without symbols, and the error says why.
func TestGoServeStripped(t *testing.T) {
	built := buildServe(t)
	withDWARF, err := servePointsOf(t, built["dwarf"])
	require.NoError(t, err)
	stripped, err := servePointsOf(t, built["stripped"])
	require.NoError(t, err)
	assert.Equal(t, withDWARF, stripped)

	points, err := servePointsOf(t, built["pie-stripped"])
	assert.Empty(t, points)
	assert.ErrorIs(t, err, gobinary.ErrNoSymbols)
}

// A release the tables do not know, without DWARF, is not probed: no
// offset is guessed.
func TestGoServeUnknownRelease(t *testing.T) {
	b, err := gobinary.Open(buildServe(t)["nodwarf"])
	require.NoError(t, err)
	defer b.Close()
	b.Build.Deps = nil // the module's release comes from its files' paths then: still known
	points, err := goServe(b)
	require.NoError(t, err)
	assert.Len(t, points, 3)

	b.Version = gobinary.Version{Major: 1, Minor: 27}
	points, err = goServe(b)
	assert.Empty(t, points)
	assert.ErrorContains(t, err, "go1.21 to go1.26")

	for i := range serveEntries {
		known := serveEntries[i].known
		serveEntries[i].known = func(int) ([]uint32, bool) { return nil, false }
		defer func() { serveEntries[i].known = known }()
	}
	b.Version = gobinary.Version{Major: 1, Minor: 26}
	points, err = goServe(b)
	assert.Empty(t, points)
	assert.ErrorContains(t, err, "google.golang.org/grpc@v1.85.0")
	assert.ErrorContains(t, err, "is not known here")
}

// The manager probes the handlers of a Go server binary, and logs once
// what it could not.
func TestGoServeProbed(t *testing.T) {
	k := newFakeKernel()
	core, logs := observer.New(zap.InfoLevel)
	m := New(k, Options{Tasks: true, Logger: zap.New(core)})
	f, ok := m.examineGo(buildServe(t)["dwarf"])
	require.True(t, ok)
	require.NoError(t, f.why)
	k.mu.Lock()
	require.Len(t, k.serve, 1)
	assert.Len(t, k.serve[0], 3)
	k.mu.Unlock()
	assert.Equal(t, 1, logs.FilterMessage("task probes attached").Len())

	k = newFakeKernel()
	core, logs = observer.New(zap.InfoLevel)
	m = New(k, Options{Tasks: true, Logger: zap.New(core)})
	_, ok = m.examineGo(buildServe(t)["pie-stripped"])
	require.True(t, ok)
	assert.Empty(t, k.serve)
	assert.Equal(t, 1, logs.FilterMessageSnippet("cannot be probed").Len())
}
