package e2e

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tcattach"
)

// startNetworkReceiver runs a receiver that counts the flows of the
// interfaces of n, and selects no process.
func startNetworkReceiver(t *testing.T, n flowsNet, configure func(*ebpfreceiver.Config)) *harness {
	t.Helper()
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.ExePath = "^/nothing-is-watched$"
		c.Network.Enabled = true
		c.Network.Namespaces = "all"
		c.Network.Interfaces = []string{n.ifA, n.ifB}
		c.Network.Interval = 200 * time.Millisecond
		if configure != nil {
			configure(c)
		}
	})
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_network_interfaces", "state", "attached") == 2
	}, 10*time.Second, 50*time.Millisecond, "both interfaces attached")
	return h
}

// flowTotals are a flow's bytes and packets as the metrics say, once they
// stopped changing.
type flowTotals struct{ bytes, packets int64 }

func (h *harness) waitFlow(t *testing.T, match map[string]any) flowTotals {
	t.Helper()
	var last, prev flowTotals
	stable := 0
	ok := assert.Eventually(t, func() bool {
		b, ok1 := h.flowValue("network.flow.bytes", match, nil)
		p, ok2 := h.flowValue("network.flow.packets", match, nil)
		prev, last = last, flowTotals{b, p}
		if ok1 && ok2 && last == prev && last.packets > 0 {
			stable++
		} else {
			stable = 0
		}
		return stable >= 3 // three flushes alike
	}, 15*time.Second, 250*time.Millisecond, "flow %v never settled (last %+v)", match, last)
	if !ok {
		h.dumpFlows(t)
		t.FailNow()
	}
	return last
}

// TCP headers on a veth here: Ethernet 14, IPv4 20, TCP 20 + 12 of
// timestamps; a SYN and a SYN-ACK carry 8 more (MSS, SACK permitted,
// window scale, in 20 bytes instead of the 12 of timestamps).
const (
	tcpHeaders   = 14 + 20 + 32
	synExtra     = 8
	udpHeaders   = 14 + 20 + 8
	udp6Headers  = 14 + 40 + 8
	exactnessUp  = 8 << 20
	exactnessDwn = 3<<20 + 12345
)

// N bytes over one TCP connection between two namespaces: each direction
// of each interface counts exactly the payload plus the headers of the
// packets it counted; both ends of the veth count the same; UDP too.
func TestNetworkFlowBytesExact(t *testing.T) {
	n := newFlowsNet(t)
	n.withoutSACK(t)
	h := startNetworkReceiver(t, n, func(c *ebpfreceiver.Config) { c.Network.Ports = "all" })

	client := n.tcpTransfer(t, 18401, exactnessUp, exactnessDwn)
	resent := n.retransmitted(t, n.nsA) + n.retransmitted(t, n.nsB)
	for _, dir := range []struct {
		name          string
		payload       int
		src, dst      string
		sport, dport  int
		sender, recvr string
	}{
		{"a->b", exactnessUp, n.addrA.String(), n.addrB.String(), int(client.Port()), 18401, n.ifA, n.ifB},
		{"b->a", exactnessDwn, n.addrB.String(), n.addrA.String(), 18401, int(client.Port()), n.ifB, n.ifA},
	} {
		flow := map[string]any{"source.address": dir.src, "destination.address": dir.dst, "source.port": dir.sport,
			"destination.port": dir.dport, "network.transport": "tcp", "network.type": "ipv4"}
		with := func(iface, direction string) map[string]any {
			m := map[string]any{"network.interface.name": iface, "network.io.direction": direction}
			for k, v := range flow {
				m[k] = v
			}
			return m
		}
		sent := h.waitFlow(t, with(dir.sender, "transmit"))
		got := h.waitFlow(t, with(dir.recvr, "receive"))
		assert.Equal(t, sent, got, "%s: what one end sent is what the other received", dir.name)
		headers := sent.bytes - int64(dir.payload)
		want := sent.packets*tcpHeaders + synExtra
		extra := headers - want
		t.Logf("FLOWS tcp %s: payload %d B, counted %d B in %d packets: %d B of headers, %.2f per packet (expected %d: %d per packet and %d for the SYN); beyond payload and headers: %d B; segments resent: %d",
			dir.name, dir.payload, sent.bytes, sent.packets, headers, float64(headers)/float64(sent.packets), want,
			tcpHeaders, synExtra, extra, resent)
		if resent == 0 {
			assert.Zero(t, extra, "%s: with nothing resent, counted bytes are payload plus headers, exactly", dir.name)
		} else {
			// A loss on the veth (a busy machine) puts resent segments on
			// the wire: they are counted, as they should be.
			assert.GreaterOrEqual(t, extra, int64(0), "%s", dir.name)
			assert.LessOrEqual(t, extra, resent*(1448+tcpHeaders), "%s: within the margin loss makes", dir.name)
		}
		assert.GreaterOrEqual(t, sent.packets, int64(dir.payload/65536), "%s: packets as the wire sees them", dir.name)
	}

	const datagrams, size = 500, 1000
	require.Equal(t, datagrams, n.udpSend(t, 18402, datagrams, size), "every datagram arrived")
	udp := map[string]any{"source.address": n.addrA.String(), "destination.port": 18402, "network.transport": "udp",
		"network.interface.name": n.ifB, "network.io.direction": "receive"}
	got := h.waitFlow(t, udp)
	t.Logf("FLOWS udp a->b: %d datagrams of %d B: counted %d B in %d packets (expected %d)",
		datagrams, size, got.bytes, got.packets, datagrams*(size+udpHeaders))
	assert.Equal(t, flowTotals{int64(datagrams * (size + udpHeaders)), datagrams}, got)

	require.Equal(t, datagrams, n.udpSendTo(t, n.v6B, 18403, datagrams, size), "every IPv6 datagram arrived")
	udp6 := map[string]any{"source.address": n.v6A.String(), "destination.address": n.v6B.String(), "destination.port": 18403,
		"network.transport": "udp", "network.type": "ipv6", "network.interface.name": n.ifB, "network.io.direction": "receive"}
	got = h.waitFlow(t, udp6)
	t.Logf("FLOWS udp over IPv6 a->b: %d datagrams of %d B: counted %d B in %d packets (expected %d)",
		datagrams, size, got.bytes, got.packets, datagrams*(size+udp6Headers))
	assert.Equal(t, flowTotals{int64(datagrams * (size + udp6Headers)), datagrams}, got)
	assert.Zero(t, h.selfMetric(t, "otelcol_receiver_ebpf_network_kernel_packets", "outcome", "lost"))
}

