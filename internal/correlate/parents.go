package correlate

import "github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"

// Which request a call belongs to. A process serving many requests at once
// makes its calls for one of them; the syscalls that wrote a call say
// which thread moved the bytes and, where the receiver reads the runtime,
// which of the runtime's tasks (a Go goroutine, a Node.js async context).
// The rules below pick a parent only when what they see leaves one
// candidate; otherwise the call is left without one, and counted by
// reason: a wrong parent tells the user a lie, a missing one does not.

// Thread is what ran the syscall that moved a request's bytes.
type Thread struct {
	Tid uint32
	// Task is the runtime's unit of work the syscall ran for, 0 when not
	// known: in Go the goroutine's id (for a write, the goroutine it was
	// written for, when another one wrote it); in Node.js the async id of
	// the callback running.
	Task uint64
	// Trigger (Node.js) is the async id of what scheduled the running
	// callback: the request's context for a callback its handler queued.
	Trigger uint64
	// Clock (Node.js) is the latest async id given out when the syscall
	// ran: ids are given in order, so a callback whose id is below a
	// request's Clock was scheduled before the request was read.
	Clock uint64
}

// Runtime says how a process runs what it serves, which decides what
// tells the request a call is for.
type Runtime uint8

// The runtimes.
const (
	// Unread: the runtime is not known yet. Neither threads nor tasks
	// tell: only link keys and a lone request do.
	Unread Runtime = iota
	// Threads: a runtime that runs each request on a thread of its own,
	// or one whose tasks are not read (any but Go and Node.js). A thread that never
	// served two requests at once is taken to serve one at a time, each
	// to its end (Python, Java, C); the first thread seen serving two at
	// once (an event loop) stops the thread rule for the process.
	Threads
	// Goroutines: Go. Threads tell nothing; Thread.Task is the goroutine.
	Goroutines
	// AsyncContexts: Node.js. One thread runs every request; Thread.Task,
	// Trigger and Clock are async ids, and SetFlowContext gives each
	// connection served the context its requests' handlers run in.
	AsyncContexts
)

// Rule is how a call's parent was picked.
type Rule uint8

// The rules, in Outcomes.Linked.
const (
	RuleTask        Rule = iota // the request the call's task serves
	RuleForwarded               // the one request with the call's link keys (a proxy)
	RuleThread                  // the one request of the calling thread
	RuleOpened                  // the request whose task opened the call's connection
	RuleOnlyRequest             // the only request in flight
	RulePropagated              // the kernel's, which went out in a traceparent
	ruleCount
)

// RuleNames name the rules in self-telemetry.
var RuleNames = [ruleCount]string{"task", "forwarded", "thread", "opened", "only_request", "propagated"}

// Reason is why a call was left without a parent while its process was
// serving.
type Reason uint8

// The reasons, in Outcomes.Unlinked.
const (
	// ReasonAmbiguousForward: several requests in flight have the call's
	// link keys, and nothing tells them apart.
	ReasonAmbiguousForward Reason = iota
	// ReasonSeveralOnTask: the call's task serves several requests.
	ReasonSeveralOnTask
	// ReasonSeveralInProcess: the process serves several requests and no
	// rule tells which the call is for.
	ReasonSeveralInProcess
	reasonCount
)

// ReasonNames name the reasons in self-telemetry.
var ReasonNames = [reasonCount]string{"ambiguous_forward", "several_on_task", "several_in_process"}

// Outcomes count the calls made while serving, by how their parent was
// picked or why none was.
type Outcomes struct {
	Linked   [ruleCount]int64
	Unlinked [reasonCount]int64
}

func (o *Outcomes) count(r Rule) { o.Linked[r]++ }

// TakeOutcomes returns the counts since the last call, and zeroes them. A
// call is counted linked when its parent is found, and unlinked when it is
// resolved without one (LateParent may find one until then).
func (l *Linker) TakeOutcomes() Outcomes {
	o := l.outcomes
	l.outcomes = Outcomes{}
	return o
}

// maxFlowFacts bounds the connections of which Linker keeps an opener or
// a context: their close events forget them, and a lost close must not
// let them grow.
const maxFlowFacts = 1 << 16

// SetRuntime says what process pid runs on; until it is said, the
// process's runtime is Unread.
func (l *Linker) SetRuntime(pid uint32, r Runtime) {
	if r == Unread {
		delete(l.runtimes, pid)
		return
	}
	l.runtimes[pid] = r
}

// SetFlowContext gives the connection flow, served by a Node.js process,
// the async context its requests' handlers run in (the connection's
// parser's), from where the receiver saw it made.
func (l *Linker) SetFlowContext(flow Flow, ctx uint64) {
	if len(l.contexts) >= maxFlowFacts {
		clear(l.contexts)
	}
	l.contexts[flow] = ctx
}

// Connected tells that process pid opened the connection flow (its
// client side) on th: a Node.js connection opened while a task served a
// request carries that request's call first.
func (l *Linker) Connected(pid uint32, th Thread, flow Flow) {
	delete(l.opened, flow)
	if l.runtimes[pid] != AsyncContexts || th.Task == 0 {
		return
	}
	sv := l.inflight[pid]
	if sv == nil {
		return
	}
	if i, n := sv.byTask(l, th, AsyncContexts); n == 1 {
		if len(l.opened) >= maxFlowFacts {
			clear(l.opened)
		}
		l.opened[flow] = sv.list[i].span
	}
}

func (l *Linker) forgetOpened(flow Flow) {
	if len(l.opened) > 0 {
		delete(l.opened, flow)
	}
}

// serving is what a process serves.
type serving struct {
	list []inflight
	// multiplexed: a thread of the process served two requests at once,
	// so its threads do not tell its requests apart.
	multiplexed bool
	// overflowed: more requests were in flight than list holds, so no
	// rule may count on seeing them all.
	overflowed bool
}

