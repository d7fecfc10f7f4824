// Package tcattach attaches TC programs to network interfaces beside
// whatever else is there (Cilium above all), by the rules of a guest:
//
//   - With TCX (Linux 6.6+), ours goes to the head of the chain, and must
//     return TCX_NEXT (TC_ACT_UNSPEC) so that every program after it runs
//     as if ours were not there. TCX programs run before every netlink
//     filter, so a Cilium that uses netlink runs after ours too.
//   - With netlink (older kernels), ours is a direct-action cls_bpf filter
//     at priority 1, under a clsact qdisc (created when missing). When
//     priority 1 is taken (by Cilium: its bpf-filter-priority is 1), or
//     when programs are attached with TCX on the same hook (they would run
//     before ours), it refuses, saying what to change.
//   - It never detaches, replaces or reorders what it did not attach. On
//     Close it removes its own links and filters, and the clsact qdisc
//     only if it created it and no filter is left under it. The one
//     exception: a cls_bpf filter named as ours whose collector is gone (it
//     was killed before it could remove it) is removed.
//
// Interfaces of other network namespaces are reached by switching a
// locked OS thread into them for the calls that need it.
package tcattach // import "github.com/otelcol-ebpf/ebpfreceiver/internal/tcattach"

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Backend is how programs are attached.
type Backend string

const (
	// Auto uses TCX where the kernel has it, else netlink.
	Auto Backend = "auto"
	// TCX attaches with bpf links to the TCX hooks (Linux 6.6+).
	TCX Backend = "tcx"
	// Netlink attaches cls_bpf filters under a clsact qdisc.
	Netlink Backend = "netlink"
)

// Direction is the hook of an interface: packets it receives or sends.
type Direction int

const (
	Ingress Direction = iota
	Egress
)

func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

func (d Direction) tcxAttach() ebpf.AttachType {
	if d == Egress {
		return ebpf.AttachTCXEgress
	}
	return ebpf.AttachTCXIngress
}

// Interface is a network interface in a network namespace.
type Interface struct {
	// Netns is its namespace; the zero Netns for the caller's. It may be
	// changed between calls, to another path to the same namespace.
	Netns Netns
	Index int
	Name  string
}

// Programs are the programs to attach; a nil one is not attached.
type Programs struct {
	Ingress, Egress *ebpf.Program
}

// Attachment is what Attach attached to one interface.
type Attachment struct {
	Interface Interface
	// Backend is the one used: TCX or Netlink.
	Backend Backend
	// Notes describe what ours was placed beside (Cilium's programs), for
	// the log.
	Notes []string

	tcx    []link.Link
	nl     []ownFilter
	qdisc  bool // we created the clsact qdisc
	closed bool
}

// Attach attaches progs to iface with backend. A refusal by the rules is a
// *RefusedError; nothing is left attached when Attach fails.
func Attach(iface Interface, progs Programs, backend Backend) (*Attachment, error) {
	a := &Attachment{Interface: iface}
	var err error
	switch backend {
	case TCX:
		err = a.attachTCX(progs)
	case Netlink:
		err = a.attachNetlink(progs)
	case Auto, "":
		err = a.attachTCX(progs)
		if errors.Is(err, ebpf.ErrNotSupported) {
			err = a.attachNetlink(progs)
		}
	default:
		return nil, fmt.Errorf("tc backend %q: must be auto, tcx or netlink", backend)
	}
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// hook is a direction and the program to attach there.
type hook struct {
	dir  Direction
	prog *ebpf.Program
}

func (p Programs) hooks() []hook {
	var out []hook
	if p.Ingress != nil {
		out = append(out, hook{Ingress, p.Ingress})
	}
	if p.Egress != nil {
		out = append(out, hook{Egress, p.Egress})
	}
	return out
}

func (a *Attachment) refused(dir Direction, err error) error {
	return &RefusedError{Interface: a.Interface.Name, Direction: dir, Reason: err.Error()}
}

// Close removes what Attach attached, and only that. An interface that is
// gone took everything with it: that is no error.
func (a *Attachment) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	var errs []error
	for _, l := range a.tcx {
		errs = append(errs, l.Close())
	}
	a.tcx = nil
	if len(a.nl) > 0 || a.qdisc {
		errs = append(errs, a.detachNetlink())
	}
	return errors.Join(errs...)
}
