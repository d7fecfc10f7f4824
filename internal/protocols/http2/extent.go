package http2

import (
	"cmp"
	"slices"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// Extent is a run of captured bytes of a segment (protocols.Extent). A
// segment's captured prefix is the extent at offset 0, its Tail the one
// that ends at Len.
type Extent = protocols.Extent

// segLen is the number of bytes seg moved: Len, or more when a malformed
// segment captured more than it says it moved.
func segLen(seg *protocols.Segment) int { return max(seg.Len, len(seg.Data)) }

// known appends to dst the parts of seg that were captured, in order and
// without overlaps: its prefix, the extents, and its tail. Extents past
// the segment's end, and those past the first maxExtents, are left out.
func known(dst []Extent, seg *protocols.Segment, ext []Extent) []Extent {
	n := segLen(seg)
	add := func(off int, b []byte) {
		if off < 0 || off >= n || len(b) == 0 {
			return
		}
		if len(b) > n-off {
			b = b[:n-off]
		}
		dst = append(dst, Extent{Off: off, Data: b})
	}
	add(0, seg.Data)
	for i := range min(len(ext), maxExtents) {
		add(ext[i].Off, ext[i].Data)
	}
	if t := seg.Tail; n > len(seg.Data) && len(t) > 0 {
		if len(t) > n {
			t = t[len(t)-n:]
		}
		add(n-len(t), t)
	}
	// The kernel gives them in order; the tail may go before the last.
	if !slices.IsSortedFunc(dst, byOffset) {
		slices.SortStableFunc(dst, byOffset)
	}
	// Trim what an earlier extent covers already.
	out, end := dst[:0], 0
	for _, e := range dst {
		if e.Off < end {
			cut := min(end-e.Off, len(e.Data))
			e.Off, e.Data = e.Off+cut, e.Data[cut:]
		}
		if len(e.Data) == 0 {
			continue
		}
		out = append(out, e)
		end = e.Off + len(e.Data)
	}
	return out
}

func byOffset(a, b Extent) int { return cmp.Compare(a.Off, b.Off) }

// whole reports whether the known parts cover all n bytes of a segment.
func whole(pieces []Extent, n int) bool {
	return len(pieces) == 1 && pieces[0].Off == 0 && len(pieces[0].Data) == n
}
