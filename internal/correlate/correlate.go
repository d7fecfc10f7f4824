// Package correlate gives spans their trace identity and links them into
// one trace across the hops of a node, without touching a packet:
//
//   - A server span is the child of the client span at the other end of the
//     same TCP connection, when both processes are watched on this node
//     (the client wrote the request on flow A->B, the server read it on B<-A).
//   - A client span is the child of the server span its process is serving
//     when that can be told for sure (parents.go): the one in-flight
//     request with the same link keys (what a proxy forwards: HTTP's method
//     and target); else the request the call's task serves, where the
//     runtime's tasks are known (Go's goroutines, Node.js's async
//     contexts); else, in a process that serves each request on a thread
//     of its own, the one request of the calling thread; else the only
//     request in flight. When none of these tells, the call is left
//     without a parent and counted (Outcomes): a wrong parent is worse
//     than none.
//   - A request carrying a W3C traceparent joins that trace when nothing
//     on this node is a better parent.
//   - With context propagation, the kernel chose the ids of the requests
//     it saw begin: a server span takes its span id, and its trace
//     when nothing on this node is a parent; a client span whose ids went
//     out in a traceparent header takes them all, parent included, since
//     the next hop already continues them.
//
// Identities are given when a request starts, so children can point at
// their parents; trace ids are settled lazily, when a span is built,
// because the kernel may report a server's read before the client's write
// (the writer can be preempted between its copy and its syscall exit).
package correlate // import "github.com/otelcol-ebpf/ebpfreceiver/internal/correlate"

