package correlate

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

// served starts a request of pid on th, on a connection of its own
// (port n), with target /in/n.
func served(l *Linker, pid uint32, th Thread, n int) *Span {
	return l.ServerStarted(pid, th, flow(fmt.Sprintf("127.0.0.1:%d", 40000+n), "127.0.0.1:80"), "GET", fmt.Sprintf("/in/%d", n), "", nil)
}

// call makes a call of pid on th, with target /out/n.
func call(l *Linker, pid uint32, th Thread, n int) *Span {
	return l.ClientStarted(pid, th, flow(fmt.Sprintf("127.0.0.1:%d", 50000+n), "127.0.0.1:81"), "GET", fmt.Sprintf("/out/%d", n), "", nil)
}

func parentOf(l *Linker, s *Span) *Span {
	p := s.parent
	l.Resolve(s)
	return p
}

func wantOutcomes(t *testing.T, l *Linker, linked map[Rule]int64, unlinked map[Reason]int64) {
	t.Helper()
	var want Outcomes
	for r, n := range linked {
		want.Linked[r] = n
	}
	for r, n := range unlinked {
		want.Unlinked[r] = n
	}
	assert.Equal(t, want, l.TakeOutcomes())
	assert.Equal(t, Outcomes{}, l.TakeOutcomes(), "taken outcomes are zeroed")
}

// An event loop serves every request on one thread: the thread tells
// nothing, and with two requests in flight a call has no parent, rather
// than the newest request's.
func TestEventLoopCallsAreLeftUnlinked(t *testing.T) {
	l := New()
	loop := Thread{Tid: 7}
	a := served(l, 1, loop, 1)
	b := served(l, 1, loop, 2)
	c := call(l, 1, loop, 1)
	assert.Nil(t, parentOf(l, c), "which of a and b is not known")
	assert.True(t, c.ParentID.IsEmpty())
	l.ServerDone(1, b)
	c2 := call(l, 1, loop, 2)
	assert.Same(t, a, parentOf(l, c2), "the only request in flight")
	wantOutcomes(t, l, map[Rule]int64{RuleOnlyRequest: 1}, map[Reason]int64{ReasonSeveralInProcess: 1})
}

// Threads that each serve one request at a time tell their calls apart;
// once one thread served two at once, none is trusted in that process.
func TestThreadRule(t *testing.T) {
	l := New()
	l.SetRuntime(1, Threads)
	a := served(l, 1, Thread{Tid: 10}, 1)
	b := served(l, 1, Thread{Tid: 11}, 2)
	assert.Same(t, b, parentOf(l, call(l, 1, Thread{Tid: 11}, 2)))
	assert.Same(t, a, parentOf(l, call(l, 1, Thread{Tid: 10}, 1)))
	assert.Nil(t, parentOf(l, call(l, 1, Thread{Tid: 12}, 3)), "a thread serving nothing, two requests in flight")

	served(l, 1, Thread{Tid: 10}, 3) // thread 10 now serves two: it multiplexes
	assert.Nil(t, parentOf(l, call(l, 1, Thread{Tid: 11}, 4)), "threads no longer tell requests apart")
	wantOutcomes(t, l, map[Rule]int64{RuleThread: 2}, map[Reason]int64{ReasonSeveralInProcess: 2})
}

// Go: a goroutine serves a request; the thread a call is written on
// tells nothing, and a goroutine serving no request gets none.
func TestGoroutineRule(t *testing.T) {
	l := New()
	l.SetRuntime(2, Goroutines)
	a := served(l, 2, Thread{Tid: 20, Task: 100}, 1)
	b := served(l, 2, Thread{Tid: 21, Task: 101}, 2)
	// Written on the thread that read a, for b's goroutine.
	assert.Same(t, b, parentOf(l, call(l, 2, Thread{Tid: 20, Task: 101}, 1)))
	assert.Same(t, a, parentOf(l, call(l, 2, Thread{Tid: 21, Task: 100}, 2)))
	assert.Nil(t, parentOf(l, call(l, 2, Thread{Tid: 20, Task: 555}, 3)), "a goroutine that serves nothing")
	assert.Nil(t, parentOf(l, call(l, 2, Thread{Tid: 20}, 4)), "no goroutine known, and the thread is no guide in Go")
	served(l, 2, Thread{Tid: 22, Task: 100}, 3) // pipelined on a's goroutine
	assert.Nil(t, parentOf(l, call(l, 2, Thread{Tid: 22, Task: 100}, 5)), "two requests on one goroutine")
	l.ServerDone(2, b)
	wantOutcomes(t, l, map[Rule]int64{RuleTask: 2}, map[Reason]int64{ReasonSeveralInProcess: 2, ReasonSeveralOnTask: 1})

	// With one request left, a goroutine the handler started gets it.
	l.ProcessExited(2)
	l.SetRuntime(2, Goroutines)
	only := served(l, 2, Thread{Tid: 20, Task: 100}, 1)
	assert.Same(t, only, parentOf(l, call(l, 2, Thread{Tid: 23, Task: 777}, 1)))
}

