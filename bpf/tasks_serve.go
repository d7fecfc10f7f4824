package bpf

import (
	"fmt"
	"io"
	"sync"

	"github.com/cilium/ebpf"
)

// GoServeKind says which handler entry a GoServePoint is.
type GoServeKind uint8

// The handler entries probed (tasks.bpf.c, go_grpc_serve and go_h2_serve).
const (
	// GoServeGRPC: grpc-go's (*Server).handleStream(t ServerTransport,
	// stream *ServerStream).
	GoServeGRPC GoServeKind = iota + 1
	// GoServeH2: net/http's (*http2serverConn).runHandler or x/net's
	// (*serverConn).runHandler(rw *responseWriter, ...).
	GoServeH2
)

// GoServeWraps is how many wrapper conns a GoServePoint may name.
const GoServeWraps = 4

// GoWrap is a net.Conn that wraps another: the link-time address of its
// itab (as a net.Conn) and the offset of the net.Conn it wraps.
type GoWrap struct {
	Itab uint64
	Conn uint32
}

// GoServePoint is one probed handler entry of a Go binary and what the
// probe needs to name the stream it serves and its connection's socket.
// Itabs are link-time addresses; the probe takes the binary's load bias
// from the probed instruction's address.
type GoServePoint struct {
	Kind GoServeKind
	// Offset is the file offset of the function's entry, Addr its
	// link-time address.
	Offset, Addr uint64
	// TCPItab is the *net.TCPConn,net.Conn itab; TransportItab (grpc-go)
	// the *http2Server,ServerTransport itab handleStream's transport must
	// have. Wraps are the wrapper conns followed (crypto/tls's Conn, ...).
	TCPItab, TransportItab uint64
	Wraps                  []GoWrap
	// Conn is the offset of the net.Conn in the server's connection
	// (http2Server.conn, serverConn.conn); TCPFD of the *netFD in
	// net.TCPConn; Sysfd of pfd.Sysfd in net.netFD.
	Conn, TCPFD, Sysfd uint32
	// RWS, Stream (net/http, x/net): offsets of rws in responseWriter and
	// of stream in responseWriterState; ID of the id in the stream
	// (grpc-go: in ServerStream).
	RWS, Stream, ID uint32
}

// servePoints hands out the indices of go_serve_points.
type servePoints struct {
	mu   sync.Mutex
	free []uint32
	next uint32
}

func (s *servePoints) take(max uint32) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		return i, nil
	}
	if s.next >= max {
		return 0, fmt.Errorf("%d Go handler entries are probed already", s.next)
	}
	s.next++
	return s.next - 1, nil
}

func (s *servePoints) put(i uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free = append(s.free, i)
}

// AttachGoServe probes the handler entries points of the Go binary at
// path: each tells, once per stream served, which goroutine serves which
// stream of which socket (EVENT_GO_HANDLER).
func (k *Tasks) AttachGoServe(path string, points []GoServePoint) (io.Closer, error) {
	var taken []uint32
	release := func() {
		for _, i := range taken {
			k.serve.put(i)
		}
	}
	probes := map[*ebpf.Program][2]uint64{}
	var ls []io.Closer
	closeAll := func() {
		for _, c := range ls {
			c.Close()
		}
	}
	for _, p := range points {
		if len(p.Wraps) > GoServeWraps {
			closeAll()
			release()
			return nil, fmt.Errorf("%s: %d wrapper conns, at most %d are followed", path, len(p.Wraps), GoServeWraps)
		}
		var prog *ebpf.Program
		switch p.Kind {
		case GoServeGRPC:
			prog = k.objs.GoGrpcServe
		case GoServeH2:
			prog = k.objs.GoH2Serve
		default:
			closeAll()
			release()
			return nil, fmt.Errorf("%s: handler entry of unknown kind %d", path, p.Kind)
		}
		index, err := k.serve.take(k.objs.GoServePoints.MaxEntries())
		if err != nil {
			closeAll()
			release()
			return nil, err
		}
		taken = append(taken, index)
		v := tasksGoServePoint{TcpItab: p.TCPItab, TransportItab: p.TransportItab, Conn: p.Conn, TcpFd: p.TCPFD,
			Sysfd: p.Sysfd, Rws: p.RWS, Stream: p.Stream, Id: p.ID}
		for i, w := range p.Wraps {
			v.WrapItab[i], v.WrapConn[i] = w.Itab, w.Conn
		}
		if err := k.objs.GoServePoints.Update(index, &v, ebpf.UpdateAny); err != nil {
			closeAll()
			release()
			return nil, fmt.Errorf("describing %s to the handler probes: %w", path, err)
		}
		// One program may be placed at several entries (net/http's and
		// x/net's runHandler): one attachment each.
		clear(probes)
		probes[prog] = [2]uint64{p.Offset, p.Addr<<16 | uint64(index)}
		c, err := attachCookies(path, 0, probes)
		if err != nil {
			closeAll()
			release()
			return nil, err
		}
		ls = append(ls, c)
	}
	return closerFunc(func() error {
		var first error
		for _, c := range ls {
			if err := c.Close(); err != nil && first == nil {
				first = err
			}
		}
		release()
		return first
	}), nil
}
