package pidfilterprocessor // import "github.com/otelcol-ebpf/ebpfreceiver/processor/pidfilterprocessor"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// entry is one parsed include/exclude item; host "" matches any host.
type entry struct {
	host string // lower case
	pid  int64
}

// parseEntry reads "host:pid", "*:pid" or "pid".
func parseEntry(s string) (entry, error) {
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
	return entry{host: strings.ToLower(hostPart), pid: pid}, nil
}

// set is a set of processes: by pid on any host, and by host then pid.
type set struct {
	anyHost map[int64]struct{}
	hosts   map[string]map[int64]struct{} // lower-case host -> pids
}

func newSet(entries []entry) set {
	s := set{anyHost: map[int64]struct{}{}, hosts: map[string]map[int64]struct{}{}}
	for _, e := range entries {
		if e.host == "" {
			s.anyHost[e.pid] = struct{}{}
			continue
		}
		if s.hosts[e.host] == nil {
			s.hosts[e.host] = map[int64]struct{}{}
		}
		s.hosts[e.host][e.pid] = struct{}{}
	}
	return s
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
	keepAnon  bool // keep resources that name no process
}

// keep reports whether the resource with attrs passes.
func (m *matcher) keep(attrs pcommon.Map) bool {
	host, pid, ok := identity(attrs)
	if !ok {
		return m.keepAnon
	}
	if m.filtering && !m.include.contains(host, pid) {
		return false
	}
	return !m.exclude.contains(host, pid)
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