import (
	"net/netip"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// Span is the identity of one span, while it is being settled.
type Span struct {
	tracecontext.Identity

	// The flags sit next to Identity's odd size: 160 bytes, not 176, are
	// allocated for every request.
	resolved    bool
	server      bool
	settled     bool // a server span no client of this node can claim any more (Settle)
	unlinked    int8 // 1 + the Reason the call was counted unlinked for, or 0
	parent      *Span
	flow        Flow // client->server, for a server span still looking for its client
	op, target  string
	traceparent string
	kernelTrace pcommon.TraceID // the trace the kernel chose, used when nothing else links s
	kernelFlags byte
}

// Flow is one direction of a TCP connection: from the client to the
// server, in a network namespace (two pods may use the same loopback
// addresses and ports).
type Flow struct {
	Netns          uint32
	Client, Server netip.AddrPort
}

// inflight is a request a watched process is serving.
type inflight struct {
	span       *Span
	op, target string
	th         Thread
	forwarded  bool // a client request matched it by content already
}

const (
	maxWaitingPerFlow = 16   // client requests waiting for their server on one connection
	maxInflight       = 4096 // served requests remembered per process
	// keepInflight is the room of a process's list kept once it empties:
	// most processes serve a few requests at a time, and keeping the list
	// saves an allocation per request; a burst's larger list is let go.
	keepInflight = 64
)

// Linker holds what links spans across connections and processes. It is
// used from one goroutine.
//
// The lists of both maps are kept when they empty, so that the next request
// of a connection or a process appends without allocating; the entries go
// when their connection closes or their process exits.
type Linker struct {
	waiting  map[Flow][]*Span    // client spans whose server has not read them yet
	inflight map[uint32]*serving // per pid
	// opened is, per connection a process opened, the request its task
	// was serving when it did (parents.go); the connection's first call
	// is that request's.
	opened map[Flow]*Span
	// contexts are the async contexts of the connections Node.js
	// processes serve (SetFlowContext).
	contexts map[Flow]uint64
	runtimes map[uint32]Runtime // per pid, when not Threads
	outcomes Outcomes
	sampler  sampling.Sampler // the flags of the traces it starts (sampling.go)
}

// New returns an empty Linker.
func New() *Linker {
	return &Linker{waiting: map[Flow][]*Span{}, inflight: map[uint32]*serving{}, opened: map[Flow]*Span{},
		contexts: map[Flow]uint64{}, runtimes: map[uint32]Runtime{}}
}

// ServerStarted gives an identity to a request process pid read (on thread
// th) on flow, and makes it a candidate parent of the process's calls.
// chosen is the context the kernel chose for it (context propagation), or
// nil: its span id is taken, and its trace when nothing links the span.
func (l *Linker) ServerStarted(pid uint32, th Thread, flow Flow, op, target, traceparent string, chosen *tracecontext.Identity) *Span {
	s := &Span{Identity: tracecontext.Identity{SpanID: tracecontext.NewSpanID()}, server: true, flow: flow,
		op: op, target: target, traceparent: traceparent}
	if chosen != nil {
		s.SpanID, s.kernelTrace, s.kernelFlags = chosen.SpanID, chosen.TraceID, chosen.Flags
	}
	s.parent = l.takeWaiting(s)
	sv := l.served(pid)
	if len(sv.list) < maxInflight {
		sv.noteThread(th)
		sv.list = append(sv.list, inflight{span: s, op: op, target: target, th: th})
	} else {
		sv.overflowed = true // a request the rules cannot see: no rule may count on seeing them all
	}
	return s
}

// ClientStarted gives an identity to a request process pid wrote (on thread
// th) on flow, finds its parent among the requests the process serves, and
// leaves it for the server at the other end, if that one is watched. sent
// is the context the request carried out in a traceparent the kernel put
// in, if it did.
func (l *Linker) ClientStarted(pid uint32, th Thread, flow Flow, op, target, traceparent string, sent *tracecontext.Identity) *Span {
	s := &Span{Identity: tracecontext.Identity{SpanID: tracecontext.NewSpanID()}, op: op, target: target, traceparent: traceparent}
	if sent != nil {
		// The next hop continues these ids, parent included: they are
		// settled. The kernel chose the parent by the same rules.
		s.Identity, s.resolved = *sent, true
		if !sent.ParentID.IsEmpty() {
			l.outcomes.count(RulePropagated)
		}
		l.forgetOpened(flow)
	} else {
		s.parent = l.servingParent(pid, th, flow, op, target, traceparent, s)
	}
	w := l.waiting[flow]
	if len(w) >= maxWaitingPerFlow {
		// The oldest was never read by a watched server. Shifting, not
		// reslicing, keeps the list's room for the appends to come.
		w = w[:copy(w, w[1:])]
	}
	l.waiting[flow] = append(w, s)
	return s
}

// takeWaiting finds the client request a server read on its connection:
// the oldest waiting one with the same link keys. Older ones are
// dropped: their servers finished without them. Matching by content, not
// by order, matters on loopback, where the server often reads a request
// before the kernel reports the client's write of it.
func (l *Linker) takeWaiting(server *Span) *Span {
	w := l.waiting[server.flow]
	i := -1
	for j, c := range w {
		if c.op == server.op && c.target == server.target {
			i = j
			break
		}
	}
	if i < 0 {
		return nil
	}
	s := w[i]
	n := copy(w, w[i+1:])
	clear(w[n:]) // let the taken and the dropped spans go
	l.waiting[server.flow] = w[:n]
	return s
}

// ServerDone removes a served request from the candidate parents: it was
// answered, or it will never be (its parser abandoned it).
func (l *Linker) ServerDone(pid uint32, s *Span) {
	sv, ok := l.inflight[pid]
	if !ok {
		return
	}
	list := sv.list
	for i := range list {
		if list[i].span == s {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = inflight{}
			list = list[:len(list)-1]
			break
		}
	}
	sv.list = list
	if len(list) == 0 {
		sv.overflowed = false
		if cap(list) > keepInflight {
			sv.list = nil // a burst's room is let go
		}
	}
}

// FlowClosed forgets the client requests waiting on a closed connection,
// and what was known of it.
func (l *Linker) FlowClosed(flow Flow) {
	delete(l.waiting, flow)
	delete(l.opened, flow)
	delete(l.contexts, flow)
}

// ProcessExited forgets what process pid was serving, and its runtime.
func (l *Linker) ProcessExited(pid uint32) {
	delete(l.inflight, pid)
	delete(l.runtimes, pid)
}

// Compact drops the empty lists kept for reuse. The loop calls it now and
// then: a process whose exit event was lost would keep its list forever.
func (l *Linker) Compact() {
	for flow, w := range l.waiting {
		if len(w) == 0 {
			delete(l.waiting, flow)
		}
	}
	for pid, sv := range l.inflight {
		if len(sv.list) == 0 {
			delete(l.inflight, pid)
		}
	}
}

// Size reports the entries held, for leak checks and self-telemetry.
func (l *Linker) Size() (waiting, inflight int) {
	for _, w := range l.waiting {
		waiting += len(w)
	}
	for _, sv := range l.inflight {
		inflight += len(sv.list)
	}
	return waiting, inflight
}

// Unlinked reports whether s is a server span still without the client
// span it may wait for; it tries to find it first.
func (l *Linker) Unlinked(s *Span) bool {
	if s.resolved || !s.server || s.parent != nil {
		return false
	}
	s.parent = l.takeWaiting(s)
	return s.parent == nil
}

// Resolve settles the trace id and parent of s, and of its ancestors.
func (l *Linker) Resolve(s *Span) {
	if s.resolved {
		return
	}
	s.resolved = true // set first: a cycle (impossible by construction) cannot recurse
	if s.unlinked != 0 {
		l.outcomes.Unlinked[s.unlinked-1]++
	}
	if s.server && s.parent == nil && !s.settled {
		s.parent = l.takeWaiting(s) // the client's write may have been reported late
	}
	if s.parent != nil {
		l.Resolve(s.parent)
		s.TraceID, s.ParentID, s.Flags = s.parent.TraceID, s.parent.SpanID, s.parent.Flags
		s.parent = nil // let the ancestors go
		return
	}
	s.TraceID, s.ParentID, s.Flags = l.rootTrace(s)
}
