package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type flow_key -type flow_counts -type flow_record -type flow_counter -type flow_dir flows flows.bpf.c -- -I/usr/include -I/usr/include/x86_64-linux-gnu

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

// FlowKey is one flow on one interface in one direction, generated from
// struct flow_key (flows.bpf.c).
type FlowKey = flowsFlowKey

// FlowCounts are a flow's bytes and packets, generated from struct
// flow_counts.
type FlowCounts = flowsFlowCounts

// FlowRecordSize is the size of a spill ring record.
const FlowRecordSize = int(unsafe.Sizeof(flowsFlowRecord{}))

// Flow directions, generated from enum flow_dir.
const (
	FlowReceive  = uint8(flowsFlowDirFLOW_RECEIVE)
	FlowTransmit = uint8(flowsFlowDirFLOW_TRANSMIT)
)

// Source and Destination are the key's endpoints.
func flowAddr(family uint8, b [16]uint8) netip.Addr {
	if family == 4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

// Source is the sender's address and port.
func (k *flowsFlowKey) Source() netip.AddrPort {
	return netip.AddrPortFrom(flowAddr(k.Family, k.Saddr), k.Sport)
}

// Destination is the receiver's address and port.
func (k *flowsFlowKey) Destination() netip.AddrPort {
	return netip.AddrPortFrom(flowAddr(k.Family, k.Daddr), k.Dport)
}

// DecodeFlowRecord reads a spill ring record.
func DecodeFlowRecord(b []byte) (FlowKey, FlowCounts, error) {
	if len(b) < FlowRecordSize {
		return FlowKey{}, FlowCounts{}, fmt.Errorf("flow record of %d bytes, want %d", len(b), FlowRecordSize)
	}
	r := *(*flowsFlowRecord)(unsafe.Pointer(&b[0]))
	return r.Key, r.Counts, nil
}

// FlowOptions configure the flow programs.
type FlowOptions struct {
	// TableFlows is how many flows one table holds between drains.
	TableFlows int
	// SpillBytes is the size of the spill ring, a power of two >= 4096.
	SpillBytes int
}

// FlowCounters are the kernel's counts of what did not go to the table.
type FlowCounters struct {
	Spilled     uint64 // packets sent to the spill ring: the table was full
	LostPackets uint64 // packets counted nowhere: the ring was full too
	LostBytes   uint64
}

// Flows is the loaded flow accounting: its maps, and its programs, one pair
// for every network namespace, which keys the flows of its interfaces with
// the namespace's id (an interface index means something only within its
// namespace).
type Flows struct {
	spec *ebpf.CollectionSpec
	maps flowsMaps

	mu      sync.Mutex // guards progs and current
	progs   map[uint64]*flowsPrograms
	current int // index in tables of the table in the slot
}

// FlowPrograms are the programs to attach to one interface.
type FlowPrograms struct {
	Ingress, Egress *ebpf.Program
}

// LoadFlows creates the maps of flow accounting; programs are loaded by
// Programs.
func LoadFlows(opts FlowOptions) (*Flows, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising the memlock limit for eBPF maps: %w", err)
	}
	spec, err := loadFlows()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded flow object: %w", err)
	}
	if opts.TableFlows > 0 {
		spec.Maps["flows_a"].MaxEntries = uint32(opts.TableFlows)
		spec.Maps["flows_b"].MaxEntries = uint32(opts.TableFlows)
		spec.Maps["flow_tables"].InnerMap.MaxEntries = uint32(opts.TableFlows)
	}
	if opts.SpillBytes > 0 {
		spec.Maps["flow_spill"].MaxEntries = uint32(opts.SpillBytes)
	}
	f := &Flows{spec: spec, progs: map[uint64]*flowsPrograms{}}
	if err := spec.LoadAndAssign(&f.maps, nil); err != nil {
		return nil, fmt.Errorf("creating the flow maps: %w", verifierDetail(err))
	}
	return f, nil
}

