package runtimes

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
)

// The symbols of a Node.js executable the probes need (Node.js builds that
// keep their symbol table: the official ones, NodeSource's; Debian's own
// package links a libnode without one).
const (
	nodeLLHTTPInit = "llhttp_init"
	// void node::AsyncHooks::push_async_context(double, double, v8::Local<v8::Object>)
	nodePushAsyncContext = "_ZN4node10AsyncHooks18push_async_contextEddN2v85LocalINS1_6ObjectEEE"
	// void node::TCPWrap::New(const v8::FunctionCallbackInfo<v8::Value>&)
	nodeTCPWrapNew = "_ZN4node7TCPWrap3NewERKN2v820FunctionCallbackInfoINS1_5ValueEEE"
)

// nodeFile is what the probes need of a Node.js executable.
type nodeFile struct {
	push uint64 // file offset of push_async_context
}

// examineNode reads the Node.js executable at path; ok is false when it is
// not one. Its llhttp_init is probed here.
func (m *Manager) examineNode(path string) (*file, bool) {
	ef, err := elf.Open(path)
	if err != nil {
		return nil, false
	}
	defer ef.Close()
	addrs := symbols(ef, nodeLLHTTPInit, nodePushAsyncContext, nodeTCPWrapNew)
	if _, ok := addrs[nodePushAsyncContext]; !ok {
		return nil, false
	}
	f := &file{kind: Node}
	var offs [3]uint64
	for i, name := range []string{nodeLLHTTPInit, nodeTCPWrapNew, nodePushAsyncContext} {
		a, ok := addrs[name]
		if !ok {
			f.why = fmt.Errorf("%s: no %s: its HTTP server or sockets are not known", path, name)
			return f, true
		}
		if offs[i], err = fileOffset(ef, a); err != nil {
			f.why = fmt.Errorf("%s: %w", path, err)
			return f, true
		}
	}
	if !m.opts.Tasks {
		return f, true // nothing would read what the probes give
	}
	c, err := m.kernel.AttachNode(path, bpf.NodeProbes{LLHTTPInit: offs[0], TCPWrapNew: offs[1]})
	if err != nil {
		f.why = fmt.Errorf("probing Node.js in %s: %w", path, err)
		return f, true
	}
	f.closers, f.handoff, f.node = append(f.closers, c), true, &nodeFile{push: offs[2]}
	m.opts.Logger.Info("task probes attached", zap.String("runtime", "nodejs"), zap.String("path", path))
	return f, true
}

// symbols finds the addresses of names in the symbol tables of ef.
func symbols(ef *elf.File, names ...string) map[string]uint64 {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	found := map[string]uint64{}
	for _, read := range []func() ([]elf.Symbol, error){ef.DynamicSymbols, ef.Symbols} {
		syms, err := read()
		if err != nil {
			continue
		}
		for _, s := range syms {
			if want[s.Name] && s.Value != 0 && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
				found[s.Name] = s.Value
			}
		}
	}
	return found
}

// fileOffset is where the code at link-time address addr is in the file.
func fileOffset(ef *elf.File, addr uint64) (uint64, error) {
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= addr && addr < p.Vaddr+p.Filesz {
			return addr - p.Vaddr + p.Off, nil
		}
	}
	return 0, fmt.Errorf("address %#x is in no executable segment", addr)
}

// findNode places the probe that finds Node.js process pid's AsyncHooks;
// checkFinding takes it off once it did.
func (m *Manager) findNode(pid int, start uint64, exe string, f *file, res Result) {
	probe, err := m.kernel.FindNodeHooks(exe, pid, f.node.push)
	if err != nil {
		m.opts.Logger.Warn("the async contexts of a Node.js process cannot be found; its calls are linked only when sure",
			zap.Int("process.pid", pid), zap.Error(err))
		return
	}
	m.finding[pid] = &finding{start: start, probe: probe, until: time.Now().Add(m.opts.FindFor), result: res}
}

// checkFinding looks whether the processes whose AsyncHooks are looked
// for showed them, and tells the kernel where their async ids are.
func (m *Manager) checkFinding() {
	for pid, fd := range m.finding {
		hooks, ok := m.kernel.NodeHooks(pid)
		if !ok && time.Now().Before(fd.until) {
			continue
		}
		fd.probe.Close()
		delete(m.finding, pid)
		res := fd.result
		if !ok {
			res.Why = errors.Join(res.Why, fmt.Errorf("no callback ran in %v: its async contexts were not found", m.opts.FindFor))
			m.report(res)
			continue
		}
		fields, err := nodeFields(m.opts.ProcRoot, pid, hooks)
		if err == nil {
			err = m.kernel.SetTaskProc(uint32(pid), nodeTaskProc(fields))
		}
		if err != nil {
			res.Why = errors.Join(res.Why, err)
		} else {
			res.Tasks = true
		}
		m.report(res)
	}
}

// asyncHooksSpan is how much of an AsyncHooks object is searched for the
// pointer to its async_id_fields.
const asyncHooksSpan = 1024

// nodeFields finds, in the AsyncHooks object at hooks of process pid, the
// address of its async_id_fields: four doubles, the execution and
// trigger async ids, the counter of ids given out (at least both), and
// the default trigger id, -1 but while a constructor runs. Exactly one of
// its pointers must lead to such doubles.
func nodeFields(procRoot string, pid int, hooks uint64) (uint64, error) {
	mem, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "mem"))
	if err != nil {
		return 0, fmt.Errorf("reading the memory of Node.js process %d: %w", pid, err)
	}
	defer mem.Close()
	obj := make([]byte, asyncHooksSpan)
	n, _ := mem.ReadAt(obj, int64(hooks))
	var found []uint64
	var vals [32]byte
	for off := 0; off+8 <= n; off += 8 {
		p := binary.LittleEndian.Uint64(obj[off:])
		if p < 1<<16 || p >= 1<<47 || p%8 != 0 {
			continue
		}
		if _, err := mem.ReadAt(vals[:], int64(p)); err != nil || !asyncIDFields(vals) {
			continue
		}
		if !slices.Contains(found, p) {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("Node.js process %d: %d candidates for async_id_fields in its AsyncHooks at %#x, not one",
			pid, len(found), hooks)
	}
	return found[0], nil
}

// asyncIDFields says whether b holds what async_id_fields does.
func asyncIDFields(b [32]byte) bool {
	var f [4]float64
	for i := range f {
		f[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	id := func(x float64) bool { return x >= 0 && x < 1<<53 && x == math.Trunc(x) }
	return id(f[0]) && id(f[1]) && id(f[2]) && f[2] >= 1 && f[2] >= f[0] && f[2] >= f[1] && f[3] == -1
}

func nodeTaskProc(fields uint64) bpf.TaskProc {
	return bpf.TaskProc{Runtime: bpf.TaskRuntimeNode, NodeFields: fields}
}

// AsyncID turns the bits of an async id, as the kernel reads them, into
// the id; 0 when they are not one.
func AsyncID(bits uint64) uint64 {
	f := math.Float64frombits(bits)
	if !(f > 0 && f < 1<<53) {
		return 0
	}
	return uint64(f)
}
