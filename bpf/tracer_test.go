package bpf

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestHeaderSizeMatchesGeneratedLayout(t *testing.T) {
	require.Equal(t, uintptr(HeaderSize), unsafe.Offsetof(Event{}.Data))
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run as root to load eBPF programs")
		}
		t.Skip("loading eBPF programs needs root")
	}
}

func TestLoadAttachClose(t *testing.T) {
	requireRoot(t)
	tr, err := Load(Options{SelfTgid: uint32(os.Getpid()), RingBufferSize: 1 << 16})
	require.NoError(t, err)
	require.Len(t, tr.ProgramIDs(), 5) // syscall entry and exit; process exit, fork and exec
	for _, pid := range []uint32{1, 63, 64, 4242} {
		require.NoError(t, tr.Select(pid))
	}
	require.NoError(t, tr.Deselect(63))
	require.NoError(t, tr.Deselect(7)) // never selected: fine
	sel, err := tr.Selected()
	require.NoError(t, err)
	require.Equal(t, []uint32{1, 64, 4242}, sel)
	require.Error(t, tr.Select(1<<30), "beyond pid_max")
	require.NoError(t, tr.Close())
}

func TestLoadWithPropagation(t *testing.T) {
	requireRoot(t)
	tr, err := Load(Options{SelfTgid: uint32(os.Getpid()), RingBufferSize: 1 << 16, Propagate: true})
	require.NoError(t, err)
	defer tr.Close()
	require.NoError(t, tr.PropagationErr)
	require.Len(t, tr.ProgramIDs(), 7)
}

// Kernels before 5.12 get the programs' older paths (hash map of syscall
// arguments, helper reads of the task): they must load and report traffic
// here too.
func TestCompatPathsReportTraffic(t *testing.T) {
	requireRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go echoHead(t, ln)
	tr := loadSelectingSelf(t, Options{compat: true, Propagate: true})
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET /compat HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	_, err = http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	var kinds []uint8
	for _, ev := range eventsOf(t, tr) {
		if ev.Rport == port || ev.Lport == port {
			kinds = append(kinds, ev.Kind)
		}
	}
	// client write, server read, server writes (head and body), client read
	require.Subset(t, kinds, []uint8{EventWrite, EventRead})
	require.GreaterOrEqual(t, len(kinds), 4, "%v", kinds)
	names := map[string]bool{}
	for _, m := range tr.TrackingMaps() {
		names[m.Name] = true
	}
	require.True(t, names["serving"], "before 5.12 the served requests are in a hash map, listed")
}

// A peek (recv with MSG_PEEK, by recvfrom or recvmsg) is no event: the
// bytes it saw are reported once, by the read that takes them. curl peeks
// a byte to see whether a connection lives; reported, that byte would be
// read twice and the connection's parser would lose its place.
func TestPeekIsNotReported(t *testing.T) {
	requireRoot(t)
	tr := loadSelectingSelf(t, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	const sent = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	_, err = s.Write([]byte(sent))
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	var got []byte
	require.NoError(t, raw.Read(func(fd uintptr) bool {
		peek := make([]byte, 1)
		_, _, err := unix.Recvfrom(int(fd), peek, unix.MSG_PEEK)
		require.NoError(t, err)
		_, _, _, _, err = unix.RecvmsgBuffers(int(fd), [][]byte{make([]byte, 8)}, nil, unix.MSG_PEEK)
		require.NoError(t, err)
		buf := make([]byte, 100)
		n, _, err := unix.Recvfrom(int(fd), buf, 0)
		require.NoError(t, err)
		got = buf[:n]
		return true
	}))
	require.Equal(t, sent, string(got))
	port := uint16(c.LocalAddr().(*net.TCPAddr).Port)
	var reads []uint32
	for _, ev := range eventsOf(t, tr) {
		if ev.Kind == EventRead && ev.Lport == port {
			reads = append(reads, ev.Len)
		}
	}
	require.Equal(t, []uint32{uint32(len(sent))}, reads, "one read event, of the bytes read once")
}

// A process the selected one forks is selected with it from its first
// syscall, and user space is told who forked it; when it runs a new
// program (exec) it is deselected, and told: its exit is not reported.
func TestForkInheritsSelection(t *testing.T) {
	requireRoot(t)
	tr := loadSelectingSelf(t, Options{})
	cmd := exec.Command(os.Args[0], "-test.run=^$") // os/exec forks (vfork), then execs; it runs no test
	require.NoError(t, cmd.Start())
	child := uint32(cmd.Process.Pid)
	require.NoError(t, cmd.Wait())

	var got []Event
	recordsUntilQuiet(t, tr, func(raw []byte) {
		if ev := header(raw); ev.Pid == child {
			got = append(got, ev)
		}
	})
	require.Len(t, got, 2, "fork, then exec; no exit: it was no longer selected")
	assert.Equal(t, EventFork, got[0].Kind)
	assert.Equal(t, uint32(os.Getpid()), got[0].Fd, "forked by the selected process")
	assert.Equal(t, EventExec, got[1].Kind)
	sel, err := tr.Selected()
	require.NoError(t, err)
	assert.NotContains(t, sel, child)
	assert.Contains(t, sel, uint32(os.Getpid()))
}
