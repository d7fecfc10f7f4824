package receiver

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// A request on a warm keep-alive connection allocates only what its span
// is made of: pdata allocates each attribute value, the attribute list and
// the span, and the linker the span's identity. Anything made per request
// besides (a string, a map, a list) shows up here. So does anything made
// per connection, when each request comes on a connection of its own.
func TestRequestAllocations(t *testing.T) {
	for _, c := range []struct {
		name              string
		reqKind, respKind byte
		short             bool // one request per connection
		attributes        float64
	}{
		{"server", bpf.EventRead, bpf.EventWrite, false, 15},
		{"client", bpf.EventWrite, bpf.EventRead, false, 12},
		{"server, short connections", bpf.EventRead, bpf.EventWrite, true, 15},
	} {
		t.Run(c.name, func(t *testing.T) {
			loop := newTestLoop(t)
			raws := exchangeEvents(c.reqKind, c.respKind, 1)
			if c.short {
				raws = append(raws, rawEvent(bpf.EventClose, 4242, 0x1000, 3, ""))
			}
			ts, sock := uint64(0), uint64(0x1000)
			request := func() {
				for _, raw := range raws {
					if c.short {
						binary.LittleEndian.PutUint64(raw[40:], sock)
					}
					ts++
					feedEvent(t, loop, raw, ts)
				}
				sock++
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
