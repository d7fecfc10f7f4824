package k8s // import "github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"

import (
	"os"
	"path/filepath"
	"strings"
)

// NodeNameEnv names the environment variable the agent's pod sets from the
// downward API (fieldRef spec.nodeName): the node's name as Kubernetes
// knows it, the only source that is right even when kubelet runs with
// --hostname-override or a cloud provider names the node.
const NodeNameEnv = "K8S_NODE_NAME"

// NodeName is the name of the node this collector runs on, the first found
// of:
//
//  1. $K8S_NODE_NAME;
//  2. the host's /etc/hostname, read through procRoot/1/root (the host's
//     root when the collector runs in the host's pid namespace, as the
//     agent must to watch other processes);
//  3. the kernel's hostname (procRoot/sys/kernel/hostname), only when the
//     collector shares the host's UTS namespace (pid 1's, else kthreadd's),
//     so that it is the host's and not its own pod's;
//  4. os.Hostname().
//
// Names from 2 to 4 are lower-cased, as kubelet does with the hostname it
// names its node after. Only the first is sure to be the Kubernetes node
// name; set it when the API is used (its pods are selected by it).
func NodeName(procRoot string) string {
	name, _ := nodeName(procRoot, os.Getenv, os.Hostname)
	return name
}

// nodeName also says where the name came from, for logs and tests.
func nodeName(procRoot string, getenv func(string) string, hostname func() (string, error)) (name, source string) {
	if v := strings.TrimSpace(getenv(NodeNameEnv)); v != "" {
		return v, "$" + NodeNameEnv
	}
	if b, err := readSmall(os.Open(filepath.Join(procRoot, "1", "root", "etc", "hostname"))); err == nil {
		if h := strings.ToLower(strings.TrimSpace(string(b))); isDNSSubdomain(h) {
			return h, "the host's /etc/hostname"
		}
	}
	self, err1 := os.Readlink(filepath.Join(procRoot, "self", "ns", "uts"))
	host, err2 := hostUTSNamespace(procRoot)
	if err1 == nil && err2 == nil && self == host {
		if b, err := readSmall(os.Open(filepath.Join(procRoot, "sys", "kernel", "hostname"))); err == nil {
			if h := strings.ToLower(strings.TrimSpace(string(b))); h != "" {
				return h, "the host's kernel hostname"
			}
		}
	}
	h, err := hostname()
	if err != nil {
		return "", ""
	}
	return strings.ToLower(h), "os.Hostname"
}
