package bpf

import (
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestHeaderSizeMatchesGeneratedLayout(t *testing.T) {
	require.Equal(t, uintptr(HeaderSize), unsafe.Offsetof(Event{}.Data))
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run as root to load eBPF programs")
		}
		t.Skip("loading eBPF programs needs root")
	}
}

func TestLoadAttachClose(t *testing.T) {
	requireRoot(t)
	tr, err := Load(Options{SelfTgid: uint32(os.Getpid()), RingBufferSize: 1 << 16})
	require.NoError(t, err)
	require.Len(t, tr.ProgramIDs(), 3)
	for _, pid := range []uint32{1, 63, 64, 4242} {
		require.NoError(t, tr.Select(pid))
	}
	require.NoError(t, tr.Deselect(63))
	require.NoError(t, tr.Deselect(7)) // never selected: fine
	sel, err := tr.Selected()
	require.NoError(t, err)
	require.Equal(t, []uint32{1, 64, 4242}, sel)
	require.Error(t, tr.Select(1<<30), "beyond pid_max")
	require.NoError(t, tr.Close())
}

func TestLoadWithPropagation(t *testing.T) {
	requireRoot(t)
	tr, err := Load(Options{SelfTgid: uint32(os.Getpid()), RingBufferSize: 1 << 16, Propagate: true})
	require.NoError(t, err)
	defer tr.Close()
	require.NoError(t, tr.PropagationErr)
	require.Len(t, tr.ProgramIDs(), 5)
}
