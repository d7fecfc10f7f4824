package flows

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tcattach"
)

// Programs gives the programs for the interfaces of a namespace, which
// key its flows with the id given (the namespace's inode); bpf.Flows does.
type Programs interface {
	Programs(id uint64) (bpf.FlowPrograms, error)
	Release(id uint64)
}

// Interfaces finds the network namespaces and interfaces to count flows
// on, attaches the programs to them as they appear, and knows their names.
// Namespaces are found in /proc (those of processes) and in /run/netns
// (those `ip netns` names); none is held open between scans, so a pod's
// namespace dies with its last process as it would without us.
type Interfaces struct {
	procRoot string
	netnsDir string // /run/netns
	patterns []string
	allNetns bool
	backend  tcattach.Backend
	progs    Programs
	log      *zap.Logger

	mu      sync.Mutex // guards what follows, read by the flush
	byInode map[uint64]*nsState
	names   map[ifaceKey]ifaceName // by the kernel's netns id and ifindex
	inodes  map[uint64]uint64      // kernel netns id -> namespace inode
	logged  map[string]bool        // refusals and failures said once
}

type ifaceKey struct {
	netns   uint64
	ifindex uint32
}

type ifaceName struct {
	name string
	gone time.Time // when the interface went; zero while it is there
}

type nsState struct {
	ns     tcattach.Netns
	id     uint64 // the kernel's: the inode
	seen   bool
	ifaces map[int]*ifaceState
}

type ifaceState struct {
	name string
	att  *tcattach.Attachment
	err  error // why it is not attached
}

// InterfacesConfig configures Interfaces.
type InterfacesConfig struct {
	ProcRoot string
	// NetnsDir is where named namespaces are bound (/run/netns).
	NetnsDir string
	// Patterns select interfaces by name (shell patterns); none: all.
	Patterns []string
	// AllNetns: every namespace on the node, not only the node's own.
	AllNetns bool
	Backend  tcattach.Backend
	Logger   *zap.Logger
}

// NewInterfaces attaches nothing until Scan.
func NewInterfaces(cfg InterfacesConfig, progs Programs) *Interfaces {
	if cfg.NetnsDir == "" {
		cfg.NetnsDir = "/run/netns"
	}
	return &Interfaces{procRoot: cfg.ProcRoot, netnsDir: cfg.NetnsDir, patterns: cfg.Patterns, allNetns: cfg.AllNetns,
		backend: cfg.Backend, progs: progs, log: cfg.Logger, byInode: map[uint64]*nsState{},
		names: map[ifaceKey]ifaceName{}, inodes: map[uint64]uint64{}, logged: map[string]bool{}}
}

// Match reports whether an interface name is selected.
func (w *Interfaces) Match(name string) bool {
	if len(w.patterns) == 0 {
		return true
	}
	for _, p := range w.patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// namespaces lists the namespaces to watch, by inode, with a path to each.
func (w *Interfaces) namespaces() map[uint64]string {
	out := map[uint64]string{}
	host := filepath.Join(w.procRoot, "1/ns/net")
	if ino := nsInode(host); ino != 0 {
		out[ino] = host
	}
	if !w.allNetns {
		return out
	}
	if entries, err := os.ReadDir(w.netnsDir); err == nil {
		for _, e := range entries {
			p := filepath.Join(w.netnsDir, e.Name())
			if ino := nsInode(p); ino != 0 {
				if _, ok := out[ino]; !ok {
					out[ino] = p
				}
			}
		}
	}
	entries, _ := os.ReadDir(w.procRoot)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		p := filepath.Join(w.procRoot, e.Name(), "ns/net")
		if ino := nsInode(p); ino != 0 {
			if _, ok := out[ino]; !ok {
				out[ino] = p
			}
		}
	}
	return out
}

