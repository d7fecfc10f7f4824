package discovery

import (
	"bufio"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Reading stops at the first socket that is not listening: what follows
// is the established hash, where the kernel keeps no listener.
func TestListenersEndAtTheFirstOtherSocket(t *testing.T) {
	f := newFakeProc(t)
	f.process(t, 100, "/usr/bin/a", "a", 1, "", 7001)
	f.process(t, 200, "/usr/bin/b", "b", 2, "", 7002)
	f.listen(t, "tcp", 8080, 7001, "0A")
	f.listen(t, "tcp", 40000, 9999, "01")
	f.listen(t, "tcp", 8081, 7002, "0A") // never where the kernel puts it: not read
	got, err := NewScanner(f.root, Criteria{}).Scan()
	require.NoError(t, err)
	assert.Equal(t, []int{100}, pidsOf(got))
}

// The order readSockets relies on, on this kernel: with connections open,
// every listening socket of /proc/net/tcp comes before every other one.
func TestKernelListsListenersFirst(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	ln2, err := net.Listen("tcp4", "127.0.0.1:0") // opened last, listed with the listeners
	require.NoError(t, err)
	defer ln2.Close()

	f, err := os.Open("/proc/net/tcp")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	listeners, others, late := 0, 0, 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		if fields[3] == "0A" {
			listeners++
			if others > 0 {
				late++
			}
		} else {
			others++
		}
	}
	require.NoError(t, sc.Err())
	assert.GreaterOrEqual(t, listeners, 2)
	assert.GreaterOrEqual(t, others, 2, "the connection's two ends")
	assert.Zero(t, late, "listeners after other sockets")
}
