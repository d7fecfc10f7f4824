package e2e

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/tcattach"
)

// flowsNet is two network namespaces of the test's own (named flows-*),
// a and b, joined by a veth pair: the interfaces the network tests attach
// to. Nothing of the host's is touched.
type flowsNet struct {
	nsA, nsB     string
	ifA, ifB     string
	addrA, addrB netip.Addr
	// v6A, v6B are the ends' IPv6 addresses.
	v6A, v6B netip.Addr
}

var flowsNetSeq atomic.Int32

func newFlowsNet(t *testing.T) flowsNet {
	t.Helper()
	requireRoot(t)
	seq := flowsNetSeq.Add(1)
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, seq)
	n := flowsNet{nsA: "flows-" + id + "-a", nsB: "flows-" + id + "-b", ifA: "fla" + id, ifB: "flb" + id}
	subnet := fmt.Sprintf("10.233.%d", (os.Getpid()+int(seq)*7)%250)
	n.addrA, n.addrB = netip.MustParseAddr(subnet+".1"), netip.MustParseAddr(subnet+".2")
	ip := func(args ...string) {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
	}
	ip("netns", "add", n.nsA)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", n.nsA).Run() })
	ip("netns", "add", n.nsB)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", n.nsB).Run() })
	ip("-n", n.nsA, "link", "add", n.ifA, "type", "veth", "peer", "name", n.ifB, "netns", n.nsB)
	ip("-n", n.nsA, "addr", "add", n.addrA.String()+"/30", "dev", n.ifA)
	ip("-n", n.nsB, "addr", "add", n.addrB.String()+"/30", "dev", n.ifB)
	for _, ns := range []string{n.nsA, n.nsB} {
		ip("-n", ns, "link", "set", "lo", "up")
	}
	n.v6A, n.v6B = netip.MustParseAddr(fmt.Sprintf("fd33:%x::1", seq)), netip.MustParseAddr(fmt.Sprintf("fd33:%x::2", seq))
	ip("-n", n.nsA, "addr", "add", n.v6A.String()+"/64", "dev", n.ifA, "nodad")
	ip("-n", n.nsB, "addr", "add", n.v6B.String()+"/64", "dev", n.ifB, "nodad")
	ip("-n", n.nsA, "link", "set", n.ifA, "up")
	ip("-n", n.nsB, "link", "set", n.ifB, "up")
	return n
}

// withoutSACK turns SACK off in both namespaces, so that every TCP header
// has the same options: a segment arriving out of order (a busy machine)
// makes the receiver's ACKs carry SACK blocks, 12 to 36 bytes more that
// no counter tells a test about, though nothing was resent.
func (n flowsNet) withoutSACK(t *testing.T) {
	t.Helper()
	for _, ns := range []string{n.nsA, n.nsB} {
		n.in(t, ns, func() error { // the thread's namespace picks the sysctl
			return os.WriteFile("/proc/sys/net/ipv4/tcp_sack", []byte("0"), 0o644)
		})
		out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/tcp_sack").Output()
		require.NoError(t, err)
		require.Equal(t, "0", strings.TrimSpace(string(out)), "SACK off in %s", ns)
	}
}

// netns is a namespace of the pair, for tcattach.
func (n flowsNet) netns(name string) tcattach.Netns {
	return tcattach.Netns{Path: "/run/netns/" + name}
}

// iface is an interface of the pair, for tcattach.
func (n flowsNet) iface(t *testing.T, ns, name string) tcattach.Interface {
	t.Helper()
	var idx int
	require.NoError(t, tcattach.InNetns(n.netns(ns), func() error {
		i, err := net.InterfaceByName(name)
		if err == nil {
			idx = i.Index
		}
		return err
	}))
	return tcattach.Interface{Netns: n.netns(ns), Index: idx, Name: name}
}

// in runs fn in namespace ns: sockets it opens stay there.
func (n flowsNet) in(t *testing.T, ns string, fn func() error) {
	t.Helper()
	require.NoError(t, tcattach.InNetns(n.netns(ns), fn))
}

// exec starts the test binary as a peer in namespace ns.
func (n flowsNet) exec(ns string, env ...string) *exec.Cmd {
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0]) // ip execs it: the pid stays
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// udpSend sends count datagrams of size bytes from a to b and reports how
// many arrived: a TC program that dropped or mangled one would show.
func (n flowsNet) udpSend(t *testing.T, port, count, size int) int {
	return n.udpSendTo(t, n.addrB, port, count, size)
}

