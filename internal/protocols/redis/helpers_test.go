package redis

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Names the tests use for the protocol layer's types.
type (
	Segment   = protocols.Segment
	Direction = protocols.Direction
)

var (
	textOptions   = &protocols.Options{QueryText: true}
	noTextOptions = &protocols.Options{}
)

// newClient returns a Conn for a client connection seen from its start.
func newClient(opts *protocols.Options) *Conn {
	c := NewConn(opts)
	c.Reset(RoleClient)
	return c
}

// step is one segment fed to a Conn, or a close.
type step struct {
	dir   Direction
	data  string
	len   int // bytes moved; 0 means len(data)
	tail  string
	t     uint64
	tid   uint32
	close bool
}

// out is what the client wrote (commands); in what it read (replies).
func out(t uint64, data ...string) step {
	return step{dir: Outbound, data: strings.Join(data, ""), t: t}
}
func in(t uint64, data ...string) step { return step{dir: Inbound, data: strings.Join(data, ""), t: t} }
func closeAt(t uint64) step            { return step{close: true, t: t} }

// moved is a syscall that moved all but captured only its first capture
// bytes, with the kernel's tail of its last 16 bytes.
func moved(dir Direction, t uint64, all string, capture int) step {
	return step{dir: dir, t: t, data: all[:capture], len: len(all), tail: all[len(all)-min(16, len(all)):]}
}

// cmd encodes a command as clients send it: an array of bulk strings.
func cmd(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

// bulk encodes a bulk string reply.
func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// bulkErr encodes a RESP3 bulk error.
func bulkErr(s string) string { return "!" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// arr encodes an array reply of already encoded elements.
func arr(elems ...string) string {
	return "*" + strconv.Itoa(len(elems)) + "\r\n" + strings.Join(elems, "")
}

// push encodes a RESP3 push of already encoded elements.
func push(elems ...string) string {
	return ">" + strconv.Itoa(len(elems)) + "\r\n" + strings.Join(elems, "")
}

// recorder is a Sink that keeps what a Conn reports.
type recorder struct {
	done    []Record
	started int
	failed  map[string]int
}

func (r *recorder) Started(x *protocols.Exchange) {
	r.started++
	x.Tag = r.started
}

func (r *recorder) Done(rec protocols.Record) { r.done = append(r.done, *rec.(*Record)) }

func (r *recorder) Failed(reason string) {
	if r.failed == nil {
		r.failed = map[string]int{}
	}
	r.failed[reason]++
}

// play feeds steps to c and returns what it reported.
func play(c *Conn, steps []step) *recorder {
	r := &recorder{}
	for _, s := range steps {
		if s.close {
			c.Close(s.t, r)
			continue
		}
		n := s.len
		if n == 0 {
			n = len(s.data)
		}
		// Fresh copies that are scribbled over after the call: a Conn
		// that kept a reference to them would see garbage later.
		data, tail := []byte(s.data), []byte(s.tail)
		c.Feed(s.dir, &Segment{Data: data, Len: n, Tail: tail, Time: s.t, Tid: s.tid}, r)
		scribble(data)
		scribble(tail)
	}
	return r
}

func scribble(b []byte) {
	for i := range b {
		b[i] = 0xA5
	}
}

// op is what the tests compare of a record.
type op struct {
	Name   string    // db.operation.name
	Status string    // db.response.status_code, or "_OTHER" for an unknown error prefix; "" on success
	NS     string    // db.namespace
	T      [4]uint64 // request start and end, response start and end
}

// ok and fail build expected operations in database 0.
func ok(name string, t ...uint64) op { return op{Name: name, NS: "0", T: times(t)} }

func fail(name, status string, t ...uint64) op {
	return op{Name: name, Status: status, NS: "0", T: times(t)}
}

// times takes 4 times, or 2 (request and response, each in one segment).
func times(t []uint64) [4]uint64 {
	switch len(t) {
	case 2:
		return [4]uint64{t[0], t[0], t[1], t[1]}
	case 4:
		return [4]uint64{t[0], t[1], t[2], t[3]}
	}
	panic(fmt.Sprintf("times: %d values", len(t)))
}

func (o op) in(ns string) op { o.NS = ns; return o }

// ops turns records into what the tests compare, checking on the way
// what every record must be.
func ops(t *testing.T, recs []Record) []op {
	t.Helper()
	var got []op
	for i, r := range recs {
		if err := checkRecord(&r); err != "" {
			t.Errorf("record %d (%s): %s", i, r.Operation, err)
		}
		o := op{Name: r.Operation, NS: r.Namespace,
			T: [4]uint64{r.RequestStart, r.RequestEnd, r.ResponseStart, r.ResponseEnd}}
		if r.Error {
			o.Status = r.StatusCode
			if o.Status == "" {
				o.Status = r.ErrorType
			}
		}
		got = append(got, o)
	}
	return got
}

// checkRecord returns what is wrong with a record, or "".
func checkRecord(r *Record) string {
	switch {
	case r.Role != RoleClient:
		return "not a client record"
	case r.System != semconv.Redis:
		return "db.system.name " + r.System
	case r.Operation == "" || r.Summary != r.Operation:
		return "operation " + r.Operation + " summary " + r.Summary
	case r.Operation != otherCommand.name && commands[r.Operation] != nil && commands[r.Operation].name != r.Operation:
		return "operation not canonical"
	case r.Operation != otherCommand.name && commands[r.Operation] == nil:
		return "unknown operation " + r.Operation
	case r.Error != (r.ErrorType != ""):
		return "error without error.type, or error.type without an error"
	case r.StatusCode != "" && r.StatusCode != r.ErrorType:
		return "status code and error.type differ"
	case r.StatusCode != "" && errorPrefixes[r.StatusCode] == "":
		return "status code not a known prefix: " + r.StatusCode
	case r.ErrorType != "" && r.StatusCode == "" && r.ErrorType != OtherError:
		return "error.type without a status code: " + r.ErrorType
	case r.RequestStart > r.RequestEnd:
		return "request ends before it starts"
	case r.ResponseStart > r.ResponseEnd:
		return "response ends before it starts"
	case (r.ResponseStart == 0) != (r.ResponseEnd == 0):
		return "half a response"
	case r.ResponseEnd == 0 && r.Error:
		return "a status without a response"
	case r.ResponseStart != 0 && r.ResponseStart < r.RequestStart:
		return "response before request"
	case strings.ContainsAny(r.QueryText, "\r\n"):
		return "query text with a line break"
	}
	return ""
}

// equalOps reports the first difference between got and want.
func equalOps(t *testing.T, got, want []op) {
	t.Helper()
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			t.Errorf("missing record %d: %+v", i, want[i])
		case i >= len(want):
			t.Errorf("extra record %d: %+v", i, got[i])
		case got[i] != want[i]:
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
