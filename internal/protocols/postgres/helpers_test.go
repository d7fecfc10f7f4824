package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// Names the tests use.
type (
	Direction = protocols.Direction
	Segment   = protocols.Segment
)

// sink keeps what a Conn reports: copies of its records, in order, and
// the reasons of its failures.
type sink struct {
	started []protocols.Exchange
	done    []Record
	failed  map[string]int
	// open counts Started calls not followed by their Done yet.
	open int
}

func (s *sink) Started(x *protocols.Exchange) {
	s.started = append(s.started, *x)
	s.open++
}

func (s *sink) Done(r protocols.Record) {
	s.done = append(s.done, *r.(*Record))
	s.open--
}

func (s *sink) Failed(reason string) {
	if s.failed == nil {
		s.failed = map[string]int{}
	}
	s.failed[reason]++
}

// step is one segment, or a close.
type step struct {
	dir   Direction
	data  string
	len   int // bytes moved; 0: len(data)
	tail  string
	t     uint64
	close bool
}

func out(t uint64, data string) step { return step{dir: Outbound, data: data, t: t} }
func in(t uint64, data string) step  { return step{dir: Inbound, data: data, t: t} }
func closeAt(t uint64) step          { return step{close: true, t: t} }

// play feeds steps to a new Conn and returns what it reported.
func play(t testing.TB, opts *protocols.Options, steps []step) (*sink, *Conn) {
	t.Helper()
	c := NewConn(opts)
	c.Reset(protocols.RoleClient)
	return playOn(c, steps), c
}

func playOn(c *Conn, steps []step) *sink {
	s := &sink{}
	for _, st := range steps {
		if st.close {
			c.Close(st.t, s)
			continue
		}
		n := st.len
		if n == 0 {
			n = len(st.data)
		}
		c.Feed(st.dir, &Segment{Data: []byte(st.data), Len: n, Tail: []byte(st.tail), Time: st.t}, s)
	}
	return s
}

// sessionSteps turns a recorded connection into steps, one per chunk, at
// times 1, 2, ..., then a close.
func sessionSteps(conn []chunk) []step {
	steps := make([]step, 0, len(conn)+1)
	for i, ch := range conn {
		steps = append(steps, step{dir: ch.dir, data: string(ch.data), t: uint64(i + 1)})
	}
	return append(steps, closeAt(uint64(len(conn)+1)))
}

// brief is the part of a record the session tests compare.
type brief struct {
	Op, Coll, Summary, Text, NS, Status string
	Batch                               int
	Prepared, Clipped, NoResponse       bool
}

func (b brief) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+fmt.Sprintf("%q", v))
		}
	}
	add("op", b.Op)
	add("coll", b.Coll)
	add("sum", b.Summary)
	add("text", b.Text)
	add("ns", b.NS)
	add("status", b.Status)
	if b.Batch != 0 {
		parts = append(parts, fmt.Sprintf("batch=%d", b.Batch))
	}
	if b.Prepared {
		parts = append(parts, "prepared")
	}
	if b.Clipped {
		parts = append(parts, "clipped")
	}
	if b.NoResponse {
		parts = append(parts, "noresponse")
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func briefOf(r *Record) brief {
	if r.Error && r.StatusCode != r.ErrorType {
		panic("error.type differs from the status code")
	}
	return brief{Op: r.Operation, Coll: r.Collection, Summary: r.Summary, Text: r.QueryText, NS: r.Namespace,
		Status: r.StatusCode, Batch: r.BatchSize, Prepared: r.Prepared, Clipped: r.Clipped, NoResponse: r.ResponseEnd == 0}
}

func briefs(rs []Record) []brief {
	out := make([]brief, len(rs))
	for i := range rs {
		out[i] = briefOf(&rs[i])
	}
	return out
}
