package gobinary

import (
	"errors"
	"fmt"
)

// goidOffsets is where runtime.g keeps goid, by Go release, as DWARF
// shows it in binaries built by each release (checked on amd64; arm64's g
// has the same layout: every field before goid is pointer-sized or a
// fixed-size integer). Releases outside these need DWARF.
var goidOffsets = []struct {
	from, to Version // inclusive
	offset   uint32
}{
	{Version{1, 21, 0}, Version{1, 22, 99}, 152},
	{Version{1, 23, 0}, Version{1, 24, 99}, 160}, // g.syscallbp came
	{Version{1, 25, 0}, Version{1, 26, 99}, 152}, // gobuf.ret went
}

// GoidOffset is the offset of goid in runtime.g, the goroutine's own
// struct: from DWARF when the binary has it, else from the Go release.
func (b *Binary) GoidOffset() (uint32, error) {
	offs, err := b.FieldOffsets(Field{Struct: "runtime.g", Name: "goid"})
	if err == nil {
		if offs[0] <= 0 || offs[0] > 4096 {
			return 0, fmt.Errorf("%s: runtime.g.goid at offset %d", b.Path, offs[0])
		}
		return uint32(offs[0]), nil
	}
	for _, r := range goidOffsets {
		if !b.Version.before(r.from) && !r.to.before(b.Version) {
			return r.offset, nil
		}
	}
	if !errors.Is(err, ErrNoDWARF) {
		return 0, err
	}
	return 0, fmt.Errorf("%s: %w, and where %s keeps a goroutine's id is not known here without it (known: go1.21 to go1.26)",
		b.Path, err, b.GoVersion)
}

// before reports whether v is an earlier release than w.
func (v Version) before(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}
