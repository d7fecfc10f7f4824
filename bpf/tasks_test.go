package bpf

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/gobinary"
)

// goid is the id of the calling goroutine, as its stack trace says.
func goid() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	n, _ := strconv.ParseUint(string(buf[:bytes.IndexByte(buf, ' ')]), 10, 64)
	return n
}

// selfAsGo tells the kernel this process is Go, and where its goroutines
// keep their ids; it returns the binary.
func selfAsGo(t *testing.T, tr *Tracer) *gobinary.Binary {
	t.Helper()
	if !TasksReadable() {
		t.Skip("the kernel gives no user registers to its programs (5.15)")
	}
	b, err := gobinary.Open(os.Args[0])
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	off, err := b.GoidOffset()
	require.NoError(t, err)
	require.NoError(t, tr.SetTaskProc(uint32(os.Getpid()), TaskProc{Runtime: TaskRuntimeGo, GoidOffset: off}))
	return b
}

// The goroutine that makes a syscall is read from the user registers the
// syscall saved, with no probe: the reader's and the writer's own ids.
func TestGoroutineAtSyscall(t *testing.T) {
	requireRoot(t)
	tr := loadSelectingSelf(t, Options{})
	selfAsGo(t, tr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	served := make(chan uint64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		served <- goid()
		r := bufio.NewReader(c)
		r.ReadString('\n')
		c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	}()
	wrote := make(chan uint64, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		wrote <- goid()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("GET /goroutine HTTP/1.1\r\nHost: x\r\n\r\n"))
		io.ReadAll(io.LimitReader(c, 27))
	}()
	<-done
	writer, server := <-wrote, <-served
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	seen := 0
	for _, ev := range eventsOf(t, tr) {
		switch {
		case ev.Kind == EventWrite && ev.Rport == port:
			require.Equal(t, writer, ev.Task, "the client's write")
			seen++
		case ev.Kind == EventRead && ev.Lport == port:
			require.Equal(t, server, ev.Task, "the server's read")
			seen++
		}
	}
	require.Equal(t, 2, seen)
}

// net/http's Transport writes a request from its connection's writeLoop
// goroutine: with the hand-off probed, the write counts as the asking
// goroutine's; on a connection made after the probes were placed (by its
// writer), and on one made before (by its descriptor).
func TestHandoffToTheAskingGoroutine(t *testing.T) {
	requireRoot(t)
	for _, older := range []bool{false, true} {
		t.Run(map[bool]string{false: "new-connection", true: "connection-older-than-the-probes"}[older], func(t *testing.T) {
			testHandoff(t, older)
		})
	}
}

func testHandoff(t *testing.T, older bool) {
	tr := loadSelectingSelf(t, Options{})
	b := selfAsGo(t, tr)
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	defer srv.Close()
	// One connection at most: a request must not dial anew while the kept
	// connection is still being put back in the idle pool.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	get := func() uint64 {
		var asker uint64
		done := make(chan struct{})
		go func() { // a goroutine of its own per request, as a server's handlers
			defer close(done)
			asker = goid()
			resp, err := client.Get("http://" + ln.Addr().String() + "/handoff")
			if err == nil {
				resp.Body.Close()
			}
		}()
		<-done
		return asker
	}
	if older {
		get() // its writer goroutine starts now, unprobed
	}
	k, err := tr.LoadTasks()
	require.NoError(t, err)
	defer k.Close()
	funcs, err := b.Funcs("net/http.(*persistConn).roundTrip", "net/http.(*persistConn).writeLoop")
	require.NoError(t, err)
	rt := funcs["net/http.(*persistConn).roundTrip"]
	h := GoHandoff{RoundTripAddr: rt.Entry, Conn: 80, TCPFD: 0, Sysfd: 16} // go1.21 to go1.26
	h.RoundTrip, err = b.FileOffset(rt.Entry)
	require.NoError(t, err)
	h.WriteLoop, err = b.FileOffset(funcs["net/http.(*persistConn).writeLoop"].Entry)
	require.NoError(t, err)
	probes, err := k.AttachGo(os.Args[0], h)
	require.NoError(t, err)
	defer probes.Close()
	eventsOf(t, tr) // what came before

	askers := make([]uint64, 3)
	for i := range askers {
		askers[i] = get()
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	var writers []uint64
	for _, ev := range eventsOf(t, tr) {
		if ev.Kind == EventWrite && ev.Rport == port {
			writers = append(writers, ev.Task)
		}
	}
	require.Equal(t, askers, writers, "each request's write is its asker's, over one kept connection")
	c, err := k.Counters()
	require.NoError(t, err)
	require.Equal(t, uint64(3), c.RoundTrip)
	if older {
		require.Zero(t, c.WriteLoop, "the kept connection's writer started before the probes")
	} else {
		// Its writer was probed; the process's other clients may start writers too.
		require.NotZero(t, c.WriteLoop)
	}
}
