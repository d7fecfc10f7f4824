// Package standin is a stand-in for Cilium in tests: a TC program named
// cil_from_container that counts the packets it sees and passes them.
package standin

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 standin standin.bpf.c -- -I/usr/include -I/usr/include/x86_64-linux-gnu

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Program is a loaded stand-in; each has its own count.
type Program struct {
	objs standinObjects
}

// Load loads a stand-in program.
func Load() (*Program, error) {
	p := &Program{}
	if err := loadStandinObjects(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("loading the Cilium stand-in: %w", err)
	}
	return p, nil
}

// Prog is the program to attach.
func (p *Program) Prog() *ebpf.Program { return p.objs.CilFromContainer }

// Seen is how many packets the program has seen.
func (p *Program) Seen() (uint64, error) {
	var n uint64
	if err := p.objs.Seen.Lookup(uint32(0), &n); err != nil {
		return 0, fmt.Errorf("reading the stand-in's count: %w", err)
	}
	return n, nil
}

// Close unloads it (once detached).
func (p *Program) Close() error { return p.objs.Close() }
