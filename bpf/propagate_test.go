package bpf

import (
	"bufio"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/stretchr/testify/require"
)

// echoHead serves one connection: for each request it answers with the
// request head it received, byte for byte, as the body.
func echoHead(t *testing.T, ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		head, _ := io.ReadAll(req.Body) // the body is checked by its length
		var b []byte
		b = append(b, req.Method+" "+req.RequestURI+" "+req.Proto+"\r\n"...)
		if v := req.Header.Get("Traceparent"); v != "" {
			b = append(b, "Traceparent: "+v+"\r\n"...)
		}
		b = append(b, "Host: "+req.Host+"\r\n"...) // Go moves it out of Header
		if v := req.Header.Get("Content-Length"); v != "" {
			b = append(b, "Content-Length: "+v+"\r\n"...)
		}
		b = append(b, "body="...)
		b = append(b, head...)
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: " + itoa(len(b)) + "\r\n\r\n"))
		_, _ = c.Write(b)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// loadSelectingSelf loads the programs with propagation working and
// selects this process; they are closed when the test ends.
func loadSelectingSelf(t *testing.T, opts Options) *Tracer {
	t.Helper()
	opts.SelfTgid, opts.RingBufferSize = uint32(os.Getpid()), 1<<20
	tr, err := Load(opts)
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	require.NoError(t, tr.PropagationErr)
	require.NoError(t, tr.Select(uint32(os.Getpid())))
	return tr
}

// header decodes the fixed part of a ring buffer record.
func header(raw []byte) Event {
	var ev Event
	copy((*[HeaderSize]byte)(unsafe.Pointer(&ev))[:], raw[:HeaderSize])
	return ev
}

// eventsOf collects the events of this process until quiet.
func eventsOf(t *testing.T, tr *Tracer) []Event {
	var out []Event
	recordsUntilQuiet(t, tr, func(raw []byte) {
		if ev := header(raw); ev.Pid == uint32(os.Getpid()) && ev.Kind != EventSelect {
			out = append(out, ev)
		}
	})
	return out
}

// recordsUntilQuiet gives each record of the ring buffer to keep, until
// none comes for 300 ms.
func recordsUntilQuiet(t *testing.T, tr *Tracer, keep func(raw []byte)) {
	rd, err := ringbuf.NewReader(tr.Events())
	require.NoError(t, err)
	defer rd.Close()
	for {
		rd.SetDeadline(time.Now().Add(300 * time.Millisecond))
		rec, err := rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		require.NoError(t, err)
		keep(rec.RawSample)
	}
}

func TestTraceparentInserted(t *testing.T) {
	requireRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	for range 6 {
		go echoHead(t, ln)
	}
	early, err := net.Dial("tcp", ln.Addr().String()) // before the programs: not enrolled
	require.NoError(t, err)
	defer early.Close()

	tr := loadSelectingSelf(t, Options{Propagate: true})

	type conn struct {
		net.Conn
		r *bufio.Reader
	}
	dial := func() conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return conn{c, bufio.NewReader(c)}
	}
	roundTrip := func(c conn, req string) string {
		n, err := c.Write([]byte(req))
		require.NoError(t, err)
		require.Equal(t, len(req), n, "write must report the application's byte count")
		resp, err := http.ReadResponse(c.r, nil)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(body)
	}

	keepAlive := dial()
	got := roundTrip(keepAlive, "POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\r\nhello")
	// The connection carried data: later requests on it go out unchanged.
	reused := roundTrip(keepAlive, "GET /again HTTP/1.1\r\nHost: shop\r\n\r\n")
	const own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	kept := roundTrip(dial(), "GET /own HTTP/1.1\r\nHost: shop\r\ntraceparent: "+own+"\r\n\r\n")
	// Two pipelined requests in one write: only the first gets a header.
	pipe := dial()
	_, err = pipe.Write([]byte("GET /p1 HTTP/1.1\r\nHost: shop\r\n\r\nGET /p2 HTTP/1.1\r\nHost: shop\r\n\r\n"))
	require.NoError(t, err)
	var pipelined []string
	for range 2 {
		resp, err := http.ReadResponse(pipe.r, nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		pipelined = append(pipelined, string(body))
	}
	// A head longer than the 4 KiB the tracer looks at: left as it is.
	long := roundTrip(dial(), "GET /long HTTP/1.1\r\nHost: shop\r\nX-Pad: "+strings.Repeat("p", 5000)+"\r\n\r\n")
	// A body beyond a page: the line goes into the head, the body intact.
	body := strings.Repeat("b", 10000)
	big := roundTrip(dial(), "POST /big HTTP/1.1\r\nHost: shop\r\nContent-Length: 10000\r\n\r\n"+body)
	plain := roundTrip(conn{early, bufio.NewReader(early)}, "GET /early HTTP/1.1\r\nHost: shop\r\n\r\n")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	var injected, served []Event
	notInjected := map[string]int{}
	for _, ev := range eventsOf(t, tr) {
		switch {
		case ev.Kind == EventWrite && ev.Rport == port && ev.Flags&EventFlagInjected != 0:
			injected = append(injected, ev)
		case ev.Kind == EventWrite && ev.Rport == port && ev.Flags&EventFlagNotInjected != 0:
			notInjected[NotInjectedReasons[ev.Reason]]++
		case ev.Kind == EventRead && ev.Lport == port && ev.Flags&EventFlagContext != 0:
			if n := len(served); n > 0 && served[n-1].Sock == ev.Sock && served[n-1].SpanId == ev.SpanId {
				// The rest of a head split over reads (on 6.1, the pushed
				// traceparent line is a segment of its own): the same
				// span, now with the context the rest carried.
				served[n-1] = ev
				continue
			}
			served = append(served, ev)
		}
	}

	// The header the server saw is the one the kernel reported.
	require.Len(t, injected, 3, "the POST, the first pipelined request and the big POST")
	tp := func(ev Event) string {
		return "00-" + hex.EncodeToString(ev.TraceId[:]) + "-" + hex.EncodeToString(ev.SpanId[:]) + "-01"
	}
	require.Equal(t, "POST /orders HTTP/1.1\r\nTraceparent: "+tp(injected[0])+"\r\nHost: shop\r\nContent-Length: 5\r\nbody=hello", got)
	require.Equal(t, [8]uint8{}, injected[0].ParentId, "a call made while serving nothing is a root")
	require.Equal(t, uint8(1), injected[0].TraceFlags)
	require.Equal(t, "GET /again HTTP/1.1\r\nHost: shop\r\nbody=", reused)
	require.Equal(t, "GET /own HTTP/1.1\r\nTraceparent: "+own+"\r\nHost: shop\r\nbody=", kept)
	require.Equal(t, "GET /p1 HTTP/1.1\r\nTraceparent: "+tp(injected[1])+"\r\nHost: shop\r\nbody=", pipelined[0])
	require.Equal(t, "GET /p2 HTTP/1.1\r\nHost: shop\r\nbody=", pipelined[1])
	require.Equal(t, "GET /early HTTP/1.1\r\nHost: shop\r\nbody=", plain)
	require.Equal(t, "GET /long HTTP/1.1\r\nHost: shop\r\nbody=", long)
	require.Equal(t, "POST /big HTTP/1.1\r\nTraceparent: "+tp(injected[2])+"\r\nHost: shop\r\nContent-Length: 10000\r\nbody="+body, big)
	require.Equal(t, map[string]int{"reused_connection": 1, "head_too_large": 1, "untracked_connection": 1}, notInjected)

	// The server's reads got their context from the header: the server span
	// continues the client span's trace, as its child.
	for i, ev := range served { // for a failure's sake
		t.Logf("served %d: tid %d len %d sock %x trace %x span %x parent %x", i, ev.Tid, ev.Len, ev.Sock, ev.TraceId, ev.SpanId, ev.ParentId)
	}
	require.Len(t, served, 7, "/orders, /again, /own, /p1+/p2 in one read, /long, /big, /early")
	require.Equal(t, injected[0].TraceId, served[0].TraceId)
	require.Equal(t, injected[0].SpanId, served[0].ParentId)
	require.Equal(t, [8]uint8{}, served[1].ParentId, "no header: a new trace")
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", hex.EncodeToString(served[2].TraceId[:]))
	require.Equal(t, "b7ad6b7169203331", hex.EncodeToString(served[2].ParentId[:]))
	require.Equal(t, injected[2].SpanId, served[5].ParentId)
	require.NotEqual(t, [16]uint8{}, served[6].TraceId)
}

// A request whose head comes in two reads, its traceparent in the second:
// the server span the first read began continues the caller's trace once
// the second is read (the same span id), and the request the server serves
// meanwhile is in that trace.
func TestTraceparentInSplitHead(t *testing.T) {
	requireRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go echoHead(t, ln)
	tr := loadSelectingSelf(t, Options{Propagate: true})
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET /split HTTP/1.1\r\n"))
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // the server reads the line alone
	const trace, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	_, err = c.Write([]byte("Traceparent: 00-" + trace + "-" + caller + "-01\r\nHost: shop\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	resp.Body.Close()

	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	var served []Event
	for _, ev := range eventsOf(t, tr) {
		if ev.Kind == EventRead && ev.Lport == port && ev.Flags&EventFlagContext != 0 {
			served = append(served, ev)
		}
	}
	require.Len(t, served, 2, "the request line's read, and the rest's")
	require.Equal(t, [8]uint8{}, served[0].ParentId, "the line alone: a root, for now")
	require.Equal(t, served[0].SpanId, served[1].SpanId, "one span")
	require.Equal(t, trace, hex.EncodeToString(served[1].TraceId[:]))
	require.Equal(t, caller, hex.EncodeToString(served[1].ParentId[:]))
}

func TestCgroup2Root(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := dir + "/mountinfo"
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		return p
	}
	hybrid := "35 25 0:30 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
		"36 35 0:31 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n"
	root, err := cgroup2Root(write(hybrid))
	require.NoError(t, err)
	require.Equal(t, "/sys/fs/cgroup/unified", root)

	_, err = cgroup2Root(write("35 25 0:30 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"))
	require.ErrorContains(t, err, "mount -t cgroup2")
}
