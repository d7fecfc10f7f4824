package postgres

import (
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// abandoner is a sink that hears of the requests that were Started and
// will never be Done.
type abandoner struct {
	sink
	abandoned []protocols.Exchange
}

func (s *abandoner) Abandoned(x *protocols.Exchange) {
	s.abandoned = append(s.abandoned, *x)
	s.open--
}

// An Execute the server skipped after an error was Started: the sink
// hears it was abandoned, so that nothing waits for it.
func TestSkippedExecuteIsAbandoned(t *testing.T) {
	steps := append(login("shop"),
		out(3, parseMsg("", "INSERT INTO t VALUES (1)")+bindMsg("", "")+execMsg("")+
			parseMsg("", "SELECT * FROM t")+bindMsg("", "")+execMsg("")+syncMsg),
		in(4, parseOK+bindOK+errorResp("23505", "duplicate key")+ready('E')),
	)
	c := NewConn(nil)
	c.Reset(protocols.RoleClient)
	s := &abandoner{}
	for _, st := range steps {
		c.Feed(st.dir, &Segment{Data: []byte(st.data), Len: len(st.data), Time: st.t}, s)
	}
	if len(s.started) != 2 || len(s.done) != 1 || len(s.abandoned) != 1 || s.open != 0 {
		t.Fatalf("started %d, done %d, abandoned %d, open %d; want 2, 1, 1, 0",
			len(s.started), len(s.done), len(s.abandoned), s.open)
	}
	if s.abandoned[0].RequestStart != 3 {
		t.Errorf("abandoned %+v, want the second Execute's", s.abandoned[0])
	}
}
