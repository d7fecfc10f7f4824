// Package flows turns the kernel's per-flow counts (bpf/flows.bpf.c) into
// the network.flow.bytes and network.flow.packets metrics: it finds the
// interfaces to count on and attaches the TC programs to them
// (internal/tcattach), drains the kernel's tables every interval, finds
// the process each flow belongs to, bounds the cardinality, and builds
// cumulative sums.
//
// Memory is bounded by the flow limit (MaxFlows series, then overflow
// series, one per owner, interface and direction) and by the spill
// buffer (at most MaxFlows distinct spilled flows per interval, the rest
// summed per interface and direction).
package flows // import "github.com/otelcol-ebpf/ebpfreceiver/internal/flows"

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/vishvananda/netlink"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// Kernel is the loaded flow accounting: bpf.Flows.
type Kernel interface {
	Programs
	Swap() (*ebpf.Map, error)
	Drain(*ebpf.Map, func(*bpf.FlowKey, bpf.FlowCounts)) error
	Spill() *ebpf.Map
	Counters() (bpf.FlowCounters, error)
}

// Config configures the network layer.
type Config struct {
	Interfaces InterfacesConfig
	// Interval is how often the kernel's counts are drained and the
	// metrics emitted.
	Interval time.Duration
	// Rescan is how often namespaces and interfaces are looked for (the
	// node's own interfaces are also found at once, from link events).
	Rescan      time.Duration
	Ports       PortMode
	MaxFlows    int
	IdleTimeout time.Duration
	// Scope names the instrumentation scope of the metrics.
	Scope  string
	Logger *zap.Logger
}

// Describe returns the Owner of process pid, nil when it is gone.
type Describe func(pid int) Owner

// Sink takes the metrics of an interval.
type Sink func(context.Context, pmetric.Metrics)

// Network counts flows until Shutdown.
type Network struct {
	cfg      Config
	kernel   Kernel
	ifaces   *Interfaces
	owners   *Owners
	describe Describe
	node     func(pcommon.Map)
	sink     Sink
	spill    *ringbuf.Reader

	mu              sync.Mutex // guards table and the pending maps
	table           *Table
	pending         map[bpf.FlowKey]bpf.FlowCounts // spilled, by flow
	pendingOverflow map[overflowKey]bpf.FlowCounts // spilled beyond MaxFlows
	spillOverflowed uint64
	// unowned are flows whose owner was not found yet: a connection's
	// first bytes often flow before /proc shows which process holds its
	// socket. They wait up to ownerWait, then count as the node's.
	unowned map[bpf.FlowKey]unownedFlow

	stop chan struct{}
	wake chan struct{}
	wg   sync.WaitGroup
}

// ownerWait is how long a flow's counts wait for its owner to be found.
const ownerWait = 2 * time.Second

// unownedFlow is what a flow without a known owner counted since.
type unownedFlow struct {
	counts bpf.FlowCounts
	since  time.Time
}

type overflowKey struct {
	netns   uint64
	ifindex uint32
	dir     uint8
}

// New prepares the network layer; Start attaches and starts it.
func New(cfg Config, k Kernel, describe Describe, node func(pcommon.Map), sink Sink) (*Network, error) {
	if cfg.Rescan <= 0 {
		cfg.Rescan = 2 * time.Second
	}
	rd, err := ringbuf.NewReader(k.Spill())
	if err != nil {
		return nil, fmt.Errorf("reading the flow spill ring: %w", err)
	}
	cfg.Interfaces.Logger = cfg.Logger
	return &Network{
		cfg: cfg, kernel: k, ifaces: NewInterfaces(cfg.Interfaces, k),
		owners:   NewOwners(cfg.Interfaces.ProcRoot, min(cfg.Interval, 5*time.Second)),
		describe: describe, node: node, sink: sink, spill: rd,
		table:   NewTable(cfg.MaxFlows, cfg.IdleTimeout),
		pending: map[bpf.FlowKey]bpf.FlowCounts{}, pendingOverflow: map[overflowKey]bpf.FlowCounts{},
		unowned: map[bpf.FlowKey]unownedFlow{},
		stop:    make(chan struct{}), wake: make(chan struct{}, 1),
	}, nil
}

