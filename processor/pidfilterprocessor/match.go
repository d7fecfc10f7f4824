package pidfilterprocessor // import "github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Kinds of include/exclude entries.
type entryKind uint8

const (
	kindProcess   entryKind = iota // host:pid, *:pid, pid
	kindPod                        // pod:namespace/name, pod:namespace/*
	kindContainer                  // container:<id or prefix>
)

// Prefixes of the Kubernetes entries.
const (
	podPrefix       = "pod:"
	containerPrefix = "container:"
)

// A container id prefix must be this long to name one container (docker ps
// shows 12 digits, crictl ps 13); full ids have 64.
const (
	minContainerPrefix = 12
	containerIDLen     = 64
)

// entry is one parsed include/exclude item.
type entry struct {
	kind entryKind
	// kindProcess: host "" matches any host.
	host string // lower case
	pid  int64
	// kindPod: pod "" matches every pod of the namespace.
	namespace, pod string
	// kindContainer: a full id or a prefix, lower case.
	container string
}

// parseEntry reads "host:pid", "*:pid", "pid", "pod:namespace/name",
// "pod:namespace/*" or "container:id". "pod:" and "container:" followed by
// up to 10 digits stay what they always were: a pid on a host of that name.
func parseEntry(s string) (entry, error) {
	if rest, ok := strings.CutPrefix(s, podPrefix); ok && !looksLikePid(rest) {
		return parsePodEntry(s, rest)
	}
	if rest, ok := strings.CutPrefix(s, containerPrefix); ok && !looksLikePid(rest) {
		return parseContainerEntry(s, rest)
	}
	hostPart, pidPart, hasHost := "", s, false
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		hostPart, pidPart, hasHost = s[:i], s[i+1:], true
	}
	if hasHost && hostPart == "" {
		return entry{}, fmt.Errorf("entry %q: the host before ':' is empty (use *:pid for any host)", s)
	}
	if pidPart == "" {
		return entry{}, fmt.Errorf("entry %q: no pid", s)
	}
	pid, err := strconv.ParseInt(pidPart, 10, 32)
	if err != nil || pid <= 0 {
		return entry{}, fmt.Errorf("entry %q: %q is not a process id (a positive integer)", s, pidPart)
	}
	if hostPart == "*" {
		hostPart = ""
	}
	return entry{kind: kindProcess, host: strings.ToLower(hostPart), pid: pid}, nil
}

