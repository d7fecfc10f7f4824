package tcattach

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// attachTCX attaches each program at the head of its TCX chain. Nothing
// is refused there: ours runs first whatever comes after it.
func (a *Attachment) attachTCX(progs Programs) error {
	for _, h := range progs.hooks() {
		var (
			l      link.Link
			others []program
		)
		err := InNetns(a.Interface.Netns, func() error {
			var err error
			l, err = link.AttachTCX(link.TCXOptions{
				Interface: a.Interface.Index, Program: h.prog, Attach: h.dir.tcxAttach(), Anchor: link.Head(),
			})
			if err != nil {
				return err
			}
			others, _ = tcxPrograms(a.Interface.Index, h.dir, h.prog) // for the notes only
			return nil
		})
		if err != nil {
			return fmt.Errorf("attaching to %s %s with TCX: %w", a.Interface.Name, h.dir, err)
		}
		a.tcx = append(a.tcx, l)
		filters, _ := a.netlinkFilters(h.dir) // for the notes only
		a.Notes = append(a.Notes, tcxNotes(hookState{TCX: others, Filters: filters})...)
	}
	a.Backend = TCX
	return nil
}

// tcxPrograms lists the programs attached with TCX to a hook of interface
// index of the caller's namespace, in the order they run, but ours.
func tcxPrograms(index int, dir Direction, ours *ebpf.Program) ([]program, error) {
	res, err := link.QueryPrograms(link.QueryOptions{Target: index, Attach: dir.tcxAttach()})
	if err != nil {
		return nil, err
	}
	var own ebpf.ProgramID
	if ours != nil {
		if info, err := ours.Info(); err == nil {
			own, _ = info.ID()
		}
	}
	var out []program
	for _, p := range res.Programs {
		if p.ID == own {
			continue
		}
		out = append(out, program{ID: p.ID, Name: programName(p.ID)})
	}
	return out, nil
}

// programName is the name the kernel keeps of program id ("" if it is
// gone).
func programName(id ebpf.ProgramID) string {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// TCXOrder lists the names of the programs attached with TCX to a hook of
// iface, in the order they run (for tests and diagnostics).
func TCXOrder(iface Interface, dir Direction) ([]string, error) {
	var progs []program
	err := InNetns(iface.Netns, func() error {
		var err error
		progs, err = tcxPrograms(iface.Index, dir, nil)
		return err
	})
	names := make([]string, len(progs))
	for i, p := range progs {
		names[i] = p.Name
	}
	return names, err
}
