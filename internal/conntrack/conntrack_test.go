package conntrack

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http1"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
)

// sink records what the parsers of a table report.
type sink struct {
	done    []*http1.Exchange
	lost    int
	failed  []string
	discard *bool
}

func (s *sink) Started(*protocols.Exchange) {}
func (s *sink) Failed(reason string)        { s.failed = append(s.failed, reason) }
func (s *sink) Done(r protocols.Record) {
	if *s.discard {
		s.lost++
		return
	}
	x := *r.(*http1.Exchange)
	s.done = append(s.done, &x)
}

func newTable(t *testing.T) (*Table, *sink) {
	router, err := routes.New(nil, "")
	require.NoError(t, err)
	opts := &protocols.Options{Routes: routes.NewLimiter(router, 100)}
	s := &sink{}
	tb := New(protocols.NewRegistry(http1.Protocol), opts, func(c *Conn) {
		c.Sink = s
		s.discard = &c.Discarding
		c.Info.Service = "svc"
	})
	return tb, s
}

var (
	local  = netip.MustParseAddrPort("10.0.0.1:8080")
	remote = netip.MustParseAddrPort("10.0.0.2:40000")
)

func feed(tb *Table, key Key, dir protocols.Direction, ts uint64, data string) *Conn {
	return tb.Segment(key, 7, local, remote, dir, &protocols.Segment{Data: []byte(data), Len: len(data), Time: ts})
}

// A Go server reads a request's first byte alone: no protocol can tell from
// one byte, so it is kept until the next read decides, then given to the
// parser with the rest, from the time of its own read.
func TestFirstByteAloneIsKept(t *testing.T) {
	tb, s := newTable(t)
	key := Key{Pid: 1, Sock: 1}
	c := feed(tb, key, protocols.Inbound, 1, "G")
	assert.Nil(t, c.Protocol(), "one byte says nothing yet")
	feed(tb, key, protocols.Inbound, 2, "ET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	feed(tb, key, protocols.Outbound, 3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	require.Len(t, s.done, 1)
	assert.Equal(t, "GET", s.done[0].Method)
	assert.Equal(t, uint64(1), s.done[0].RequestStart, "the request began with the byte read alone")
	assert.Equal(t, protocols.RoleServer, c.Role, "a request read: the process serves")
	assert.Equal(t, "http1", c.Protocol().Name())
}

// The kernel's word on the role stands; content decides only without it.
func TestRoleFromTheKernel(t *testing.T) {
	tb, _ := newTable(t)
	key := Key{Pid: 1, Sock: 2}
	c := tb.Open(key, 7, local, remote, protocols.RoleClient, 1)
	assert.Equal(t, protocols.RoleClient, c.Role)
	assert.Equal(t, uint32(7), c.Netns)
	feed(tb, key, protocols.Outbound, 2, "GET / HTTP/1.1\r\n\r\n")
	assert.Equal(t, protocols.RoleClient, c.Role)
}

// Bytes no protocol knows are counted, per segment and per connection;
// the connection is given up after detectTries of them.
func TestUnknownProtocolCounted(t *testing.T) {
	tb, s := newTable(t)
	key := Key{Pid: 1, Sock: 3}
	for i := 0; i < detectTries+10; i++ {
		feed(tb, key, protocols.Inbound, uint64(i), "\x06\x03\x01\x02\x00 binary") // not TLS: tls_test.go
	}
	assert.Equal(t, Stats{Unknown: 1, Undetected: detectTries}, tb.Stats(), "detection stops after detectTries")
	other := Key{Pid: 1, Sock: 4}
	feed(tb, other, protocols.Inbound, 1, "\x00\x01 junk")
	tb.Close(other, 2)
	assert.Equal(t, uint64(2), tb.Stats().Unknown, "a connection that closes undetected counts too")
	assert.Empty(t, s.done)
}

// After lost events, what a connection was in the middle of is counted as
// lost, never paired with what comes next; the connection goes on.
func TestLostEventsDropWhatWasPending(t *testing.T) {
	tb, s := newTable(t)
	key := Key{Pid: 1, Sock: 5}
	feed(tb, key, protocols.Inbound, 1, "GET /a HTTP/1.1\r\n\r\n")
	tb.Lost(key, 2) // its response was lost
	feed(tb, key, protocols.Inbound, 3, "GET /b HTTP/1.1\r\n\r\n")
	feed(tb, key, protocols.Outbound, 4, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	assert.Equal(t, 1, s.lost)
	require.Len(t, s.done, 1)
	assert.Equal(t, "/b", s.done[0].Target)
}

// A closed connection's state serves the next one, its parser with it.
func TestCloseKeepsStateForTheNext(t *testing.T) {
	tb, _ := newTable(t)
	first := feed(tb, Key{Pid: 1, Sock: 6}, protocols.Inbound, 1, "GET / HTTP/1.1\r\n\r\n")
	parser := first.parser
	require.Same(t, first, tb.Close(Key{Pid: 1, Sock: 6}, 2))
	assert.Zero(t, tb.Len())
	next := feed(tb, Key{Pid: 1, Sock: 7}, protocols.Inbound, 3, "GET / HTTP/1.1\r\n\r\n")
	assert.Same(t, first, next)
	assert.Same(t, parser, next.parser)
	assert.Equal(t, uint64(1), next.Uses)
	assert.Equal(t, Key{Pid: 1, Sock: 7}, next.Key)
}
