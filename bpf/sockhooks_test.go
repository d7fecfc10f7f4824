package bpf

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// requireSocketHooks skips where the kernel has no fentry (this project's
// development kernel): the socket path is tested in the VM (make vmtest).
func requireSocketHooks(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if err := SocketHooksSupported(); err != nil {
		t.Skipf("no socket hooks on this kernel (make vmtest runs them on 6.1): %v", err)
	}
}

// Auto takes the socket hooks where the kernel has them, and says why not
// where it does not; syscalls are always possible; socket fails where the
// kernel has no fentry.
func TestHooksChoice(t *testing.T) {
	requireRoot(t)
	supported := SocketHooksSupported()
	load := func(h Hooks) (*Tracer, error) {
		return Load(Options{SelfTgid: uint32(os.Getpid()), RingBufferSize: 1 << 16, Hooks: h})
	}
	tr, err := load(HooksAuto)
	require.NoError(t, err)
	if supported == nil {
		require.Equal(t, HooksSocket, tr.Hooks())
		require.NoError(t, tr.HooksErr)
		require.Len(t, tr.ProgramIDs(), 16, "13 socket hooks and the process exit, fork and exec")
	} else {
		require.Equal(t, HooksSyscalls, tr.Hooks())
		require.Error(t, tr.HooksErr)
		require.Len(t, tr.ProgramIDs(), 5)
	}
	require.NoError(t, tr.Close())

	tr, err = load(HooksSyscalls)
	require.NoError(t, err)
	require.Equal(t, HooksSyscalls, tr.Hooks())
	require.NoError(t, tr.HooksErr)
	require.Len(t, tr.ProgramIDs(), 5)
	require.NoError(t, tr.Close())

	tr, err = load(HooksSocket)
	if supported != nil {
		require.ErrorContains(t, err, "hooks: socket")
		return
	}
	require.NoError(t, err)
	require.Equal(t, HooksSocket, tr.Hooks())
	require.NoError(t, tr.Close())
}

// seen is an event with what differs between two runs of the same exchange
// replaced by what it stands for: sockets, threads and ephemeral ports by
// their order of appearance, the kernel's random ids by whether they are
// set.
type seen struct {
	Kind, Family, Flags, Reason, TraceFlags uint8
	Len                                     uint32
	Fd, Tid, Sock, Lport, Rport             int
	Laddr, Raddr                            string
	Ids                                     bool
	Data, Tail                              string
}

func (s seen) String() string {
	return fmt.Sprintf("kind=%d fd=%d len=%d flags=%d reason=%d sock=%d tid=%d %s:%d->%s:%d ids=%v data=%q tail=%q",
		s.Kind, s.Fd, s.Len, s.Flags, s.Reason, s.Sock, s.Tid, s.Laddr, s.Lport, s.Raddr, s.Rport, s.Ids, s.Data, s.Tail)
}

// injectedIDs are the random ids of a traceparent the kernel inserted.
var injectedIDs = regexp.MustCompile(`traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-`)

// ordinals numbers values by their first appearance.
type ordinals map[uint64]int

func (o ordinals) of(v uint64) int {
	if n, ok := o[v]; ok {
		return n
	}
	o[v] = len(o) + 1
	return o[v]
}