// udpSendTo is udpSend to address to of b (IPv4 or IPv6).
func (n flowsNet) udpSendTo(t *testing.T, to netip.Addr, port, count, size int) int {
	t.Helper()
	var srv, cli *net.UDPConn
	n.in(t, n.nsB, func() (err error) {
		srv, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, uint16(port))))
		return err
	})
	defer srv.Close()
	n.in(t, n.nsA, func() (err error) {
		cli, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, uint16(port))))
		return err
	})
	defer cli.Close()
	var received atomic.Int64
	got := make(chan int)
	go func() {
		buf := make([]byte, 65536)
		k := 0
		for k < count {
			srv.SetReadDeadline(time.Now().Add(2 * time.Second))
			m, err := srv.Read(buf)
			if err != nil {
				break
			}
			if m == size && buf[0] == byte(k) {
				k++
				received.Store(int64(k))
			}
		}
		got <- k
	}()
	msg := make([]byte, size)
	for i := 0; i < count; i++ {
		// At most 16 in flight: the receiving socket's buffer, which a slow
		// reader overflows, is not what is tested.
		for deadline := time.Now().Add(2 * time.Second); int64(i)-received.Load() >= 16 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Microsecond)
		}
		msg[0] = byte(i)
		_, err := cli.Write(msg)
		require.NoError(t, err)
	}
	return <-got
}

// tcpTransfer sends up bytes from a to b over one connection, and down
// bytes back, and returns the client's address; both ends check every
// byte.
func (n flowsNet) tcpTransfer(t *testing.T, port, up, down int) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	n.in(t, n.nsB, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(n.addrB, uint16(port)).String())
		return err
	})
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		if err := readBody(c, up, 1); err != nil {
			served <- fmt.Errorf("server read: %w", err)
			return
		}
		served <- writeBody(c, down, 2)
	}()
	var c net.Conn
	n.in(t, n.nsA, func() (err error) {
		c, err = net.Dial("tcp4", netip.AddrPortFrom(n.addrB, uint16(port)).String())
		return err
	})
	defer c.Close()
	require.NoError(t, writeBody(c, up, 1))
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	require.NoError(t, readBody(c, down, 2), "client read")
	require.NoError(t, <-served)
	return netip.MustParseAddrPort(c.LocalAddr().String())
}

// readBody reads exactly the size bytes writeBody(size, seed) writes,
// then EOF.
func readBody(r io.Reader, size int, seed uint64) error {
	off := int(seed*4099) % len(bodyBlock)
	buf := make([]byte, 64<<10)
	total := 0
	for {
		m, err := r.Read(buf)
		for i := 0; i < m; i++ {
			if total+i >= size {
				return fmt.Errorf("bytes beyond the %d sent", size)
			}
			if buf[i] != bodyBlock[(off+total+i)%len(bodyBlock)] {
				return fmt.Errorf("byte %d differs", total+i)
			}
		}
		total += m
		if err == io.EOF {
			if total != size {
				return fmt.Errorf("read %d of %d bytes", total, size)
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// flowValue sums, in the newest batch that has any, the points of metric
// (network.flow.bytes or .packets) whose attributes include match, and
// whose resource includes res.
func (h *harness) flowValue(metric string, match map[string]any, res map[string]any) (int64, bool) {
	all := h.metrics.AllMetrics()
	for i := len(all) - 1; i >= 0; i-- {
		var total int64
		found := false
		rms := all[i].ResourceMetrics()
		for r := 0; r < rms.Len(); r++ {
			if !attrsInclude(rms.At(r).Resource().Attributes(), res) {
				continue
			}
			sms := rms.At(r).ScopeMetrics()
			for s := 0; s < sms.Len(); s++ {
				ms := sms.At(s).Metrics()
				for m := 0; m < ms.Len(); m++ {
					if ms.At(m).Name() != metric {
						continue
					}
					dps := ms.At(m).Sum().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						if attrsInclude(dps.At(d).Attributes(), match) {
							total += dps.At(d).IntValue()
							found = true
						}
					}
				}
			}
		}
		if found {
			return total, true
		}
	}
	return 0, false
}

// attrsInclude reports whether attrs has every key of want with its
// value; a nil value asks that the key be absent.
func attrsInclude(attrs pcommon.Map, want map[string]any) bool {
	for k, v := range want {
		got, ok := attrs.Get(k)
		if v == nil {
			if ok {
				return false
			}
			continue
		}
		if !ok {
			return false
		}
		switch v := v.(type) {
		case string:
			if got.AsString() != v {
				return false
			}
		case int:
			if got.Int() != int64(v) {
				return false
			}
		case bool:
			if got.Bool() != v {
				return false
			}
		}
	}
	return true
}

// dumpFlows logs the flows of the newest batch (for failures).
func (h *harness) dumpFlows(t *testing.T) {
	all := h.metrics.AllMetrics()
	if len(all) == 0 {
		t.Log("no metrics")
		return
	}
	md := all[len(all)-1]
	rms := md.ResourceMetrics()
	for r := 0; r < rms.Len(); r++ {
		sms := rms.At(r).ScopeMetrics()
		for s := 0; s < sms.Len(); s++ {
			ms := sms.At(s).Metrics()
			for m := 0; m < ms.Len(); m++ {
				if ms.At(m).Name() != "network.flow.bytes" {
					continue
				}
				dps := ms.At(m).Sum().DataPoints()
				for d := 0; d < dps.Len(); d++ {
					t.Logf("flow %v = %d (resource %v)", dps.At(d).Attributes().AsRaw(), dps.At(d).IntValue(), rms.At(r).Resource().Attributes().AsRaw())
				}
			}
		}
	}
}