// Scan finds new namespaces and interfaces and attaches to them, and
// forgets those gone.
func (w *Interfaces) Scan(now time.Time) {
	found := w.namespaces()
	inodes := make([]uint64, 0, len(found))
	for ino := range found {
		inodes = append(inodes, ino)
	}
	sort.Slice(inodes, func(i, j int) bool { return inodes[i] < inodes[j] })
	w.mu.Lock()
	for _, st := range w.byInode {
		st.seen = false
	}
	w.mu.Unlock()
	for _, ino := range inodes {
		w.scanNetns(tcattach.Netns{Path: found[ino], Inode: ino}, now)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for ino, st := range w.byInode {
		if !st.seen {
			w.forgetNetns(ino, st, now)
		}
	}
	for k, n := range w.names {
		if !n.gone.IsZero() && now.Sub(n.gone) > time.Minute {
			delete(w.names, k)
		}
	}
}

// scanNetns attaches to the new interfaces of one namespace.
func (w *Interfaces) scanNetns(ns tcattach.Netns, now time.Time) {
	w.mu.Lock()
	st := w.byInode[ns.Inode]
	w.mu.Unlock()
	if st == nil {
		st = &nsState{ns: ns, id: ns.Inode, ifaces: map[int]*ifaceState{}}
		w.mu.Lock()
		w.byInode[ns.Inode] = st
		w.inodes[st.id] = ns.Inode
		w.mu.Unlock()
	}
	links, err := listLinks(ns)
	if err != nil {
		return
	}
	w.mu.Lock()
	st.seen = true
	st.ns = ns // the path may have changed
	w.mu.Unlock()
	present := map[int]bool{}
	for _, l := range links {
		a := l.Attrs()
		present[a.Index] = true
		if w.Match(a.Name) {
			w.ensure(st, a.Index, a.Name)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for idx, is := range st.ifaces {
		if is.att != nil {
			is.att.Interface.Netns = ns
		}
		if !present[idx] {
			w.dropIface(st, idx, is, now)
		}
	}
}

func listLinks(ns tcattach.Netns) ([]netlink.Link, error) {
	h := netns.None()
	if ns.Path != "" {
		var err error
		if h, err = netns.GetFromPath(ns.Path); err != nil {
			return nil, err
		}
		defer h.Close()
	}
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, err
	}
	defer nh.Close()
	return nh.LinkList()
}

// ensure attaches to interface idx of st unless it is attached, or was
// refused already with the same name.
func (w *Interfaces) ensure(st *nsState, idx int, name string) {
	w.mu.Lock()
	is := st.ifaces[idx]
	if is != nil && is.att != nil {
		if is.name != name { // renamed
			is.name = name
			w.names[ifaceKey{st.id, uint32(idx)}] = ifaceName{name: name}
		}
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	progs, err := w.progs.Programs(st.id)
	var att *tcattach.Attachment
	if err == nil {
		att, err = tcattach.Attach(tcattach.Interface{Netns: st.ns, Index: idx, Name: name},
			tcattach.Programs{Ingress: progs.Ingress, Egress: progs.Egress}, w.backend)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if is == nil {
		is = &ifaceState{}
		st.ifaces[idx] = is
	}
	is.name, is.att, is.err = name, att, err
	w.names[ifaceKey{st.id, uint32(idx)}] = ifaceName{name: name}
	if err != nil {
		w.sayOnce(st, name, err)
		return
	}
	fields := []zap.Field{zap.String("interface", name), zap.String("netns", st.ns.Path), zap.String("backend", string(att.Backend))}
	if len(att.Notes) > 0 {
		fields = append(fields, zap.Strings("notes", att.Notes))
	}
	w.log.Info("network: counting the flows of an interface", fields...)
}

// sayOnce logs why an interface is not counted, once per reason.
func (w *Interfaces) sayOnce(st *nsState, name string, err error) {
	key := fmt.Sprintf("%d/%s/%v", st.ns.Inode, name, err)
	if w.logged[key] {
		return
	}
	w.logged[key] = true
	var refused *tcattach.RefusedError
	if errors.As(err, &refused) {
		w.log.Error("network: the flows of this interface are not counted", zap.String("netns", st.ns.Path), zap.Error(err))
		return
	}
	w.log.Warn("network: cannot attach to an interface; retrying at the next scan",
		zap.String("interface", name), zap.String("netns", st.ns.Path), zap.Error(err))
}

func (w *Interfaces) dropIface(st *nsState, idx int, is *ifaceState, now time.Time) {
	if is.att != nil {
		is.att.Close()
	}
	delete(st.ifaces, idx)
	k := ifaceKey{st.id, uint32(idx)}
	if n, ok := w.names[k]; ok {
		n.gone = now
		w.names[k] = n
	}
}

func (w *Interfaces) forgetNetns(ino uint64, st *nsState, now time.Time) {
	for idx, is := range st.ifaces {
		w.dropIface(st, idx, is, now)
	}
	delete(w.byInode, ino)
	delete(w.inodes, st.id)
	w.progs.Release(st.id)
}

// Name is the name of interface ifindex of the namespace the kernel keys
// as netns, "" when unknown.
func (w *Interfaces) Name(netns uint64, ifindex uint32) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.names[ifaceKey{netns, ifindex}].name
}

// Inode is the inode of the namespace the kernel keys as netns, 0 when
// unknown.
func (w *Interfaces) Inode(netns uint64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inodes[netns]
}

// InterfaceCounts are how many interfaces are counted, and how many not.
type InterfaceCounts struct {
	Attached, Refused, Failed int
}

// Counts counts the interfaces by state.
func (w *Interfaces) Counts() InterfaceCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	var c InterfaceCounts
	var refused *tcattach.RefusedError
	for _, st := range w.byInode {
		for _, is := range st.ifaces {
			switch {
			case is.att != nil:
				c.Attached++
			case errors.As(is.err, &refused):
				c.Refused++
			default:
				c.Failed++
			}
		}
	}
	return c
}

// Close removes every link and filter attached, and only those.
func (w *Interfaces) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for ino, st := range w.byInode {
		for _, is := range st.ifaces {
			if is.att != nil {
				errs = append(errs, is.att.Close())
			}
		}
		delete(w.byInode, ino)
	}
	return errors.Join(errs...)
}
