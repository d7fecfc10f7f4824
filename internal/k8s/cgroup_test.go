package k8s

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Ids used throughout the tests.
const (
	cid1 = "13185af50b1b041b4b2bb6009b4d2dfba3a6eb2ef813277a5757f99f26bb9d6d"
	cid2 = "650c5854b985beb127c01ed4f1343564e69b8ea3532eb81bc3101e0cf8ae059f"
	cid3 = "15af4f21131e8898b57cbf721ce9cd1f88403db174732e6d0365556f5cad0d2a"
	uid1 = "44b22a8a-7e4d-40f3-8f75-df8a1e3357bb"
	uid2 = "ac7ed596-e043-4983-8419-113247346503"
	// static pods: kubelet's hash of the manifest
	staticUID = "dc2e348f9f4cdb910bb9c418cd4268a9"
)

// systemd slices write the pod uid with '_' for '-'.
var uid1s = strings.ReplaceAll(uid1, "-", "_")

// v1 builds a cgroup v1 file: every hierarchy of a typical node, each
// showing path, plus the noise of rdma (not delegated by runtimes) and an
// empty unified hierarchy (hybrid mode).
func v1(path string) string {
	return strings.Join([]string{
		"13:misc:/",
		"12:hugetlb:" + path,
		"11:memory:" + path,
		"10:perf_event:" + path,
		"9:cpu,cpuacct:" + path,
		"8:pids:" + path,
		"7:freezer:" + path,
		"6:devices:" + path,
		"5:net_cls,net_prio:" + path,
		"4:blkio:" + path,
		"3:cpuset:" + path,
		"2:rdma:/",
		"1:name=systemd:" + path,
		"0::/",
	}, "\n") + "\n"
}