// Flows are reported under the process that sent them, as the receiver
// describes processes; with ports: listening the connecting side's port is
// dropped and the listening side's kept.
func TestNetworkFlowOwners(t *testing.T) {
	n := newFlowsNet(t)
	h := startNetworkReceiver(t, n, nil)
	srv := startReady(t, n.exec(n.nsB, "E2E_ROLE=echo", "E2E_ADDR="+n.addrB.String()+":18470", "OTEL_SERVICE_NAME=flows-server"))
	// The client sends its first request and waits, its connection open.
	cmd := n.exec(n.nsA, "E2E_ROLE=echo-client", "E2E_URL=http://"+srv.addr+"/owned/{i}", "E2E_REQUESTS=5",
		"E2E_CONCURRENCY=1", "E2E_WAIT=1", "OTEL_SERVICE_NAME=flows-client")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	client := startPeer(t, cmd)
	for line := client.readLine(t); line != "CONNECTED"; line = client.readLine(t) {
		require.True(t, strings.HasPrefix(line, "ECHO 0 tp="), "client said %q", line)
	}

	request := map[string]any{"source.address": n.addrA.String(), "source.port": nil, "destination.port": 18470,
		"network.interface.name": n.ifB, "network.io.direction": "receive"}
	response := map[string]any{"source.address": n.addrB.String(), "source.port": 18470, "destination.port": nil,
		"network.interface.name": n.ifB, "network.io.direction": "transmit"}
	ok := assert.Eventually(t, func() bool {
		_, ok1 := h.flowValue("network.flow.bytes", request, map[string]any{"service.name": "flows-client",
			"process.pid": client.pid()})
		_, ok2 := h.flowValue("network.flow.bytes", response, map[string]any{"service.name": "flows-server",
			"process.pid": srv.pid()})
		return ok1 && ok2
	}, 10*time.Second, 100*time.Millisecond, "requests under the client, responses under the server")
	if !ok || os.Getenv("FLOWS_DUMP") != "" {
		h.dumpFlows(t)
	}
	stdin.Write([]byte("\n"))
	for line := client.readLine(t); line != "DONE"; line = client.readLine(t) {
	}
}

// udpFlows sends perFlow datagrams of size bytes from each of flows
// sockets of a (each its own source port) to port of b.
func (n flowsNet) udpFlows(t *testing.T, port, flows, perFlow, size int) {
	t.Helper()
	var srv *net.UDPConn
	n.in(t, n.nsB, func() (err error) {
		srv, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.addrB, uint16(port))))
		return err
	})
	defer srv.Close()
	srv.SetReadBuffer(8 << 20)
	msg := make([]byte, size)
	for i := 0; i < flows; i++ {
		var c *net.UDPConn
		n.in(t, n.nsA, func() (err error) {
			c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(n.addrB, uint16(port))))
			return err
		})
		for j := 0; j < perFlow; j++ {
			_, err := c.Write(msg)
			require.NoError(t, err)
		}
		c.Close()
	}
}

