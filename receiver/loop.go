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

	"github.com/otelcol-ebpf/ebpfreceiver/internal/correlate"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/http1"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/spans"
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
	// spareConns bounds the closed connections whose state is kept for
	// new ones.
	spareConns = 64
	// maxIPTexts bounds the addresses whose text is kept.
	maxIPTexts = 4096
)

type connKey struct {
	pid  uint32
	sock uint64
}

type conn struct {
	http   *http1.Conn
	req    spans.Request // Local and Remote, reused for each exchange
	lastNs uint64
	// peerUnwatched: a server span of this connection waited linkGrace for
	// its client's write in vain, so the client is not watched and later
	// spans need not wait (wrk, curl, anything not selected).
	peerUnwatched bool
	// uses counts the connections this state served: a parked span's
	// connection may have closed and its state serve another since.
	uses uint64
}

// eventLoop owns everything on the path from a kernel event to a span: it
// runs on one goroutine, so none of it is locked.
type eventLoop struct {
	r       *Receiver
	conns   map[connKey]*conn
	spare   []*conn               // closed connections' state, for new ones
	ipTexts map[netip.Addr]string // the text of addresses seen
	builder spans.Builder

	batch      ptrace.Traces
	batchProcs map[uint32]ptrace.SpanSlice
	batchSpans int
	batchSince time.Time
	out        chan ptrace.Traces

	linker     *correlate.Linker
	unresolved []unresolved  // spans of the batch, to settle at flush
	parked     []parkedSpan  // finished server spans waiting for their client
	printer    *bufio.Writer // nil unless spans are printed as text

	counts     loopCounts
	discarding bool         // Done counts exchanges as lost instead of emitting them
	connCount  atomic.Int64 // len(conns), for the gauge read elsewhere

	ev        events.Event
	cur       *conn
	curPid    uint32
	curTid    uint32
	kernel    spans.Identity // chosen by the kernel for the current event; kernelSet tells if set
	kernelSet events.ContextKind
	// warnedNotInjected: the log said once that a request could not carry
	// a traceparent.
	warnedNotInjected bool
	lastSweep         uint64
	lastTime          uint64 // of the latest data event
}

func newEventLoop(r *Receiver) *eventLoop {
	return &eventLoop{
		r:       r,
		conns:   map[connKey]*conn{},
		ipTexts: map[netip.Addr]string{},
		builder: spans.Builder{Router: r.opts.Router, RecordQuery: r.opts.RecordQuery, Clock: clockOffset()},
		out:     make(chan ptrace.Traces, queuedBatches),
		linker:  correlate.New(),
		printer: printerFor(r.opts),
	}
}

func printerFor(opts Options) *bufio.Writer {
	if !opts.PrintSpans {
		return nil
	}
	return bufio.NewWriter(opts.PrintTo)
}