// Start attaches to the interfaces there are now and starts counting.
func (n *Network) Start() {
	n.ifaces.Scan(time.Now())
	n.wg.Add(4)
	go func() { defer n.wg.Done(); n.watchLinks() }()
	go func() { defer n.wg.Done(); n.scanLoop() }()
	go func() { defer n.wg.Done(); n.readSpill() }()
	go func() { defer n.wg.Done(); n.flushLoop() }()
}

// Shutdown detaches every program (ours only), drains what the kernel
// counted since the last interval, and emits it.
func (n *Network) Shutdown(ctx context.Context) error {
	close(n.stop)
	n.wg.Wait() // no scan attaches anything after this
	err := n.ifaces.Close()
	n.spill.SetDeadline(time.Now())
	n.readSpillNow()
	n.flush(ctx, true)
	return errors.Join(err, n.spill.Close())
}

// Interfaces reports on the interfaces.
func (n *Network) Interfaces() InterfaceCounts { return n.ifaces.Counts() }

// Stats are the layer's counts for self-telemetry.
type Stats struct {
	Series     int
	Overflowed uint64 // flow observations summed into overflow series
	Kernel     bpf.FlowCounters
}

// Stats reads the counts.
func (n *Network) Stats() (Stats, error) {
	n.mu.Lock()
	s := Stats{Series: n.table.Len(), Overflowed: n.table.Overflowed() + n.spillOverflowed}
	n.mu.Unlock()
	var err error
	s.Kernel, err = n.kernel.Counters()
	return s, err
}

func (n *Network) scanLoop() {
	t := time.NewTicker(n.cfg.Rescan)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		case <-n.wake:
		}
		n.ifaces.Scan(time.Now())
	}
}

// watchLinks wakes the scan when an interface appears in this namespace
// (a pod's veth on the node): it is counted at once, not at the next scan.
func (n *Network) watchLinks() {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) { n.cfg.Logger.Debug("network: link events", zap.Error(err)) },
	}); err != nil {
		n.cfg.Logger.Debug("network: no link events; interfaces are found by the scan only", zap.Error(err))
		return
	}
	for {
		select {
		case <-n.stop:
			return
		case _, ok := <-updates:
			if !ok {
				return
			}
			select {
			case n.wake <- struct{}{}:
			default:
			}
		}
	}
}

// spillPoll is how often the spill ring is read when the kernel did not
// wake the reader (it does when the ring is half full).
const spillPoll = 100 * time.Millisecond

func (n *Network) readSpill() {
	for {
		n.spill.SetDeadline(time.Now().Add(spillPoll))
		if !n.readSpillNow() {
			return
		}
		select {
		case <-n.stop:
			return
		default:
		}
	}
}

// readSpillNow reads the spilled records until the reader's deadline; it
// returns false when the reader is closed.
func (n *Network) readSpillNow() bool {
	var rec ringbuf.Record
	for {
		err := n.spill.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return true
		}
		if err != nil {
			return false
		}
		if k, c, err := bpf.DecodeFlowRecord(rec.RawSample); err == nil {
			n.addPending(&k, c)
		}
	}
}

func (n *Network) addPending(k *bpf.FlowKey, c bpf.FlowCounts) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.pending[*k]; ok || len(n.pending) < n.cfg.MaxFlows {
		p.Bytes += c.Bytes
		p.Packets += c.Packets
		n.pending[*k] = p
		return
	}
	n.spillOverflowed++
	ok := overflowKey{k.Netns, k.Ifindex, k.Dir}
	p := n.pendingOverflow[ok]
	p.Bytes += c.Bytes
	p.Packets += c.Packets
	n.pendingOverflow[ok] = p
}

func (n *Network) flushLoop() {
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.flush(context.Background(), false)
		}
	}
}

