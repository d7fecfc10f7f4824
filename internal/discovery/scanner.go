package discovery

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Criteria select processes; selectors are OR-ed. With no selector at all,
// every process with a listening TCP socket is selected.
type Criteria struct {
	Ports   PortSet
	Exe     *regexp.Regexp
	Pids    []int
	Exclude int // never selected (the collector itself)
}

func (c Criteria) anyListener() bool {
	return c.Ports.Empty() && c.Exe == nil && len(c.Pids) == 0
}

// Scanner finds the selected processes. It remembers which socket inodes it
// has already traced to their pids, and which executables it has matched,
// so a scan of a busy node mostly reads /proc/net/tcp and little else.
type Scanner struct {
	root     string
	c        Criteria
	owners   map[uint64][]int    // listening socket inode -> pids holding it
	exeMatch map[procKey]bool    // exe regex verdict per process
	procs    map[procKey]Process // described processes
}

type procKey struct {
	pid   int
	start uint64
}

// NewScanner scans procRoot ("/proc").
func NewScanner(procRoot string, c Criteria) *Scanner {
	return &Scanner{root: procRoot, c: c, owners: map[uint64][]int{}, exeMatch: map[procKey]bool{}, procs: map[procKey]Process{}}
}

// Scan returns the processes selected now, by pid. Processes that vanish
// mid-scan are skipped; other errors are returned with what was found.
func (s *Scanner) Scan() (map[int]Process, error) {
	found := map[int]Process{}
	var errs []error
	if s.c.anyListener() || !s.c.Ports.Empty() {
		if err := s.scanListeners(found); err != nil {
			errs = append(errs, err)
		}
	}
	if s.c.Exe != nil {
		if err := s.scanExecutables(found); err != nil {
			errs = append(errs, err)
		}
	}
	for _, pid := range s.c.Pids {
		s.add(found, pid)
	}
	delete(found, s.c.Exclude)
	if s.c.Exe == nil { // scanExecutables prunes its own cache
		for k := range s.procs {
			if _, ok := found[k.pid]; !ok {
				delete(s.procs, k)
			}
		}
	}
	return found, errors.Join(errs...)
}

// Forget drops what the scanner remembers of process pid: it ran a new
// program (exec), which keeps its pid and start time, so its description
// and its executable's verdict are read again at the next scan.
func (s *Scanner) Forget(pid int) {
	for k := range s.procs {
		if k.pid == pid {
			delete(s.procs, k)
		}
	}
	for k := range s.exeMatch {
		if k.pid == pid {
			delete(s.exeMatch, k)
		}
	}
}

func (s *Scanner) add(found map[int]Process, pid int) {
	if _, ok := found[pid]; ok || pid == s.c.Exclude {
		return
	}
	if p, err := s.describe(pid); err == nil {
		found[pid] = p
	}
}

// describe caches descriptions by pid and start time.
func (s *Scanner) describe(pid int) (Process, error) {
	start, err := startTime(filepath.Join(s.root, strconv.Itoa(pid)))
	if err != nil {
		return Process{}, err
	}
	k := procKey{pid, start}
	if p, ok := s.procs[k]; ok {
		return p, nil
	}
	p, err := Describe(s.root, pid)
	if err == nil {
		s.procs[k] = p
	}
	return p, err
}

func (s *Scanner) scanListeners(found map[int]Process) error {
	inodes, err := s.listeningInodes()
	if err != nil {
		return err
	}
	for ino := range inodes {
		if _, ok := s.owners[ino]; !ok {
			if err := s.mapOwners(inodes); err != nil {
				return err
			}
			break
		}
	}
	for ino := range s.owners {
		if !inodes[ino] {
			delete(s.owners, ino)
		}
	}
	for ino := range inodes {
		for _, pid := range s.owners[ino] {
			s.add(found, pid)
		}
	}
	return nil
}

