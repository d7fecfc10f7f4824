package flows

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Owners finds the process a flow's endpoint belongs to, from what /proc
// shows of every network namespace on the node: its sockets, its local
// addresses and its processes. An endpoint belongs to a process when
//
//  1. a connected socket of the process has it as its local end and the
//     flow's other end as its peer (TCP, connected UDP); else
//  2. the process listens on it (TCP), or has a UDP socket bound to it
//     with no peer, in the namespace whose address it is (or in the
//     flow's own namespace, for addresses several namespaces have, such
//     as 127.0.0.1); else
//  3. its address belongs to one namespace other than the node's own, and
//     one process alone lives in it (a pod with one process).
//
// Else it belongs to no process known for sure, and the flow is the
// node's. The tables are read again at most every minRefresh; which
// process holds a socket is read from the processes' descriptors, at most
// every minFdScan, when a socket of interest is not known yet.
type Owners struct {
	procRoot   string
	minRefresh time.Duration
	minFdScan  time.Duration

	lastRefresh, lastFdScan time.Time
	hostNetns               uint64
	connected               map[connKey]uint64 // socket inode
	listening               map[listenKey]uint64
	addrNetns               map[netip.Addr][]uint64
	netnsPids               map[uint64][]int
	inodePid                map[uint64]int
	ephemeralLow            uint16 // the kernel's ip_local_port_range
	ephemeralHigh           uint16
}

type connKey struct {
	proto         uint8
	local, remote netip.AddrPort
}

type listenKey struct {
	netns uint64
	proto uint8
	addr  netip.Addr // unspecified for a socket bound to every address
	port  uint16
}

// NewOwners reads nothing until Refresh.
func NewOwners(procRoot string, minRefresh time.Duration) *Owners {
	// The descriptors are read no more often than the tables, and at most
	// once a second: a connection that flows a moment after a scan must
	// find its process within a refresh or two, not 10 s later.
	o := &Owners{procRoot: procRoot, minRefresh: minRefresh, minFdScan: max(minRefresh, time.Second),
		ephemeralLow: 32768, ephemeralHigh: 60999, inodePid: map[uint64]int{}}
	o.readEphemeral()
	return o
}

func (o *Owners) readEphemeral() {
	b, err := os.ReadFile(filepath.Join(o.procRoot, "sys/net/ipv4/ip_local_port_range"))
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 16)
	hi, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 == nil && err2 == nil && lo <= hi {
		o.ephemeralLow, o.ephemeralHigh = uint16(lo), uint16(hi)
	}
}

// Ephemeral reports whether port is in the range the kernel picks the
// ports of connecting sockets from.
func (o *Owners) Ephemeral(port uint16) bool {
	return port >= o.ephemeralLow && port <= o.ephemeralHigh
}

// HostNetns is the inode of the node's network namespace (pid 1's).
func (o *Owners) HostNetns() uint64 { return o.hostNetns }

// Refresh reads the tables again, unless it did less than minRefresh ago.
func (o *Owners) Refresh(now time.Time) {
	if !o.lastRefresh.IsZero() && now.Sub(o.lastRefresh) < o.minRefresh {
		return
	}
	o.lastRefresh = now
	o.hostNetns = nsInode(filepath.Join(o.procRoot, "1/ns/net"))
	o.connected = map[connKey]uint64{}
	o.listening = map[listenKey]uint64{}
	o.addrNetns = map[netip.Addr][]uint64{}
	o.netnsPids = netnsPids(o.procRoot)
	for ns, pids := range o.netnsPids {
		o.readNetns(ns, pids[0])
	}
}

// netnsPids lists the processes of each network namespace, by its inode.
func netnsPids(procRoot string) map[uint64][]int {
	out := map[uint64][]int{}
	entries, _ := os.ReadDir(procRoot)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns := nsInode(filepath.Join(procRoot, e.Name(), "ns/net")); ns != 0 {
			out[ns] = append(out[ns], pid)
		}
	}
	return out
}

