package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/bpf/standin"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tcattach"
)

// The tests of this file put our flow programs beside a stand-in for
// Cilium (a program named cil_from_container that counts packets and ends
// the chain with TC_ACT_OK, as Cilium's do) on the interface of namespace
// b, in every order and attach mode, and check that ours run or refuse as
// the rules say, that the stand-in keeps counting throughout and after
// ours are gone, and that no byte of the traffic is lost.

// tcBench is a namespace pair, our flow programs for b's namespace, and
// stand-ins to attach.
type tcBench struct {
	n     flowsNet
	iface tcattach.Interface
	flows *bpf.Flows
	progs tcattach.Programs
}

func newTCBench(t *testing.T) *tcBench {
	t.Helper()
	n := newFlowsNet(t)
	f, err := bpf.LoadFlows(bpf.FlowOptions{TableFlows: 1024})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	p, err := f.Programs(1)
	require.NoError(t, err)
	return &tcBench{n: n, iface: n.iface(t, n.nsB, n.ifB), flows: f, progs: tcattach.Programs{Ingress: p.Ingress, Egress: p.Egress}}
}

// stand loads a stand-in.
func (b *tcBench) stand(t *testing.T) *standin.Program {
	t.Helper()
	s, err := standin.Load()
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// standTCX attaches a stand-in with TCX at the end of the chain, as Cilium
// does.
func (b *tcBench) standTCX(t *testing.T, s *standin.Program, dir tcattach.Direction) link.Link {
	t.Helper()
	attach := ebpf.AttachTCXIngress
	if dir == tcattach.Egress {
		attach = ebpf.AttachTCXEgress
	}
	var l link.Link
	b.n.in(t, b.n.nsB, func() (err error) {
		l, err = link.AttachTCX(link.TCXOptions{Interface: b.iface.Index, Program: s.Prog(), Attach: attach, Anchor: link.Tail()})
		return err
	})
	t.Cleanup(func() { l.Close() })
	return l
}

// nlHandle is a netlink handle in namespace b, and b's interface.
func (b *tcBench) nlHandle(t *testing.T) (*netlink.Handle, netlink.Link) {
	t.Helper()
	ns, err := netns.GetFromPath("/run/netns/" + b.n.nsB)
	require.NoError(t, err)
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	t.Cleanup(h.Close)
	l, err := h.LinkByIndex(b.iface.Index)
	require.NoError(t, err)
	return h, l
}

// standNetlink attaches a stand-in as Cilium's netlink filter (named as
// Cilium names them) at priority prio, adding the clsact qdisc if needed.
func (b *tcBench) standNetlink(t *testing.T, s *standin.Program, dir tcattach.Direction, prio uint16) {
	t.Helper()
	h, l := b.nlHandle(t)
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	if err := h.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		require.NoError(t, err)
	}
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if dir == tcattach.Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: parent,
		Handle: netlink.MakeHandle(0, 1), Priority: prio, Protocol: unix.ETH_P_ALL},
		Fd: s.Prog().FD(), Name: "cil_from_container-" + b.n.ifB, DirectAction: true}
	require.NoError(t, h.FilterAdd(f))
}

// filters lists the names and priorities of the netlink filters on a hook
// of b's interface, as "name@prio".
func (b *tcBench) filters(t *testing.T, dir tcattach.Direction) []string {
	t.Helper()
	h, l := b.nlHandle(t)
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if dir == tcattach.Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	fs, err := h.FilterList(l, parent)
	if err != nil {
		return nil // no clsact
	}
	var out []string
	for _, f := range fs {
		if bf, ok := f.(*netlink.BpfFilter); ok {
			out = append(out, fmt.Sprintf("%s@%d", strings.SplitN(bf.Name, "-", 2)[0], bf.Priority))
		}
	}
	return out
}

// hasClsact reports whether b's interface has a clsact qdisc.
func (b *tcBench) hasClsact(t *testing.T) bool {
	t.Helper()
	h, l := b.nlHandle(t)
	qs, err := h.QdiscList(l)
	require.NoError(t, err)
	for _, q := range qs {
		if q.Type() == "clsact" {
			return true
		}
	}
	return false
}

// traffic moves bytes both ways over TCP (every byte checked) and UDP
// datagrams from a to b (every one must arrive).
func (b *tcBench) traffic(t *testing.T, port int) {
	t.Helper()
	b.n.tcpTransfer(t, port, 1<<20, 1<<18)
	require.Equal(t, 200, b.n.udpSend(t, port+1, 200, 500), "no datagram lost")
}

// ours counts the packets our programs saw on b's interface since the
// last call, per direction.
func (b *tcBench) ours(t *testing.T) (in, out uint64) {
	t.Helper()
	for range 2 { // both tables
		table, err := b.flows.Swap()
		require.NoError(t, err)
		require.NoError(t, b.flows.Drain(table, func(k *bpf.FlowKey, c bpf.FlowCounts) {
			if k.Ifindex != uint32(b.iface.Index) {
				return
			}
			if k.Dir == bpf.FlowReceive {
				in += c.Packets
			} else {
				out += c.Packets
			}
		}))
	}
	return in, out
}

