// Package receiver is the running eBPF receiver: it loads the kernel
// programs, keeps the set of watched processes up to date, reads events,
// pairs them into HTTP exchanges, and hands spans and metrics to the
// pipelines.
package receiver // import "github.com/otelcol-ebpf/ebpfreceiver/receiver"
