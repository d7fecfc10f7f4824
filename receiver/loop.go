package receiver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/otelcol-ebpf/ebpfreceiver/bpf"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/conntrack"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/correlate"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/sampling"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/spans"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

const (
	// flushAfter bounds how long a span waits in a batch.
	flushAfter = 200 * time.Millisecond
	// batchSpans flushes a batch early when it has this many spans.
	batchSpans = 2048
	// queuedBatches bounds the batches waiting for a slow consumer; beyond
	// it batches are dropped and counted, so the kernel side never waits.
	queuedBatches = 8
	// idleConn is how long a connection may stay silent before its state is
	// dropped (its close event may have been lost).
	idleConn = 5 * time.Minute
	// pollEvery is how often the ring buffer is read when the kernel did not
	// wake the reader: it wakes it only once enough bytes wait.
	pollEvery = 10 * time.Millisecond
	// linkGrace is how long a finished server span from a client on this
	// host may wait for the client's write of its request: on loopback the
	// kernel often reports the server's read first.
	linkGrace = 50 * time.Millisecond
)

// eventLoop owns everything on the path from a kernel event to a span: it
// runs on one goroutine, so none of it is locked. Nothing of one event is
// kept for the next but in the connection it belongs to: each segment
// carries its own thread and kernel context to the parser, and each
// exchange carries them on to correlation.
type eventLoop struct {
	r       *Receiver
	conns   *conntrack.Table
	builder spans.Builder

	batch      ptrace.Traces
	batchProcs map[*process]ptrace.SpanSlice
	batchSpans int
	batchSince time.Time
	out        chan ptrace.Traces

	linker     *correlate.Linker
	unresolved []unresolved  // spans of the batch, to settle at flush
	parked     []parkedSpan  // finished server spans waiting for their client
	printer    *bufio.Writer // nil unless spans are printed as text

	counts    loopCounts
	published published
	connCount atomic.Int64 // conns.Len(), for the gauge read elsewhere

	ev  events.Event
	seg protocols.Segment  // the segment of the event being handled
	ext []protocols.Extent // its extents
	// warnedNotInjected: the log said once that a request could not carry
	// a traceparent.
	warnedNotInjected bool
	lastSweep         uint64
	lastTime          uint64 // of the latest data event
	lastIdle          time.Time
	// rescanned: when processes whose TLS showed no plaintext were last
	// examined again (tls.go).
	rescanned map[uint32]time.Time
	// encryptedPublished: TLS connections without plaintext published so
	// far (tls.go).
	encryptedPublished uint64
	// parents is what linking calls to requests needs (parents.go).
	parents loopParents
	// sampling holds the spans the sampler leaves out (sampling.go).
	sampling loopSampling
	// nodeAddrs are the addresses watched processes of this node use as
	// their own (pods' addresses among them): a peer at one of them may be
	// a watched client whose write is still to be read.
	nodeAddrs map[netip.Addr]struct{}
}

func newEventLoop(r *Receiver) *eventLoop {
	l := &eventLoop{
		r:         r,
		builder:   spans.Builder{Clock: clockOffset()},
		out:       make(chan ptrace.Traces, queuedBatches),
		linker:    correlate.New(),
		printer:   printerFor(r.opts),
		counts:    newLoopCounts(),
		published: newPublished(),
	}
	l.linker.SetSampler(r.opts.Sampler)
	l.sampling.on = r.opts.Sampler.Mode != sampling.ModeAlwaysOn
	l.conns = conntrack.New(r.opts.Registry, &r.opts.Protocols, l.prepare)
	l.conns.OnEncrypted, l.rescanned = l.encrypted, map[uint32]time.Time{}
	return l
}

func printerFor(opts Options) *bufio.Writer {
	if !opts.PrintSpans {
		return nil
	}
	return bufio.NewWriter(opts.PrintTo)
}