// Programs returns the programs for the interfaces of network namespace
// id (any number unique among the live namespaces, such as its inode),
// loading them the first time.
func (f *Flows) Programs(id uint64) (FlowPrograms, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.progs[id]; ok {
		return FlowPrograms{p.FlowsIngress, p.FlowsEgress}, nil
	}
	spec := f.spec.Copy()
	// The slot is filled once, by LoadFlows: filled again here, it would
	// undo a swap.
	spec.Maps["flow_tables"].Contents = nil
	consts := map[string]any{"netns_id": id,
		"spill_wakeup": uint64(spec.Maps["flow_spill"].MaxEntries / 2)}
	for name, v := range consts {
		if err := spec.Variables[name].Set(v); err != nil {
			return FlowPrograms{}, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	p := &flowsPrograms{}
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{
		"flows_a": f.maps.FlowsA, "flows_b": f.maps.FlowsB, "flow_tables": f.maps.FlowTables,
		"flow_spill": f.maps.FlowSpill, "flow_counters": f.maps.FlowCounters,
	}}
	if err := spec.LoadAndAssign(p, opts); err != nil {
		return FlowPrograms{}, fmt.Errorf("loading the flow programs: %w", verifierDetail(err))
	}
	f.progs[id] = p
	return FlowPrograms{p.FlowsIngress, p.FlowsEgress}, nil
}

// Release unloads the programs of namespace id (a namespace gone); links
// and filters that still use them keep them loaded until they go.
func (f *Flows) Release(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.progs[id]; ok {
		p.Close()
		delete(f.progs, id)
	}
}

// Swap puts the other table in the slot and returns the one taken out,
// for Drain. When Swap returns, no program holds the table taken out: the
// kernel waited for them.
func (f *Flows) Swap() (*ebpf.Map, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tables := [2]*ebpf.Map{f.maps.FlowsA, f.maps.FlowsB}
	next := 1 - f.current
	if err := f.maps.FlowTables.Update(uint32(0), tables[next], ebpf.UpdateAny); err != nil {
		return nil, fmt.Errorf("swapping the flow table: %w", err)
	}
	out := tables[f.current]
	f.current = next
	return out, nil
}

// drainBatch is how many flows one system call reads.
const drainBatch = 512

// Drain reads every flow of a table Swap took out, summed over CPUs, and
// empties it.
func (f *Flows) Drain(table *ebpf.Map, each func(*FlowKey, FlowCounts)) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("counting CPUs: %w", err)
	}
	keys := make([]FlowKey, drainBatch)
	vals := make([]FlowCounts, drainBatch*cpus)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := table.BatchLookupAndDelete(&cursor, keys, vals, nil)
		for i := range n {
			var sum FlowCounts
			for _, v := range vals[i*cpus : (i+1)*cpus] {
				sum.Bytes += v.Bytes
				sum.Packets += v.Packets
			}
			each(&keys[i], sum)
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("draining the flow table: %w", err)
		}
	}
}

// Spill is the ring buffer of flows the table had no room for.
func (f *Flows) Spill() *ebpf.Map { return f.maps.FlowSpill }

// TableFlows is how many flows a table holds.
func (f *Flows) TableFlows() int { return int(f.maps.FlowsA.MaxEntries()) }

// Counters reads the kernel's counts, summed over CPUs.
func (f *Flows) Counters() (FlowCounters, error) {
	var c FlowCounters
	for i, dst := range map[flowsFlowCounter]*uint64{
		flowsFlowCounterFLOW_SPILLED: &c.Spilled, flowsFlowCounterFLOW_LOST_PACKETS: &c.LostPackets,
		flowsFlowCounterFLOW_LOST_BYTES: &c.LostBytes,
	} {
		var perCPU []uint64
		if err := f.maps.FlowCounters.Lookup(uint32(i), &perCPU); err != nil {
			return c, fmt.Errorf("reading flow counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return c, nil
}

// ProgramIDs are the kernel ids of the loaded flow programs.
func (f *Flows) ProgramIDs() []ebpf.ProgramID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []ebpf.ProgramID
	for _, p := range f.progs {
		ids = append(ids, programIDs(p.FlowsIngress, p.FlowsEgress)...)
	}
	return ids
}

// Close unloads the programs and frees the maps. Links and filters that
// use the programs must be gone first, or they keep the programs loaded.
func (f *Flows) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for id, p := range f.progs {
		errs = append(errs, p.Close())
		delete(f.progs, id)
	}
	errs = append(errs, f.maps.Close())
	return errors.Join(errs...)
}