func (l *eventLoop) run() {
	defer close(l.out)
	defer l.r.publish(context.Background(), &l.counts)
	defer l.flush()
	defer l.unpark(true)
	defer l.closeAll()
	l.r.reader.SetDeadline(time.Now().Add(pollEvery))
	for {
		raw, err := l.r.reader.Next()
		switch {
		case errors.Is(err, events.ErrTimeout):
			// Everything waiting was read: time to flush a ripe batch.
			l.unpark(false)
			if l.batchSpans > 0 && time.Since(l.batchSince) >= flushAfter {
				l.flush()
			}
			l.r.publish(context.Background(), &l.counts)
			l.connCount.Store(int64(len(l.conns)))
			l.r.reader.SetDeadline(time.Now().Add(pollEvery))
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
	}
}

func (l *eventLoop) handle(ev *events.Event) {
	switch ev.Kind {
	case events.Read, events.Write:
		l.data(ev)
	case events.Close:
		l.closeConn(connKey{ev.Pid, ev.Sock}, ev.Time)
	case events.Exit:
		l.exit(ev.Pid, ev.Time)
	case events.Select:
		if l.r.procs.get(ev.Pid) == nil {
			l.r.adopt(l.r.procs.describe(ev.Pid, commName(ev.Data)))
		}
	}
	if ev.Time-l.lastSweep > uint64(idleConn) {
		l.sweep(ev.Time)
	}
}

func (l *eventLoop) data(ev *events.Event) {
	key := connKey{ev.Pid, ev.Sock}
	c := l.conns[key]
	if c == nil {
		c = l.newConn(ev.Local, ev.Remote)
		l.conns[key] = c
	}
	c.lastNs = ev.Time
	l.lastTime = ev.Time
	dir := http1.Inbound
	if ev.Kind == events.Write {
		dir = http1.Outbound
	}
	l.cur, l.curPid, l.curTid = c, ev.Pid, ev.Tid
	l.takeContext(ev)
	if ev.AfterLoss {
		l.forgetPending(c, ev.Time)
	}
	c.http.Feed(dir, http1.Segment{Data: ev.Data, Len: int(ev.Len), Tail: ev.Tail, Time: ev.Time}, l)
}

// newConn returns the state of a new connection, made from a closed one's
// when there is one: behind clients that do not reuse connections, making
// it all anew would cost allocations on every request.
func (l *eventLoop) newConn(local, remote netip.AddrPort) *conn {
	var c *conn
	if n := len(l.spare); n > 0 {
		c = l.spare[n-1]
		l.spare[n-1] = nil
		l.spare = l.spare[:n-1]
		c.http.Reuse()
		c.peerUnwatched = false
		c.uses++
	} else {
		c = &conn{http: http1.NewConn()}
	}
	c.req.SetConnText(local, remote, l.ipText(local.Addr()), l.ipText(remote.Addr()))
	return c
}

// ipText returns the text of addr, made once: the watched processes' own
// addresses are few, and their peers come back.
func (l *eventLoop) ipText(addr netip.Addr) string {
	if s, ok := l.ipTexts[addr]; ok {
		return s
	}
	if len(l.ipTexts) >= maxIPTexts {
		clear(l.ipTexts)
	}
	s := addr.String()
	l.ipTexts[addr] = s
	return s
}

func (l *eventLoop) closeConn(key connKey, ts uint64) {
	c := l.conns[key]
	if c == nil {
		return
	}
	l.cur, l.curPid = c, key.pid
	c.http.Close(ts, l)
	l.counts.parse.Add(c.http.Stats())
	delete(l.conns, key)
	// Client requests left waiting on this connection will not be read now.
	l.linker.FlowClosed(correlate.Flow{Client: c.req.Local, Server: c.req.Remote})
	l.linker.FlowClosed(correlate.Flow{Client: c.req.Remote, Server: c.req.Local})
	if len(l.spare) < spareConns {
		l.spare = append(l.spare, c) // nothing else holds c: spans copy what they need
	}
}

func (l *eventLoop) exit(pid uint32, ts uint64) {
	for key := range l.conns {
		if key.pid == pid {
			l.closeConn(key, ts)
		}
	}
	l.r.procs.remove(pid)
	l.linker.ProcessExited(pid)
	if l.r.agg != nil {
		l.r.agg.Forget(pid)
	}
}

// forgetPending drops what a connection was in the middle of: events of it
// were lost, so what comes next must not be paired with what came before.
// The requests waiting for a response are counted as lost, not emitted.
func (l *eventLoop) forgetPending(c *conn, ts uint64) {
	l.discarding = true
	c.http.Close(ts, l)
	l.discarding = false
}

// closeAll ends every connection when the receiver stops: requests still
// waiting for a response are emitted without one, not forgotten.
func (l *eventLoop) closeAll() {
	for key := range l.conns {
		l.closeConn(key, l.lastTime)
	}
}

// sweep drops connections silent for longer than idleConn.
func (l *eventLoop) sweep(now uint64) {
	l.lastSweep = now
	for key, c := range l.conns {
		if now-c.lastNs > uint64(idleConn) {
			l.closeConn(key, now)
		}
	}
	l.linker.Compact()
}

// takeContext keeps the context the kernel chose for the request the event
// begins (context propagation), for Started, and counts what became of
// requests' traceparent.
func (l *eventLoop) takeContext(ev *events.Event) {
	l.kernelSet = ev.Context.Kind
	switch ev.Context.Kind {
	case events.NoContext:
		return
	case events.NotInjected:
		l.counts.notInjected++
		l.warnNotInjected(ev.Pid)
		return
	case events.Injected:
		l.counts.injected++
	}
	c := &ev.Context
	l.kernel = spans.Identity{TraceID: c.TraceID, SpanID: c.SpanID, ParentID: c.ParentID, Flags: c.Flags}
}

func (l *eventLoop) warnNotInjected(pid uint32) {
	if l.warnedNotInjected {
		return
	}
	l.warnedNotInjected = true
	l.r.logger().Warn("a request could not carry a traceparent header: its connection was opened before "+
		"the receiver started, or its head is larger than 4 KiB; its span is linked on this node only "+
		"(receiver_ebpf_propagation_requests{outcome=\"not_injected\"} counts them; this is logged once)",
		zap.Uint32("pid", pid))
}

// kernelContext hands the current event's kernel context to the first
// request of kind that starts in it.
func (l *eventLoop) kernelContext(kind events.ContextKind) *spans.Identity {
	if l.kernelSet != kind {
		return nil
	}
	l.kernelSet = events.NoContext // a pipelined request after it gets none
	return &l.kernel
}

// Started gives a request of the current connection its identity, linked
// to the other spans of the node (http1.Handler).
func (l *eventLoop) Started(x *http1.Exchange) {
	c := l.cur
	if x.Role == http1.RoleServer {
		flow := correlate.Flow{Client: c.req.Remote, Server: c.req.Local}
		x.Tag = l.linker.ServerStarted(l.curPid, l.curTid, flow, x.Method, x.Target, x.Traceparent, l.kernelContext(events.Served))
		return
	}
	if l.r.opts.Propagate && x.Traceparent != "" {
		l.counts.kept++
	}
	flow := correlate.Flow{Client: c.req.Local, Server: c.req.Remote}
	x.Tag = l.linker.ClientStarted(l.curPid, l.curTid, flow, x.Method, x.Target, x.Traceparent, l.kernelContext(events.Injected))
}

// Done turns one exchange of the current connection into a span and a
// metric observation (http1.Handler).
func (l *eventLoop) Done(x *http1.Exchange) {
	id := x.Tag.(*correlate.Span)
	if x.Role == http1.RoleServer {
		defer l.linker.ServerDone(l.curPid, id)
	}
	if l.discarding {
		// A request whose line was cut by the loss was counted by the
		// kernel, with the part it lost.
		if x.Version != "" {
			l.r.requestsLostAfterLoss.Add(1)
		}
		return
	}
	l.counts.requests++
	p := l.r.procs.get(l.curPid)
	if p == nil {
		p, _ = l.r.procs.add(l.r.procs.describe(l.curPid, ""))
	}
	req := &l.cur.req
	req.Exchange = *x
	if l.r.traces != nil {
		if x.Role == http1.RoleServer && !l.cur.peerUnwatched && fromThisHost(req) && l.linker.Unlinked(id) {
			l.parked = append(l.parked, parkedSpan{p: p, c: l.cur, uses: l.cur.uses, req: *req, id: id, since: time.Now()})
		} else {
			l.addSpan(p, req, id)
		}
	}
	if l.r.metrics != nil {
		l.observe(p, req)
	}
}

// addSpan appends a span to the batch. Its trace id and parent are
// settled when the batch is flushed: by then the events that link it (a
// client's write the kernel reported late) have most likely been read.
func (l *eventLoop) addSpan(p *process, req *spans.Request, id *correlate.Span) {
	if l.batchSpans == 0 {
		l.batch = ptrace.NewTraces()
		if l.batchProcs == nil {
			l.batchProcs = map[uint32]ptrace.SpanSlice{}
		}
		l.batchSince = time.Now()
	}
	pid := uint32(p.Pid)
	ss, ok := l.batchProcs[pid]
	if !ok {
		rs := l.batch.ResourceSpans().AppendEmpty()
		p.fill(rs.Resource().Attributes())
		scope := rs.ScopeSpans().AppendEmpty()
		scope.Scope().SetName(l.r.scope)
		ss = scope.Spans()
		l.batchProcs[pid] = ss
	}
	span := ss.AppendEmpty()
	l.builder.Fill(span, req, &id.Identity)
	l.batchSpans++
	l.unresolved = append(l.unresolved, unresolved{span: span, id: id, service: p.ServiceName})
}

// parkedSpan is a finished server span waiting for its client's write.
type parkedSpan struct {
	p     *process
	c     *conn
	uses  uint64 // c.uses when parked
	req   spans.Request
	id    *correlate.Span
	since time.Time
}

// fromThisHost: the peer may be a watched process of this node.
func fromThisHost(req *spans.Request) bool {
	peer := req.Remote.Addr()
	return peer.IsLoopback() || peer == req.Local.Addr()
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
			if unlinked && !force {
				if pk.c.uses == pk.uses {
					pk.c.peerUnwatched = true
				}
			}
			l.addSpan(pk.p, &pk.req, pk.id)
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
		if l.printer != nil {
			l.printer.WriteString(spans.TextLine(u.span, u.service))
			l.printer.WriteByte('\n')
		}
		l.unresolved[i] = unresolved{}
	}
	l.unresolved = l.unresolved[:0]
}

