package bpf

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
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
	require.Len(t, tr.ProgramIDs(), 3)
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
	require.Len(t, tr.ProgramIDs(), 5)
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