// rising checks that a stand-in's count went up since before.
func rising(t *testing.T, s *standin.Program, before uint64, what string) uint64 {
	t.Helper()
	now, err := s.Seen()
	require.NoError(t, err)
	require.Greater(t, now, before, "%s: the stand-in still sees the packets", what)
	return now
}

// With TCX, ours goes to the head of the chain whether Cilium came before
// it or after: ours and Cilium's both see every packet, and Cilium's keep
// doing so after ours are gone.
func TestTCXBesideCilium(t *testing.T) {
	b := newTCBench(t)
	before, after := b.stand(t), b.stand(t)
	b.standTCX(t, before, tcattach.Ingress) // Cilium first, on ingress
	b.traffic(t, 18410)
	seenBefore := rising(t, before, 0, "alone")

	att, err := tcattach.Attach(b.iface, b.progs, tcattach.TCX)
	require.NoError(t, err)
	assert.Equal(t, tcattach.TCX, att.Backend)
	assert.Contains(t, strings.Join(att.Notes, "\n"), "cil_from_container", "the log says ours runs before Cilium's")
	b.standTCX(t, after, tcattach.Egress) // Cilium after ours, on egress
	order, err := tcattach.TCXOrder(b.iface, tcattach.Ingress)
	require.NoError(t, err)
	assert.Equal(t, []string{"flows_ingress", "cil_from_container"}, order, "ours at the head, Cilium's after it")
	order, err = tcattach.TCXOrder(b.iface, tcattach.Egress)
	require.NoError(t, err)
	assert.Equal(t, []string{"flows_egress", "cil_from_container"}, order)

	b.ours(t)
	b.traffic(t, 18412)
	in, out := b.ours(t)
	assert.Positive(t, in, "ours counted what b received")
	assert.Positive(t, out, "ours counted what b sent")
	seenBefore = rising(t, before, seenBefore, "ingress, behind ours")
	seenAfter := rising(t, after, 0, "egress, behind ours")

	require.NoError(t, att.Close())
	order, err = tcattach.TCXOrder(b.iface, tcattach.Ingress)
	require.NoError(t, err)
	assert.Equal(t, []string{"cil_from_container"}, order, "only ours went")
	b.traffic(t, 18414)
	rising(t, before, seenBefore, "ingress, after ours left")
	rising(t, after, seenAfter, "egress, after ours left")
}

// With netlink, Cilium at priority 1 would run before ours: ours refuses,
// says what to change, and leaves Cilium's filter and qdisc as they were.
func TestTCNetlinkCiliumAtPriority1Refused(t *testing.T) {
	b := newTCBench(t)
	cil := b.stand(t)
	b.standNetlink(t, cil, tcattach.Ingress, 1)
	b.traffic(t, 18420)
	seen := rising(t, cil, 0, "alone")

	_, err := tcattach.Attach(b.iface, b.progs, tcattach.Netlink)
	var refused *tcattach.RefusedError
	require.ErrorAs(t, err, &refused)
	t.Logf("TC refusal: %v", err)
	assert.Contains(t, err.Error(), "cilium config set bpf-filter-priority 2")
	assert.Contains(t, err.Error(), "ingress")
	assert.Equal(t, []string{"cil_from_container@1"}, b.filters(t, tcattach.Ingress), "Cilium's filter untouched")
	assert.Empty(t, b.filters(t, tcattach.Egress), "nothing of ours left on egress either")
	assert.True(t, b.hasClsact(t))
	b.traffic(t, 18422)
	rising(t, cil, seen, "after the refusal")
}

// With netlink and Cilium at priority 2, ours goes to priority 1, before
// it; both see every packet; on close only our filters go, and the qdisc,
// which was Cilium's, stays.
func TestTCNetlinkCiliumAtPriority2(t *testing.T) {
	b := newTCBench(t)
	cilIn, cilOut := b.stand(t), b.stand(t)
	b.standNetlink(t, cilIn, tcattach.Ingress, 2)
	b.standNetlink(t, cilOut, tcattach.Egress, 2)

	att, err := tcattach.Attach(b.iface, b.progs, tcattach.Netlink)
	require.NoError(t, err)
	assert.Equal(t, tcattach.Netlink, att.Backend)
	assert.Equal(t, []string{"otelcol@1", "cil_from_container@2"}, b.filters(t, tcattach.Ingress))
	assert.Equal(t, []string{"otelcol@1", "cil_from_container@2"}, b.filters(t, tcattach.Egress))
	b.ours(t)
	b.traffic(t, 18430)
	in, out := b.ours(t)
	assert.Positive(t, in)
	assert.Positive(t, out)
	seenIn, seenOut := rising(t, cilIn, 0, "ingress, behind ours"), rising(t, cilOut, 0, "egress, behind ours")

	require.NoError(t, att.Close())
	assert.Equal(t, []string{"cil_from_container@2"}, b.filters(t, tcattach.Ingress))
	assert.Equal(t, []string{"cil_from_container@2"}, b.filters(t, tcattach.Egress))
	assert.True(t, b.hasClsact(t), "the qdisc was not ours")
	b.traffic(t, 18432)
	rising(t, cilIn, seenIn, "ingress, after ours left")
	rising(t, cilOut, seenOut, "egress, after ours left")
}

