package gobinary

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The goroutine id's offset the Go release gives is the one DWARF shows,
// for the toolchain that runs the tests (go1.21 to go1.26 were checked
// the same way, see goidOffsets).
func TestGoidOffset(t *testing.T) {
	built := buildTLSProgram(t)
	offs := map[string]uint32{}
	for _, name := range []string{"plain", "stripped", "pie"} {
		b, err := Open(built[name])
		require.NoError(t, err)
		offs[name], err = b.GoidOffset()
		b.Close()
		require.NoError(t, err, name)
	}
	assert.NotZero(t, offs["plain"])
	assert.Equal(t, offs["plain"], offs["stripped"], "the table agrees with DWARF")
	assert.Equal(t, offs["plain"], offs["pie"])
}

func TestGoidOffsetOfUnknownRelease(t *testing.T) {
	b, err := Open(buildTLSProgram(t)["stripped"])
	require.NoError(t, err)
	defer b.Close()
	b.Version = Version{1, 40, 0}
	_, err = b.GoidOffset()
	assert.ErrorIs(t, err, ErrNoDWARF)
	b.Version = Version{1, 20, 7}
	_, err = b.GoidOffset()
	assert.ErrorContains(t, err, "go1.21 to go1.26")
}

// A module's release is read from the names of its source files, also in
// a test binary, whose build information lists no dependencies.
func TestModuleVersion(t *testing.T) {
	b, err := Open(os.Args[0])
	require.NoError(t, err)
	defer b.Close()
	v, ok, err := b.ModuleVersion("github.com/stretchr/testify")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Regexp(t, regexp.MustCompile(`^v1\.\d+\.\d+$`), v)
	_, ok, err = b.ModuleVersion("example.com/not/used")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestVersionBefore(t *testing.T) {
	assert.True(t, Version{1, 21, 9}.before(Version{1, 22, 0}))
	assert.True(t, Version{1, 22, 0}.before(Version{1, 22, 1}))
	assert.False(t, Version{1, 22, 1}.before(Version{1, 22, 1}))
	assert.False(t, Version{2, 0, 0}.before(Version{1, 99, 0}))
}
