package tracecontext

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		trace  string
		parent string
		flags  byte
	}{
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", true, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 1},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", true, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 0},
		{"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", true, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 1},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", false, "", "", 0},
		{"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false, "", "", 0},
		{"00-00000000000000000000000000000000-b7ad6b7169203331-01", false, "", "", 0},
		{"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", false, "", "", 0},
		{"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", false, "", "", 0},
		{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333", false, "", "", 0},
		{"", false, "", "", 0},
		{"garbage", false, "", "", 0},
	}
	for _, tt := range tests {
		c, ok := Parse(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		if ok {
			assert.Equal(t, tt.trace, c.TraceID.String(), tt.in)
			assert.Equal(t, tt.parent, c.SpanID.String(), tt.in)
			assert.Equal(t, tt.flags, c.Flags, tt.in)
		}
	}
}

func TestTraceparentRoundTrip(t *testing.T) {
	trace, span := NewTraceID(), NewSpanID()
	c, ok := Parse(Format(trace, span, 1))
	assert.True(t, ok)
	assert.Equal(t, trace, c.TraceID)
	assert.Equal(t, span, c.SpanID)
	assert.Equal(t, byte(1), c.Flags)
}