// flush drains the kernel's table (and, at the end, the one in the slot
// too) and the spilled flows, and emits the metrics.
func (n *Network) flush(ctx context.Context, last bool) {
	now := time.Now()
	n.owners.Refresh(now)
	n.drain(now)
	if last {
		n.drain(now) // the other table: nothing writes it any more
	}
	n.mu.Lock()
	pending, over := n.pending, n.pendingOverflow
	n.pending, n.pendingOverflow = map[bpf.FlowKey]bpf.FlowCounts{}, map[overflowKey]bpf.FlowCounts{}
	for k, c := range pending {
		n.add(&k, c, now)
	}
	n.settleUnowned(now, last)
	for k, c := range over {
		n.table.Add(Flow{Interface: n.ifaceName(k.netns, k.ifindex), Transmit: k.dir == bpf.FlowTransmit, Overflow: true},
			c.Bytes, c.Packets, now)
	}
	md := n.table.Collect(n.cfg.Scope, n.node, now)
	n.table.Expire(now)
	n.mu.Unlock()
	if md.DataPointCount() > 0 {
		n.sink(ctx, md)
	}
}

func (n *Network) drain(now time.Time) {
	table, err := n.kernel.Swap()
	if err != nil {
		n.cfg.Logger.Error("network: cannot swap the flow tables; counts wait for the next interval", zap.Error(err))
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.kernel.Drain(table, func(k *bpf.FlowKey, c bpf.FlowCounts) { n.add(k, c, now) }); err != nil {
		n.cfg.Logger.Error("network: cannot drain the flow table", zap.Error(err))
	}
}

func (n *Network) ifaceName(netns uint64, ifindex uint32) string {
	if name := n.ifaces.Name(netns, ifindex); name != "" {
		return name
	}
	return "if" + strconv.FormatUint(uint64(ifindex), 10)
}

// add puts a kernel flow into the table, under its owner, with the ports
// the mode keeps. Called with n.mu held.
func (n *Network) add(k *bpf.FlowKey, c bpf.FlowCounts, now time.Time) {
	nsIno := n.ifaces.Inode(k.Netns)
	src, dst := k.Source(), k.Destination()
	owner := n.owner(src, dst, k.Proto, nsIno, now)
	if owner == nil && n.describe != nil {
		if u, ok := n.unowned[*k]; ok || len(n.unowned) < max(n.cfg.MaxFlows, 1) {
			if !ok {
				u.since = now
			}
			u.counts.Bytes += c.Bytes
			u.counts.Packets += c.Packets
			n.unowned[*k] = u
			return
		}
	}
	n.addOwned(k, c, owner, now)
}

// addOwned puts a flow's counts into the table under owner (nil: the
// node's). Called with n.mu held.
func (n *Network) addOwned(k *bpf.FlowKey, c bpf.FlowCounts, owner Owner, now time.Time) {
	nsIno := n.ifaces.Inode(k.Netns)
	src, dst := k.Source(), k.Destination()
	f := Flow{Interface: n.ifaceName(k.Netns, k.Ifindex), Transmit: k.Dir == bpf.FlowTransmit, Proto: k.Proto, Owner: owner}
	f.Src, f.Dst = n.cfg.Ports.reduce(src, dst, k.Proto, nsIno, n.owners)
	n.table.Add(f, c.Bytes, c.Packets, now)
}

// settleUnowned looks again for the owners of the flows that wait: found,
// or waited ownerWait (or the last flush), they go into the table. Called
// with n.mu held.
func (n *Network) settleUnowned(now time.Time, last bool) {
	for k, u := range n.unowned {
		owner := n.owner(k.Source(), k.Destination(), k.Proto, n.ifaces.Inode(k.Netns), now)
		if owner == nil && !last && now.Sub(u.since) < ownerWait {
			continue
		}
		n.addOwned(&k, u.counts, owner, now)
		delete(n.unowned, k)
	}
}

// owner is the process that sent the flow, else the one it went to, else
// none (the node's).
func (n *Network) owner(src, dst netip.AddrPort, proto uint8, nsIno uint64, now time.Time) Owner {
	if n.describe == nil {
		return nil
	}
	for _, ep := range [2][2]netip.AddrPort{{src, dst}, {dst, src}} {
		if pid, ok := n.owners.Pid(ep[0], ep[1], proto, nsIno, now); ok {
			if o := n.describe(pid); o != nil {
				return o
			}
		}
	}
	return nil
}
