package bpf

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// The TLS probes load against the tracer's maps, on the path this kernel
// has (uprobe_multi links where it has them).
func TestLoadTLS(t *testing.T) {
	requireRoot(t)
	tr, err := Load(Options{SelfTgid: uint32(os.Getpid()), RingBufferSize: 1 << 16})
	require.NoError(t, err)
	defer tr.Close()
	l, err := tr.LoadTLS()
	require.NoError(t, err)
	require.Len(t, l.ProgramIDs(), 4)
	c, err := l.Counters()
	require.NoError(t, err)
	require.Zero(t, c.SSLEntry)
	require.NoError(t, l.Close())
}
