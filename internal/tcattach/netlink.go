package tcattach

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ownFilter is a filter Attach added, to find it again on Close.
type ownFilter struct {
	parent uint32
	handle uint32
	prog   ebpf.ProgramID
}

func (d Direction) parent() uint32 {
	if d == Egress {
		return netlink.HANDLE_MIN_EGRESS
	}
	return netlink.HANDLE_MIN_INGRESS
}

// ourHandle is the handle of our filter at our priority.
var ourHandle = netlink.MakeHandle(0, 1)

func (a *Attachment) handle() (*netlink.Handle, netlink.Link, error) {
	ns := netns.None()
	if !a.Interface.Netns.own() {
		var err error
		if ns, err = a.Interface.Netns.open(); err != nil {
			return nil, nil, err
		}
		defer ns.Close() // the handle's socket is in the namespace: enough
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, nil, fmt.Errorf("opening netlink in the namespace of %s: %w", a.Interface.Name, err)
	}
	l, err := h.LinkByIndex(a.Interface.Index)
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("finding interface %s: %w", a.Interface.Name, err)
	}
	return h, l, nil
}

// attachNetlink adds a direct-action cls_bpf filter per program at
// priority 1 under the clsact qdisc, when the rules allow it.
func (a *Attachment) attachNetlink(progs Programs) error {
	h, l, err := a.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	for _, hk := range progs.hooks() {
		if err := a.addFilter(h, l, hk); err != nil {
			return err
		}
	}
	a.Backend = Netlink
	return nil
}

func (a *Attachment) addFilter(h *netlink.Handle, l netlink.Link, hk hook) error {
	var st hookState
	_ = InNetns(a.Interface.Netns, func() error { // kernels without TCX have nothing there
		st.TCX, _ = tcxPrograms(a.Interface.Index, hk.dir, nil)
		return nil
	})
	var err error
	if st.Filters, err = listFilters(h, l, hk.dir); err != nil {
		return err
	}
	stale, err := netlinkPlan(st, alive)
	if err != nil {
		return a.refused(hk.dir, err)
	}
	for _, f := range stale {
		if err := h.FilterDel(bpfFilter(l, hk.dir, f.Priority, f.Handle, f.Protocol)); err != nil {
			return fmt.Errorf("removing the filter a killed collector left on %s %s: %w", a.Interface.Name, hk.dir, err)
		}
		a.Notes = append(a.Notes, fmt.Sprintf("removed %s, which a collector that is gone left on %s", f, hk.dir))
	}
	if err := a.ensureClsact(h, l); err != nil {
		return a.refused(hk.dir, err)
	}
	f := bpfFilter(l, hk.dir, ourPriority, ourHandle, unix.ETH_P_ALL)
	f.Fd = hk.prog.FD()
	f.Name = fmt.Sprintf("%s%d", ourFilterPrefix, os.Getpid())
	f.DirectAction = true
	if err := h.FilterAdd(f); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return a.refused(hk.dir, fmt.Errorf("priority 1 was taken while we looked"))
		}
		return fmt.Errorf("adding our filter to %s %s: %w", a.Interface.Name, hk.dir, err)
	}
	id := ebpf.ProgramID(0)
	if info, err := hk.prog.Info(); err == nil {
		id, _ = info.ID()
	}
	a.nl = append(a.nl, ownFilter{parent: hk.dir.parent(), handle: ourHandle, prog: id})
	return nil
}

func bpfFilter(l netlink.Link, dir Direction, prio uint16, handle uint32, proto uint16) *netlink.BpfFilter {
	return &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{
		LinkIndex: l.Attrs().Index, Parent: dir.parent(), Handle: handle, Priority: prio, Protocol: proto,
	}}
}

// alive reports whether process pid is running.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// clsact reports whether the interface has a clsact qdisc, and whether it
// has a plain ingress one (which takes clsact's place).
func clsact(h *netlink.Handle, l netlink.Link) (has, ingress bool, err error) {
	qs, err := h.QdiscList(l)
	if err != nil {
		return false, false, fmt.Errorf("listing the qdiscs of %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		switch q.Type() {
		case "clsact":
			return true, false, nil
		case "ingress":
			ingress = true
		}
	}
	return false, ingress, nil
}

func (a *Attachment) ensureClsact(h *netlink.Handle, l netlink.Link) error {
	has, ingress, err := clsact(h, l)
	if err != nil || has {
		return err
	}
	if ingress {
		return fmt.Errorf("an ingress qdisc (not clsact) is on the interface; replacing it would remove others' filters")
	}
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT,
	}}
	if err := h.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding a clsact qdisc: %w", err)
	} else if err == nil {
		a.qdisc = true
	}
	return nil
}

// listFilters lists the filters on a hook of l, with the names of the
// programs of cls_bpf filters.
func listFilters(h *netlink.Handle, l netlink.Link, dir Direction) ([]filter, error) {
	has, ingress, err := clsact(h, l)
	if err != nil {
		return nil, err
	}
	if !has && !(ingress && dir == Ingress) {
		return nil, nil
	}
	fs, err := h.FilterList(l, dir.parent())
	if err != nil {
		return nil, fmt.Errorf("listing the %s filters of %s: %w", dir, l.Attrs().Name, err)
	}
	out := make([]filter, 0, len(fs))
	for _, f := range fs {
		attrs := f.Attrs()
		ff := filter{Priority: attrs.Priority, Handle: attrs.Handle, Protocol: attrs.Protocol, Kind: f.Type()}
		if bf, ok := f.(*netlink.BpfFilter); ok {
			ff.Name, ff.ProgID = bf.Name, ebpf.ProgramID(bf.Id)
			ff.ProgName = programName(ff.ProgID)
		}
		out = append(out, ff)
	}
	return out, nil
}

// netlinkFilters lists the netlink filters on a hook of the attachment's
// interface.
func (a *Attachment) netlinkFilters(dir Direction) ([]filter, error) {
	h, l, err := a.handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return listFilters(h, l, dir)
}

// detachNetlink removes our filters, found by priority, handle and
// program, and the clsact qdisc if we created it and nothing is left under
// it.
func (a *Attachment) detachNetlink() error {
	h, l, err := a.handle()
	if err != nil {
		if errors.Is(err, ErrNetnsGone) || errors.Is(err, unix.ENODEV) || isLinkNotFound(err) {
			return nil // the interface went, and took all with it
		}
		return err
	}
	defer h.Close()
	var errs []error
	for _, own := range a.nl {
		dir := Ingress
		if own.parent == netlink.HANDLE_MIN_EGRESS {
			dir = Egress
		}
		fs, err := listFilters(h, l, dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range fs {
			if f.Priority == ourPriority && f.Handle == own.handle && f.ProgID == own.prog {
				if err := h.FilterDel(bpfFilter(l, dir, f.Priority, f.Handle, f.Protocol)); err != nil {
					errs = append(errs, fmt.Errorf("removing our filter from %s %s: %w", a.Interface.Name, dir, err))
				}
			}
		}
	}
	a.nl = nil
	if a.qdisc {
		errs = append(errs, a.removeClsactIfEmpty(h, l))
		a.qdisc = false
	}
	return errors.Join(errs...)
}

func (a *Attachment) removeClsactIfEmpty(h *netlink.Handle, l netlink.Link) error {
	for _, dir := range []Direction{Ingress, Egress} {
		fs, err := listFilters(h, l, dir)
		if err != nil || len(fs) > 0 {
			return err // others' filters stay, and so does their qdisc
		}
	}
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT,
	}}
	if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("removing the clsact qdisc we added to %s: %w", a.Interface.Name, err)
	}
	return nil
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
