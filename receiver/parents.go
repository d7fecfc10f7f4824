package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/conntrack"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/correlate"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/runtimes"
)

// parentsTracing reads the runtimes of watched processes so that the calls
// they make while serving go under the right request: the task probes
// loaded in the kernel (bpf.Tasks, nil where they cannot load) and the
// manager that reads runtimes and places the probes (runtimes.Manager).
type parentsTracing struct {
	kernel *bpf.Tasks
	files  *runtimes.Manager
	// results carries what the manager read to the event loop, which owns
	// the correlation.
	results chan runtimes.Result
}

// runtimeResults bounds the results waiting for the event loop; the
// manager waits beyond it (it reads one process at a time anyway).
const runtimeResults = 1024

var (
	probeGoRoundTrip  = attr("probe", "go_round_trip")
	probeGoWriteLoop  = attr("probe", "go_write_loop")
	probeGoGRPCWrite  = attr("probe", "go_grpc_write")
	probeGoGRPCReader = attr("probe", "go_grpc_reader")
	probeNodeParser   = attr("probe", "node_parser_init")
	probeNodeSocket   = attr("probe", "node_socket")
	probeNodeHooks    = attr("probe", "node_hooks")
	probeGoGRPCServe  = attr("probe", "go_grpc_serve")
	probeGoH2Serve    = attr("probe", "go_h2_serve")
	parentsNoRoom     = attr("probes", "parents", "reason", "no_room")
	parentsUntold     = attr("probes", "parents", "reason", "untold_connection")
	parentsLinked     [len(correlate.RuleNames)]metric.MeasurementOption
	parentsUnlinked   [len(correlate.ReasonNames)]metric.MeasurementOption
	runtimeOfRuntimes = map[runtimes.Kind]correlate.Runtime{
		runtimes.Threads: correlate.Threads, runtimes.Go: correlate.Goroutines, runtimes.Node: correlate.AsyncContexts,
	}
)

func init() {
	for i, name := range correlate.RuleNames {
		parentsLinked[i] = attr("outcome", "linked", "rule", name)
	}
	for i, name := range correlate.ReasonNames {
		parentsUnlinked[i] = attr("outcome", "unlinked", "reason", name)
	}
}

// kernelTasks is what runtimes.Manager works through: the tracer's map of
// runtimes, and the task probes (nil: none can be placed).
type kernelTasks struct {
	tracer *bpf.Tracer
	probes *bpf.Tasks
}

var errNoTaskProbes = errors.New("the task probes could not be loaded")

func (k kernelTasks) SetTaskProc(tgid uint32, p bpf.TaskProc) error {
	return k.tracer.SetTaskProc(tgid, p)
}
func (k kernelTasks) ForgetTaskProc(tgid uint32) { k.tracer.ForgetTaskProc(tgid) }

func (k kernelTasks) AttachGo(path string, h bpf.GoHandoff) (io.Closer, error) {
	if k.probes == nil {
		return nil, errNoTaskProbes
	}
	return k.probes.AttachGo(path, h)
}

func (k kernelTasks) AttachGoGRPC(path string, g bpf.GoGRPC) (io.Closer, error) {
	if k.probes == nil {
		return nil, errNoTaskProbes
	}
	return k.probes.AttachGoGRPC(path, g)
}

func (k kernelTasks) AttachGoServe(path string, points []bpf.GoServePoint) (io.Closer, error) {
	if k.probes == nil {
		return nil, errNoTaskProbes
	}
	return k.probes.AttachGoServe(path, points)
}

func (k kernelTasks) AttachNode(path string, p bpf.NodeProbes) (io.Closer, error) {
	if k.probes == nil {
		return nil, errNoTaskProbes
	}
	return k.probes.AttachNode(path, p)
}

func (k kernelTasks) FindNodeHooks(path string, pid int, push uint64) (io.Closer, error) {
	if k.probes == nil {
		return nil, errNoTaskProbes
	}
	return k.probes.FindNodeHooks(path, pid, push)
}

func (k kernelTasks) NodeHooks(pid int) (uint64, bool) {
	if k.probes == nil {
		return 0, false
	}
	return k.probes.NodeHooks(pid)
}

