package events

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The runtime's task of an event goes through the ring buffer's layout.
func TestTaskRoundTrip(t *testing.T) {
	addr := netip.MustParseAddrPort("127.0.0.1:80")
	in := event(Write, addr, addr, "GET / HTTP/1.1\r\n", 16, "")
	in.Task, in.TaskTrigger, in.TaskClock = 1234567, 0x4033000000000000, 0x4059000000000000
	var out Event
	require.NoError(t, Decode(Encode(&in), &out))
	assert.Equal(t, in.Task, out.Task)
	assert.Equal(t, in.TaskTrigger, out.TaskTrigger)
	assert.Equal(t, in.TaskClock, out.TaskClock)

	in.Kind = GoStream
	require.NoError(t, Decode(Encode(&in), &out))
	assert.Equal(t, GoStream, out.Kind)
}