func (l *Linker) served(pid uint32) *serving {
	sv := l.inflight[pid]
	if sv == nil {
		sv = &serving{}
		l.inflight[pid] = sv
	}
	return sv
}

// noteThread learns, from a request thread th begins, whether threads
// serve several requests at once.
func (sv *serving) noteThread(th Thread) {
	if sv.multiplexed {
		return
	}
	for i := range sv.list {
		if sv.list[i].th.Tid == th.Tid {
			sv.multiplexed = true
			return
		}
	}
}

// byTask finds the requests the task th runs for serves: it returns the
// index of the last one found and how many there are.
func (sv *serving) byTask(l *Linker, th Thread, rt Runtime) (idx, n int) {
	for i := range sv.list {
		if l.taskServes(&sv.list[i], th, rt) {
			idx, n = i, n+1
		}
	}
	return idx, n
}

// taskServes says whether the task th runs for serves request in.
func (l *Linker) taskServes(in *inflight, th Thread, rt Runtime) bool {
	switch rt {
	case Goroutines:
		return in.th.Task == th.Task
	case AsyncContexts:
		// The handler's own context, or a callback it queued: one queued
		// before the request was read is an earlier request's.
		ctx := l.contexts[in.span.flow]
		return ctx != 0 && (ctx == th.Task || ctx == th.Trigger && th.Task > in.th.Clock)
	}
	return false
}

// byThread finds the requests thread tid serves, as byTask.
func (sv *serving) byThread(tid uint32) (idx, n int) {
	for i := range sv.list {
		if sv.list[i].th.Tid == tid {
			idx, n = i, n+1
		}
	}
	return idx, n
}

// byLinkKeys finds the requests not forwarded yet with the link keys
// op and target; among several, those th's task or thread serves.
func (sv *serving) byLinkKeys(l *Linker, op, target string, th Thread, rt Runtime) (idx, n int) {
	if op == "" && target == "" {
		return 0, 0
	}
	for i := range sv.list {
		if in := &sv.list[i]; !in.forwarded && in.op == op && in.target == target {
			idx, n = i, n+1
		}
	}
	if n <= 1 {
		return idx, n
	}
	narrowed := 0
	for i := range sv.list {
		in := &sv.list[i]
		if in.forwarded || in.op != op || in.target != target {
			continue
		}
		if (rt == Threads && !sv.multiplexed && in.th.Tid == th.Tid) ||
			(th.Task != 0 && l.taskServes(in, th, rt)) {
			idx, narrowed = i, narrowed+1
		}
	}
	if narrowed == 1 {
		return idx, 1
	}
	return idx, n
}

// servingParent picks, among the requests pid is serving, the one a call
// written on th belongs to, or none; see the package's doc for the rules.
func (l *Linker) servingParent(pid uint32, th Thread, flow Flow, op, target, traceparent string, call *Span) *Span {
	opened := l.opened[flow]
	l.forgetOpened(flow)
	sv := l.inflight[pid]
	if sv == nil || len(sv.list) == 0 {
		return nil // it serves nothing: the call is a root
	}
	rt := l.runtimes[pid]
	if (rt == Goroutines || rt == AsyncContexts) && th.Task != 0 {
		switch i, n := sv.byTask(l, th, rt); {
		case n == 1:
			return l.pick(sv, i, RuleTask)
		case n > 1:
			l.unlink(call, ReasonSeveralOnTask)
			return nil
		}
	}
	switch i, n := sv.byLinkKeys(l, op, target, th, rt); {
	case n == 1:
		sv.list[i].forwarded = true
		return l.pick(sv, i, RuleForwarded)
	case n > 1:
		l.unlink(call, ReasonAmbiguousForward)
		return nil
	}
	if traceparent != "" {
		if _, ok := tracecontext.Parse(traceparent); ok {
			return nil // the application propagates context itself
		}
	}
	if rt == Threads && !sv.multiplexed {
		if i, n := sv.byThread(th.Tid); n == 1 {
			return l.pick(sv, i, RuleThread)
		}
	}
	if opened != nil {
		for i := range sv.list {
			if sv.list[i].span == opened {
				return l.pick(sv, i, RuleOpened)
			}
		}
	}
	if len(sv.list) == 1 && !sv.overflowed {
		return l.pick(sv, 0, RuleOnlyRequest)
	}
	l.unlink(call, ReasonSeveralInProcess)
	return nil
}

// unlink marks call as left without a parent, for reason: it is counted
// so when it is resolved.
func (l *Linker) unlink(call *Span, r Reason) {
	call.unlinked = int8(r) + 1
}

// LateParent gives call, a client span of process pid that ClientStarted
// left without a parent, the request its task serves, now that the task
// is known: grpc-go writes a call's frames from the transport's writer
// goroutine, and which goroutine a stream is for comes in an event of its
// own. It reports whether a parent was found; the call's outcome is
// counted again.
func (l *Linker) LateParent(pid uint32, call *Span, th Thread) bool {
	if call.resolved || call.server || call.parent != nil || call.unlinked == 0 || th.Task == 0 {
		return false
	}
	rt := l.runtimes[pid]
	sv := l.inflight[pid]
	if sv == nil || (rt != Goroutines && rt != AsyncContexts) {
		return false
	}
	i, n := sv.byTask(l, th, rt)
	if n != 1 {
		return false
	}
	call.unlinked = 0
	call.parent = l.pick(sv, i, RuleTask)
	return true
}

func (l *Linker) pick(sv *serving, i int, r Rule) *Span {
	l.outcomes.count(r)
	return sv.list[i].span
}