func (l *eventLoop) run() {
	defer close(l.out)
	defer l.publish(context.Background())
	defer l.flush()
	defer l.unpark(true)
	defer l.closeAll()
	l.r.reader.SetDeadline(time.Now().Add(pollEvery))
	for {
		raw, err := l.r.reader.Next()
		switch {
		case errors.Is(err, events.ErrTimeout):
			// Everything waiting was read: time to flush a ripe batch.
			l.idle()
			continue
		case errors.Is(err, events.ErrClosed):
			return
		case err != nil:
			l.r.logger().Error("reading kernel events failed; the receiver stops reading", zap.Error(err))
			return
		}
		l.counts.events++
		if err := events.Decode(raw, &l.ev); err != nil {
			l.r.logger().Debug("malformed kernel event skipped", zap.Error(err))
			continue
		}
		l.handle(&l.ev)
		if l.batchSpans >= batchSpans {
			l.flush()
		}
		// Under a load that never lets the ring buffer run dry, the reader
		// never times out: what waits for a pause is done now and then.
		if l.counts.events%1024 == 0 && time.Since(l.lastIdle) >= pollEvery {
			l.idle()
		}
	}
}

// idle does what waits for a pause in the events.
func (l *eventLoop) idle() {
	l.lastIdle = time.Now()
	l.drainEnded()
	l.drainRuntimes()
	l.unpark(false)
	l.settleUnsampled()
	if l.batchSpans > 0 && time.Since(l.batchSince) >= flushAfter {
		l.flush()
	}
	l.publish(context.Background())
	l.connCount.Store(int64(l.conns.Len()))
	l.r.reader.SetDeadline(time.Now().Add(pollEvery))
}

func (l *eventLoop) handle(ev *events.Event) {
	key := conntrack.Key{Pid: ev.Pid, Sock: ev.Sock, TLS: ev.TLS}
	switch ev.Kind {
	case events.Read, events.Write:
		l.data(key, ev)
	case events.Connect:
		l.conns.Open(key, ev.Netns, ev.Local, ev.Remote, protocols.RoleClient, ev.Time)
		l.connEvent(key, ev)
	case events.Accept:
		l.conns.Open(key, ev.Netns, ev.Local, ev.Remote, protocols.RoleServer, ev.Time)
		l.connEvent(key, ev)
	case events.NodeParser, events.NodeSocket, events.GoStream, events.GoHandler:
		l.taskEvent(ev)
	case events.Close:
		l.closeConn(key, ev.Time)
		l.closeConn(conntrack.Key{Pid: ev.Pid, Sock: ev.Sock, TLS: true}, ev.Time) // its plaintext, if any
	case events.Exit:
		if p := l.r.procs.get(ev.Pid); p != nil && p.startedBy(ev.Time) {
			l.processEnded(p, ev.Time)
		}
	case events.Select:
		if l.r.procs.get(ev.Pid) == nil {
			l.r.adopt(l.r.procs.describe(ev.Pid, commName(ev.Data)))
		}
	case events.Fork:
		l.r.adoptFork(ev.Pid, ev.FD, ev.Time)
	case events.Exec:
		// What the fork inherited ends; the new program is selected only
		// if the criteria select it, at discovery's next scan.
		if p := l.r.procs.get(ev.Pid); p != nil && p.startedBy(ev.Time) {
			l.processEnded(p, ev.Time)
		}
		l.r.procs.markExeced(int(ev.Pid))
	}
	if ev.Time-l.lastSweep > uint64(idleConn) {
		l.sweep(ev.Time)
	}
}

func (l *eventLoop) data(key conntrack.Key, ev *events.Event) {
	l.lastTime = ev.Time
	l.countChosen(ev)
	if ev.AfterLoss {
		l.conns.Lost(key, ev.Time)
	}
	dir := protocols.Inbound
	if ev.Kind == events.Write {
		dir = protocols.Outbound
	}
	l.seg = protocols.Segment{Data: ev.Data, Len: int(ev.Len), Tail: ev.Tail, Time: ev.Time, Tid: ev.Tid, Chosen: ev.Chosen,
		Extents: l.extents(ev)}
	l.parentsData(key, ev) // what starts now starts in this event (parents.go)
	l.conns.Segment(key, ev.Netns, ev.Local, ev.Remote, dir, &l.seg)
	l.parents.feeding = false
}

// extents are the runs the kernel copied past the head (HTTP/2 frames),
// in a slice kept for the next event.
func (l *eventLoop) extents(ev *events.Event) []protocols.Extent {
	if ev.FramesShort {
		l.counts.failures[failureKey{"http2", "frames_not_copied"}]++
	}
	l.ext = l.ext[:0]
	for rest := ev.Extents; ; {
		off, data, next, ok := events.NextExtent(rest)
		if !ok {
			break
		}
		l.ext = append(l.ext, protocols.Extent{Off: off, Data: data})
		rest = next
	}
	return l.ext
}

