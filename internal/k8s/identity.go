package k8s // import "github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Resource attribute names, as contrib's k8sattributes processor and the
// semantic conventions (v1.44) spell them.
const (
	AttrContainerID      = "container.id"
	AttrContainerRuntime = "container.runtime.name" // "container.runtime" before semconv 1.37
	AttrPodUID           = "k8s.pod.uid"
	AttrPodName          = "k8s.pod.name"
	AttrNamespace        = "k8s.namespace.name"
	AttrContainerName    = "k8s.container.name"
	AttrNodeName         = "k8s.node.name"
	AttrDeploymentName   = "k8s.deployment.name"
	AttrDeploymentUID    = "k8s.deployment.uid"
	AttrReplicaSetName   = "k8s.replicaset.name"
	AttrReplicaSetUID    = "k8s.replicaset.uid"
	AttrStatefulSetName  = "k8s.statefulset.name"
	AttrStatefulSetUID   = "k8s.statefulset.uid"
	AttrDaemonSetName    = "k8s.daemonset.name"
	AttrDaemonSetUID     = "k8s.daemonset.uid"
	AttrJobName          = "k8s.job.name"
	AttrJobUID           = "k8s.job.uid"
	AttrCronJobName      = "k8s.cronjob.name"
	AttrCronJobUID       = "k8s.cronjob.uid"
	AttrServiceName      = "service.name"
	AttrServiceNamespace = "service.namespace"
	AttrServiceVersion   = "service.version"
)

// Identity is what the node itself shows of a process's container and pod,
// read without the Kubernetes API. An empty field is a fact the node did
// not show for sure; it is left out of the resource, never guessed.
type Identity struct {
	ContainerID      string // 64 hex digits
	ContainerRuntime string // containerd, cri-o, docker, podman
	PodUID           string
	PodName          string
	Namespace        string
	ContainerName    string // only from kubelet's log links
}

// InPod reports whether the process belongs to a Kubernetes pod.
func (id Identity) InPod() bool { return id.PodUID != "" }

// Fill puts the known fields into a resource's attributes.
func (id Identity) Fill(attrs pcommon.Map) {
	putNonEmpty(attrs, AttrContainerID, id.ContainerID)
	putNonEmpty(attrs, AttrContainerRuntime, id.ContainerRuntime)
	putNonEmpty(attrs, AttrPodUID, id.PodUID)
	putNonEmpty(attrs, AttrPodName, id.PodName)
	putNonEmpty(attrs, AttrNamespace, id.Namespace)
	putNonEmpty(attrs, AttrContainerName, id.ContainerName)
}

func putNonEmpty(attrs pcommon.Map, k, v string) {
	if v != "" {
		attrs.PutStr(k, v)
	}
}

// Identify reads the container and pod of process pid from procRoot
// ("/proc"; the collector needs the host's pid namespace to see other
// processes at all):
//
//   - container.id, its runtime and k8s.pod.uid from /proc/PID/cgroup
//     (see [ParseCgroup]);
//
// and, only for a process in a pod (a pod uid was found):
//
//  1. k8s.pod.name, k8s.namespace.name and k8s.container.name from the
//     links kubelet keeps for container logs on the host
//     (/var/log/pods/<namespace>_<pod>_<uid>/ and /var/log/containers/
//     <pod>_<namespace>_<container>-<id>.log, read through /proc/1/root):
//     exact, keyed by the pod uid and the container id;
//  2. failing that, k8s.namespace.name from the pod's service-account
//     namespace file and k8s.pod.name from the pod's hostname, both read
//     inside the process's root (/proc/PID/root, no setns). The hostname
//     is the pod's name unless the pod sets spec.hostname, or its name is
//     longer than 63 characters (kubelet truncates it): hostnames of 62
//     characters or more are therefore left out, and so is the hostname of
//     a process in the host's UTS namespace (hostNetwork pods, whose
//     hostname is the node's). A pod that sets spec.hostname is named by
//     it here; with the API on, the API's name replaces it.
//
// Files inside the process's root are opened without following a symlink
// out of that root, only when they are regular files, and read up to a
// few KiB: a hostile container cannot point them at the host's files or
// make the read block.
func Identify(procRoot string, pid int) Identity {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	b, err := readSmall(os.Open(filepath.Join(dir, "cgroup")))
	if err != nil {
		return Identity{}
	}
	var id Identity
	id.ContainerID, id.ContainerRuntime, id.PodUID = ParseCgroup(b)
	if !id.InPod() {
		return id
	}
	hostRoot := filepath.Join(procRoot, "1", "root")
	if ns, pod, ok := podFromLogs(hostRoot, id.PodUID); ok {
		id.Namespace, id.PodName = ns, pod
		if id.ContainerID != "" {
			id.ContainerName = containerFromLogs(hostRoot, ns, pod, id.ContainerID)
		}
		return id
	}
	root, err := os.OpenRoot(filepath.Join(dir, "root"))
	if err != nil {
		return id
	}
	defer root.Close()
	id.Namespace = namespaceIn(root)
	if !sameUTS(procRoot, pid) {
		id.PodName = hostnameIn(root)
	}
	return id
}

