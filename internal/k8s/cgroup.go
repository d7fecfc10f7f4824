package k8s // import "github.com/otelcol-ebpf/ebpfreceiver/internal/k8s"

import (
	"bytes"
	"strings"
)

// Container runtimes, as container.runtime.name values. A runtime is named
// only when a cgroup path or a pod's status says it in so many words.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
	RuntimePodman     = "podman"
)

// ParseCgroup reads the contents of /proc/PID/cgroup and returns the
// container the process runs in, the runtime that made it, and the uid of
// the Kubernetes pod it belongs to. Each is "" when the paths do not say
// it for sure.
//
// Every line is read ("0::/path" on cgroup v2, "N:controllers:/path" on
// each v1 hierarchy); a line whose path names no container nor pod (a v1
// controller the runtime does not use, "/" inside a cgroup namespace) is
// passed over. A field the lines disagree on is left empty.
//
// Within a path, the deepest container below the deepest pod is the
// process's own: "/docker/<node>/kubepods/.../pod<uid>/<id>" (Kubernetes
// in Docker) is container <id> of pod <uid>, never the node's container.
// Paths relative to the reader's cgroup namespace ("/../../kubepods.slice/
// ...") are read the same way.
func ParseCgroup(b []byte) (containerID, runtime, podUID string) {
	var cid, rt, pod field
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		// hierarchy-ID:controller-list:path; the path may hold ':' itself.
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		j := bytes.IndexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		c, r, p := parsePath(string(line[i+1+j+1:]))
		cid.see(c)
		rt.see(r)
		pod.see(p)
	}
	if cid.get() == "" {
		// A runtime without its container is no fact about the process.
		return "", "", pod.get()
	}
	return cid.get(), rt.get(), pod.get()
}

// field collects the values the lines give one fact: it has a value only
// when every line that gives one gives the same.
type field struct {
	v        string
	conflict bool
}

func (f *field) see(v string) {
	switch {
	case v == "" || v == f.v:
	case f.v == "":
		f.v = v
	default:
		f.conflict = true
	}
}

func (f *field) get() string {
	if f.conflict {
		return ""
	}
	return f.v
}

// parsePath reads one cgroup path, component by component.
func parsePath(path string) (containerID, runtime, podUID string) {
	parent := ""
	for path != "" {
		comp := path
		if i := strings.IndexByte(path, '/'); i >= 0 {
			comp, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		if comp == "" || comp == ".." || comp == "." {
			continue
		}
		if uid, id, rt, ok := unexpandedSystemd(comp); ok {
			podUID, containerID, runtime = uid, id, rt
		} else if uid, ok := podComponent(comp); ok {
			// A new pod: containers seen above it are not this process's.
			podUID, containerID, runtime = uid, "", ""
		} else if id, rt, ok := containerComponent(comp, parent); ok {
			containerID, runtime = id, rt
		}
		parent = comp
	}
	return containerID, runtime, podUID
}

// podComponent reads the cgroup of a pod: "pod<uid>" (cgroupfs driver) or
// "kubepods[-<qos>]-pod<uid with '_' for '-'>.slice" (systemd driver).
func podComponent(c string) (string, bool) {
	if rest, ok := strings.CutPrefix(c, "pod"); ok {
		return podUID(rest, false)
	}
	rest, ok := strings.CutPrefix(c, "kubepods-")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, ".slice")
	if !ok {
		return "", false
	}
	if r, ok := strings.CutPrefix(rest, "burstable-"); ok {
		rest = r
	} else if r, ok := strings.CutPrefix(rest, "besteffort-"); ok {
		rest = r
	}
	rest, ok = strings.CutPrefix(rest, "pod")
	if !ok {
		return "", false
	}
	return podUID(rest, true)
}

// podUID checks a pod uid: a UUID (API pods) or 32 hex digits (the hash
// kubelet gives static pods). The systemd driver writes '_' for '-'.
func podUID(s string, underscores bool) (string, bool) {
	if underscores {
		s = strings.ReplaceAll(s, "_", "-")
	}
	switch len(s) {
	case 32:
		return s, isHex(s)
	case 36:
		for i := 0; i < len(s); i++ {
			dash := i == 8 || i == 13 || i == 18 || i == 23
			if dash != (s[i] == '-') || (!dash && !isHex(s[i:i+1])) {
				return "", false
			}
		}
		return s, true
	}
	return "", false
}

// Prefixes of container scopes (systemd driver; CRI-O's also under
// cgroupfs) and the runtime each names.
var containerPrefixes = []struct{ prefix, runtime string }{
	{"cri-containerd-", RuntimeContainerd},
	{"crio-", RuntimeCRIO},
	{"docker-", RuntimeDocker},
	{"libpod-", RuntimePodman},
}

// containerComponent reads the cgroup of a container:
// "<prefix><64 hex>[.scope]" with a prefix above, or a bare "<64 hex>"
// (cgroupfs driver), whose runtime is known only under Docker's own
// "/docker" parent. Conmon's "crio-conmon-<id>.scope" and
// "libpod-conmon-<id>.scope" are not containers and do not match.
func containerComponent(c, parent string) (id, runtime string, ok bool) {
	if isContainerID(c) {
		if parent == "docker" {
			return c, RuntimeDocker, true
		}
		return c, "", true
	}
	c = strings.TrimSuffix(c, ".scope")
	for _, p := range containerPrefixes {
		if rest, found := strings.CutPrefix(c, p.prefix); found && isContainerID(rest) {
			return rest, p.runtime, true
		}
	}
	return "", "", false
}

// unexpandedSystemd reads "<pod slice>:<prefix>:<id>", the systemd-style
// cgroup name some containerd setups write as it is, as one component:
// "kubepods-burstable-pod<uid>.slice:cri-containerd:<64 hex>".
func unexpandedSystemd(c string) (podUID, id, runtime string, ok bool) {
	slice, rest, ok1 := strings.Cut(c, ":")
	prefix, cid, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || !isContainerID(cid) {
		return "", "", "", false
	}
	uid, ok := podComponent(slice)
	if !ok {
		return "", "", "", false
	}
	for _, p := range containerPrefixes {
		if len(p.prefix) == len(prefix)+1 && strings.HasPrefix(p.prefix, prefix) {
			runtime = p.runtime
		}
	}
	return uid, cid, runtime, true
}

// isContainerID: the 64 lower-case hex digits every runtime here uses.
func isContainerID(s string) bool { return len(s) == 64 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}