// prepare readies a new connection: its sink, and the service its routes
// are counted for.
func (l *eventLoop) prepare(c *conntrack.Conn) {
	if c.Sink == nil {
		c.Sink = &connSink{l: l, c: c}
	}
	if p := l.r.procs.get(c.Key.Pid); p != nil {
		c.Info.Service = p.ServiceName
	}
	l.noteNodeAddr(c.Info.Local.Addr())
}

// maxNodeAddrs bounds nodeAddrs; when full it starts over, and learns
// again from the connections that open.
const maxNodeAddrs = 4096

func (l *eventLoop) noteNodeAddr(a netip.Addr) {
	if !a.IsValid() || a.IsLoopback() {
		return
	}
	if _, ok := l.nodeAddrs[a]; ok {
		return
	}
	if l.nodeAddrs == nil || len(l.nodeAddrs) >= maxNodeAddrs {
		l.nodeAddrs = map[netip.Addr]struct{}{}
	}
	l.nodeAddrs[a] = struct{}{}
}

func (l *eventLoop) closeConn(key conntrack.Key, ts uint64) {
	c := l.conns.Close(key, ts)
	if c == nil {
		return
	}
	l.parentsConnClosed(key)
	// Client requests left waiting on this connection will not be read now.
	netns := flowNetns(c)
	l.linker.FlowClosed(correlate.Flow{Netns: netns, Client: c.Info.Local, Server: c.Info.Remote})
	l.linker.FlowClosed(correlate.Flow{Netns: netns, Client: c.Info.Remote, Server: c.Info.Local})
}

// closeAll ends every connection when the receiver stops: requests still
// waiting for a response are emitted without one, not forgotten.
func (l *eventLoop) closeAll() {
	l.conns.Each(func(c *conntrack.Conn) { l.closeConn(c.Key, l.lastTime) })
}

// sweep drops connections silent for longer than idleConn.
func (l *eventLoop) sweep(now uint64) {
	l.lastSweep = now
	l.conns.Each(func(c *conntrack.Conn) {
		if now-c.LastNs > uint64(idleConn) {
			l.closeConn(c.Key, now)
		}
	})
	l.linker.Compact()
}

// drainEnded ends the processes discovery found gone.
func (l *eventLoop) drainEnded() {
	for {
		select {
		case p := <-l.r.ended:
			l.processEnded(p, l.lastTime)
		default:
			return
		}
	}
}

// ended forgets process pid: its connections end now, and what links to
// its requests goes.
func (l *eventLoop) ended(pid uint32, ts uint64) {
	l.conns.Each(func(c *conntrack.Conn) {
		if c.Key.Pid == pid {
			l.closeConn(c.Key, ts)
		}
	})
	l.linker.ProcessExited(pid)
	l.runtimeEnded(pid)
}

// countChosen counts what became of the traceparent of a request a write
// began, with propagation on.
func (l *eventLoop) countChosen(ev *events.Event) {
	switch ev.Chosen.Kind {
	case tracecontext.Injected:
		l.counts.injected++
	case tracecontext.NotInjected:
		l.counts.notInjected[ev.Chosen.Reason]++
		l.warnNotInjected(ev.Pid, ev.Chosen.Reason)
	}
}

func (l *eventLoop) warnNotInjected(pid uint32, reason uint8) {
	if l.warnedNotInjected {
		return
	}
	l.warnedNotInjected = true
	l.r.logger().Warn("a request could not carry a traceparent header; its span is linked on this node only. "+
		"Only the first request of a connection opened after the receiver started can carry one "+
		"(receiver_ebpf_propagation_requests{outcome=\"not_injected\"} counts the others by reason; this is logged once)",
		zap.Uint32("pid", pid), zap.String("reason", bpf.NotInjectedReasons[reason]))
}

// connSink receives the exchanges of one connection.
type connSink struct {
	l *eventLoop
	c *conntrack.Conn
}

func (s *connSink) Started(x *protocols.Exchange) { s.l.started(s.c, x) }
func (s *connSink) Done(r protocols.Record)       { s.l.done(s.c, r) }
func (s *connSink) Failed(reason string) {
	s.l.counts.parseFailed(s.c.Protocol(), reason)
}