// Where kubelet mounts the service account; /var/run is often a symlink to
// /run, which the root-confined open refuses (it is absolute), so both.
var namespaceFiles = []string{
	"var/run/secrets/kubernetes.io/serviceaccount/namespace",
	"run/secrets/kubernetes.io/serviceaccount/namespace",
}

func namespaceIn(root *os.Root) string {
	for _, name := range namespaceFiles {
		b, err := readSmall(openRegular(root, name))
		if err != nil {
			continue
		}
		if ns := strings.TrimSpace(string(b)); isDNSLabel(ns) {
			return ns
		}
	}
	return ""
}

// maxHostnamePodName: hostnames this long may be pod names kubelet cut to
// 63 characters (and then stripped of a trailing '-' or '.').
const maxHostnamePodName = 61

func hostnameIn(root *os.Root) string {
	b, err := readSmall(openRegular(root, "etc/hostname"))
	if err != nil {
		return ""
	}
	h := strings.TrimSpace(string(b))
	if len(h) > maxHostnamePodName || !isDNSSubdomain(h) {
		return ""
	}
	return h
}

// sameUTS reports whether pid shares the host's UTS namespace, or that
// cannot be told: then its hostname is not its pod's.
func sameUTS(procRoot string, pid int) bool {
	mine, err1 := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "ns", "uts"))
	host, err2 := hostUTSNamespace(procRoot)
	return err1 != nil || err2 != nil || mine == host
}

// hostUTSNamespace names the host's UTS namespace: pid 1's, else
// kthreadd's. Some inits (a microVM's, a hardened node's) refuse even root
// a look at their namespaces; kernel threads are in the initial namespaces
// always, and pid 2 is the kernel's thread creator when its flags say it
// is a kernel thread (a pid 2 of a container's PID namespace never is).
func hostUTSNamespace(procRoot string) (string, error) {
	ns, err := os.Readlink(filepath.Join(procRoot, "1", "ns", "uts"))
	if err == nil {
		return ns, nil
	}
	if !isKernelThread(procRoot, 2) {
		return "", err
	}
	return os.Readlink(filepath.Join(procRoot, "2", "ns", "uts"))
}

// pfKthread is PF_KTHREAD, the kernel's flag of its own threads, in field 9
// of /proc/PID/stat.
const pfKthread = 0x00200000

func isKernelThread(procRoot string, pid int) bool {
	b, err := readSmall(os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "stat")))
	if err != nil {
		return false
	}
	// pid (comm) state ppid pgrp session tty_nr tpgid flags ...; comm may
	// hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfKthread != 0
}

// openRegular opens name inside root for reading, without blocking on a
// FIFO, and only if it is a regular file.
func openRegular(root *os.Root, name string) (*os.File, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	return f, nil
}

// maxSmallFile bounds every file this package reads: a cgroup file, a
// hostname, a namespace.
const maxSmallFile = 64 << 10

func readSmall(f *os.File, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxSmallFile))
}

// isDNSLabel: RFC 1123 label, as namespace names are.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// isDNSSubdomain: RFC 1123 subdomain, as pod names are.
func isDNSSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !isDNSLabel(label) {
			return false
		}
	}
	return true
}
