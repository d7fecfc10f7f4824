package tcattach

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// program is a program attached with TCX by someone.
type program struct {
	ID   ebpf.ProgramID
	Name string
}

// filter is a netlink cls_bpf (or other) filter on a hook.
type filter struct {
	Priority uint16
	Handle   uint32
	Protocol uint16
	Kind     string // "bpf", "u32", ...
	Name     string // cls_bpf's name attribute
	ProgID   ebpf.ProgramID
	ProgName string
}

// hookState is what is attached to one hook (an interface and a
// direction) besides our programs.
type hookState struct {
	TCX     []program
	Filters []filter
}

// ciliumPrefix begins the names of Cilium's programs (cil_from_netdev,
// cil_to_container, ...) and of the cls_bpf filters it creates.
const ciliumPrefix = "cil_"

func (p program) cilium() bool { return strings.HasPrefix(p.Name, ciliumPrefix) }

func (f filter) cilium() bool {
	return strings.HasPrefix(f.Name, ciliumPrefix) || strings.HasPrefix(f.ProgName, ciliumPrefix)
}

func (f filter) String() string {
	name := f.Name
	if f.ProgName != "" && f.ProgName != f.Name {
		name = fmt.Sprintf("%s (program %s)", f.Name, f.ProgName)
	}
	return fmt.Sprintf("%s filter %q at priority %d", f.Kind, name, f.Priority)
}

// ourFilterPrefix names our cls_bpf filters; the collector's pid follows,
// so that a filter a collector left behind when it was killed can be told
// from one a running collector uses.
const ourFilterPrefix = "otelcol-ebpf-flows-"

func (f filter) ours() (pid int, ok bool) {
	rest, found := strings.CutPrefix(f.Name, ourFilterPrefix)
	if !found {
		return 0, false
	}
	if _, err := fmt.Sscanf(rest, "%d", &pid); err != nil {
		return 0, false
	}
	return pid, true
}

// RefusedError says why our programs were not attached to a hook, and
// what to change so they can be.
type RefusedError struct {
	Interface string
	Direction Direction
	Reason    string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("not attached to %s %s: %s", e.Interface, e.Direction, e.Reason)
}

// ourPriority is the netlink priority our filter takes: the first one, so
// that it runs before every other filter.
const ourPriority = 1

// netlinkPlan decides where our netlink filter goes on a hook in state st,
// or why it cannot: ours must run first and see every packet, and nothing
// of others' may move. stale are filters an earlier collector of ours left
// behind (its pid is gone): they are ours to remove. alive says whether a
// process is running.
func netlinkPlan(st hookState, alive func(pid int) bool) (stale []filter, err error) {
	var cilTCX, otherTCX []string
	for _, p := range st.TCX {
		if p.cilium() {
			cilTCX = append(cilTCX, p.Name)
		} else {
			otherTCX = append(otherTCX, p.Name)
		}
	}
	if len(cilTCX) > 0 {
		return nil, fmt.Errorf("Cilium's %s is attached with TCX here, and TCX programs run before every netlink filter: "+
			"ours would run after Cilium's and miss what it redirects or drops; use network.tc_backend: tcx (or auto), "+
			"which attaches ours at the head of the TCX chain, before Cilium's", strings.Join(cilTCX, ", "))
	}
	if len(otherTCX) > 0 {
		return nil, fmt.Errorf("programs attached with TCX (%s) run before every netlink filter and may end the chain before ours; "+
			"use network.tc_backend: tcx (or auto)", strings.Join(otherTCX, ", "))
	}
	for _, f := range st.Filters {
		if pid, ok := f.ours(); ok && !alive(pid) {
			stale = append(stale, f)
			continue
		}
		if f.Priority != ourPriority {
			continue
		}
		if f.cilium() {
			return nil, fmt.Errorf("Cilium's %s would run before ours, which then misses what Cilium redirects or drops: "+
				"make Cilium attach behind it with `cilium config set bpf-filter-priority 2` (any priority above 1), "+
				"or use TCX on both sides (Cilium's enable-tcx, our network.tc_backend: tcx)", f)
		}
		if pid, ok := f.ours(); ok {
			return nil, fmt.Errorf("the collector with pid %d already counts flows here (%s)", pid, f)
		}
		return nil, fmt.Errorf("%s takes the first place, where ours must go to see every packet; "+
			"move it to a priority above 1, or use network.tc_backend: tcx", f)
	}
	return stale, nil
}

// tcxNotes describes the programs ours will run before on a TCX hook: ours
// goes to the head, so nothing is refused there.
func tcxNotes(st hookState) []string {
	var notes []string
	for _, p := range st.TCX {
		if p.cilium() {
			notes = append(notes, fmt.Sprintf("Cilium's %s is attached with TCX: ours runs before it, at the head of the chain", p.Name))
		}
	}
	if slices.ContainsFunc(st.Filters, filter.cilium) {
		notes = append(notes, "Cilium's netlink filters run after every TCX program: ours runs before them")
	}
	return notes
}
