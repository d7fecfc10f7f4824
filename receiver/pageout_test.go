package receiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestExeMapping(t *testing.T) {
	const exe = "/usr/bin/otelcol-ebpf"
	for _, tc := range []struct {
		line       string
		start, end uint64
		ok         bool
	}{
		{"00400000-00c00000 r-xp 00000000 08:01 1234 /usr/bin/otelcol-ebpf", 0x400000, 0xc00000, true},
		{"00c00000-01000000 r--p 00800000 08:01 1234 /usr/bin/otelcol-ebpf", 0xc00000, 0x1000000, true},
		{"01000000-01100000 rw-p 00c00000 08:01 1234 /usr/bin/otelcol-ebpf", 0, 0, false}, // data: written
		{"7f0000000000-7f0000100000 r-xp 00000000 08:01 99 /usr/lib/libc.so.6", 0, 0, false},
		{"7f0000000000-7f0000100000 rw-p 00000000 00:00 0", 0, 0, false},
		{"zz-01 r-xp 0 08:01 1 /usr/bin/otelcol-ebpf", 0, 0, false},
	} {
		start, end, ok := exeMapping(tc.line, exe)
		assert.Equal(t, tc.ok, ok, tc.line)
		assert.Equal(t, tc.start, start, tc.line)
		assert.Equal(t, tc.end, end, tc.line)
	}
}
