package semconv

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// HTTP/1 read from a TLS library's plaintext is https, in the span and in
// its metric series; HTTP/2's own :scheme stands.
func TestSchemeOverTLS(t *testing.T) {
	o := options(t, nil, "", 100)
	c := conn("127.0.0.1:40000", "127.0.0.1:8443")
	c.TLS = true
	h := &HTTP{Method: "GET", Target: "/a", Version: "1.1", Status: 200, Scheme: "http"}
	x := exchange(protocols.RoleClient, 5, 6, 7, 8)
	s := fill(h, x, c, o, &HTTPNames{})
	assert.Equal(t, "https", s.Attributes().AsRaw()["url.scheme"])
	assert.Equal(t, "https://127.0.0.1:8443/a", s.Attributes().AsRaw()["url.full"])
	k, _, ok := h.Metric(x, c, o, &HTTPNames{})
	assert.True(t, ok)
	assert.Equal(t, "https", k.Str[httpScheme])

	h2 := &HTTP{Method: "POST", Target: "/svc/M", Version: "2", Status: 200, Scheme: "https"}
	assert.Equal(t, "https", fill(h2, x, c, o, &HTTPNames{}).Attributes().AsRaw()["url.scheme"])
	c.TLS = false
	assert.Equal(t, "http", fill(h, x, c, o, &HTTPNames{}).Attributes().AsRaw()["url.scheme"])
}
