// Package kernelcheck tells, before anything is loaded, whether this kernel
// and these privileges can run the tracer, and if not, what to do about it.
package kernelcheck // import "github.com/otelcol-ebpf/ebpfreceiver/internal/kernelcheck"

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Capabilities the receiver needs, with why.
var required = []struct {
	bit  uint
	name string
	why  string
}{
	{39, "CAP_BPF", "load eBPF programs and maps"},
	{38, "CAP_PERFMON", "attach tracing programs and read kernel memory"},
	{19, "CAP_SYS_PTRACE", "read /proc/PID/exe and environ of other users' processes"},
	{2, "CAP_DAC_READ_SEARCH", "walk /proc/PID/fd of other users' processes"},
}

// BTFPath is where the kernel publishes its own type information.
var BTFPath = "/sys/kernel/btf/vmlinux"

// Check returns every reason the tracer cannot run here, joined, each saying
// how to fix it; nil when it can.
func Check() error {
	var errs []error
	if err := checkCapabilities("/proc/self/status"); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat(BTFPath); err != nil {
		errs = append(errs, fmt.Errorf("kernel BTF not found at %s (%w): the tracer relocates kernel fields with CO-RE and needs a kernel built with CONFIG_DEBUG_INFO_BTF=y", BTFPath, err))
	}
	if err := checkRelease(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkCapabilities reads the effective capability set. CAP_SYS_ADMIN covers
// CAP_BPF and CAP_PERFMON on every kernel.
func checkCapabilities(statusPath string) error {
	eff, err := effectiveCaps(statusPath)
	if err != nil {
		return err
	}
	has := func(bit uint) bool { return eff&(1<<bit) != 0 }
	var missing []string
	for _, c := range required {
		if has(c.bit) || (has(21) && (c.bit == 38 || c.bit == 39)) {
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (to %s)", c.name, c.why))
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing capabilities: %s; run the collector as root, or grant them, e.g. `setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search,cap_sys_resource+ep otelcol-ebpf` (in Kubernetes: securityContext.capabilities.add, with hostPID: true)", strings.Join(missing, ", "))
}

func effectiveCaps(statusPath string) (uint64, error) {
	f, err := os.Open(statusPath)
	if err != nil {
		return 0, fmt.Errorf("reading capabilities: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing CapEff %q: %w", v, err)
			}
			return caps, nil
		}
	}
	return 0, fmt.Errorf("no CapEff line in %s", statusPath)
}

// checkRelease refuses kernels older than 5.8, the first with BPF ring buffers.
func checkRelease() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("reading the kernel release: %w", err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	major, minor, ok := parseRelease(release)
	if !ok {
		return nil // an unusual release string: let loading tell
	}
	if major < 5 || (major == 5 && minor < 8) {
		return fmt.Errorf("kernel %s is too old: the tracer needs Linux 5.8 or later (BPF ring buffer)", release)
	}
	return nil
}

func parseRelease(r string) (int, int, bool) {
	parts := strings.SplitN(r, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minorDigits := strings.TrimRightFunc(parts[1], func(c rune) bool { return c < '0' || c > '9' })
	minor, err2 := strconv.Atoi(minorDigits)
	return major, minor, err1 == nil && err2 == nil
}
