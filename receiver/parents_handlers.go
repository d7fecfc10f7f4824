package receiver

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/conntrack"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/correlate"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/events"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2"
)

// A Go HTTP/2 server (grpc-go, net/http, x/net) reads a stream's request
// on its connection's reader goroutine and serves it on another one; the
// probe at the handler's entry (events.GoHandler) names the goroutine,
// the stream and the socket. The stream's server span is the parser's
// exchange of that stream id on that connection: the goroutine serves
// it (correlate.Linker.ServedOn), and the calls it makes go under it.
//
// The probe fires after the reader read the request, so its event
// nearly always comes after the read that started the exchange; when it
// comes first (or the exchange starts only with a later segment), it
// waits for the exchange, per connection, until the connection closes.
// Stream ids are not reused on a connection: a waiting handler never
// meets another stream's exchange.

// sockKey is a connection of a process, by its socket: the handler probe
// does not know whether the HTTP/2 it serves is the plaintext of TLS.
type sockKey struct {
	pid  uint32
	sock uint64
}

// pendingHandler is a goroutine that serves a stream whose exchange was
// not seen started yet.
type pendingHandler struct {
	stream uint32
	task   uint64
}

// loopHandlers is the event loop's state of the handler probes.
type loopHandlers struct {
	pending map[sockKey][]pendingHandler
	counts  handlerCounts
}

// handlerCounts count what became of handler events.
type handlerCounts struct {
	matched      uint64 // the stream's exchange was started: its goroutine serves it now
	matchedLater uint64 // the exchange started after its handler was told
	done         uint64 // the exchange was over (or never a candidate) when its handler was told
	dropped      uint64 // the handler waited for an exchange that never came (connection closed, or too many waited)
	untold       uint64 // the event named no goroutine or no stream
}

const (
	// maxPendingPerConn bounds the handlers waiting on one connection:
	// the oldest goes first. An HTTP/2 server serves at most a few
	// hundred streams at once on a connection (maxStreams of the parser).
	maxPendingPerConn = 256
	// reasonHandlerUnmatched counts, as an HTTP/2 parse failure, a
	// stream whose handler goroutine was told but whose exchange never
	// came: the calls its handler made are left without that parent.
	reasonHandlerUnmatched = "handler_stream_not_seen"
)

// goHandler handles events.GoHandler: goroutine ev.Task begins to serve
// stream ev.TaskTrigger of socket ev.Sock.
func (l *eventLoop) goHandler(ev *events.Event) {
	// Only a probe of a Go program sends the event: the process's
	// runtime need not be read yet (its result may still be on its way
	// to the loop), the goroutine is known.
	st := &l.parents.handlers
	stream := uint32(ev.TaskTrigger)
	if ev.Task == 0 || stream == 0 {
		st.counts.untold++
		return
	}
	sk := sockKey{ev.Pid, ev.Sock}
	if x := l.startedStream(sk, stream); x != nil {
		if s, ok := x.Tag.(*correlate.Span); ok && x.Role == protocols.RoleServer && l.linker.ServedOn(ev.Pid, s, ev.Task) {
			st.counts.matched++
		} else {
			st.counts.done++
		}
		return
	}
	// The goroutine serves no earlier request now (a worker of a pool
	// goes from stream to stream), whether or not this one is seen.
	l.linker.ServedOn(ev.Pid, nil, ev.Task)
	if st.pending == nil {
		st.pending = map[sockKey][]pendingHandler{}
	}
	if len(st.pending) >= maxTaskFacts {
		for _, list := range st.pending {
			l.handlersDropped(len(list))
		}
		clear(st.pending)
	}
	list := st.pending[sk]
	if len(list) >= maxPendingPerConn {
		list = list[:copy(list, list[1:])]
		l.handlersDropped(1)
	}
	st.pending[sk] = append(list, pendingHandler{stream: stream, task: ev.Task})
}

// startedStream is the exchange of stream id on the connection of socket
// sk, once its parser started it, or nil.
func (l *eventLoop) startedStream(sk sockKey, id uint32) *http2.Exchange {
	for _, tls := range [2]bool{false, true} {
		c := l.conns.Get(conntrack.Key{Pid: sk.pid, Sock: sk.sock, TLS: tls})
		if c == nil {
			continue
		}
		if p, ok := c.Parser().(*http2.Conn); ok {
			if x := p.StartedStream(id); x != nil {
				return x
			}
		}
	}
	return nil
}

// handlerOfStarted gives server exchange x of connection c, just started
// as span s, the goroutine a handler event told serves it, if one waits.
func (l *eventLoop) handlerOfStarted(c *conntrack.Conn, x *protocols.Exchange, s *correlate.Span) {
	st := &l.parents.handlers
	if len(st.pending) == 0 {
		return
	}
	sk := sockKey{c.Key.Pid, c.Key.Sock}
	list := st.pending[sk]
	if len(list) == 0 {
		return
	}
	p, ok := c.Parser().(*http2.Conn)
	if !ok {
		return
	}
	for i, h := range list {
		if ex := p.StartedStream(h.stream); ex == nil || &ex.Exchange != x {
			continue
		}
		if l.linker.ServedOn(c.Key.Pid, s, h.task) {
			st.counts.matchedLater++
		}
		list = append(list[:i], list[i+1:]...)
		if len(list) == 0 {
			delete(st.pending, sk)
		} else {
			st.pending[sk] = list
		}
		return
	}
}

// handlersConnClosed forgets the handlers that waited on a closed
// connection: their exchanges will not come now.
func (l *eventLoop) handlersConnClosed(key conntrack.Key) {
	st := &l.parents.handlers
	sk := sockKey{key.Pid, key.Sock}
	if list, ok := st.pending[sk]; ok {
		l.handlersDropped(len(list))
		delete(st.pending, sk)
	}
}

// handlersEnded forgets the handlers of process pid.
func (l *eventLoop) handlersEnded(pid uint32) {
	st := &l.parents.handlers
	for sk, list := range st.pending {
		if sk.pid == pid {
			l.handlersDropped(len(list))
			delete(st.pending, sk)
		}
	}
}

func (l *eventLoop) handlersDropped(n int) {
	if n == 0 {
		return
	}
	l.parents.handlers.counts.dropped += uint64(n)
	l.counts.failures[failureKey{"http2", reasonHandlerUnmatched}] += int64(n)
}
