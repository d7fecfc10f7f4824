package uprobes

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// fileID identifies a file whatever path it is reached by (a container's
// root, a hard link, a library replaced on disk since it was mapped): the
// kernel places uprobes on an inode.
type fileID struct {
	dev   string // major:minor, as /proc/PID/maps shows it
	inode uint64
}

// mapping is one executable file mapping of a process.
type mapping struct {
	id    fileID
	start uint64
	end   uint64
	path  string // as the process sees it
}

// mappedFiles lists the files process pid maps executable, each once (its
// first mapping), from procRoot/PID/maps.
func mappedFiles(procRoot string, pid int) ([]mapping, error) {
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "maps"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMaps(f)
}

// parseMaps reads the lines of a maps file:
// "start-end perms offset dev inode path".
func parseMaps(r io.Reader) ([]mapping, error) {
	var out []mapping
	seen := map[fileID]bool{}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 4096), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || !strings.Contains(fields[1], "x") || !strings.HasPrefix(fields[5], "/") {
			continue // not executable, or anonymous, [vdso], [stack] ...
		}
		inode, err := strconv.ParseUint(fields[4], 10, 64)
		if err != nil || inode == 0 {
			continue
		}
		start, end, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		m := mapping{id: fileID{dev: fields[3], inode: inode}, path: strings.Join(fields[5:], " ")}
		if m.start, err = strconv.ParseUint(start, 16, 64); err != nil {
			continue
		}
		if m.end, err = strconv.ParseUint(end, 16, 64); err != nil {
			continue
		}
		m.path = strings.TrimSuffix(m.path, " (deleted)")
		if seen[m.id] {
			continue
		}
		seen[m.id] = true
		out = append(out, m)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading maps: %w", err)
	}
	return out, nil
}

// mapFile is a path to the very file of a mapping of process pid: it
// reaches the inode the process mapped, also in a container (another
// mount namespace) and after the file was replaced on disk.
func mapFile(procRoot string, pid int, m mapping) string {
	return filepath.Join(procRoot, strconv.Itoa(pid), "map_files", fmt.Sprintf("%x-%x", m.start, m.end))
}

// filePath is mapFile when it can be read (map_files needs CAP_SYS_ADMIN),
// else the mapping's path through the process's root, which reaches the
// file unless it was replaced since.
func filePath(procRoot string, pid int, m mapping) string {
	p := mapFile(procRoot, pid, m)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return filepath.Join(procRoot, strconv.Itoa(pid), "root", m.path)
}
