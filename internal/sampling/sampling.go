// Package sampling decides which traces the receiver emits, with the
// OpenTelemetry SDK's samplers and their meanings (OTEL_TRACES_SAMPLER):
// always_on, always_off, traceidratio and parentbased_traceidratio.
//
// A decision is the W3C sampled flag of a span's trace flags. The ratio
// rule is the SDK's: the last 8 bytes of the trace id, shifted right by
// one, below ratio * 2^63. The kernel applies the same rule to the ids it
// chooses (bpf/headers/sampling.h), so that a traceparent it puts on the
// wire carries the decision the receiver then makes, and every node that
// sees the trace decides the same way.
package sampling // import "github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Names of the samplers, as configuration spells them.
const (
	AlwaysOn                = "always_on"
	AlwaysOff               = "always_off"
	TraceIDRatio            = "traceidratio"
	ParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// Names lists the samplers in the order the documentation gives them.
var Names = []string{AlwaysOn, AlwaysOff, TraceIDRatio, ParentBasedTraceIDRatio}

// Mode is how a sampler decides; the kernel knows it by number.
type Mode uint8

const (
	ModeAlwaysOn    Mode = 0 // every trace
	ModeAlwaysOff   Mode = 1 // none
	ModeRatio       Mode = 2 // by trace id, whatever the parent said
	ModeParentRatio Mode = 3 // as the remote parent said; roots by trace id
)

// Sampler decides whether a trace is emitted. The zero value samples
// everything.
type Sampler struct {
	Mode Mode
	// Bound is the SDK's upper bound: a trace is sampled when the last 8
	// bytes of its id, shifted right by one, are below it.
	Bound uint64
}

// New returns the sampler called name; ratio is the share of traces kept
// by the traceidratio samplers.
func New(name string, ratio float64) (Sampler, error) {
	switch name {
	case "", AlwaysOn:
		return Sampler{Mode: ModeAlwaysOn}, nil
	case AlwaysOff:
		return Sampler{Mode: ModeAlwaysOff}, nil
	case TraceIDRatio, ParentBasedTraceIDRatio:
		if math.IsNaN(ratio) || ratio < 0 || ratio > 1 {
			return Sampler{}, fmt.Errorf("ratio %v is not between 0 and 1", ratio)
		}
		mode := ModeRatio
		if name == ParentBasedTraceIDRatio {
			mode = ModeParentRatio
		}
		return Sampler{Mode: mode, Bound: bound(ratio)}, nil
	}
	return Sampler{}, fmt.Errorf("unknown sampler %q (known: %v)", name, Names)
}

// bound is ratio * 2^63, as the SDK computes it; a ratio of 1 keeps every
// trace.
func bound(ratio float64) uint64 {
	if ratio >= 1 {
		return math.MaxUint64
	}
	return uint64(ratio * (1 << 63))
}

// Sampled reports the ratio rule's decision for a trace id.
func (s Sampler) Sampled(traceID [16]byte) bool {
	if s.Bound == math.MaxUint64 {
		return true
	}
	return binary.BigEndian.Uint64(traceID[8:])>>1 < s.Bound
}

// Flags are the trace flags of a span of trace traceID whose parent is
// remote (it came in a traceparent with flags parentFlags) or, when
// remote is false, which has no parent at all. A span whose parent is on
// this node takes that one's flags instead.
func (s Sampler) Flags(traceID [16]byte, remote bool, parentFlags byte) byte {
	var sampled bool
	switch s.Mode {
	case ModeAlwaysOn:
		sampled = true
	case ModeAlwaysOff:
		sampled = false
	case ModeRatio:
		sampled = s.Sampled(traceID)
	case ModeParentRatio:
		if remote {
			return parentFlags
		}
		sampled = s.Sampled(traceID)
	}
	if sampled {
		return parentFlags | 1
	}
	return parentFlags &^ 1
}

// SampledFlags reports the decision trace flags carry.
func SampledFlags(flags byte) bool { return flags&1 != 0 }
