package receiver

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
)

// A request on a warm keep-alive connection allocates only what its span
// is made of: pdata allocates each attribute value, the attribute list and
// the span, and the linker the span's identity. Anything made per request
// besides (a string, a map, a list) shows up here. So does anything made
// per connection, when each request comes on a connection of its own.
func TestRequestAllocations(t *testing.T) {
	for _, c := range []struct {
		name              string
		reqKind, respKind events.Kind
		short             bool // one request per connection
		attributes        float64
	}{
		{"server", events.Read, events.Write, false, 15},
		{"client", events.Write, events.Read, false, 12},
		{"server, short connections", events.Read, events.Write, true, 15},
	} {
		t.Run(c.name, func(t *testing.T) {
			loop := newTestLoop(t)
			conns := [][][]byte{encode(exchangeEvents(c.reqKind, c.respKind, 1))}
			if c.short {
				conns = shortConns(203)
			}
			ts, n := uint64(0), 0
			request := func() {
				for _, raw := range conns[n%len(conns)] {
					ts++
					feedRaw(t, loop, raw, ts)
				}
				n++
			}
			request() // the connection, the metric series, the linker's lists
			allocs := testing.AllocsPerRun(200, request)
			// One request before, one more by AllocsPerRun's own warm-up.
			assert.Equal(t, int64(202), loop.counts.requests, "every run is a request")
			t.Logf("%v allocations per request", allocs)
			assert.LessOrEqual(t, allocs, c.attributes+3)
		})
	}
}