// started gives a request of connection c its identity, linked to the
// other spans of the node.
func (l *eventLoop) started(c *conntrack.Conn, x *protocols.Exchange) {
	pid := c.Key.Pid
	if x.Role == protocols.RoleServer {
		flow := correlate.Flow{Netns: flowNetns(c), Client: c.Info.Remote, Server: c.Info.Local}
		if kernelCaller(x) {
			l.counts.unreadTraceparent++
		}
		s := l.linker.ServerStarted(pid, l.thread(pid, x), flow, x.LinkOp, x.LinkTarget, x.Traceparent, chosen(x, tracecontext.Served))
		x.Tag = s
		l.handlerOfStarted(c, x, s) // a Go HTTP/2 handler told before (parents_handlers.go)
		return
	}
	if l.r.opts.Propagate && x.Traceparent != "" {
		l.counts.kept++
	}
	flow := correlate.Flow{Netns: flowNetns(c), Client: c.Info.Local, Server: c.Info.Remote}
	x.Tag = l.linker.ClientStarted(pid, l.thread(pid, x), flow, x.LinkOp, x.LinkTarget, x.Traceparent, chosen(x, tracecontext.Injected))
}

// kernelCaller makes the caller of a request the kernel gave a context
// (context_propagation) the one the kernel chose: the kernel carries that
// context on to the calls made while serving the request, so its server
// span must be in the same trace. The kernel takes a traceparent header it
// can read, else the context of a TCP option (as a header: x.Traceparent).
// A header only user space reads (a version after 00, whitespace around
// it) is dropped and reported: the span stays in the trace the kernel
// started for it, with its calls, rather than join the header's without
// them.
func kernelCaller(x *protocols.Exchange) (dropped bool) {
	c := x.Chosen
	if c.Kind != tracecontext.Served {
		return false
	}
	if !c.ParentID.IsEmpty() {
		x.Traceparent = tracecontext.Format(c.TraceID, c.ParentID, c.Flags)
		return false
	}
	_, dropped = tracecontext.Parse(x.Traceparent)
	x.Traceparent = ""
	return dropped
}

// flowNetns is the network namespace that tells c's flow from another
// with the same addresses: a loopback connection's (two pods may each talk
// to 127.0.0.1:15001), none for other addresses, which tell one
// connection from another on the node by themselves, so that the two
// ends of a connection between namespaces (pods) meet.
func flowNetns(c *conntrack.Conn) uint32 {
	if c.Info.Local.Addr().IsLoopback() {
		return c.Netns
	}
	return 0
}

// chosen is the identity the kernel chose for x, when it is of kind.
func chosen(x *protocols.Exchange, kind tracecontext.ChosenKind) *tracecontext.Identity {
	if x.Chosen.Kind != kind {
		return nil
	}
	return &x.Chosen.Identity
}

// done turns one exchange of connection c into a span and a metric
// observation.
func (l *eventLoop) done(c *conntrack.Conn, r protocols.Record) {
	x := r.Common()
	if x.Tag == nil { // a parser that found the request only with its end
		l.started(c, x)
	}
	id := x.Tag.(*correlate.Span)
	if x.Role == protocols.RoleServer {
		defer l.linker.ServerDone(c.Key.Pid, id)
	} else {
		l.lateParent(c, r, id)
	}
	if c.Discarding {
		// A request whose first bytes went with the loss was counted by
		// the kernel, with the event it lost.
		if !x.Clipped {
			l.r.requestsLostAfterLoss.Add(1)
		}
		return
	}
	l.counts.requests++
	p := l.r.procs.getOrDescribe(c.Key.Pid)
	if l.r.traces != nil {
		l.span(c, p, r, id)
	}
	if l.r.metrics != nil {
		if k, obs, ok := r.Metric(&c.Info); ok {
			l.r.agg.Record(p, k, obs, 0) // now, when a series starts
		}
	}
}

// span builds the span of r. A server span whose client may be a watched
// process of this host waits for it (parked) before it goes into a batch.
func (l *eventLoop) span(c *conntrack.Conn, p *process, r protocols.Record, id *correlate.Span) {
	x := r.Common()
	server := x.Role == protocols.RoleServer
	if server && !c.PeerUnwatched && l.fromThisNode(&c.Info) && l.linker.Unlinked(id) {
		span := ptrace.NewSpan()
		l.builder.Fill(span, r, &c.Info, &id.Identity)
		l.parked = append(l.parked, parkedSpan{p: p, c: c, uses: c.Uses, span: span, id: id, since: time.Now()})
		return
	}
	if server {
		l.linker.Settle(id) // no client of this node will claim it now
	}
	if l.unsampled(id) {
		return
	}
	l.builder.Fill(l.newSpan(p, id), r, &c.Info, &id.Identity)
}