// A proxy forwards what it read: the one request with the call's link
// keys. Two with the same keys are told apart by thread or task, or not
// at all.
func TestForwardingNeverGuesses(t *testing.T) {
	l := New()
	in := func(tid uint32, port int) *Span {
		return l.ServerStarted(3, Thread{Tid: tid}, flow(fmt.Sprintf("127.0.0.1:%d", port), "127.0.0.1:80"), "GET", "/same", "", nil)
	}
	out := func(tid uint32) *Span {
		return l.ClientStarted(3, Thread{Tid: tid}, flow("127.0.0.1:9", "127.0.0.1:81"), "GET", "/same", "", nil)
	}
	a := in(30, 1)
	b := in(30, 2) // one event loop thread: multiplexed
	assert.Nil(t, parentOf(l, out(30)), "two requests forward the same line")
	l.ServerDone(3, a)
	assert.Same(t, b, parentOf(l, out(30)))
	wantOutcomes(t, l, map[Rule]int64{RuleForwarded: 1}, map[Reason]int64{ReasonAmbiguousForward: 1})

	// Threads that serve one request each narrow the candidates down.
	l2 := New()
	l2.SetRuntime(4, Threads)
	in2 := func(tid uint32, port int) *Span {
		return l2.ServerStarted(4, Thread{Tid: tid}, flow(fmt.Sprintf("127.0.0.1:%d", port), "127.0.0.1:80"), "GET", "/same", "", nil)
	}
	x := in2(40, 1)
	y := in2(41, 2)
	c := l2.ClientStarted(4, Thread{Tid: 41}, flow("127.0.0.1:9", "127.0.0.1:81"), "GET", "/same", "", nil)
	assert.Same(t, y, parentOf(l2, c))
	c = l2.ClientStarted(4, Thread{Tid: 40}, flow("127.0.0.1:9", "127.0.0.1:81"), "GET", "/same", "", nil)
	assert.Same(t, x, parentOf(l2, c), "the only one not forwarded yet")
}

// In Go the goroutine goes before the link keys: a call whose target
// happens to be another request's is still its own request's.
func TestGoroutineBeforeLinkKeys(t *testing.T) {
	l := New()
	l.SetRuntime(5, Goroutines)
	a := l.ServerStarted(5, Thread{Tid: 1, Task: 11}, flow("127.0.0.1:1", "127.0.0.1:80"), "GET", "/x", "", nil)
	b := l.ServerStarted(5, Thread{Tid: 2, Task: 12}, flow("127.0.0.1:2", "127.0.0.1:80"), "GET", "/y", "", nil)
	c := l.ClientStarted(5, Thread{Tid: 1, Task: 12}, flow("127.0.0.1:3", "127.0.0.1:81"), "GET", "/x", "", nil)
	assert.Same(t, b, parentOf(l, c))
	_ = a
}

// Node.js: a connection's requests run their handlers in its parser's
// async context; a callback a handler queued runs with it as trigger and
// a newer id than the request.
func TestAsyncContextRule(t *testing.T) {
	l := New()
	l.SetRuntime(6, AsyncContexts)
	fa, fb := flow("127.0.0.1:1", "127.0.0.1:80"), flow("127.0.0.1:2", "127.0.0.1:80")
	l.SetFlowContext(fa, 19)
	l.SetFlowContext(fb, 29)
	loop := uint32(6)
	a := l.ServerStarted(6, Thread{Tid: loop, Clock: 100}, fa, "GET", "/a", "", nil)
	b := l.ServerStarted(6, Thread{Tid: loop, Clock: 110}, fb, "GET", "/b", "", nil)
	out := func(n int) Flow { return flow(fmt.Sprintf("127.0.0.1:%d", 5000+n), "127.0.0.1:81") }
	cb := l.ClientStarted(6, Thread{Tid: loop, Task: 120, Trigger: 29}, out(1), "GET", "/x", "", nil)
	assert.Same(t, b, parentOf(l, cb), "a tick b's handler queued")
	ca := l.ClientStarted(6, Thread{Tid: loop, Task: 19, Trigger: 18}, out(2), "GET", "/y", "", nil)
	assert.Same(t, a, parentOf(l, ca), "in a's handler itself")
	stale := l.ClientStarted(6, Thread{Tid: loop, Task: 105, Trigger: 29}, out(3), "GET", "/z", "", nil)
	assert.Nil(t, parentOf(l, stale), "queued on b's connection before b was read: an earlier request's")

	// A connection opened in a's handler carries a's call first, made in
	// a context of its own (the connect callback's).
	opened := out(4)
	l.Connected(6, Thread{Tid: loop, Task: 19, Trigger: 18}, opened)
	first := l.ClientStarted(6, Thread{Tid: loop, Task: 140, Trigger: 135}, opened, "GET", "/w", "", nil)
	assert.Same(t, a, parentOf(l, first))
	second := l.ClientStarted(6, Thread{Tid: loop, Task: 141, Trigger: 135}, opened, "GET", "/w", "", nil)
	assert.Nil(t, parentOf(l, second), "only the first call is the opener's")
	wantOutcomes(t, l, map[Rule]int64{RuleTask: 2, RuleOpened: 1}, map[Reason]int64{ReasonSeveralInProcess: 2})

	l.FlowClosed(fa)
	assert.Empty(t, l.contexts[fa])
}

