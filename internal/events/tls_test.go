package events

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A TLS library's plaintext comes as a read or write event with the TLS
// flag, on its socket.
func TestDecodeTLS(t *testing.T) {
	in := event(Write, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:443"), "GET / HTTP/1.1\r\n", 16, "")
	in.TLS = true
	var e Event
	require.NoError(t, Decode(Encode(&in), &e))
	assert.True(t, e.TLS)
	assert.Equal(t, Write, e.Kind)
	assert.Equal(t, uint16(443), e.Remote.Port())
	in.TLS = false
	require.NoError(t, Decode(Encode(&in), &e))
	assert.False(t, e.TLS)
}
