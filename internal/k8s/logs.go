package k8s // import "github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"

import (
	"os"
	"path/filepath"
	"strings"
)

// Kubelet keeps each pod's logs under /var/log/pods/<namespace>_<pod>_<uid>/
// and links each container's log as /var/log/containers/
// <pod>_<namespace>_<container>-<container id>.log. Namespaces, pod and
// container names never hold '_', so both names read back exactly. These
// are the host's directories: hostRoot is /proc/1/root.
const (
	podLogsDir       = "var/log/pods"
	containerLogsDir = "var/log/containers"
)

// maxLogEntries bounds a directory scan (a node runs a few hundred pods).
const maxLogEntries = 100000

// podFromLogs finds the namespace and name of pod uid.
func podFromLogs(hostRoot, uid string) (namespace, pod string, ok bool) {
	suffix := "_" + uid
	scanDir(filepath.Join(hostRoot, podLogsDir), func(name string) bool {
		rest, found := strings.CutSuffix(name, suffix)
		if !found {
			return true
		}
		ns, p, found := strings.Cut(rest, "_")
		if found && isDNSLabel(ns) && isDNSSubdomain(p) {
			namespace, pod, ok = ns, p, true
		}
		return false
	})
	return namespace, pod, ok
}

// containerFromLogs finds the name of container id of a pod. A link whose
// name kubelet had to cut (over 255 bytes) lost the id and is not found.
func containerFromLogs(hostRoot, namespace, pod, id string) string {
	prefix, suffix := pod+"_"+namespace+"_", "-"+id+".log"
	container := ""
	scanDir(filepath.Join(hostRoot, containerLogsDir), func(name string) bool {
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) || len(name) < len(prefix)+len(suffix) {
			return true
		}
		if c := name[len(prefix) : len(name)-len(suffix)]; isDNSLabel(c) {
			container = c
		}
		return false
	})
	return container
}

// scanDir calls each with the entry names of dir until it returns false.
func scanDir(dir string, each func(name string) bool) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	for seen := 0; seen < maxLogEntries; {
		names, err := f.Readdirnames(512)
		for _, n := range names {
			if !each(n) {
				return
			}
		}
		seen += len(names)
		if err != nil || len(names) == 0 {
			return
		}
	}
}
