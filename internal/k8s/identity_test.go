package k8s

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// fakeProc lays out a /proc in a temporary directory: pid 1 stands for the
// host (its UTS namespace, its root), other pids for processes.
type fakeProc struct {
	t    *testing.T
	root string
}

const hostUTS = "uts:[4026531838]"

func newFakeProc(t *testing.T) *fakeProc {
	p := &fakeProc{t: t, root: t.TempDir()}
	p.link("1/ns/uts", hostUTS)
	p.write("1/root/etc/hostname", "node-1\n")
	return p
}

func (p *fakeProc) write(name, content string) {
	path := filepath.Join(p.root, name)
	require.NoError(p.t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(p.t, os.WriteFile(path, []byte(content), 0o644))
}

func (p *fakeProc) link(name, target string) {
	path := filepath.Join(p.root, name)
	require.NoError(p.t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(p.t, os.Symlink(target, path))
}

func (p *fakeProc) mkdir(name string) {
	require.NoError(p.t, os.MkdirAll(filepath.Join(p.root, name), 0o755))
}

const saNamespace = "root/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// podProcess lays out process pid in container cid of pod uid, in a UTS
// namespace of its own, with the files kubelet mounts.
func (p *fakeProc) podProcess(pid, cid, uid, namespace, hostname string) {
	p.write(pid+"/cgroup", v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"+
		strings.ReplaceAll(uid, "-", "_")+".slice/cri-containerd-"+cid+".scope"))
	p.link(pid+"/ns/uts", "uts:[4026532"+pid+"]")
	p.write(pid+"/"+saNamespace, namespace)
	p.write(pid+"/root/etc/hostname", hostname+"\n")
}

func TestIdentifyFromFilesInThePod(t *testing.T) {
	p := newFakeProc(t)
	p.podProcess("100", cid1, uid1, "shop", "checkout-7d9f8b6c5d-x2x4z")
	assert.Equal(t, Identity{
		ContainerID: cid1, ContainerRuntime: "containerd", PodUID: uid1,
		PodName: "checkout-7d9f8b6c5d-x2x4z", Namespace: "shop",
	}, Identify(p.root, 100))
}

func TestIdentifyFromKubeletLogLinks(t *testing.T) {
	p := newFakeProc(t)
	// The hostname differs from the pod's name (spec.hostname): the log
	// links, exact, win.
	p.podProcess("100", cid1, uid1, "shop", "custom-hostname")
	p.mkdir("1/root/var/log/pods/shop_db-0_" + uid2) // another pod
	p.mkdir("1/root/var/log/pods/shop_checkout-7d9f8b6c5d-x2x4z_" + uid1 + "/server")
	p.link("1/root/var/log/containers/checkout-7d9f8b6c5d-x2x4z_shop_istio-init-"+cid2+".log", "/var/log/pods/x")
	p.link("1/root/var/log/containers/checkout-7d9f8b6c5d-x2x4z_shop_server-"+cid1+".log", "/var/log/pods/x")
	p.link("1/root/var/log/containers/db-0_shop_postgres-"+cid3+".log", "/var/log/pods/y")
	assert.Equal(t, Identity{
		ContainerID: cid1, ContainerRuntime: "containerd", PodUID: uid1,
		PodName: "checkout-7d9f8b6c5d-x2x4z", Namespace: "shop", ContainerName: "server",
	}, Identify(p.root, 100))
}

func TestIdentifyHostNetworkPodHasNoPodNameFromHostname(t *testing.T) {
	p := newFakeProc(t)
	p.podProcess("100", cid1, uid1, "kube-system", "node-1")
	require.NoError(t, os.Remove(filepath.Join(p.root, "100/ns/uts")))
	p.link("100/ns/uts", hostUTS) // shares the host's UTS namespace
	assert.Equal(t, Identity{ContainerID: cid1, ContainerRuntime: "containerd", PodUID: uid1, Namespace: "kube-system"},
		Identify(p.root, 100))
}

func TestIdentifyUnknownUTSNamespaceHasNoPodName(t *testing.T) {
	p := newFakeProc(t)
	p.podProcess("100", cid1, uid1, "shop", "checkout-0")
	require.NoError(t, os.Remove(filepath.Join(p.root, "100/ns/uts")))
	assert.Equal(t, "", Identify(p.root, 100).PodName)
}

func TestIdentifyNamespaceUnderRun(t *testing.T) {
	p := newFakeProc(t)
	p.podProcess("100", cid1, uid1, "ignored", "checkout-0")
	require.NoError(t, os.RemoveAll(filepath.Join(p.root, "100/root/var/run")))
	p.link("100/root/var/run", "/run") // absolute, as in Debian images
	p.write("100/root/run/secrets/kubernetes.io/serviceaccount/namespace", "payments")
	assert.Equal(t, "payments", Identify(p.root, 100).Namespace)
}

func TestIdentifyHostileContainer(t *testing.T) {
	p := newFakeProc(t)
	p.podProcess("100", cid1, uid1, "shop", "x")
	p.write("secret", "host-secret\n") // outside the process's root
	hostname := filepath.Join(p.root, "100/root/etc/hostname")
	namespace := filepath.Join(p.root, "100", saNamespace)

	for name, plant := range map[string]func(path string){
		"absolute symlink": func(path string) { require.NoError(t, os.Symlink(filepath.Join(p.root, "secret"), path)) },
		"escaping symlink": func(path string) { require.NoError(t, os.Symlink("../../../../../../../../secret", path)) },
		"fifo":             func(path string) { require.NoError(t, syscall.Mkfifo(path, 0o644)) },
		"directory":        func(path string) { require.NoError(t, os.Mkdir(path, 0o755)) },
	} {
		t.Run(name, func(t *testing.T) {
			for _, f := range []string{hostname, namespace} {
				require.NoError(t, os.RemoveAll(f))
				plant(f)
			}
			done := make(chan Identity)
			go func() { done <- Identify(p.root, 100) }()
			select {
			case id := <-done:
				assert.Equal(t, Identity{ContainerID: cid1, ContainerRuntime: "containerd", PodUID: uid1}, id)
			case <-time.After(5 * time.Second):
				t.Fatal("Identify blocked")
			}
		})
	}
}

func TestIdentifyHostnameLengths(t *testing.T) {
	for _, tt := range []struct {
		hostname, want string
	}{
		{strings.Repeat("a", 61), strings.Repeat("a", 61)},
		{strings.Repeat("a", 62), ""}, // may be a 64-character name cut at a '-'
		{strings.Repeat("a", 63), ""}, // may be a longer name cut
		{"Upper-Case", ""},            // no pod's name
		{"", ""},
	} {
		p := newFakeProc(t)
		p.podProcess("100", cid1, uid1, "shop", tt.hostname)
		assert.Equal(t, tt.want, Identify(p.root, 100).PodName, "hostname %q", tt.hostname)
	}
}

func TestIdentifyOutsidePods(t *testing.T) {
	p := newFakeProc(t)
	// A plain Docker container with the same files: no pod, so they are
	// not read.
	p.podProcess("100", cid1, uid1, "shop", "web")
	p.write("100/cgroup", v2("/system.slice/docker-"+cid3+".scope"))
	assert.Equal(t, Identity{ContainerID: cid3, ContainerRuntime: "docker"}, Identify(p.root, 100))

	p.write("200/cgroup", v2("/system.slice/sshd.service"))
	assert.Equal(t, Identity{}, Identify(p.root, 200))

	assert.Equal(t, Identity{}, Identify(p.root, 300), "no such process")
}

func TestIdentifyBadNamespaceFile(t *testing.T) {
	p := newFakeProc(t)
	p.podProcess("100", cid1, uid1, "Not_A-Namespace", "web")
	assert.Equal(t, "", Identify(p.root, 100).Namespace)
}

func TestIdentityFill(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("service.name", "kept")
	Identity{ContainerID: cid1, ContainerRuntime: "cri-o", PodUID: uid1, PodName: "web-0", Namespace: "shop"}.Fill(m)
	assert.Equal(t, map[string]any{
		"service.name":           "kept",
		"container.id":           cid1,
		"container.runtime.name": "cri-o",
		"k8s.pod.uid":            uid1,
		"k8s.pod.name":           "web-0",
		"k8s.namespace.name":     "shop",
	}, m.AsRaw())

	empty := pcommon.NewMap()
	Identity{}.Fill(empty)
	assert.Zero(t, empty.Len(), "absent facts are left out")
}

func TestNodeName(t *testing.T) {
	noEnv := func(string) string { return "" }
	hostname := func() (string, error) { return "Collector-Pod", nil }

	p := newFakeProc(t)
	name, src := nodeName(p.root, func(k string) string {
		if k == NodeNameEnv {
			return " ip-10-0-0-1.ec2.internal "
		}
		return ""
	}, hostname)
	assert.Equal(t, "ip-10-0-0-1.ec2.internal", name, src)

	p.write("1/root/etc/hostname", "Node-1\n")
	name, src = nodeName(p.root, noEnv, hostname)
	assert.Equal(t, []string{"node-1", "the host's /etc/hostname"}, []string{name, src})

	// No host root: the kernel's hostname, when the collector shares pid 1's
	// UTS namespace.
	require.NoError(t, os.RemoveAll(filepath.Join(p.root, "1/root")))
	p.write("sys/kernel/hostname", "Node-2\n")
	p.link("self/ns/uts", hostUTS)
	name, src = nodeName(p.root, noEnv, hostname)
	assert.Equal(t, []string{"node-2", "the host's kernel hostname"}, []string{name, src})

	// In a UTS namespace of its own, the kernel's hostname is the pod's.
	require.NoError(t, os.Remove(filepath.Join(p.root, "self/ns/uts")))
	p.link("self/ns/uts", "uts:[4026532999]")
	name, src = nodeName(p.root, noEnv, hostname)
	assert.Equal(t, []string{"collector-pod", "os.Hostname"}, []string{name, src})

	assert.NotEmpty(t, NodeName("/proc"))
}
