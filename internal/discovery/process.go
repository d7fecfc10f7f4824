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
	// ServiceNamed: the process names its service (OTEL_SERVICE_NAME), and
	// nothing else may rename it.
	ServiceNamed bool
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
		p.ExePath = inRoot(dir, strings.TrimSuffix(exe, " (deleted)"))
		p.ExeName = filepath.Base(p.ExePath)
	} else if comm, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		p.ExeName = strings.TrimSpace(string(comm))
	}
	p.ServiceName = serviceName(dir)
	p.ServiceNamed = p.ServiceName != ""
	if !p.ServiceNamed {
		p.ServiceName = p.ExeName
	}
	return p, nil
}

// inRoot is path as the process sees it: the kernel shows the files of a
// process whose root is a directory of ours (a chroot, a container whose
// root we can reach) with that directory in front, and exe_path selectors
// are written as seen inside the container.
func inRoot(dir, path string) string {
	root, err := os.Readlink(filepath.Join(dir, "root"))
	if err != nil || root == "/" {
		return path
	}
	if rest, ok := strings.CutPrefix(path, root); ok && strings.HasPrefix(rest, "/") {
		return rest
	}
	return path
}

// StartTime reads when process pid started, in clock ticks since boot, as
// Process.StartTime counts.
func StartTime(procRoot string, pid int) (uint64, error) {
	return startTime(filepath.Join(procRoot, strconv.Itoa(pid)))
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
