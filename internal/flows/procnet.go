package flows

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// socket is one line of /proc/PID/net/{tcp,tcp6,udp,udp6}.
type socket struct {
	proto  uint8
	local  netip.AddrPort
	remote netip.AddrPort
	listen bool // a TCP listener, or a UDP socket with no peer
	inode  uint64
}

const (
	protoTCP = 6
	protoUDP = 17

	tcpListen = 0x0A // TCP_LISTEN in the st column
)

// parseSockets reads a /proc/net socket table. Lines it cannot read are
// skipped: the table is read while it changes.
func parseSockets(r io.Reader, proto uint8, each func(socket)) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 512), 4096)
	first := true
	for s.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(s.Text())
		if len(f) < 10 {
			continue
		}
		local, ok1 := parseHexAddrPort(f[1])
		remote, ok2 := parseHexAddrPort(f[2])
		st, err1 := strconv.ParseUint(f[3], 16, 8)
		inode, err2 := strconv.ParseUint(f[9], 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || inode == 0 {
			continue
		}
		sk := socket{proto: proto, local: local, remote: remote, inode: inode}
		if proto == protoTCP {
			sk.listen = st == tcpListen
		} else {
			sk.listen = remote.Port() == 0
		}
		each(sk)
	}
}

// parseHexAddrPort reads "0100007F:1F90" (IPv4: a little-endian word) or
// 32 hex digits and a port (IPv6: four words, each in host order). IPv4
// addresses mapped into IPv6 are unmapped.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var addr netip.Addr
	switch len(raw) {
	case 4:
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], binary.LittleEndian.Uint32(raw))
		addr = netip.AddrFrom4(b)
	case 16:
		var b [16]byte
		for i := 0; i < 16; i += 4 {
			binary.BigEndian.PutUint32(b[i:], binary.LittleEndian.Uint32(raw[i:]))
		}
		addr = netip.AddrFrom16(b).Unmap()
	default:
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// parseLocalIPv4 reads the addresses of a namespace's local routing table
// from /proc/PID/net/fib_trie: an address line ("|-- 10.0.0.2") followed
// by "/32 host LOCAL".
func parseLocalIPv4(r io.Reader, each func(netip.Addr)) {
	s := bufio.NewScanner(r)
	var last netip.Addr
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if rest, ok := strings.CutPrefix(line, "|-- "); ok {
			last, _ = netip.ParseAddr(rest)
			continue
		}
		if last.IsValid() && strings.HasPrefix(line, "/32 host LOCAL") {
			each(last)
			last = netip.Addr{}
		}
	}
}

// parseLocalIPv6 reads /proc/PID/net/if_inet6: 32 hex digits first.
func parseLocalIPv6(r io.Reader, each func(netip.Addr)) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 0 || len(f[0]) != 32 {
			continue
		}
		raw, err := hex.DecodeString(f[0])
		if err != nil {
			continue
		}
		each(netip.AddrFrom16([16]byte(raw)))
	}
}
