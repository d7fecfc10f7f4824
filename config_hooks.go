package ebpfreceiver // import "github.com/otelcol-ebpf/ebpfreceiver"

import (
	"fmt"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// hookModes maps the values of hooks: to what the kernel side loads.
var hookModes = map[string]bpf.Hooks{
	// auto: the socket hooks where the kernel has fentry (5.15+ with BTF
	// trampolines, e.g. Debian 12's 6.1), else the syscall tracepoints.
	"auto": bpf.HooksAuto,
	// syscalls: raw tracepoints at every syscall's entry and exit; any
	// kernel from 5.8, also those without kprobes and fentry.
	"syscalls": bpf.HooksSyscalls,
	// socket: fentry/fexit at the kernel's inet send and receive functions;
	// the receiver fails to start where the kernel has no fentry.
	"socket": bpf.HooksSocket,
}

func validateHooks(h string) error {
	if _, ok := hookModes[h]; !ok {
		return fmt.Errorf("hooks: %q must be \"auto\", \"syscalls\" or \"socket\"", h)
	}
	return nil
}