// Ours first with netlink (it adds the qdisc), Cilium after at priority 2:
// on close ours goes and the qdisc stays, since Cilium's filter is under
// it. Alone, ours removes the qdisc it added.
func TestTCNetlinkOursFirst(t *testing.T) {
	b := newTCBench(t)
	require.False(t, b.hasClsact(t))
	att, err := tcattach.Attach(b.iface, b.progs, tcattach.Netlink)
	require.NoError(t, err)
	cil := b.stand(t)
	b.standNetlink(t, cil, tcattach.Ingress, 2)
	b.traffic(t, 18440)
	seen := rising(t, cil, 0, "behind ours")
	require.NoError(t, att.Close())
	assert.True(t, b.hasClsact(t), "Cilium's filter is under the qdisc: it stays")
	assert.Equal(t, []string{"cil_from_container@2"}, b.filters(t, tcattach.Ingress))
	b.traffic(t, 18442)
	rising(t, cil, seen, "after ours left")

	b2 := newTCBench(t)
	att, err = tcattach.Attach(b2.iface, b2.progs, tcattach.Netlink)
	require.NoError(t, err)
	require.True(t, b2.hasClsact(t))
	require.NoError(t, att.Close())
	assert.False(t, b2.hasClsact(t), "the qdisc ours added, and nothing else used, is gone")
}

// Mixed modes: Cilium on TCX and ours on netlink would put Cilium first:
// refused, with the reason. Ours on TCX with Cilium on netlink is fine:
// TCX runs first.
func TestTCMixedModes(t *testing.T) {
	b := newTCBench(t)
	cil := b.stand(t)
	b.standTCX(t, cil, tcattach.Ingress)
	_, err := tcattach.Attach(b.iface, b.progs, tcattach.Netlink)
	var refused *tcattach.RefusedError
	require.ErrorAs(t, err, &refused)
	t.Logf("TC refusal: %v", err)
	assert.Contains(t, err.Error(), "TCX programs run before every netlink filter")
	assert.Contains(t, err.Error(), "network.tc_backend: tcx")
	assert.False(t, b.hasClsact(t), "nothing added")
	b.traffic(t, 18450)
	rising(t, cil, 0, "after the refusal")

	b2 := newTCBench(t)
	cil2 := b2.stand(t)
	b2.standNetlink(t, cil2, tcattach.Ingress, 1)
	att, err := tcattach.Attach(b2.iface, b2.progs, tcattach.Auto)
	require.NoError(t, err)
	assert.Equal(t, tcattach.TCX, att.Backend, "auto is TCX on this kernel")
	b2.ours(t)
	b2.traffic(t, 18452)
	in, _ := b2.ours(t)
	assert.Positive(t, in, "ours, on TCX, ran before Cilium's netlink filter at priority 1")
	seen := rising(t, cil2, 0, "behind ours")
	require.NoError(t, att.Close())
	assert.Equal(t, []string{"cil_from_container@1"}, b2.filters(t, tcattach.Ingress))
	b2.traffic(t, 18454)
	rising(t, cil2, seen, "after ours left")
}

// A filter a killed collector left at priority 1 is ours to replace; a
// filter of a running one is not.
func TestTCNetlinkStaleFilter(t *testing.T) {
	b := newTCBench(t)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	h, l := b.nlHandle(t)
	require.NoError(t, h.QdiscAdd(&netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}))
	old := b.stand(t)
	require.NoError(t, h.FilterAdd(&netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index,
		Parent: netlink.HANDLE_MIN_INGRESS, Handle: netlink.MakeHandle(0, 1), Priority: 1, Protocol: unix.ETH_P_ALL},
		Fd: old.Prog().FD(), Name: fmt.Sprintf("otelcol-ebpf-flows-%d", dead.Process.Pid), DirectAction: true}))

	att, err := tcattach.Attach(b.iface, b.progs, tcattach.Netlink)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(att.Notes, "\n"), "a collector that is gone")
	_, err = tcattach.Attach(b.iface, b.progs, tcattach.Netlink)
	require.ErrorContains(t, err, "already counts flows here", "a running collector's filter stays")
	b.traffic(t, 18460)
	require.NoError(t, att.Close())
	assert.Empty(t, b.filters(t, tcattach.Ingress))
}
