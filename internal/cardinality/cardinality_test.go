package cardinality

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLimitPerService(t *testing.T) {
	l := New(2)
	assert.Equal(t, "a", l.Admit("svc", "a", "_OTHER"))
	assert.Equal(t, "b", l.Admit("svc", "b", "_OTHER"))
	assert.Equal(t, "_OTHER", l.Admit("svc", "c", "_OTHER"), "beyond the limit")
	assert.Equal(t, "a", l.Admit("svc", "a", "_OTHER"), "a value kept stays kept")
	assert.Equal(t, "c", l.Admit("other", "c", "_OTHER"), "each service has its own room")
	assert.Equal(t, uint64(1), l.Overflowed())
	l.Forget("svc")
	assert.Equal(t, "c", l.Admit("svc", "c", "_OTHER"), "a forgotten service starts anew")
}
