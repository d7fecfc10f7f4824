package redis

import (
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// BenchmarkGetSet is the common case: per operation one small command
// and its reply, each in one segment, on a keep-alive connection; GET and
// SET in turn. ns/op and allocs/op are per command.
func BenchmarkGetSet(b *testing.B) {
	set := []byte(cmd("SET", "user:1042:session", "0123456789abcdef"))
	get := []byte(cmd("GET", "user:1042:session"))
	ok, val := []byte("+OK\r\n"), []byte("$16\r\n0123456789abcdef\r\n")
	c := newClient(textOptions)
	n := 0
	sink := countSink{&n}
	b.ReportAllocs()
	var ts uint64
	for i := 0; b.Loop(); i++ {
		q, r := set, ok
		if i%2 == 1 {
			q, r = get, val
		}
		ts++
		c.Feed(Outbound, &Segment{Data: q, Len: len(q), Time: ts}, sink)
		ts++
		c.Feed(Inbound, &Segment{Data: r, Len: len(r), Time: ts}, sink)
	}
	if n != b.N {
		b.Fatalf("%d records for %d commands", n, b.N)
	}
}

// BenchmarkPipeline50 writes 50 commands (SET, GET, INCR in turn) in one
// segment and reads their replies in one. ns/op and allocs/op are per
// command.
func BenchmarkPipeline50(b *testing.B) {
	var q, r strings.Builder
	for i := range 50 {
		k := "key:" + strconv.Itoa(i)
		switch i % 3 {
		case 0:
			q.WriteString(cmd("SET", k, "value"))
			r.WriteString("+OK\r\n")
		case 1:
			q.WriteString(cmd("GET", k))
			r.WriteString("$5\r\nvalue\r\n")
		default:
			q.WriteString(cmd("INCR", "counter"))
			r.WriteString(":" + strconv.Itoa(i) + "\r\n")
		}
	}
	cmds, replies := []byte(q.String()), []byte(r.String())
	c := newClient(textOptions)
	n := 0
	sink := countSink{&n}
	b.ReportAllocs()
	var ts uint64
	pipelines := 0
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		ts++
		c.Feed(Outbound, &Segment{Data: cmds, Len: len(cmds), Time: ts}, sink)
		ts++
		c.Feed(Inbound, &Segment{Data: replies, Len: len(replies), Time: ts}, sink)
		pipelines++
	}
	runtime.ReadMemStats(&after)
	if n != 50*pipelines {
		b.Fatalf("%d records for %d pipelines", n, pipelines)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/command")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n), "allocs/command")
}

// countSink counts records.
type countSink struct{ n *int }

func (s countSink) Started(*protocols.Exchange) {}
func (s countSink) Done(protocols.Record)       { *s.n++ }
func (s countSink) Failed(string)               {}
