// Package discovery finds the processes to watch: by listening port, by
// executable path, or by pid, reading /proc.
package discovery // import "github.com/otelcol-ebpf/ebpfreceiver/internal/discovery"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PortSet is a set of TCP ports. The zero value is the empty set; it is a
// pointer to a shared bitmap, so copies are cheap and see the same set.
type PortSet struct {
	bits *[65536 / 64]uint64
}

// ParsePorts parses "80,443,8000-9000". "" is the empty set. Every bad item
// is reported at once, by name.
func ParsePorts(s string) (PortSet, error) {
	var p PortSet
	if strings.TrimSpace(s) == "" {
		return p, nil
	}
	p.bits = new([65536 / 64]uint64)
	var errs []error
	for _, item := range strings.Split(s, ",") {
		lo, hi, err := parseRange(strings.TrimSpace(item))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for port := lo; port <= hi; port++ {
			p.bits[port/64] |= 1 << (port % 64)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return PortSet{}, err
	}
	return p, nil
}

func parseRange(item string) (int, int, error) {
	if item == "" {
		return 0, 0, errors.New("empty item in port list")
	}
	loS, hiS, isRange := strings.Cut(item, "-")
	lo, err := parsePort(loS)
	if err != nil {
		return 0, 0, fmt.Errorf("port %q: %w", item, err)
	}
	if !isRange {
		return lo, lo, nil
	}
	hi, err := parsePort(hiS)
	if err != nil {
		return 0, 0, fmt.Errorf("port range %q: %w", item, err)
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("port range %q: ends before it starts", item)
	}
	return lo, hi, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("not a number")
	}
	if n < 1 || n > 65535 {
		return 0, errors.New("ports are 1 to 65535")
	}
	return n, nil
}

// Contains reports whether port is in the set.
func (p PortSet) Contains(port uint16) bool {
	return p.bits != nil && p.bits[port/64]&(1<<(port%64)) != 0
}

// Empty reports whether the set has no port.
func (p PortSet) Empty() bool {
	if p.bits == nil {
		return true
	}
	for _, w := range p.bits {
		if w != 0 {
			return false
		}
	}
	return true
}

// Each calls fn for every port, ascending.
func (p PortSet) Each(fn func(port uint16)) {
	if p.bits == nil {
		return
	}
	for i, w := range p.bits {
		for w != 0 {
			b := 0
			for w&(1<<b) == 0 {
				b++
			}
			fn(uint16(i*64 + b))
			w &^= 1 << b
		}
	}
}
