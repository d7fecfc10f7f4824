package gobinary

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// ABI says where Go's internal register ABI (ABIInternal, the convention
// of every Go function but assembly ones) puts things on one architecture.
// A probe at a function's entry finds its arguments in IntArgs in order
// (a slice takes three: pointer, length, capacity; an interface two);
// a probe on its RET instructions finds its results in the same
// registers, and the running goroutine's g in G at both.
type ABI struct {
	Arch string
	// IntArgs are the integer argument and result registers, in order.
	IntArgs []string
	// G holds the current goroutine's g.
	G string
	// Since is the first release that passes arguments in registers on
	// Arch; before it they went on the stack.
	Since Version
}

var abis = map[string]ABI{
	"amd64": {Arch: "amd64", IntArgs: []string{"RAX", "RBX", "RCX", "RDI", "RSI", "R8", "R9", "R10", "R11"},
		G: "R14", Since: Version{1, 17, 0}},
	"arm64": {Arch: "arm64", IntArgs: []string{"R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7",
		"R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"}, G: "R28", Since: Version{1, 18, 0}},
}

// RegisterABI returns the register ABI the binary's functions follow, or
// an error that says why they follow none this package knows: an
// architecture without one here, or a release before registers.
func (b *Binary) RegisterABI() (ABI, error) {
	abi, ok := abis[b.Arch]
	if !ok {
		return ABI{}, fmt.Errorf("%s: no register ABI known for GOARCH %s", b.Path, b.Arch)
	}
	if !b.Version.AtLeast(abi.Since.Major, abi.Since.Minor) {
		return ABI{}, fmt.Errorf("%s: built by %s, which passes arguments on the stack on %s (registers since go%d.%d)",
			b.Path, b.GoVersion, b.Arch, abi.Since.Major, abi.Since.Minor)
	}
	return abi, nil
}

// returns finds the offsets of the RET instructions in code.
func returns(arch string, code []byte) ([]int, error) {
	switch arch {
	case "amd64":
		return returnsAMD64(code)
	case "arm64":
		return returnsARM64(code)
	}
	return nil, fmt.Errorf("no instruction decoder for GOARCH %s", arch)
}

// returnsAMD64 decodes x86-64 instructions one after the other. Go puts no
// data in its functions' code, and pads between functions with INT3, which
// decodes; anything else that does not decode is an error.
func returnsAMD64(code []byte) ([]int, error) {
	var rets []int
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err == nil && (inst.Op == 0 || inst.Len == 0) {
			err = errors.New("truncated") // the decoder says so by a zero Op
		}
		if err != nil {
			return nil, fmt.Errorf("instruction at offset %#x: %w", off, err)
		}
		if inst.Op == x86asm.RET {
			rets = append(rets, off)
		}
		off += inst.Len
	}
	return rets, nil
}

// returnsARM64: every instruction is a 32-bit word; RET is RET Xn (Go
// writes RET for RET X30).
func returnsARM64(code []byte) ([]int, error) {
	if len(code)%4 != 0 {
		return nil, fmt.Errorf("%d bytes of code are not whole instructions", len(code))
	}
	var rets []int
	for off := 0; off < len(code); off += 4 {
		if binary.LittleEndian.Uint32(code[off:])&0xfffffc1f == 0xd65f0000 {
			rets = append(rets, off)
		}
	}
	return rets, nil
}