func (l *eventLoop) observe(p *process, req *spans.Request) {
	k := redmetrics.Key{Server: req.Role == http1.RoleServer, Method: req.Method, Status: req.Status, Version: req.Version}
	if k.Server {
		k.Route = l.builder.ServerRoute(req)
		k.ServerPort = int(req.Local.Port())
	} else {
		k.ServerAddr = req.RemoteIP
		k.ServerPort = int(req.Remote.Port())
	}
	end := req.ResponseEnd
	if end == 0 {
		end = req.RequestEnd
	}
	o := redmetrics.Observation{
		Duration:     float64(end-req.RequestStart) / 1e9,
		RequestBody:  req.RequestBodySize,
		ResponseBody: req.ResponseBodySize,
	}
	l.r.agg.Record(uint32(p.Pid), p.fill, k, o, 0) // now, when a series starts
}

// flush hands the batch to the sender without waiting: a full queue means
// the consumer is behind, and the batch is dropped and counted.
func (l *eventLoop) flush() {
	if l.batchSpans == 0 {
		return
	}
	l.resolve()
	if l.printer != nil {
		l.printer.Flush()
	}
	select {
	case l.out <- l.batch:
	default:
		l.r.tb.ReceiverEbpfSpans.Add(context.Background(), int64(l.batchSpans), outcomeDropped)
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