// newSpan appends an empty span of process p to the batch. Its trace id
// and parent are settled when the batch is flushed: by then the events
// that link it (a client's write the kernel reported late) have most
// likely been read.
func (l *eventLoop) newSpan(p *process, id *correlate.Span) ptrace.Span {
	if l.batchSpans == 0 {
		l.batch = ptrace.NewTraces()
		if l.batchProcs == nil {
			l.batchProcs = map[*process]ptrace.SpanSlice{}
		}
		l.batchSince = time.Now()
	}
	ss, ok := l.batchProcs[p]
	if !ok {
		rs := l.batch.ResourceSpans().AppendEmpty()
		p.Fill(rs.Resource().Attributes())
		scope := rs.ScopeSpans().AppendEmpty()
		scope.Scope().SetName(l.r.scope)
		ss = scope.Spans()
		l.batchProcs[p] = ss
	}
	span := ss.AppendEmpty()
	l.batchSpans++
	l.unresolved = append(l.unresolved, unresolved{span: span, id: id, service: p.ServiceName})
	return span
}

// parkedSpan is a finished server span waiting for its client's write.
type parkedSpan struct {
	p     *process
	c     *conntrack.Conn
	uses  uint64 // c.Uses when parked
	span  ptrace.Span
	id    *correlate.Span
	since time.Time
}

// fromThisNode: the peer may be a watched process of this node: on
// loopback, at the connection's own address, or at an address a watched
// process of the node uses (a pod talking to another pod, or to the host,
// through a veth).
func (l *eventLoop) fromThisNode(conn *protocols.ConnInfo) bool {
	peer := conn.Remote.Addr()
	if peer.IsLoopback() || peer == conn.Local.Addr() {
		return true
	}
	_, ok := l.nodeAddrs[peer]
	return ok
}

// unpark moves parked spans into the batch once they found their client,
// or waited linkGrace; all of them when force.
func (l *eventLoop) unpark(force bool) {
	if len(l.parked) == 0 {
		return
	}
	now := time.Now()
	kept := l.parked[:0]
	for _, pk := range l.parked {
		unlinked := l.linker.Unlinked(pk.id)
		if force || !unlinked || now.Sub(pk.since) >= linkGrace {
			if unlinked && !force && pk.c.Uses == pk.uses {
				pk.c.PeerUnwatched = true
			}
			pk.span.MoveTo(l.newSpan(pk.p, pk.id))
			continue
		}
		kept = append(kept, pk)
	}
	clear(l.parked[len(kept):])
	l.parked = kept
}

// unresolved is a span of the batch whose trace is not settled yet.
type unresolved struct {
	span    ptrace.Span
	id      *correlate.Span
	service string
}

// resolve settles the trace ids of the batch's spans, and prints them.
func (l *eventLoop) resolve() {
	for i, u := range l.unresolved {
		l.linker.Resolve(u.id)
		u.span.SetTraceID(u.id.TraceID)
		u.span.SetParentSpanID(u.id.ParentID)
		u.span.SetFlags(uint32(u.id.Flags))
		if l.sampledOut(u) {
			l.unresolved[i] = unresolved{}
			continue
		}
		if l.printer != nil {
			l.printer.WriteString(spans.TextLine(u.span, u.service))
			l.printer.WriteByte('\n')
		}
		l.unresolved[i] = unresolved{}
	}
	l.unresolved = l.unresolved[:0]
}

// flush hands the batch to the sender without waiting: a full queue means
// the consumer is behind, and the batch is dropped and counted.
func (l *eventLoop) flush() {
	l.settleUnsampled()
	if l.batchSpans == 0 {
		return
	}
	l.resolve()
	l.dropOut()
	if l.printer != nil {
		l.printer.Flush()
	}
	if l.batchSpans > 0 { // the sampler may have left none
		select {
		case l.out <- l.batch:
		default:
			l.r.tb.ReceiverEbpfSpans.Add(context.Background(), int64(l.batchSpans), outcomeDropped)
		}
	}
	l.batchSpans = 0
	clear(l.batchProcs) // the map is kept: a new one per batch is garbage
}

// commName is the command name the kernel sent, up to its NUL.
func commName(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