// looksLikePid: 1 to 10 decimal digits (a pid has at most 10).
func looksLikePid(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parsePodEntry(s, rest string) (entry, error) {
	ns, pod, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(pod, "/") {
		return entry{}, fmt.Errorf("entry %q: want pod:<namespace>/<pod name> or pod:<namespace>/*", s)
	}
	if !isDNSLabel(ns) {
		return entry{}, fmt.Errorf("entry %q: %q is not a namespace name (lower-case letters, digits and '-', at most 63)", s, ns)
	}
	if pod == "*" {
		return entry{kind: kindPod, namespace: ns}, nil
	}
	if !isDNSSubdomain(pod) {
		return entry{}, fmt.Errorf("entry %q: %q is not a pod name (lower-case letters, digits, '-' and '.', at most 253) nor *", s, pod)
	}
	return entry{kind: kindPod, namespace: ns, pod: pod}, nil
}

// parseContainerEntry takes an id as docker, crictl or a pod's status show
// it: "3f2a...", "containerd://3f2a...".
func parseContainerEntry(s, rest string) (entry, error) {
	if _, id, ok := strings.Cut(rest, "://"); ok {
		rest = id
	}
	id := strings.ToLower(rest)
	if len(id) < minContainerPrefix || len(id) > containerIDLen || !isHex(id) {
		return entry{}, fmt.Errorf("entry %q: %q is not a container id (%d to %d hex digits)", s, rest, minContainerPrefix, containerIDLen)
	}
	return entry{kind: kindContainer, container: id}, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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

// set is a set of processes (by pid on any host, and by host then pid),
// pods (by namespace then name) and containers (by full id, and by the
// first 12 digits of shorter prefixes).
type set struct {
	anyHost    map[int64]struct{}
	hosts      map[string]map[int64]struct{} // lower-case host -> pids
	namespaces map[string]podNames
	containers map[string]struct{} // full ids
	prefixes   map[string][]string // first 12 digits -> prefixes
}

// podNames are the pods of one namespace in a set.
type podNames struct {
	all   bool // namespace/*
	names map[string]struct{}
}

func newSet(entries []entry) set {
	s := set{anyHost: map[int64]struct{}{}, hosts: map[string]map[int64]struct{}{}}
	for _, e := range entries {
		switch e.kind {
		case kindPod:
			s.addPod(e.namespace, e.pod)
		case kindContainer:
			s.addContainer(e.container)
		case kindProcess:
			if e.host == "" {
				s.anyHost[e.pid] = struct{}{}
				continue
			}
			if s.hosts[e.host] == nil {
				s.hosts[e.host] = map[int64]struct{}{}
			}
			s.hosts[e.host][e.pid] = struct{}{}
		}
	}
	return s
}

func (s *set) addPod(namespace, pod string) {
	if s.namespaces == nil {
		s.namespaces = map[string]podNames{}
	}
	n := s.namespaces[namespace]
	if pod == "" {
		n.all = true
	} else {
		if n.names == nil {
			n.names = map[string]struct{}{}
		}
		n.names[pod] = struct{}{}
	}
	s.namespaces[namespace] = n
}

func (s *set) addContainer(id string) {
	if len(id) == containerIDLen {
		if s.containers == nil {
			s.containers = map[string]struct{}{}
		}
		s.containers[id] = struct{}{}
		return
	}
	if s.prefixes == nil {
		s.prefixes = map[string][]string{}
	}
	key := id[:minContainerPrefix]
	s.prefixes[key] = append(s.prefixes[key], id)
}

// containsPod looks a pod up without allocating.
func (s set) containsPod(namespace, pod string) bool {
	n, ok := s.namespaces[namespace]
	if !ok {
		return false
	}
	if n.all {
		return true
	}
	_, ok = n.names[pod]
	return ok
}

// containsContainer looks a container id up without allocating.
func (s set) containsContainer(id string) bool {
	if _, ok := s.containers[id]; ok {
		return true
	}
	if len(id) < minContainerPrefix {
		return false
	}
	for _, p := range s.prefixes[id[:minContainerPrefix]] {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// contains looks host and pid up without allocating: a host with capitals
// is lowered into a stack buffer, and indexing a map by string(bytes) does
// not copy.
func (s set) contains(host string, pid int64) bool {
	if _, ok := s.anyHost[pid]; ok {
		return true
	}
	if len(s.hosts) == 0 || host == "" {
		return false
	}
	pids, ok := s.hosts[host]
	if !ok && hasUpper(host) {
		var buf [256]byte
		if len(host) > len(buf) {
			pids = s.hosts[strings.ToLower(host)]
		} else {
			b := buf[:len(host)]
			for i := 0; i < len(host); i++ {
				c := host[i]
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				b[i] = c
			}
			pids = s.hosts[string(b)]
		}
	}
	_, ok = pids[pid]
	return ok
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// matcher decides for one resource. It is immutable: a new one replaces it
// when pid files change.
type matcher struct {
	filtering bool // include or pid_files configured: keep only what include holds
	include   set
	exclude   set
	keepAnon  bool // keep resources that name nothing the entries can match
	// Whether any entry names pods, containers: only then are a resource's
	// pod and container read, and only then do they identify it.
	pods, containers bool
}

// keep reports whether the resource with attrs passes.
func (m *matcher) keep(attrs pcommon.Map) bool {
	var r resourceID
	r.host, r.pid, r.hasProcess = identity(attrs)
	if m.pods {
		r.namespace, r.pod, r.hasPod = podIdentity(attrs)
	}
	if m.containers {
		r.container, r.hasContainer = stringAttr(attrs, "container.id")
	}
	if !r.hasProcess && !r.hasPod && !r.hasContainer {
		return m.keepAnon
	}
	if m.filtering && !m.include.matches(&r) {
		return false
	}
	return !m.exclude.matches(&r)
}

// resourceID is what a resource says of where it came from.
type resourceID struct {
	host                             string
	pid                              int64
	namespace, pod, container        string
	hasProcess, hasPod, hasContainer bool
}

func (s set) matches(r *resourceID) bool {
	return (r.hasProcess && s.contains(r.host, r.pid)) ||
		(r.hasPod && s.containsPod(r.namespace, r.pod)) ||
		(r.hasContainer && s.containsContainer(r.container))
}

// podIdentity is the pod a resource describes: k8s.namespace.name and
// k8s.pod.name, both set.
func podIdentity(attrs pcommon.Map) (namespace, pod string, ok bool) {
	namespace, ok1 := stringAttr(attrs, "k8s.namespace.name")
	pod, ok2 := stringAttr(attrs, "k8s.pod.name")
	return namespace, pod, ok1 && ok2
}

func stringAttr(attrs pcommon.Map, key string) (string, bool) {
	v, ok := attrs.Get(key)
	if !ok || v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
		return "", false
	}
	return v.Str(), true
}

// identity is the process a resource describes: its service.instance.id
// when that has the "host:pid" form, else process.pid with host.name.
func identity(attrs pcommon.Map) (string, int64, bool) {
	if v, ok := attrs.Get("service.instance.id"); ok && v.Type() == pcommon.ValueTypeStr {
		if host, pid, ok := splitInstanceID(v.Str()); ok {
			return host, pid, true
		}
	}
	v, ok := attrs.Get("process.pid")
	if !ok {
		return "", 0, false
	}
	var pid int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		pid = v.Int()
	case pcommon.ValueTypeStr:
		if pid, ok = parsePid(v.Str()); !ok {
			return "", 0, false
		}
	default:
		return "", 0, false
	}
	if pid <= 0 {
		return "", 0, false
	}
	host := ""
	if h, ok := attrs.Get("host.name"); ok && h.Type() == pcommon.ValueTypeStr {
		host = h.Str()
	}
	return host, pid, true
}

func splitInstanceID(id string) (string, int64, bool) {
	i := strings.LastIndexByte(id, ':')
	if i <= 0 {
		return "", 0, false
	}
	pid, ok := parsePid(id[i+1:])
	return id[:i], pid, ok
}

// parsePid reads a positive decimal pid without allocating.
func parsePid(s string) (int64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, n > 0
}

func parseEntries(list []string) ([]entry, error) {
	var (
		out  []entry
		errs []error
	)
	for _, s := range list {
		e, err := parseEntry(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}