// nsInode is the inode of the namespace file at path, 0 when unreadable.
func nsInode(path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

// readNetns reads the sockets and the local addresses of namespace ns
// through process pid.
func (o *Owners) readNetns(ns uint64, pid int) {
	dir := filepath.Join(o.procRoot, strconv.Itoa(pid), "net")
	for _, t := range []struct {
		file  string
		proto uint8
	}{{"tcp", protoTCP}, {"tcp6", protoTCP}, {"udp", protoUDP}, {"udp6", protoUDP}} {
		f, err := os.Open(filepath.Join(dir, t.file))
		if err != nil {
			continue
		}
		parseSockets(f, t.proto, func(s socket) { o.addSocket(ns, s) })
		f.Close()
	}
	addAddr := func(a netip.Addr) { o.addrNetns[a] = append(o.addrNetns[a], ns) }
	if f, err := os.Open(filepath.Join(dir, "fib_trie")); err == nil {
		parseLocalIPv4(f, addAddr)
		f.Close()
	}
	if f, err := os.Open(filepath.Join(dir, "if_inet6")); err == nil {
		parseLocalIPv6(f, addAddr)
		f.Close()
	}
}

func (o *Owners) addSocket(ns uint64, s socket) {
	if s.listen {
		o.listening[listenKey{ns, s.proto, s.local.Addr(), s.local.Port()}] = s.inode
		return
	}
	o.connected[connKey{s.proto, s.local, s.remote}] = s.inode
}

// candidates are the namespaces endpoint address a may live in: the one
// whose address it is, or, when several have it, the flow's own if it is
// one of them.
func (o *Owners) candidates(a netip.Addr, flowNetns uint64) []uint64 {
	nss := o.addrNetns[a]
	if len(nss) <= 1 {
		return nss
	}
	for _, ns := range nss {
		if ns == flowNetns {
			return []uint64{ns}
		}
	}
	return nil // several, and not the flow's: not for sure
}

// listener finds the socket listening on ep in the namespaces ep's address
// may live in: exactly one, or none.
func (o *Owners) listener(ep netip.AddrPort, proto uint8, flowNetns uint64) (uint64, bool) {
	var found uint64
	n := 0
	for _, ns := range o.candidates(ep.Addr(), flowNetns) {
		for _, a := range []netip.Addr{ep.Addr(), unspecified(ep.Addr(), false), unspecified(ep.Addr(), true)} {
			if ino, ok := o.listening[listenKey{ns, proto, a, ep.Port()}]; ok {
				found, n = ino, n+1
				break
			}
		}
	}
	return found, n == 1
}

// unspecified is the wildcard address a socket bound to every address of
// a's family has; v6 asks for [::], which takes IPv4 too (dual stack).
func unspecified(a netip.Addr, v6 bool) netip.Addr {
	if v6 || a.Is6() {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// Listening reports whether ep is where a socket of this node listens.
func (o *Owners) Listening(ep netip.AddrPort, proto uint8, flowNetns uint64) bool {
	_, ok := o.listener(ep, proto, flowNetns)
	return ok
}

// Pid finds the process endpoint ep (whose peer is peer) belongs to, by
// the rules in the type's comment.
func (o *Owners) Pid(ep, peer netip.AddrPort, proto uint8, flowNetns uint64, now time.Time) (int, bool) {
	if ino, ok := o.connected[connKey{proto, ep, peer}]; ok {
		if pid, ok := o.pidOf(ino, now); ok {
			return pid, true
		}
	}
	if ino, ok := o.listener(ep, proto, flowNetns); ok {
		if pid, ok := o.pidOf(ino, now); ok {
			return pid, true
		}
	}
	nss := o.addrNetns[ep.Addr()]
	if len(nss) == 1 && nss[0] != o.hostNetns && len(o.netnsPids[nss[0]]) == 1 {
		return o.netnsPids[nss[0]][0], true
	}
	return 0, false
}

// pidOf finds the process that holds socket inode ino, reading every
// process's descriptors again when it is not known and the last reading is
// old enough.
func (o *Owners) pidOf(ino uint64, now time.Time) (int, bool) {
	if pid, ok := o.inodePid[ino]; ok {
		return pid, true
	}
	if !o.lastFdScan.IsZero() && now.Sub(o.lastFdScan) < o.minFdScan {
		return 0, false
	}
	o.lastFdScan = now
	o.inodePid = socketOwners(o.procRoot)
	pid, ok := o.inodePid[ino]
	return pid, ok
}

// socketOwners maps the socket inodes of every process to the process
// (the lowest pid, when several share a socket).
func socketOwners(procRoot string) map[uint64]int {
	out := map[uint64]int{}
	entries, _ := os.ReadDir(procRoot)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(procRoot, e.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil {
				continue
			}
			rest, ok := strings.CutPrefix(target, "socket:[")
			if !ok {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
			if err != nil {
				continue
			}
			if old, ok := out[ino]; !ok || pid < old {
				out[ino] = pid
			}
		}
	}
	return out
}
