package sampling

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

func TestNewRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		name  string
		ratio float64
	}{{"sometimes", 0.5}, {TraceIDRatio, -0.1}, {ParentBasedTraceIDRatio, 1.5}} {
		if _, err := New(c.name, c.ratio); err == nil {
			t.Errorf("New(%q, %v) accepted", c.name, c.ratio)
		}
	}
}

func traceWith(last uint64) [16]byte {
	var id [16]byte
	id[0] = 0xab
	binary.BigEndian.PutUint64(id[8:], last)
	return id
}

// The SDK's rule: the last 8 bytes shifted right by one, below ratio*2^63.
func TestRatioRuleIsTheSDKs(t *testing.T) {
	s, _ := New(TraceIDRatio, 0.25)
	if want := uint64(1) << 61; s.Bound != want {
		t.Fatalf("bound %d, want %d", s.Bound, want)
	}
	if !s.Sampled(traceWith((1<<62)-2)) || s.Sampled(traceWith(1<<62)) {
		t.Error("decision differs from the SDK's at the bound")
	}
	all, _ := New(TraceIDRatio, 1)
	none, _ := New(TraceIDRatio, 0)
	if !all.Sampled(traceWith(^uint64(0))) || none.Sampled(traceWith(0)) {
		t.Error("ratio 1 must keep every trace and 0 none")
	}
}

func TestRatioKeepsItsShare(t *testing.T) {
	s, _ := New(TraceIDRatio, 0.1)
	r := rand.New(rand.NewPCG(1, 2))
	kept := 0
	const n = 100000
	for range n {
		if s.Sampled(traceWith(r.Uint64())) {
			kept++
		}
	}
	if kept < 9500 || kept > 10500 {
		t.Errorf("kept %d of %d at ratio 0.1", kept, n)
	}
}

func TestFlags(t *testing.T) {
	in, out := traceWith(0), traceWith(^uint64(0)) // below and above any bound < 1
	ratio, _ := New(TraceIDRatio, 0.5)
	parent, _ := New(ParentBasedTraceIDRatio, 0.5)
	on, _ := New(AlwaysOn, 0)
	off, _ := New(AlwaysOff, 0)
	for _, c := range []struct {
		name   string
		s      Sampler
		id     [16]byte
		remote bool
		flags  byte
		want   byte
	}{
		{"ratio root in", ratio, in, false, 0, 1},
		{"ratio root out", ratio, out, false, 0, 0},
		{"ratio ignores a sampled parent", ratio, out, true, 1, 0},
		{"ratio ignores an unsampled parent", ratio, in, true, 0, 1},
		{"parent-based follows a sampled parent", parent, out, true, 1, 1},
		{"parent-based follows an unsampled parent", parent, in, true, 0, 0},
		{"parent-based root by ratio", parent, out, false, 0, 0},
		{"always_on", on, out, true, 0, 1},
		{"always_off", off, in, true, 1, 0},
		{"other flags kept", on, out, true, 0x02, 0x03},
	} {
		if got := c.s.Flags(c.id, c.remote, c.flags); got != c.want {
			t.Errorf("%s: flags %#x, want %#x", c.name, got, c.want)
		}
	}
}
