package flows

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeProc builds a /proc of two namespaces: the node's (pid 1, and pid
// 200 that listens on 0.0.0.0:8080 and has a connection from a pod), and a
// pod's with one process (pid 100, 10.1.0.5, which connected to the node).
func fakeProc(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	// The node: 192.168.1.10; a listener on *:8080 (inode 11), the accepted
	// connection from the pod (inode 12).
	write("1/ns/net", "")
	write("1/net/tcp", header+
		"   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1\n"+
		"   1: 0A01A8C0:1F90 0500010A:C350 01 00000000:00000000 00:00000000 00000000     0        0 12 1\n")
	write("1/net/fib_trie", "Local:\n  |-- 192.168.1.10\n     /32 host LOCAL\n  |-- 127.0.0.1\n     /32 host LOCAL\n")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "200/ns"), 0o755))
	require.NoError(t, os.Link(filepath.Join(root, "1/ns/net"), filepath.Join(root, "200/ns/net")))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "200/fd"), 0o755))
	require.NoError(t, os.Symlink("socket:[11]", filepath.Join(root, "200/fd/3")))
	require.NoError(t, os.Symlink("socket:[12]", filepath.Join(root, "200/fd/4")))
	require.NoError(t, os.Symlink("/dev/null", filepath.Join(root, "200/fd/0")))
	// The pod: 10.1.0.5 connected from port 50000 (inode 21).
	write("100/ns/net", "")
	write("100/net/tcp", header+"   0: 0500010A:C350 0A01A8C0:1F90 01 00000000:00000000 00:00000000 00000000     0        0 21 1\n")
	write("100/net/fib_trie", "Local:\n  |-- 10.1.0.5\n     /32 host LOCAL\n  |-- 127.0.0.1\n     /32 host LOCAL\n")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "100/fd"), 0o755))
	require.NoError(t, os.Symlink("socket:[21]", filepath.Join(root, "100/fd/5")))
	write("sys/net/ipv4/ip_local_port_range", "40000\t50000\n")
	return root
}

func TestOwners(t *testing.T) {
	root := fakeProc(t)
	o := NewOwners(root, time.Second)
	now := time.Unix(1000, 0)
	o.Refresh(now)
	node, pod := nsInode(filepath.Join(root, "1/ns/net")), nsInode(filepath.Join(root, "100/ns/net"))
	require.NotEqual(t, node, pod)
	assert.Equal(t, node, o.HostNetns())
	ap := netip.MustParseAddrPort
	client, server := ap("10.1.0.5:50000"), ap("192.168.1.10:8080")

	pid, ok := o.Pid(client, server, protoTCP, node, now)
	assert.True(t, ok)
	assert.Equal(t, 100, pid, "the pod's connected socket")
	pid, ok = o.Pid(server, client, protoTCP, node, now)
	assert.True(t, ok)
	assert.Equal(t, 200, pid, "the node's accepted connection")
	pid, ok = o.Pid(server, ap("10.1.0.9:45000"), protoTCP, node, now)
	assert.True(t, ok)
	assert.Equal(t, 200, pid, "a connection gone: the listener on the wildcard address")
	pid, ok = o.Pid(ap("10.1.0.5:40001"), server, protoTCP, node, now)
	assert.True(t, ok)
	assert.Equal(t, 100, pid, "a connection of the pod gone: its one process")
	_, ok = o.Pid(ap("192.168.1.10:45000"), ap("10.9.9.9:443"), protoTCP, node, now)
	assert.False(t, ok, "the node's own address with no socket: two processes live there, none for sure")
	_, ok = o.Pid(ap("127.0.0.1:8080"), ap("127.0.0.1:45000"), protoTCP, 0, now)
	assert.False(t, ok, "127.0.0.1 is in both namespaces: not for sure without the flow's")
	pid, ok = o.Pid(ap("127.0.0.1:8080"), ap("127.0.0.1:45000"), protoTCP, node, now)
	assert.True(t, ok, "in the flow's namespace")
	assert.Equal(t, 200, pid)
	pid, ok = o.Pid(ap("10.1.0.5:5353"), ap("10.9.9.9:53"), protoUDP, node, now)
	assert.True(t, ok)
	assert.Equal(t, 100, pid, "no socket, but the pod's namespace has one process")

	assert.True(t, o.Listening(server, protoTCP, node))
	assert.False(t, o.Listening(client, protoTCP, node))
	assert.True(t, o.Ephemeral(45000), "the range is read from proc_root")
	assert.False(t, o.Ephemeral(50001))

	// Refreshing within minRefresh reads nothing.
	require.NoError(t, os.WriteFile(filepath.Join(root, "100/net/tcp"), []byte(""), 0o644))
	o.Refresh(now.Add(500 * time.Millisecond))
	_, ok = o.connected[connKey{protoTCP, client, server}]
	assert.True(t, ok)
	o.Refresh(now.Add(2 * time.Second))
	_, ok = o.connected[connKey{protoTCP, client, server}]
	assert.False(t, ok)
}
