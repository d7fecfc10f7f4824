package runtimes

import (
	"encoding/binary"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/gobinary"
)

// useTransport makes the test binary use net/http's Transport, so that
// it has the functions the hand-off probes go on.
func useTransport() {
	if resp, err := http.Get("http://127.0.0.1:1/"); err == nil {
		resp.Body.Close()
	}
}

// TestMain lets the test binary be a process to read: with
// RUNTIMES_SLEEP set it only sleeps.
func TestMain(m *testing.M) {
	if os.Getenv("RUNTIMES_SLEEP") != "" {
		if os.Getenv("RUNTIMES_GET") != "" {
			useTransport()
		}
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeKernel records what the manager asks of the kernel.
type fakeKernel struct {
	mu      sync.Mutex
	procs   map[uint32]bpf.TaskProc
	goFiles []bpf.GoHandoff
	grpc    []bpf.GoGRPC
	serve   [][]bpf.GoServePoint
	node    []bpf.NodeProbes
	finding []int
	hooks   map[int]uint64
	open    int // attachments not closed
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{procs: map[uint32]bpf.TaskProc{}, hooks: map[int]uint64{}}
}

type fakeCloser struct{ k *fakeKernel }

func (c fakeCloser) Close() error {
	c.k.mu.Lock()
	defer c.k.mu.Unlock()
	c.k.open--
	return nil
}

func (k *fakeKernel) attached() io.Closer { k.open++; return fakeCloser{k} }

func (k *fakeKernel) SetTaskProc(tgid uint32, p bpf.TaskProc) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.procs[tgid] = p
	return nil
}

func (k *fakeKernel) ForgetTaskProc(tgid uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.procs, tgid)
}

func (k *fakeKernel) AttachGo(_ string, h bpf.GoHandoff) (io.Closer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.goFiles = append(k.goFiles, h)
	return k.attached(), nil
}

func (k *fakeKernel) AttachGoGRPC(_ string, g bpf.GoGRPC) (io.Closer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.grpc = append(k.grpc, g)
	return k.attached(), nil
}

func (k *fakeKernel) AttachGoServe(_ string, points []bpf.GoServePoint) (io.Closer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.serve = append(k.serve, points)
	return k.attached(), nil
}

func (k *fakeKernel) AttachNode(_ string, p bpf.NodeProbes) (io.Closer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.node = append(k.node, p)
	return k.attached(), nil
}

func (k *fakeKernel) FindNodeHooks(_ string, pid int, _ uint64) (io.Closer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.finding = append(k.finding, pid)
	return k.attached(), nil
}

func (k *fakeKernel) NodeHooks(pid int) (uint64, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	a, ok := k.hooks[pid]
	return a, ok
}

// sleeper starts the test binary as a process that sleeps.
func sleeper(t *testing.T) int {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "RUNTIMES_SLEEP=1")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// Two processes of one Go binary: its hand-off is probed once, with the
// goroutine id's offset the binary's release has, and the probes go with
// the last of them.
func TestGoBinaryIsProbedOnce(t *testing.T) {
	k := newFakeKernel()
	var results []Result
	var mu sync.Mutex
	m := New(k, Options{Tasks: true, OnResult: func(r Result) { mu.Lock(); results = append(results, r); mu.Unlock() }})
	m.Start()
	defer m.Close()
	a, b := sleeper(t), sleeper(t)
	m.Add(a, 1)
	m.Add(b, 2)
	m.Sync()

	self, err := gobinary.Open(os.Args[0])
	require.NoError(t, err)
	want, err := self.GoidOffset()
	self.Close()
	require.NoError(t, err)
	k.mu.Lock()
	assert.Len(t, k.goFiles, 1, "one file, probed once")
	assert.NotZero(t, k.goFiles[0].RoundTrip)
	assert.NotZero(t, k.goFiles[0].WriteLoop)
	assert.Equal(t, bpf.TaskProc{Runtime: bpf.TaskRuntimeGo, GoidOffset: want}, k.procs[uint32(a)])
	assert.Equal(t, k.procs[uint32(a)], k.procs[uint32(b)])
	assert.Equal(t, 1, k.open)
	k.mu.Unlock()
	mu.Lock()
	require.Len(t, results, 2)
	assert.Equal(t, Result{Pid: a, Start: 1, Kind: Go, Tasks: true, Handoff: true}, results[0])
	mu.Unlock()

	m.Remove(a, 99) // another process of that pid: nothing to do
	m.Remove(a, 1)
	m.Sync()
	k.mu.Lock()
	assert.Equal(t, 1, k.open, "b still runs it")
	assert.NotContains(t, k.procs, uint32(a))
	k.mu.Unlock()
	m.Remove(b, 2)
	m.Sync()
	k.mu.Lock()
	assert.Zero(t, k.open, "the probes went with the last process")
	assert.Empty(t, k.procs)
	k.mu.Unlock()
}

