package discovery

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process describes one process that is, or may be, watched.
type Process struct {
	Pid         int
	ExePath     string // /proc/PID/exe; "" if unreadable
	ExeName     string // base of ExePath, or /proc/PID/comm
	ServiceName string // OTEL_SERVICE_NAME if set, else ExeName
	// StartTime (clock ticks since boot) tells a process from a later one
	// that got the same pid.
	StartTime uint64
}

// Describe reads process pid from procRoot ("/proc").
func Describe(procRoot string, pid int) (Process, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	start, err := startTime(dir)
	if err != nil {
		return Process{}, err
	}
	p := Process{Pid: pid, StartTime: start}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.ExePath = strings.TrimSuffix(exe, " (deleted)")
		p.ExeName = filepath.Base(p.ExePath)
	} else if comm, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		p.ExeName = strings.TrimSpace(string(comm))
	}
	p.ServiceName = serviceName(dir)
	if p.ServiceName == "" {
		p.ServiceName = p.ExeName
	}
	return p, nil
}

// startTime reads field 22 of /proc/PID/stat. The command name (field 2)
// may hold spaces and parentheses, so fields are counted after its last ')'.
func startTime(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0, fmt.Errorf("reading process: %w", err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s/stat: no command name", dir)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("%s/stat: %d fields after the name, want 20", dir, len(fields))
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

func serviceName(dir string) string {
	env, err := os.ReadFile(filepath.Join(dir, "environ"))
	if err != nil {
		return ""
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("OTEL_SERVICE_NAME=")); ok && len(v) > 0 {
			return string(v)
		}
	}
	return ""
}
