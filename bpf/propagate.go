package bpf

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// propagation is the loaded and attached set of programs that insert
// traceparent headers (propagate.bpf.c). It uses the tracer's maps for
// the selection and the plans.
type propagation struct {
	objs    propagateObjects
	sockOps link.Link
	skMsg   bool // attached to objs.Clients
}

// loadPropagation loads the propagation programs against the tracer's maps
// and attaches them: sock_ops to the root of the cgroup v2 hierarchy, so
// it sees every connection of the node, and sk_msg to the sock hash.
func loadPropagation(tracer *tracerObjects, headers, tcp bool) (*propagation, error) {
	root, err := cgroup2Root("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	spec, err := loadPropagate()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded propagation object: %w", err)
	}
	spec.Maps["pids"].MaxEntries = tracer.Pids.MaxEntries()
	spec.Maps["tcp_out"].MaxEntries = tracer.TcpOut.MaxEntries() // 1 without the tcp mode
	spec.Maps["tcp_in"].MaxEntries = tracer.TcpIn.MaxEntries()
	for name, v := range map[string]bool{"headers_on": headers, "tcp_on": tcp} {
		if err := spec.Variables[name].Set(boolU32(v)); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	p := &propagation{}
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
		"pids": tracer.Pids, "plans": tracer.Plans, "sock_states": tracer.SockStates,
		"tcp_out": tracer.TcpOut, "tcp_in": tracer.TcpIn, "tcp_counters": tracer.TcpCounters,
	}}
	if err := spec.LoadAndAssign(&p.objs, opts); err != nil {
		return nil, fmt.Errorf("loading the propagation programs: %w", verifierDetail(err))
	}
	if err := p.attach(root, headers); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *propagation) attach(cgroup string, headers bool) error {
	if headers { // the tcp mode alone needs only sock_ops
		err := link.RawAttachProgram(link.RawAttachProgramOptions{
			Target: p.objs.Clients.FD(), Program: p.objs.InsertTraceparent, Attach: ebpf.AttachSkMsgVerdict,
		})
		if err != nil {
			return fmt.Errorf("attaching the sk_msg program to its sock hash: %w", err)
		}
		p.skMsg = true
	}
	var err error
	p.sockOps, err = link.AttachCgroup(link.CgroupOptions{
		Path: cgroup, Attach: ebpf.AttachCGroupSockOps, Program: p.objs.TrackClients,
	})
	if err != nil {
		return fmt.Errorf("attaching the sock_ops program to cgroup %s: %w", cgroup, err)
	}
	return nil
}

// cgroup2Root finds where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup
// on unified systems, /sys/fs/cgroup/unified on hybrid ones.
func cgroup2Root(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("finding the cgroup v2 mount: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(s.Text())
		for i, field := range fields {
			if field == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], nil
			}
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", mountinfo, err)
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted; mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified`")
}

func (p *propagation) programIDs() []ebpf.ProgramID {
	return programIDs(p.objs.InsertTraceparent, p.objs.TrackClients)
}

// Close detaches the programs; the connections leave the sock hash when it
// is freed, untouched.
func (p *propagation) Close() error {
	var errs []error
	if p.sockOps != nil {
		errs = append(errs, p.sockOps.Close())
	}
	if p.skMsg {
		errs = append(errs, link.RawDetachProgram(link.RawDetachProgramOptions{
			Target: p.objs.Clients.FD(), Program: p.objs.InsertTraceparent, Attach: ebpf.AttachSkMsgVerdict,
		}))
	}
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}
