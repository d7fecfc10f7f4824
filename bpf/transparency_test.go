package bpf

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A socket whose connection the propagation programs may touch must answer
// every syscall as it would without them. Each case runs the same exchange
// twice, on a fresh connection each time: without the programs, then with
// them loaded and this process selected, and compares what the client saw.
func TestPropagationIsTransparent(t *testing.T) {
	requireRoot(t)
	const respLen = 100_043
	response := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), respLen/36+1)[:respLen]
	request := "GET /t HTTP/1.1\r\nHost: t\r\n\r\n"

	cases := map[string]func(t *testing.T, fd int, server net.Conn) string{
		"FIONREAD after a request": func(t *testing.T, fd int, server net.Conn) string {
			writeAll(t, fd, request)
			serverSends(t, server, response)
			return fmt.Sprintf("FIONREAD=%d", waitInq(t, fd, respLen))
		},
		"FIONREAD before the client writes (server speaks first)": func(t *testing.T, fd int, server net.Conn) string {
			serverSends(t, server, response)
			return fmt.Sprintf("FIONREAD=%d", waitInq(t, fd, respLen))
		},
		"MSG_PEEK then read": func(t *testing.T, fd int, server net.Conn) string {
			writeAll(t, fd, request)
			serverSends(t, server, response)
			waitInq(t, fd, respLen)
			peek := make([]byte, 2*respLen)
			n, _, err := unix.Recvfrom(fd, peek, unix.MSG_PEEK|unix.MSG_DONTWAIT)
			require.NoError(t, err)
			got := readN(t, fd, respLen)
			return fmt.Sprintf("peeked=%d same=%v read=%v", n, bytes.Equal(peek[:n], got[:n]), bytes.Equal(got, response))
		},
		"recv MSG_WAITALL": func(t *testing.T, fd int, server net.Conn) string {
			writeAll(t, fd, request)
			go func() { // in pieces: WAITALL must wait for all of them
				for i := 0; i < respLen; i += 10_000 {
					server.Write(response[i:min(i+10_000, respLen)])
					time.Sleep(2 * time.Millisecond)
				}
			}()
			buf := make([]byte, respLen)
			n, _, err := unix.Recvfrom(fd, buf, unix.MSG_WAITALL)
			require.NoError(t, err)
			return fmt.Sprintf("n=%d equal=%v", n, bytes.Equal(buf, response))
		},
		"splice to a pipe": func(t *testing.T, fd int, server net.Conn) string {
			writeAll(t, fd, request)
			serverSends(t, server, response)
			var p [2]int
			require.NoError(t, unix.Pipe(p[:]))
			defer unix.Close(p[0])
			defer unix.Close(p[1])
			var got []byte
			buf := make([]byte, 65536)
			for len(got) < respLen {
				n, err := unix.Splice(fd, nil, p[1], nil, 65536, 0)
				require.NoError(t, err)
				require.NotZero(t, n, "splice saw the end early")
				m, err := unix.Read(p[0], buf[:n])
				require.NoError(t, err)
				got = append(got, buf[:m]...)
			}
			return fmt.Sprintf("spliced=%d equal=%v", len(got), bytes.Equal(got, response))
		},
		"sendfile as the first write": func(t *testing.T, fd int, server net.Conn) string {
			f, err := os.CreateTemp(t.TempDir(), "body")
			require.NoError(t, err)
			_, err = f.Write(response)
			require.NoError(t, err)
			sent := 0
			for sent < respLen {
				off := int64(sent)
				n, err := unix.Sendfile(fd, int(f.Fd()), &off, respLen-sent)
				require.NoError(t, err)
				sent += n
			}
			got := make([]byte, respLen)
			_, err = io.ReadFull(server, got)
			require.NoError(t, err)
			return fmt.Sprintf("sent=%d equal=%v", sent, bytes.Equal(got, response))
		},
		"epoll readiness": func(t *testing.T, fd int, server net.Conn) string {
			writeAll(t, fd, request)
			ep, err := unix.EpollCreate1(0)
			require.NoError(t, err)
			defer unix.Close(ep)
			require.NoError(t, unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}))
			evs := make([]unix.EpollEvent, 1)
			before, _ := unix.EpollWait(ep, evs, 0)
			serverSends(t, server, []byte("pong"))
			after, err := unix.EpollWait(ep, evs, 2000)
			require.NoError(t, err)
			return fmt.Sprintf("ready before=%d after=%d events=%#x", before, after, evs[0].Events&(unix.EPOLLIN|unix.EPOLLRDHUP))
		},
		"half-close by the server": func(t *testing.T, fd int, server net.Conn) string {
			writeAll(t, fd, request)
			serverSends(t, server, []byte("bye"))
			require.NoError(t, server.(*net.TCPConn).CloseWrite())
			got := readN(t, fd, 3)
			buf := make([]byte, 16)
			n, err := unix.Read(fd, buf)
			return fmt.Sprintf("got=%q then n=%d err=%v", got, n, err)
		},
		"reset by the server": func(t *testing.T, fd int, server net.Conn) string {
			writeAll(t, fd, request)
			require.NoError(t, server.(*net.TCPConn).SetLinger(0))
			readRequest(t, server)
			server.Close()
			time.Sleep(50 * time.Millisecond)
			buf := make([]byte, 16)
			n, err := unix.Read(fd, buf)
			return fmt.Sprintf("n=%d err=%v", n, err)
		},
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	run := func(t *testing.T, name string) string {
		fd := dialRaw(t, ln.Addr().(*net.TCPAddr))
		defer unix.Close(fd)
		server, err := ln.Accept()
		require.NoError(t, err)
		defer server.Close()
		return cases[name](t, fd, server)
	}
	want := map[string]string{}
	for name := range cases {
		want[name] = run(t, name)
	}
	tr := loadSelectingSelf(t, Options{Propagate: true})
	for name := range cases {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, want[name], run(t, name), "the same syscalls must answer the same with the programs")
		})
	}
	// The request of every case but two went out: each was the first of
	// its connection, so it carried a traceparent the server read above.
	injected, notInjected := 0, 0
	for _, ev := range eventsOf(t, tr) {
		switch {
		case ev.Flags&EventFlagInjected != 0:
			injected++
		case ev.Flags&EventFlagNotInjected != 0:
			notInjected++
		}
	}
	require.Equal(t, len(cases)-2, injected, "requests written first on their connection")
	require.Zero(t, notInjected)
}