// listeningInodes reads the inodes of TCP sockets in LISTEN state on
// selected ports, in every network namespace of the host: pods and
// containers listen in namespaces of their own.
func (s *Scanner) listeningInodes() (map[uint64]bool, error) {
	inodes := map[uint64]bool{}
	dirs, err := s.netDirs()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, dir := range dirs {
		for _, name := range []string{"tcp", "tcp6"} {
			f, err := os.Open(filepath.Join(dir, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue // no IPv6 there, or the process went away
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("reading listening sockets: %w", err))
				continue
			}
			err = s.readSockets(f, inodes)
			f.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("reading %s: %w", f.Name(), err))
			}
		}
	}
	return inodes, errors.Join(errs...)
}

// netDirs returns a net directory (/proc/PID/net) per network namespace:
// it lists the sockets of the namespace of the process it belongs to. A
// /proc without namespace links (a container's view, a test's) has the one
// namespace of /proc/net.
func (s *Scanner) netDirs() ([]string, error) {
	pids, err := s.pids()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var dirs []string
	for _, pid := range pids {
		dir := filepath.Join(s.root, strconv.Itoa(pid))
		ns, err := os.Readlink(filepath.Join(dir, "ns", "net"))
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		dirs = append(dirs, filepath.Join(dir, "net"))
	}
	if len(dirs) == 0 {
		dirs = append(dirs, filepath.Join(s.root, "net"))
	}
	return dirs, nil
}

// readSockets reads the listening sockets of a /proc/PID/net/tcp{,6}. The
// kernel lists the sockets of its listening hash first, then those of its
// established hash (every other state, no listener among them): reading
// stops at the first socket that is not listening, and the kernel never
// formats the host's connections, which it walks for every namespace's
// file (4000 connections cost a scan 30 ms of CPU here).
func (s *Scanner) readSockets(f *os.File, inodes map[uint64]bool) error {
	sc := bufio.NewScanner(f)
	sc.Scan() // the header line
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		if fields[3] != "0A" { // 0A: TCP_LISTEN
			return nil
		}
		_, portHex, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil || !(s.c.anyListener() || s.c.Ports.Contains(uint16(port))) {
			continue
		}
		if ino, err := strconv.ParseUint(fields[9], 10, 64); err == nil && ino != 0 {
			inodes[ino] = true
		}
	}
	return sc.Err()
}

// mapOwners walks /proc/*/fd to find which processes hold the wanted
// socket inodes. It runs only when an inode appears that was not seen.
func (s *Scanner) mapOwners(wanted map[uint64]bool) error {
	pids, err := s.pids()
	if err != nil {
		return err
	}
	owners := map[uint64][]int{}
	for _, pid := range pids {
		fdDir := filepath.Join(s.root, strconv.Itoa(pid), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(link[len("socket:["):], "]"), 10, 64)
			if err == nil && wanted[ino] && !contains(owners[ino], pid) {
				owners[ino] = append(owners[ino], pid)
			}
		}
	}
	for ino := range wanted {
		s.owners[ino] = owners[ino] // nil too: an inode nobody we can see holds
	}
	return nil
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (s *Scanner) scanExecutables(found map[int]Process) error {
	pids, err := s.pids()
	if err != nil {
		return err
	}
	seen := map[procKey]bool{}
	for _, pid := range pids {
		p, err := s.describe(pid)
		if err != nil {
			continue
		}
		k := procKey{pid, p.StartTime}
		seen[k] = true
		match, ok := s.exeMatch[k]
		if !ok {
			match = p.ExePath != "" && s.c.Exe.MatchString(p.ExePath)
			s.exeMatch[k] = match
		}
		if match {
			s.add(found, pid)
		}
	}
	for k := range s.exeMatch {
		if !seen[k] {
			delete(s.exeMatch, k)
			delete(s.procs, k)
		}
	}
	return nil
}

// pids lists the processes (thread groups) in /proc.
func (s *Scanner) pids() ([]int, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
