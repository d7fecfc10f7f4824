package flows

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Lines as this kernel writes them (6.18), cut to what is read.
const tcpTable = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:92B7 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 288673 1 00000000c0be366a 100 0 0 10 0
   1: 0201E90A:4842 0101E90A:A3F0 01 00000000:00000000 00:00000000 00000000     0        0 301122 1 00000000c0be366a 20 4 30 10 -1
   2: garbage
   3: 0201E90A:4842 0101E90A:A3F0 01 00000000:00000000 00:00000000 00000000     0        0 0 1 00000000c0be366a 20 4 30 10 -1
`

const tcp6Table = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000201E90A:1F90 0000000000000000FFFF00000101E90A:D431 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 000080FE00000000FF0000FC010000FE:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0
`

func TestParseSockets(t *testing.T) {
	var got []socket
	parseSockets(strings.NewReader(tcpTable), protoTCP, func(s socket) { got = append(got, s) })
	assert.Equal(t, []socket{
		{proto: protoTCP, local: netip.MustParseAddrPort("127.0.0.1:37559"), remote: netip.MustParseAddrPort("0.0.0.0:0"), listen: true, inode: 288673},
		{proto: protoTCP, local: netip.MustParseAddrPort("10.233.1.2:18498"), remote: netip.MustParseAddrPort("10.233.1.1:41968"), inode: 301122},
	}, got, "the garbage line and the socket without an inode are skipped")

	got = nil
	parseSockets(strings.NewReader(tcp6Table), protoTCP, func(s socket) { got = append(got, s) })
	assert.Equal(t, []socket{
		{proto: protoTCP, local: netip.MustParseAddrPort("[::]:8080"), remote: netip.MustParseAddrPort("[::]:0"), listen: true, inode: 4242},
		{proto: protoTCP, local: netip.MustParseAddrPort("10.233.1.2:8080"), remote: netip.MustParseAddrPort("10.233.1.1:54321"), inode: 4343},
		{proto: protoTCP, local: netip.MustParseAddrPort("[fe80::fc00:ff:fe00:1]:22"), remote: netip.MustParseAddrPort("[::]:0"), listen: true, inode: 4444},
	}, got, "IPv4 mapped into IPv6 is unmapped")

	got = nil
	parseSockets(strings.NewReader(strings.ReplaceAll(tcpTable, " 0A ", " 07 ")), protoUDP, func(s socket) { got = append(got, s) })
	assert.True(t, got[0].listen, "a UDP socket with no peer receives from anyone")
	assert.False(t, got[1].listen)
}

const fibTrie = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
`

func TestParseLocalAddresses(t *testing.T) {
	var got []netip.Addr
	parseLocalIPv4(strings.NewReader(fibTrie), func(a netip.Addr) { got = append(got, a) })
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.2")}, got)
	got = nil
	parseLocalIPv6(strings.NewReader("fd000000000000000000000000000002 04 40 00 82     eth0\n00000000000000000000000000000001 01 80 10 80       lo\nshort\n"),
		func(a netip.Addr) { got = append(got, a) })
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("fd00::2"), netip.MustParseAddr("::1")}, got)
}