// exchangeEvents runs exchange with the tracer loaded on hooks, selecting
// this process, and returns the events of the exchange's connections
// (those touching port, the listener's).
func exchangeEvents(t *testing.T, hooks Hooks, propagate bool, network string) []seen {
	t.Helper()
	start := time.Now()
	tr, err := Load(Options{SelfTgid: uint32(os.Getpid()), RingBufferSize: 1 << 22, Hooks: hooks, Propagate: propagate})
	require.NoError(t, err)
	t.Logf("%s: loaded in %v", hooks, time.Since(start).Round(time.Millisecond))
	defer func() {
		start := time.Now()
		tr.Close()
		t.Logf("%s: closed in %v", hooks, time.Since(start).Round(time.Millisecond))
	}()
	require.Equal(t, hooks, tr.Hooks())
	if propagate {
		require.NoError(t, tr.PropagationErr)
	}
	rd, err := ringbuf.NewReader(tr.Events())
	require.NoError(t, err)
	defer rd.Close()
	require.NoError(t, tr.Select(uint32(os.Getpid())))

	port := exchange(t, network)

	socks, tids, fds, ports := ordinals{}, ordinals{}, ordinals{}, ordinals{uint64(port): 0}
	var out []seen
	for {
		rd.SetDeadline(time.Now().Add(300 * time.Millisecond))
		rec, err := rd.Read()
		if err != nil {
			break
		}
		ev := header(rec.RawSample)
		if ev.Pid != uint32(os.Getpid()) || (ev.Lport != port && ev.Rport != port) {
			continue
		}
		data := rec.RawSample[HeaderSize:]
		s := seen{Kind: ev.Kind, Family: ev.Family, Flags: ev.Flags, Reason: ev.Reason,
			Fd: fds.of(uint64(ev.Fd)), Len: ev.Len, Tid: tids.of(uint64(ev.Tid)), Sock: socks.of(ev.Sock),
			Lport: ports.of(uint64(ev.Lport)), Rport: ports.of(uint64(ev.Rport)),
			Laddr: net.IP(ev.Laddr[:]).String(), Raddr: net.IP(ev.Raddr[:]).String(),
			Data: string(data[:min(int(ev.CapLen)+int(ev.ExtLen), len(data))]), Tail: string(ev.Tail[:ev.TailLen])}
		s.Data = injectedIDs.ReplaceAllString(s.Data, "traceparent: 00-TRACE-SPAN-") // random
		if ev.Flags&(EventFlagContext|EventFlagInjected) != 0 {                      // else stale
			s.Ids, s.TraceFlags = ev.TraceId != [16]uint8{} && ev.SpanId != [8]uint8{}, ev.TraceFlags
		}
		out = append(out, s)
	}
	return out
}