func v2(path string) string { return "0::" + path + "\n" }

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		name, file      string
		cid, rt, podUID string
	}{
		// Kubernetes, systemd driver, cgroup v2.
		{"containerd systemd v2 burstable", v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1s + ".slice/cri-containerd-" + cid1 + ".scope"),
			cid1, "containerd", uid1},
		{"containerd systemd v2 besteffort", v2("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid1s + ".slice/cri-containerd-" + cid1 + ".scope"),
			cid1, "containerd", uid1},
		{"containerd systemd v2 guaranteed", v2("/kubepods.slice/kubepods-pod" + uid1s + ".slice/cri-containerd-" + cid1 + ".scope"),
			cid1, "containerd", uid1},
		{"cri-o systemd v2", v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1s + ".slice/crio-" + cid2 + ".scope"),
			cid2, "cri-o", uid1},
		{"cri-o systemd v2, crun's nested container cgroup", v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1s + ".slice/crio-" + cid2 + ".scope/container"),
			cid2, "cri-o", uid1},
		{"cri-o conmon is in the pod, not in a container", v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1s + ".slice/crio-conmon-" + cid2 + ".scope"),
			"", "", uid1},
		{"cri-dockerd systemd v2", v2("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid1s + ".slice/docker-" + cid3 + ".scope"),
			cid3, "docker", uid1},
		{"static pod (32-hex uid)", v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + staticUID + ".slice/cri-containerd-" + cid1 + ".scope"),
			cid1, "containerd", staticUID},
		{"process in the pod's cgroup itself", v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1s + ".slice"),
			"", "", uid1},

		// Kubernetes, systemd driver, cgroup v1 (every hierarchy shows the path).
		{"containerd systemd v1", v1("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1s + ".slice/cri-containerd-" + cid1 + ".scope"),
			cid1, "containerd", uid1},
		{"cri-o systemd v1", v1("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid1s + ".slice/crio-" + cid2 + ".scope"),
			cid2, "cri-o", uid1},

		// Kubernetes, cgroupfs driver.
		{"cgroupfs v1 (containerd or dockershim: the path does not say)", v1("/kubepods/burstable/pod" + uid1 + "/" + cid1),
			cid1, "", uid1},
		{"cgroupfs v1 guaranteed", v1("/kubepods/pod" + uid1 + "/" + cid1), cid1, "", uid1},
		{"cgroupfs v2", v2("/kubepods/besteffort/pod" + uid1 + "/" + cid1), cid1, "", uid1},
		{"cri-o cgroupfs v1", v1("/kubepods/besteffort/pod" + uid1 + "/crio-" + cid2), cid2, "cri-o", uid1},

		// Seen relative to the reader's cgroup namespace (the collector in a
		// pod of its own, cgroup v2's default).
		{"cgroupns-relative systemd", v2("/../../../kubepods-besteffort.slice/kubepods-besteffort-pod" + uid1s + ".slice/cri-containerd-" + cid1 + ".scope"),
			cid1, "containerd", uid1},
		{"cgroupns-relative, sibling container of the same pod", v2("/../cri-containerd-" + cid2 + ".scope"),
			cid2, "containerd", ""},
		{"cgroupns root: the reader's own container", v2("/"), "", "", ""},

		// Some containerd setups write the systemd cgroup name unexpanded.
		{"unexpanded systemd name", v2("/system.slice/containerd.service/kubepods-burstable-pod" + uid1s + ".slice:cri-containerd:" + cid1),
			cid1, "containerd", uid1},

		// Kubernetes in Docker (kind): the node is a Docker container.
		{"kind v1: the pod's container, not the node's", v1("/docker/" + cid3 + "/kubepods/besteffort/pod" + uid1 + "/" + cid1),
			cid1, "", uid1},
		{"kind v1: the node's own process", v1("/docker/" + cid3 + "/system.slice/kubelet.service"), cid3, "docker", ""},
		{"docker in a pod (dind sidecar)", v2("/kubepods/burstable/pod" + uid1 + "/" + cid1 + "/docker/" + cid2),
			cid2, "docker", uid1},

		// Plain Docker and Podman, no Kubernetes.
		{"docker cgroupfs v1", v1("/docker/" + cid3), cid3, "docker", ""},
		{"docker systemd v2", v2("/system.slice/docker-" + cid3 + ".scope"), cid3, "docker", ""},
		{"docker systemd v1", v1("/system.slice/docker-" + cid3 + ".scope"), cid3, "docker", ""},
		{"podman rootless v2", v2("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + cid3 + ".scope/container"),
			cid3, "podman", ""},
		{"podman conmon", v2("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-" + cid3 + ".scope"), "", "", ""},

		// Host processes.
		{"systemd service v2", v2("/system.slice/containerd.service"), "", "", ""},
		{"login session v2", v2("/user.slice/user-0.slice/session-3.scope"), "", "", ""},
		{"init v2", v2("/init.scope"), "", "", ""},
		{"host process v1", v1("/system.slice/sshd.service"), "", "", ""},
		{"kubepods slices alone", v2("/kubepods.slice/kubepods-burstable.slice"), "", "", ""},

		// Lines that disagree leave the fact out.
		{"v1 hierarchies naming two containers", "12:memory:/kubepods/burstable/pod" + uid1 + "/" + cid1 + "\n" +
			"11:pids:/kubepods/burstable/pod" + uid1 + "/" + cid2 + "\n", "", "", uid1},
		{"v1 hierarchies naming two pods", "12:memory:/kubepods/burstable/pod" + uid1 + "/" + cid1 + "\n" +
			"11:pids:/kubepods/burstable/pod" + uid2 + "/" + cid1 + "\n", cid1, "", ""},
		{"hybrid: v2 line agrees with v1", "3:memory:/system.slice/docker-" + cid3 + ".scope\n0::/system.slice/docker-" + cid3 + ".scope\n",
			cid3, "docker", ""},
		{"no trailing newline", "0::/kubepods/pod" + uid1 + "/" + cid1, cid1, "", uid1},

		// Not ids.
		{"upper-case hex is no container id", v2("/docker/" + strings.ToUpper(cid3)), "", "", ""},
		{"63 hex digits", v2("/docker/" + cid3[:63]), "", "", ""},
		{"pod uid with a misplaced dash", v2("/kubepods/podab-" + uid1[3:] + "/" + cid1), cid1, "", ""},
		{"pod uid with non-hex", v2("/kubepods/pod" + strings.Replace(uid1, "a", "g", 1) + "/" + cid1), cid1, "", ""},
		{"empty", "", "", "", ""},
		{"garbage", "garbage\n:::\n0::\n\n", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cid, rt, pod := ParseCgroup([]byte(tt.file))
			assert.Equal(t, tt.cid, cid, "container.id")
			assert.Equal(t, tt.rt, rt, "runtime")
			assert.Equal(t, tt.podUID, pod, "pod uid")
		})
	}
}

func TestParseCgroupDoesNotAllocateMuch(t *testing.T) {
	file := []byte(v1("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1s + ".slice/cri-containerd-" + cid1 + ".scope"))
	// A string per line's path, one per systemd uid rewritten: 22 for the
	// 14 lines here. It runs once per process, but should stay linear.
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() { ParseCgroup(file) }), 24.0)
}

func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte(v1("/kubepods/burstable/pod" + uid1 + "/" + cid1)))
	f.Add([]byte(v2("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid1s + ".slice/cri-containerd-" + cid1 + ".scope")))
	f.Add([]byte(v2("/system.slice/containerd.service/kubepods-burstable-pod" + uid1s + ".slice:cri-containerd:" + cid1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		cid, rt, pod := ParseCgroup(b)
		if cid != "" && !isContainerID(cid) {
			t.Fatalf("container id %q", cid)
		}
		if cid == "" && rt != "" {
			t.Fatalf("runtime %q without a container", rt)
		}
		if pod != "" {
			if _, ok := podUID(pod, false); !ok {
				t.Fatalf("pod uid %q", pod)
			}
		}
		if cid != "" && !strings.Contains(string(b), cid) {
			t.Fatalf("container id %q is not in the input", cid)
		}
	})
}
