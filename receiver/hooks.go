package receiver

import (
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// logHooks says which kernel hooks see the selected processes' reads and
// writes, and, when the socket hooks were allowed but not possible, why:
// the cost per request differs, the telemetry does not.
func (r *Receiver) logHooks(t *bpf.Tracer) {
	switch {
	case t.Hooks() == bpf.HooksSocket:
		r.logger().Info("kernel hooks: socket (fentry on the inet send and receive functions)")
	case t.HooksErr != nil:
		r.logger().Info("kernel hooks: syscalls (raw syscall tracepoints); the socket hooks are not possible on this kernel",
			zap.Error(t.HooksErr))
	default:
		r.logger().Info("kernel hooks: syscalls (raw syscall tracepoints)")
	}
}