// exchange makes one connection to a listener of its own and moves bytes
// over it with every syscall the tracer follows, on one OS thread so that
// the events come in one order; it returns the listener's port.
func exchange(t *testing.T, network string) uint16 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	family, loopback := unix.AF_INET, net.IPv4(127, 0, 0, 1).To4()
	if network == "tcp6" {
		family, loopback = unix.AF_INET6, net.IPv6loopback
	}
	sockaddr := func(port int) unix.Sockaddr {
		if family == unix.AF_INET6 {
			return &unix.SockaddrInet6{Port: port, Addr: [16]byte(loopback)}
		}
		return &unix.SockaddrInet4{Port: port, Addr: [4]byte(loopback)}
	}
	must := func(err error) {
		t.Helper()
		require.NoError(t, err)
	}
	ln, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	must(err)
	defer unix.Close(ln)
	must(unix.Bind(ln, sockaddr(0)))
	must(unix.Listen(ln, 4))
	sa, err := unix.Getsockname(ln)
	must(err)
	port := 0
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	}

	client, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	must(err)
	must(unix.Connect(client, sockaddr(port)))
	server, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	must(err)

	// recv reads what one write sent, in one read: on loopback it is all
	// there when the write returns (with a traceparent line if one was
	// inserted).
	recv := func(fd, n int) []byte {
		b := make([]byte, 64<<10)
		k, err := unix.Read(fd, b)
		must(err)
		require.GreaterOrEqual(t, k, n)
		return b[:k]
	}
	head := "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
	_, err = unix.Write(client, []byte(head))
	must(err)
	require.Contains(t, string(recv(server, len(head))), "Host: x\r\n\r\n")
	_, err = unix.Write(server, []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	must(err)
	// A read into two buffers (readv), of a response written in three (writev).
	_, err = unix.Writev(server, [][]byte{[]byte("HTTP/1.1 200 OK\r\n"), []byte("Content-Length: 5\r\n\r\n"), []byte("hello")})
	must(err)
	time.Sleep(20 * time.Millisecond)
	a, b := make([]byte, 41), make([]byte, 100)
	n, err := unix.Readv(client, [][]byte{a, b})
	must(err)
	require.Equal(t, 40+43, n, "both responses")
	// sendto and recvfrom.
	must(unix.Sendto(client, []byte("POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), 0, nil))
	time.Sleep(20 * time.Millisecond)
	buf := make([]byte, 4096)
	_, _, err = unix.Recvfrom(server, buf[:1], unix.MSG_PEEK) // not an event: the next read takes it
	must(err)
	_, _, err = unix.Recvfrom(server, buf, 0)
	must(err)
	// sendmsg and recvmsg with several buffers.
	_, err = unix.SendmsgBuffers(server, [][]byte{[]byte("HTTP/1.1 201 Created\r\n"), []byte("Content-Length: 0\r\n\r\n")}, nil, nil, 0)
	must(err)
	time.Sleep(20 * time.Millisecond)
	_, _, _, _, err = unix.RecvmsgBuffers(client, [][]byte{make([]byte, 4)}, nil, unix.MSG_PEEK)
	must(err)
	_, _, _, _, err = unix.RecvmsgBuffers(client, [][]byte{make([]byte, 10), make([]byte, 100)}, nil, 0)
	must(err)
	// A body larger than the capture: its tail is copied too.
	big := bytes.Repeat([]byte("0123456789"), 1000)
	big = append([]byte("POST /big HTTP/1.1\r\nContent-Length: 10000\r\n\r\n"), big...)
	_, err = unix.Write(client, big)
	must(err)
	recv(server, len(big))
	// sendfile: the count only.
	f, err := os.CreateTemp(t.TempDir(), "body")
	must(err)
	_, err = f.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfile")
	must(err)
	_, err = unix.Sendfile(server, int(f.Fd()), new(int64), 42)
	must(err)
	f.Close()
	recv(client, 42)
	// HTTP/2 on a second connection: the frames past the head are walked.
	h2, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	must(err)
	must(unix.Connect(h2, sockaddr(port)))
	h2s, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	must(err)
	preface := "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	settings := "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
	headers := "\x00\x00\x05\x01\x04\x00\x00\x00\x01\x82\x86\x84\x41\x8a"
	data := "\x00\x10\x00\x00\x00\x00\x00\x00\x01" + string(bytes.Repeat([]byte{'d'}, 4096))
	msg := preface + settings + data + headers
	_, err = unix.Write(h2, []byte(msg))
	must(err)
	recv(h2s, len(msg))
	for _, fd := range []int{client, server, h2, h2s} {
		must(unix.Close(fd))
	}
	return uint16(port)
}

// The socket hooks send exactly the events the syscall tracepoints send,
// for every syscall they follow, on IPv4 and IPv6, with and without
// context propagation.
func TestSocketHooksSendTheSameEvents(t *testing.T) {
	requireSocketHooks(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		for _, propagate := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/propagate=%v", network, propagate), func(t *testing.T) {
				want := exchangeEvents(t, HooksSyscalls, propagate, network)
				got := exchangeEvents(t, HooksSocket, propagate, network)
				require.Greater(t, len(want), 15, "the exchange's events")
				flags, reasons := uint8(0), map[string]int{}
				for _, e := range want {
					flags |= e.Flags
					if e.Flags&EventFlagNotInjected != 0 {
						reasons[NotInjectedReasons[e.Reason]]++
					}
				}
				t.Logf("%d events, flags %#x, not injected: %v", len(want), flags, reasons)
				if propagate {
					require.NotZero(t, flags&EventFlagInjected, "a request went out with a traceparent")
					require.NotZero(t, flags&EventFlagContext, "a read began a request")
				}
				if len(want) != len(got) {
					t.Logf("syscalls:\n%s\nsocket:\n%s", lines(want), lines(got))
				}
				require.Equal(t, len(want), len(got))
				for i := range want {
					require.Equal(t, want[i].String(), got[i].String(), "event %d", i)
				}
			})
		}
	}
}

func lines(evs []seen) string {
	var b bytes.Buffer
	for _, e := range evs {
		s := e.String()
		if len(s) > 300 {
			s = s[:300] + "..."
		}
		fmt.Fprintln(&b, s)
	}
	return b.String()
}