// startParents loads the task probes and starts reading runtimes. Without
// the probes, runtimes are still read: calls are then linked by what the
// syscalls alone tell.
func (r *Receiver) startParents() error {
	k, err := r.tracer.LoadTasks()
	if err != nil {
		r.logger().Warn("the task probes cannot be loaded here; calls made while serving are linked to their request only when threads tell it for sure",
			zap.Error(err))
		k = nil
	}
	p := &parentsTracing{kernel: k, results: make(chan runtimes.Result, runtimeResults)}
	p.files = runtimes.New(kernelTasks{tracer: r.tracer, probes: k}, runtimes.Options{
		ProcRoot: r.opts.ProcRoot, Logger: r.logger(), Tasks: bpf.TasksReadable(),
		OnResult: func(res runtimes.Result) { p.results <- res },
	})
	p.files.Start()
	r.parents = p
	if k == nil {
		return nil
	}
	err = r.tb.RegisterReceiverEbpfUprobeHitsCallback(func(_ context.Context, o metric.Int64Observer) error {
		c, err := k.Counters()
		if err != nil {
			return err
		}
		o.Observe(int64(c.RoundTrip), probeGoRoundTrip)
		o.Observe(int64(c.WriteLoop), probeGoWriteLoop)
		o.Observe(int64(c.GRPCWrite), probeGoGRPCWrite)
		o.Observe(int64(c.GRPCReader), probeGoGRPCReader)
		o.Observe(int64(c.NodeParser), probeNodeParser)
		o.Observe(int64(c.NodeSocket), probeNodeSocket)
		o.Observe(int64(c.NodeHooks), probeNodeHooks)
		o.Observe(int64(c.GRPCServe), probeGoGRPCServe)
		o.Observe(int64(c.H2Serve), probeGoH2Serve)
		return nil
	})
	if err == nil {
		err = r.tb.RegisterReceiverEbpfUprobeMissesCallback(func(_ context.Context, o metric.Int64Observer) error {
			c, err := k.Counters()
			if err != nil {
				return err
			}
			o.Observe(int64(c.NoRoom), parentsNoRoom)
			o.Observe(int64(c.ServeUntold), parentsUntold)
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("registering the task probes' self-telemetry: %w", err)
	}
	return nil
}

// stopParents takes every task probe off and frees the programs. The
// event loop must have ended: nothing reads results any more.
func (r *Receiver) stopParents() error {
	p := r.parents
	if p == nil {
		return nil
	}
	r.parents = nil
	go func() { // the manager may be handing over a last result
		for range p.results {
		}
	}()
	err := p.files.Close()
	close(p.results)
	if p.kernel != nil {
		err = errors.Join(err, p.kernel.Close())
	}
	return err
}

// parentsAdopted has the runtime of a newly watched process read.
func (r *Receiver) parentsAdopted(p *process) {
	if r.parents != nil {
		r.parents.files.Add(p.Pid, p.StartTime)
	}
}

// parentsEnded releases the probes of a process that ended.
func (r *Receiver) parentsEnded(p *process) {
	if r.parents != nil {
		r.parents.files.Remove(p.Pid, p.StartTime)
	}
}

// loopParents is the event loop's part of linking calls to requests.
type loopParents struct {
	// runtimes are the watched processes' runtimes, as read.
	runtimes map[uint32]runtimes.Kind
	// accepted is the connection each Node.js main thread accepted last:
	// the one its next parser (events.NodeParser) belongs to.
	accepted map[uint32]conntrack.Key
	// sockets are the contexts Node.js sockets were made in, by their
	// async id, until they connect.
	sockets map[taskID]correlate.Thread
	// streams are the goroutines grpc-go streams are written for, by
	// transport and stream, until their calls end; transports are the
	// grpc-go transports of connections, as their readers' reads say.
	streams    map[streamKey]uint64
	transports map[conntrack.Key]uint64
	// feeding: a data event's segment is being fed to its parser, so
	// exchanges that start now start in it.
	feeding bool
	// handlers tie Go HTTP/2 servers' streams to the goroutines that
	// serve them (parents_handlers.go).
	handlers loopHandlers
}

// taskID is a task of a process.
type taskID struct {
	pid uint32
	id  uint64
}

// streamKey is a stream of a grpc-go transport of a process.
type streamKey struct {
	pid       uint32
	id        uint32
	transport uint64
}

// maxTaskFacts bounds the sockets and streams kept: their connects and
// calls take them, and lost events must not let them grow.
const maxTaskFacts = 1 << 14

func (l *eventLoop) parentsState() *loopParents {
	if l.parents.runtimes == nil {
		l.parents.runtimes, l.parents.accepted = map[uint32]runtimes.Kind{}, map[uint32]conntrack.Key{}
		l.parents.sockets, l.parents.streams = map[taskID]correlate.Thread{}, map[streamKey]uint64{}
		l.parents.transports = map[conntrack.Key]uint64{}
	}
	return &l.parents
}

// drainRuntimes takes what the manager read of processes' runtimes.
func (l *eventLoop) drainRuntimes() {
	p := l.r.parents
	if p == nil {
		return
	}
	for {
		select {
		case res := <-p.results:
			l.runtimeRead(res)
		default:
			return
		}
	}
}

func (l *eventLoop) runtimeRead(res runtimes.Result) {
	proc := l.r.procs.get(uint32(res.Pid))
	if proc == nil || proc.StartTime != res.Start {
		return // it ended meanwhile
	}
	st := l.parentsState()
	st.runtimes[uint32(res.Pid)] = res.Kind
	l.linker.SetRuntime(uint32(res.Pid), runtimeOfRuntimes[res.Kind])
	fields := []zap.Field{zap.Int("process.pid", res.Pid), zap.String("runtime", res.Kind.String()),
		zap.Bool("tasks", res.Tasks), zap.Bool("handoff", res.Handoff)}
	if res.Why != nil {
		fields = append(fields, zap.NamedError("missing", res.Why))
	}
	if proc.forkOf != 0 { // pre-fork servers fork often
		l.r.logger().Debug("parents: runtime of process read", fields...)
		return
	}
	l.r.logger().Info("parents: runtime of process read", fields...)
}

// runtimeEnded forgets what the loop knew of process pid's runtime.
func (l *eventLoop) runtimeEnded(pid uint32) {
	l.handlersEnded(pid)
	if l.parents.runtimes == nil {
		return
	}
	delete(l.parents.runtimes, pid)
	delete(l.parents.accepted, pid)
	for k := range l.parents.sockets {
		if k.pid == pid {
			delete(l.parents.sockets, k)
		}
	}
	for k := range l.parents.streams {
		if k.pid == pid {
			delete(l.parents.streams, k)
		}
	}
	for k := range l.parents.transports {
		if k.Pid == pid {
			delete(l.parents.transports, k)
		}
	}
}

// thread is what ran the exchange x's request as the correlation sees it:
// its thread and, when x starts in the segment being fed, the task the
// segment was moved for (not the first segment's: a Go server may read a
// request's first byte on another goroutine than the one that serves it).
func (l *eventLoop) thread(pid uint32, x *protocols.Exchange) correlate.Thread {
	th := correlate.Thread{Tid: x.Tid}
	if l.parents.feeding {
		th = l.eventThread(pid, &l.ev)
	}
	return th
}

// eventThread is the thread and task of event ev of process pid.
func (l *eventLoop) eventThread(pid uint32, ev *events.Event) correlate.Thread {
	th := correlate.Thread{Tid: ev.Tid}
	switch l.parents.runtimes[pid] {
	case runtimes.Go:
		th.Task = ev.Task
	case runtimes.Node:
		th.Task, th.Trigger, th.Clock = runtimes.AsyncID(ev.Task), runtimes.AsyncID(ev.TaskTrigger), runtimes.AsyncID(ev.TaskClock)
	}
	return th
}

// taskEvent handles what the task probes report (bpf/tasks.bpf.c).
func (l *eventLoop) taskEvent(ev *events.Event) {
	st := l.parentsState()
	switch ev.Kind {
	case events.NodeParser:
		// The main thread made the parser of the connection it accepted
		// last: its requests' handlers run in the parser's context.
		key, ok := st.accepted[ev.Pid]
		if !ok {
			return
		}
		delete(st.accepted, ev.Pid)
		c := l.conns.Get(key)
		if ctx := runtimes.AsyncID(ev.TaskClock); c != nil && ctx != 0 {
			l.linker.SetFlowContext(correlate.Flow{Netns: flowNetns(c), Client: c.Info.Remote, Server: c.Info.Local}, ctx)
		}
	case events.NodeSocket:
		// A socket was made, with the next async id, in a context.
		id := runtimes.AsyncID(ev.TaskClock)
		if id == 0 {
			return
		}
		if len(st.sockets) >= maxTaskFacts {
			clear(st.sockets)
		}
		st.sockets[taskID{ev.Pid, id + 1}] = correlate.Thread{Tid: ev.Tid, Task: runtimes.AsyncID(ev.Task),
			Trigger: runtimes.AsyncID(ev.TaskTrigger)}
	case events.GoStream:
		// A goroutine writes on a stream of a gRPC transport.
		if len(st.streams) >= maxTaskFacts {
			clear(st.streams)
		}
		st.streams[streamKey{ev.Pid, uint32(ev.TaskTrigger), ev.TaskClock}] = ev.Task
	case events.GoHandler:
		l.goHandler(ev)
	}
}

// parentsData learns from a data event, before its segment is fed, what
// linking needs: exchanges that start now start in it; a Go read that
// names a grpc-go transport ties it to the connection.
func (l *eventLoop) parentsData(key conntrack.Key, ev *events.Event) {
	l.parents.feeding = true
	if ev.TaskTrigger == 0 || ev.Kind != events.Read || l.parents.runtimes[ev.Pid] != runtimes.Go {
		return
	}
	st := l.parentsState()
	if st.transports[key] != ev.TaskTrigger {
		if len(st.transports) >= maxTaskFacts {
			clear(st.transports)
		}
		st.transports[key] = ev.TaskTrigger
	}
}

// parentsConnClosed forgets the transport of a closed connection.
func (l *eventLoop) parentsConnClosed(key conntrack.Key) {
	l.handlersConnClosed(key)
	if l.parents.transports != nil {
		delete(l.parents.transports, key)
	}
}

// lateParent links a call of connection c whose task is known only now:
// a grpc-go stream's, whose goroutine the writer probe named.
func (l *eventLoop) lateParent(c *conntrack.Conn, r protocols.Record, id *correlate.Span) {
	x, ok := r.(*http2.Exchange)
	if !ok || x.Role != protocols.RoleClient || l.parents.runtimes[c.Key.Pid] != runtimes.Go {
		return
	}
	transport, ok := l.parents.transports[c.Key]
	if !ok {
		return
	}
	k := streamKey{c.Key.Pid, x.StreamID, transport}
	goid, ok := l.parents.streams[k]
	if !ok {
		return
	}
	delete(l.parents.streams, k)
	l.linker.LateParent(c.Key.Pid, id, correlate.Thread{Task: goid})
}

// connEvent learns from a connection event what linking needs: the
// connection a Node.js main thread accepted last, and the task that
// opened a connection.
func (l *eventLoop) connEvent(key conntrack.Key, ev *events.Event) {
	kind, ok := l.parents.runtimes[ev.Pid]
	if !ok || kind != runtimes.Node || ev.Tid != ev.Pid {
		return
	}
	switch ev.Kind {
	case events.Accept:
		l.parentsState().accepted[ev.Pid] = key
	case events.Connect:
		c := l.conns.Get(key)
		if c == nil {
			return
		}
		flow := correlate.Flow{Netns: flowNetns(c), Client: c.Info.Local, Server: c.Info.Remote}
		th := l.eventThread(ev.Pid, ev)
		// Node.js connects in a callback its socket triggered: the
		// context that made the socket opened the connection.
		if made, ok := l.parents.sockets[taskID{ev.Pid, th.Trigger}]; ok {
			delete(l.parents.sockets, taskID{ev.Pid, th.Trigger})
			th = made
		}
		l.linker.Connected(ev.Pid, th, flow)
	}
}

// Abandoned hears of a request its parser dropped: it will never be Done,
// and is no candidate parent any more.
func (s *connSink) Abandoned(x *protocols.Exchange) {
	if id, ok := x.Tag.(*correlate.Span); ok && x.Role == protocols.RoleServer {
		s.l.linker.ServerDone(s.c.Key.Pid, id)
	}
}

var _ protocols.Abandoner = (*connSink)(nil)

// publishParents adds how calls were linked to the self-telemetry.
func (l *eventLoop) publishParents(ctx context.Context) {
	o := l.linker.TakeOutcomes()
	for i, n := range o.Linked {
		if n > 0 {
			l.r.tb.ReceiverEbpfClientParents.Add(ctx, n, parentsLinked[i])
		}
	}
	for i, n := range o.Unlinked {
		if n > 0 {
			l.r.tb.ReceiverEbpfClientParents.Add(ctx, n, parentsUnlinked[i])
		}
	}
}