// Until a process's runtime is read, threads tell nothing: it may be Go.
func TestUnreadRuntimeTrustsNoThread(t *testing.T) {
	l := New()
	served(l, 11, Thread{Tid: 1}, 1)
	served(l, 11, Thread{Tid: 2}, 2)
	assert.Nil(t, parentOf(l, call(l, 11, Thread{Tid: 1}, 1)))
	l.SetRuntime(11, Threads)
	assert.NotNil(t, parentOf(l, call(l, 11, Thread{Tid: 1}, 2)))
	l.SetRuntime(11, Unread)
	assert.Nil(t, parentOf(l, call(l, 11, Thread{Tid: 1}, 3)))
}

// A gRPC call is written by the transport's goroutine: the goroutine it is
// for comes later, and links it then.
func TestLateParent(t *testing.T) {
	l := New()
	l.SetRuntime(12, Goroutines)
	a := served(l, 12, Thread{Tid: 1, Task: 100}, 1)
	served(l, 12, Thread{Tid: 2, Task: 101}, 2)
	c := call(l, 12, Thread{Tid: 3, Task: 900}, 1) // the writer goroutine's
	require.Nil(t, c.parent)
	assert.False(t, l.LateParent(12, c, Thread{Task: 555}), "a goroutine serving nothing")
	assert.True(t, l.LateParent(12, c, Thread{Task: 100}))
	assert.False(t, l.LateParent(12, c, Thread{Task: 100}), "linked once")
	assert.Same(t, a, parentOf(l, c))
	wantOutcomes(t, l, map[Rule]int64{RuleTask: 1}, nil)

	never := call(l, 12, Thread{Tid: 3, Task: 901}, 2)
	wantOutcomes(t, l, nil, nil) // counted when resolved
	l.Resolve(never)
	wantOutcomes(t, l, nil, map[Reason]int64{ReasonSeveralInProcess: 1})

	linked := call(l, 12, Thread{Tid: 1, Task: 100}, 3)
	assert.False(t, l.LateParent(12, linked, Thread{Task: 101}), "a call with a parent keeps it")
}

// A request its parser abandoned is no candidate any more.
func TestAbandonedIsNoCandidate(t *testing.T) {
	l := New()
	lost := served(l, 8, Thread{Tid: 1}, 1)
	kept := served(l, 8, Thread{Tid: 1}, 2)
	l.ServerDone(8, lost)
	assert.Same(t, kept, parentOf(l, call(l, 8, Thread{Tid: 2}, 1)))
	_, inflight := l.Size()
	assert.Equal(t, 1, inflight)
}

// Beyond maxInflight requests the only-request rule no longer holds.
func TestOverflowStopsTheOnlyRequestRule(t *testing.T) {
	l := New()
	var spans []*Span
	for i := 0; i <= maxInflight; i++ {
		spans = append(spans, served(l, 9, Thread{Tid: uint32(i)}, i))
	}
	for _, s := range spans[1:maxInflight] {
		l.ServerDone(9, s)
	}
	_, n := l.Size()
	require.Equal(t, 1, n)
	assert.Nil(t, parentOf(l, call(l, 9, Thread{Tid: 99999}, 1)), "a request beyond the bound may be in flight")
	l.ServerDone(9, spans[0])
	assert.Nil(t, parentOf(l, call(l, 9, Thread{Tid: 99999}, 2)), "nothing in flight: a root")
}

// With propagation, the kernel's choice is taken, and counted when it
// named a parent.
func TestPropagatedIsCounted(t *testing.T) {
	l := New()
	l.SetRuntime(10, Threads)
	served(l, 10, Thread{Tid: 1}, 1)
	served(l, 10, Thread{Tid: 1}, 2)
	f := flow("127.0.0.1:7", "127.0.0.1:81")
	sent := &tracecontext.Identity{TraceID: pcommon.TraceID{1}, SpanID: pcommon.SpanID{2}, ParentID: pcommon.SpanID{3}, Flags: 1}
	c := l.ClientStarted(10, Thread{Tid: 1}, f, "GET", "/x", "", sent)
	assert.Equal(t, *sent, c.Identity)
	root := &tracecontext.Identity{TraceID: pcommon.TraceID{4}, SpanID: pcommon.SpanID{5}, Flags: 1}
	l.ClientStarted(10, Thread{Tid: 1}, f, "GET", "/y", "", root)
	wantOutcomes(t, l, map[Rule]int64{RulePropagated: 1}, nil)
}

func TestRuleAndReasonNames(t *testing.T) {
	for _, n := range RuleNames {
		assert.NotEmpty(t, n)
	}
	for _, n := range ReasonNames {
		assert.NotEmpty(t, n)
	}
}