// A kernel table of 64 flows and a limit of 100 series: flows beyond the
// table go through the spill ring, flows beyond the limit are summed into
// overflow series; the totals stay exact, and both are counted.
func TestNetworkBoundedCardinality(t *testing.T) {
	n := newFlowsNet(t)
	h := startNetworkReceiver(t, n, func(c *ebpfreceiver.Config) {
		c.Network.Ports = "all"
		c.Network.KernelFlows = 64
		c.Network.MaxFlows = 100
	})
	const flows, perFlow, size = 300, 3, 200
	n.udpFlows(t, 18475, flows, perFlow, size)
	onB := map[string]any{"network.interface.name": n.ifB, "network.io.direction": "receive"}
	want := flowTotals{int64(flows * perFlow * (size + udpHeaders)), flows * perFlow}
	var got flowTotals
	require.Eventually(t, func() bool {
		b, _ := h.flowValue("network.flow.bytes", onB, nil)
		p, _ := h.flowValue("network.flow.packets", onB, nil)
		got = flowTotals{b, p}
		return got == want
	}, 10*time.Second, 100*time.Millisecond, "totals on %s: got %+v, want %+v", n.ifB, got, want)
	over, ok := h.flowValue("network.flow.packets", map[string]any{"network.interface.name": n.ifB,
		"network.io.direction": "receive", "otel.metric.overflow": true}, nil)
	require.True(t, ok, "an overflow series")
	t.Logf("FLOWS cardinality: %d flows of %d packets, %d series at most: %d packets in the overflow series, %d spilled through the ring, %d flows overflowed",
		flows, perFlow, 100, over, h.selfMetric(t, "otelcol_receiver_ebpf_network_kernel_packets", "outcome", "spilled"),
		h.selfMetric(t, "otelcol_receiver_ebpf_network_flows_overflowed", "", ""))
	assert.Positive(t, h.selfMetric(t, "otelcol_receiver_ebpf_network_kernel_packets", "outcome", "spilled"))
	assert.Zero(t, h.selfMetric(t, "otelcol_receiver_ebpf_network_kernel_packets", "outcome", "lost"))
	assert.Positive(t, h.selfMetric(t, "otelcol_receiver_ebpf_network_flows_overflowed", "", ""))
	assert.LessOrEqual(t, h.selfMetric(t, "otelcol_receiver_ebpf_network_flow_series", "", ""), int64(100+8),
		"the limit, and an overflow series per interface and direction")
}

// Namespaces and interfaces that appear after the start are counted.
func TestNetworkNewInterfaces(t *testing.T) {
	requireRoot(t)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.ExePath = "^/nothing-is-watched$"
		c.Network.Enabled = true
		c.Network.Namespaces = "all"
		c.Network.Interfaces = []string{"fla*", "flb*"}
		c.Network.Interval = 200 * time.Millisecond
	})
	time.Sleep(300 * time.Millisecond)
	n := newFlowsNet(t)
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_network_interfaces", "state", "attached") >= 2
	}, 10*time.Second, 50*time.Millisecond, "the new interfaces are found")
	require.Equal(t, 100, n.udpSend(t, 18478, 100, 100))
	got := h.waitFlow(t, map[string]any{"network.interface.name": n.ifB, "network.io.direction": "receive",
		"destination.port": 18478})
	assert.Equal(t, flowTotals{100 * (100 + udpHeaders), 100}, got)
}

// The receiver applies the rules of coexistence: with netlink, Cilium's
// filter at priority 1 on one interface makes it refuse that interface
// (and say why in the log), and count the other.
func TestNetworkCiliumRules(t *testing.T) {
	b := newTCBench(t)
	cil := b.stand(t)
	b.standNetlink(t, cil, tcattach.Ingress, 1)
	h := startReceiver(t, func(c *ebpfreceiver.Config) {
		c.Discovery.ExePath = "^/nothing-is-watched$"
		c.Network.Enabled = true
		c.Network.Namespaces = "all"
		c.Network.Interfaces = []string{b.n.ifA, b.n.ifB}
		c.Network.Interval = 200 * time.Millisecond
		c.Network.TCBackend = "netlink"
	})
	require.Eventually(t, func() bool {
		return h.selfMetric(t, "otelcol_receiver_ebpf_network_interfaces", "state", "attached") == 1 &&
			h.selfMetric(t, "otelcol_receiver_ebpf_network_interfaces", "state", "refused") == 1
	}, 10*time.Second, 50*time.Millisecond)
	logs := h.logs.FilterMessage("network: the flows of this interface are not counted").All()
	require.Len(t, logs, 1)
	assert.Contains(t, logs[0].ContextMap()["error"], "bpf-filter-priority")
	b.traffic(t, 18480)
	rising(t, cil, 0, "beside the receiver")
	h.waitFlow(t, map[string]any{"network.interface.name": b.n.ifA, "network.io.direction": "transmit",
		"destination.port": 18481})
	h.stop(t)
	assert.Equal(t, []string{"cil_from_container@1"}, b.filters(t, tcattach.Ingress), "only Cilium's is left")
	assert.Empty(t, b.filters(t, tcattach.Egress), "ours went")
}
