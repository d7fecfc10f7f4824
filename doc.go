// Package ebpfreceiver is the public face of the eBPF receiver: its factory and
// configuration. The running receiver lives in the receiver package; the kernel
// programs in bpf.
//
//go:generate scripts/mdatagen-root.sh
package ebpfreceiver // import "github.com/otelcol-ebpf/ebpfreceiver"
