package k8s

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kthreaddStat is /proc/2/stat of the kernel's thread creator: flags
// (field 9) with PF_KTHREAD.
const kthreaddStat = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 2 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

// A pid 1 that hides its namespaces (a microVM's init does, even from
// root): the host's UTS namespace is kthreadd's, a kernel thread's.
func TestIdentifyPodNameWhenPid1HidesItsNamespaces(t *testing.T) {
	p := newFakeProc(t)
	p.podProcess("100", cid1, uid1, "shop", "checkout-0")
	require.NoError(t, os.Remove(filepath.Join(p.root, "1/ns/uts")))
	assert.Equal(t, "", Identify(p.root, 100).PodName, "no way to tell the host's UTS namespace")

	p.write("2/stat", kthreaddStat)
	p.link("2/ns/uts", hostUTS)
	assert.Equal(t, "checkout-0", Identify(p.root, 100).PodName)

	// A hostNetwork pod shares kthreadd's namespace: its hostname is the node's.
	p.podProcess("101", cid2, uid2, "kube-system", "node-1")
	require.NoError(t, os.Remove(filepath.Join(p.root, "101/ns/uts")))
	p.link("101/ns/uts", hostUTS)
	assert.Equal(t, "", Identify(p.root, 101).PodName)
}

// A pid 2 that is no kernel thread (a container's second process, with
// the PID namespace of its own a collector without hostPID sees) names no
// host namespace.
func TestIdentifyPid2NotAKernelThread(t *testing.T) {
	p := newFakeProc(t)
	p.podProcess("100", cid1, uid1, "shop", "checkout-0")
	require.NoError(t, os.Remove(filepath.Join(p.root, "1/ns/uts")))
	p.write("2/stat", "2 (sh) S 0 2 2 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	p.link("2/ns/uts", hostUTS)
	assert.Equal(t, "", Identify(p.root, 100).PodName)
}

func TestNodeNameKernelHostnameWhenPid1HidesItsNamespaces(t *testing.T) {
	noEnv := func(string) string { return "" }
	hostname := func() (string, error) { return "collector-pod", nil }
	p := newFakeProc(t)
	require.NoError(t, os.RemoveAll(filepath.Join(p.root, "1")))
	p.write("2/stat", kthreaddStat)
	p.link("2/ns/uts", hostUTS)
	p.write("sys/kernel/hostname", "Node-3\n")
	p.link("self/ns/uts", hostUTS)
	name, src := nodeName(p.root, noEnv, hostname)
	assert.Equal(t, []string{"node-3", "the host's kernel hostname"}, []string{name, src})
}