func dialRaw(t *testing.T, addr *net.TCPAddr) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	require.NoError(t, unix.Connect(fd, sa))
	return fd
}

func writeAll(t *testing.T, fd int, s string) {
	t.Helper()
	n, err := unix.Write(fd, []byte(s))
	require.NoError(t, err)
	require.Equal(t, len(s), n, "write must report the application's byte count")
}

// serverSends reads the client's request first (if one is on its way) so
// that the response answers it, then sends b.
func serverSends(t *testing.T, server net.Conn, b []byte) {
	t.Helper()
	server.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 4096)
	server.Read(buf) // the request, with its traceparent; none when the server speaks first
	server.SetReadDeadline(time.Time{})
	_, err := server.Write(b)
	require.NoError(t, err)
}

func readRequest(t *testing.T, server net.Conn) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := server.Read(buf)
	require.NoError(t, err)
	return string(buf[:n])
}

// waitInq waits until want bytes wait on fd (or a second passed) and
// returns what FIONREAD says then.
func waitInq(t *testing.T, fd, want int) int {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
		require.NoError(t, err)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readN(t *testing.T, fd, n int) []byte {
	t.Helper()
	got := make([]byte, 0, n)
	buf := make([]byte, 65536)
	for len(got) < n {
		m, err := unix.Read(fd, buf[:min(len(buf), n-len(got))])
		require.NoError(t, err)
		require.NotZero(t, m, "the connection ended early")
		got = append(got, buf[:m]...)
	}
	return got
}
