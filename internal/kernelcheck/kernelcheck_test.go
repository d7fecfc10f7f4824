package kernelcheck

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func statusWith(t *testing.T, capEff string) string {
	path := filepath.Join(t.TempDir(), "status")
	require.NoError(t, os.WriteFile(path, []byte("Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t"+capEff+"\n"), 0o644))
	return path
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name    string
		capEff  string
		missing []string
	}{
		{"root", "000001ffffffffff", nil},
		{"sys_admin covers bpf and perfmon", "0000000000280004", nil}, // SYS_ADMIN(21), SYS_PTRACE(19), DAC_READ_SEARCH(2)
		{"nothing", "0000000000000000", []string{"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}},
		{"bpf only", "0000008000000000", []string{"CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCapabilities(statusWith(t, tt.capEff))
			if tt.missing == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, c := range tt.missing {
				assert.Contains(t, err.Error(), c)
			}
			assert.Contains(t, err.Error(), "run the collector as root")
			if len(tt.missing) < 4 {
				assert.NotContains(t, err.Error(), "CAP_BPF (")
			}
		})
	}
}

func TestCapabilitiesUnreadable(t *testing.T) {
	assert.ErrorContains(t, checkCapabilities(filepath.Join(t.TempDir(), "missing")), "reading capabilities")
	assert.ErrorContains(t, checkCapabilities(statusWith(t, "zz")), `parsing CapEff`)
}

func TestParseRelease(t *testing.T) {
	for r, want := range map[string][3]int{
		"6.18.44-fc-v657":   {6, 18, 1},
		"5.4.0-150-generic": {5, 4, 1},
		"5.10":              {5, 10, 1},
		"weird":             {0, 0, 0},
	} {
		major, minor, ok := parseRelease(r)
		assert.Equal(t, want, [3]int{major, minor, map[bool]int{true: 1}[ok]}, r)
	}
}

func TestMissingBTFIsNamed(t *testing.T) {
	old := BTFPath
	BTFPath = filepath.Join(t.TempDir(), "vmlinux")
	defer func() { BTFPath = old }()
	err := Check()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kernel BTF not found")
	assert.Contains(t, err.Error(), "CONFIG_DEBUG_INFO_BTF=y")
}
