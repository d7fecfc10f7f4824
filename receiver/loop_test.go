package receiver

import (
	"encoding/binary"
	"testing"

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
