package receiver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// pageOutDelay is how long after start the collector's own code is paged
// out: start-up (config, factories, the Kubernetes client's schemes, BTF)
// touches most of a 100 MB binary once and never again.
const pageOutDelay = 2 * time.Second

// pageOutCode asks the kernel to drop the resident pages of the collector's
// executable (MADV_PAGEOUT, Linux 5.4+) once start-up is over. They are
// clean file pages: what the steady state runs faults back in from the page
// cache, the rest stops counting in the collector's RSS and its memory
// cgroup. Nothing else is touched: heap, ring buffers and maps stay.
func pageOutCode(ctx context.Context) (int64, error) {
	select {
	case <-ctx.Done():
		return 0, nil
	case <-time.After(pageOutDelay):
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("page out code: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("page out code: %w", err)
	}
	defer f.Close()
	var advised int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, ok := exeMapping(sc.Text(), exe)
		if !ok {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT); errno != 0 {
			return advised, fmt.Errorf("page out code: madvise: %w", errno)
		}
		advised += int64(end - start)
	}
	return advised, sc.Err()
}

// exeMapping reads one line of /proc/self/maps and says whether it maps the
// executable read-only (code and read-only data; never a writable page).
func exeMapping(line, exe string) (start, end uint64, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
		return 0, 0, false
	}
	addrs := strings.SplitN(fields[0], "-", 2)
	if len(addrs) != 2 {
		return 0, 0, false
	}
	start, err1 := strconv.ParseUint(addrs[0], 16, 64)
	end, err2 := strconv.ParseUint(addrs[1], 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return 0, 0, false
	}
	return start, end, true
}
