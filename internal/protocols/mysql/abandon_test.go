package mysql

import (
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// abandoner counts what a Conn reports, and the requests it abandons.
type abandoner struct {
	sink
	abandoned []uint64 // their RequestStart
}

func (s *abandoner) Abandoned(x *protocols.Exchange) {
	s.abandoned = append(s.abandoned, x.RequestStart)
}

// A command that was Started and then dropped (its answer may have been
// another's) is abandoned: every Started exchange ends, Done or so.
func TestDroppedCommandIsAbandoned(t *testing.T) {
	steps := []step{
		in(1, "\x01\x02\x03 junk that is no packet start"),
		out(2, query("SELECT a FROM t")),
		in(3, pkt(1, okPayload)),
		in(4, pkt(1, okPayload)), // a second answer: one of them was not ours
		out(5, query("SELECT b FROM t")),
		in(6, pkt(1, okPayload)),
		closeAt(7),
	}
	c := NewConn(noText)
	s := &abandoner{}
	for _, st := range steps {
		if st.close {
			c.Close(st.t, s)
			continue
		}
		c.Feed(st.dir, &protocols.Segment{Data: []byte(st.data), Len: len(st.data), Time: st.t}, s)
	}
	if s.started != 2 || len(s.records) != 1 || len(s.abandoned) != 1 || s.abandoned[0] != 2 {
		t.Fatalf("started %d, done %d, abandoned %v; want 2, 1, [2]", s.started, len(s.records), s.abandoned)
	}
}