// Without the kernel's user registers, nothing is probed: the runtime is
// still read, and says what is missing.
func TestNoTaskRegisters(t *testing.T) {
	k := newFakeKernel()
	var got Result
	m := New(k, Options{OnResult: func(r Result) { got = r }})
	m.Start()
	defer m.Close()
	pid := sleeper(t)
	m.Add(pid, 1)
	m.Sync()
	assert.Empty(t, k.goFiles)
	assert.Equal(t, Go, got.Kind)
	assert.False(t, got.Tasks)
	assert.ErrorContains(t, got.Why, "bpf_task_pt_regs")
}

// Another runtime's process runs on threads.
func TestOtherRuntimeIsThreads(t *testing.T) {
	k := newFakeKernel()
	var got Result
	m := New(k, Options{Tasks: true, OnResult: func(r Result) { got = r }})
	m.Start()
	defer m.Close()
	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	m.Add(cmd.Process.Pid, 1)
	m.Sync()
	assert.Equal(t, Result{Pid: cmd.Process.Pid, Start: 1, Kind: Threads}, got)
	assert.Equal(t, bpf.TaskProc{Runtime: bpf.TaskRuntimeThreads}, k.procs[uint32(cmd.Process.Pid)])
}

// The Node.js binary here has what the probes need.
func TestNodeBinary(t *testing.T) {
	const node = "/usr/bin/node"
	if _, err := os.Stat(node); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node is needed in CI: %v", err)
		}
		t.Skip("no node here")
	}
	k := newFakeKernel()
	m := New(k, Options{Tasks: true})
	f := m.examine(node)
	require.NoError(t, f.why)
	assert.Equal(t, Node, f.kind)
	require.Len(t, k.node, 1)
	assert.NotZero(t, k.node[0].LLHTTPInit)
	assert.NotZero(t, k.node[0].TCPWrapNew)
	assert.NotZero(t, f.node.push)
	f.close()
}

// async_id_fields is found among the pointers of an AsyncHooks object by
// what it holds; another array of ids is no match.
func TestNodeFields(t *testing.T) {
	fields := []float64{57, 19, 60, -1}
	stack := []float64{1, 0, 19, 18} // async_ids_stack: ids too, but no -1
	uints := []uint32{1, 2, 3, 4, 5, 6, 7, 8}
	hooks := make([]uint64, asyncHooksSpan/8)
	hooks[0] = 0x55aa55aa55aa // a vtable, say
	hooks[3] = uint64(uintptr(unsafe.Pointer(&stack[0])))
	hooks[9] = uint64(uintptr(unsafe.Pointer(&uints[0])))
	hooks[17] = uint64(uintptr(unsafe.Pointer(&fields[0])))
	got, err := nodeFields("/proc", os.Getpid(), uint64(uintptr(unsafe.Pointer(&hooks[0]))))
	require.NoError(t, err)
	assert.Equal(t, hooks[17], got)

	hooks[20] = hooks[17] // the same array twice is still one
	got, err = nodeFields("/proc", os.Getpid(), uint64(uintptr(unsafe.Pointer(&hooks[0]))))
	require.NoError(t, err)
	assert.Equal(t, hooks[17], got)

	other := []float64{3, 1, 4, -1}
	hooks[30] = uint64(uintptr(unsafe.Pointer(&other[0])))
	_, err = nodeFields("/proc", os.Getpid(), uint64(uintptr(unsafe.Pointer(&hooks[0]))))
	assert.ErrorContains(t, err, "2 candidates", "two matches: none is trusted")
	keepAlive(fields, stack, other, uints, hooks)
}

//go:noinline
func keepAlive(...any) {}

func TestAsyncIDFields(t *testing.T) {
	enc := func(f ...float64) (b [32]byte) {
		for i, v := range f {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
		return b
	}
	assert.True(t, asyncIDFields(enc(0, 0, 1, -1)), "at start")
	assert.True(t, asyncIDFields(enc(120, 29, 140, -1)))
	assert.False(t, asyncIDFields(enc(120, 29, 100, -1)), "the counter is the largest")
	assert.False(t, asyncIDFields(enc(120.5, 29, 140, -1)), "ids are whole")
	assert.False(t, asyncIDFields(enc(120, 29, 140, 7)), "default trigger set")
	assert.False(t, asyncIDFields(enc(math.NaN(), 29, 140, -1)))
}

func TestAsyncID(t *testing.T) {
	assert.Equal(t, uint64(42), AsyncID(math.Float64bits(42)))
	assert.Zero(t, AsyncID(math.Float64bits(-1)))
	assert.Zero(t, AsyncID(math.Float64bits(0)))
	assert.Zero(t, AsyncID(math.Float64bits(math.Inf(1))))
	assert.Zero(t, AsyncID(0x7ff8000000000001)) // NaN
}
