package receiver

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// A closed connection's state serves the next connection: that one's spans
// carry its own addresses, and the parse counts of the closed one are not
// counted again.
func TestConnStateReused(t *testing.T) {
	loop := newTestLoop(t)
	raws := exchangeEvents(bpf.EventRead, bpf.EventWrite, 1)
	junk := rawEvent(bpf.EventRead, 4242, 0x1000, 1, "\x00\x01 not http\r\n")
	closing := rawEvent(bpf.EventClose, 4242, 0x1000, 3, "")
	ts := uint64(0)
	for i, clientPort := range []uint16{40001, 40002} {
		for _, raw := range [][]byte{junk, raws[0], raws[1], closing} {
			binary.LittleEndian.PutUint64(raw[40:], uint64(0x1000+i)) // a socket of its own
			binary.LittleEndian.PutUint16(raw[4:], clientPort)
			ts++
			feedEvent(t, loop, raw, ts)
		}
	}
	assert.Len(t, loop.spare, 1, "the second connection reused the first's state")
	assert.Equal(t, uint64(2), loop.counts.parse.NotHTTP, "one run of junk per connection")
	assert.Equal(t, int64(2), loop.counts.requests)

	require.Equal(t, 2, loop.batchSpans)
	loop.resolve()
	got := loop.batch.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i, want := range []int64{40001, 40002} {
		span := got.At(i)
		port, _ := span.Attributes().Get("client.port")
		assert.Equal(t, want, port.Int())
		assert.Equal(t, "GET /users/*", span.Name())
		assert.Equal(t, ptrace.SpanKindServer, span.Kind())
	}
}

// A server span whose peer is on this host waits for the client's write;
// once one waited in vain, the connection's next spans do not wait.
func TestUnwatchedPeerStopsParking(t *testing.T) {
	l := newTestLoop(t)
	req := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	loopback := func(raw []byte) []byte {
		copy(raw[48:], []byte{127, 0, 0, 1})
		copy(raw[64:], []byte{127, 0, 0, 1})
		return raw
	}
	feedEvent(t, l, loopback(rawEvent(bpf.EventRead, 4242, 1, 1, req)), 1)
	feedEvent(t, l, loopback(rawEvent(bpf.EventWrite, 4242, 1, 2, resp)), 2)
	require.Len(t, l.parked, 1, "waits for a client that may be watched")
	require.Zero(t, l.batchSpans)

	l.parked[0].since = time.Now().Add(-linkGrace)
	l.unpark(false)
	require.Empty(t, l.parked)
	require.Equal(t, 1, l.batchSpans)

	feedEvent(t, l, loopback(rawEvent(bpf.EventRead, 4242, 1, 3, req)), 3)
	feedEvent(t, l, loopback(rawEvent(bpf.EventWrite, 4242, 1, 4, resp)), 4)
	require.Empty(t, l.parked, "the peer is known not to be watched")
	require.Equal(t, 2, l.batchSpans)

	// The next connection reuses the closed one's state, not its verdict.
	feedEvent(t, l, loopback(rawEvent(bpf.EventClose, 4242, 1, 5, "")), 5)
	feedEvent(t, l, loopback(rawEvent(bpf.EventRead, 4242, 2, 6, req)), 6)
	feedEvent(t, l, loopback(rawEvent(bpf.EventWrite, 4242, 2, 7, resp)), 7)
	require.Len(t, l.spare, 0, "the state was reused")
	require.Len(t, l.parked, 1, "a new peer may be watched")
}
