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

// set is a set of processes: by pid on any host, and by "host:pid".
type set struct {
	anyHost map[int64]struct{}
	hostPid map[string]struct{} // lower-case "host:pid"
}

func newSet(entries []entry) set {
	s := set{anyHost: map[int64]struct{}{}, hostPid: map[string]struct{}{}}
	for _, e := range entries {
		if e.host == "" {
			s.anyHost[e.pid] = struct{}{}
		} else {
			s.hostPid[e.host+":"+strconv.FormatInt(e.pid, 10)] = struct{}{}
		}
	}
	return s
}

func (s set) empty() bool { return len(s.anyHost) == 0 && len(s.hostPid) == 0 }

// contains looks host and pid up without allocating: the key is built in a
// stack buffer, and a map index by string(bytes) does not copy.
func (s set) contains(host string, pid int64) bool {
	if _, ok := s.anyHost[pid]; ok {
		return true
	}
	if len(s.hostPid) == 0 || host == "" {
		return false
	}
	var buf [128]byte
	if len(host)+21 > len(buf) {
		_, ok := s.hostPid[strings.ToLower(host)+":"+strconv.FormatInt(pid, 10)]
		return ok
	}
	b := buf[:0]
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, pid, 10)
	_, ok := s.hostPid[string(b)]
	return ok
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
