package http2

import (
	"reflect"
	"testing"
	"unicode/utf8"

	xhttp2 "golang.org/x/net/http2"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2/hpack"
)

// Bounds on the fuzz inputs; the seeds fit.
const (
	maxFuzzLen = 4096
	maxFuzzCtl = 64
)

// fuzzSeeds are connections of each kind the package handles: gRPC calls
// of every shape, plain HTTP with padding and CONTINUATION, resets, a
// GOAWAY, table size changes.
func fuzzSeeds() [][2]string {
	var seeds [][2]string
	cw, sw := newWire(), newWire()
	cw.preface().settings(xhttp2.Setting{ID: xhttp2.SettingHeaderTableSize, Val: 256})
	sw.settings().settingsAck()
	sw.enc.SetMaxDynamicTableSizeLimit(256)
	req, resp := unary(cw, sw, 1, "/pkg.Svc/Get", "0")
	req2, resp2 := unary(cw, sw, 3, "/pkg.Svc/Get", "5")
	seeds = append(seeds, [2]string{cw.take() + req + req2, sw.take() + resp + resp2})

	cw, sw = newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	cw.headersSplit(1, false, 8, ":method", "POST", ":path", "/up", ":scheme", "http", ":authority", "h", "traceparent", tp)
	cw.dataPadded(1, true, 30, 4)
	sw.headers(1, false, ":status", "100").headersSplit(1, false, 4, ":status", "200", "x", "y").data(1, false, 10).headers(1, true, "x-t", "1")
	cw.headers(3, false, grpcRequest("/a.B/C")...).rst(3, xhttp2.ErrCodeCancel)
	cw.headers(5, false, grpcRequest("/a.B/D")...)
	sw.headers(5, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "12").goAway(5, xhttp2.ErrCodeNo)
	seeds = append(seeds, [2]string{cw.take(), sw.take()})

	cw, sw = newWire(), newWire()
	cw.preface().settings().ping().windowUpdate(0, 100)
	sw.settings()
	cw.enc.SetMaxDynamicTableSize(0)
	cw.headers(1, true, ":method", "GET", ":path", "/", ":scheme", "http", ":authority", "a")
	cw.raw(0xfa, 0, 1, []byte("unknown frame type"))
	sw.headers(1, true, ":status", "404").raw(xhttp2.FramePriority, 0, 1, make([]byte, 5))
	seeds = append(seeds, [2]string{cw.take(), sw.take()})
	return seeds
}

// FuzzParser feeds arbitrary bytes in both directions, cut into segments
// of random sizes with random gaps, tails and extents, and checks that
// nothing panics, that every record is well formed, that state stays
// bounded, and that the caller's buffers are not kept. The frames and the
// HPACK decoder are on its path: the seeds are real connections.
func FuzzParser(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add([]byte(s[0]), []byte(s[1]), []byte{byte(i), 0x5a, 0x13, 0xc7})
	}
	f.Add([]byte(preface), []byte("\x00\x00\x00\x04\x00\x00\x00\x00\x00"), []byte{0})
	f.Fuzz(func(t *testing.T, reqs, resps, ctl []byte) {
		if len(reqs) > maxFuzzLen || len(resps) > maxFuzzLen || len(ctl) > maxFuzzCtl {
			return
		}
		role := protocols.Role(0)
		if len(ctl) > 0 {
			role = protocols.Role(ctl[0] % 3)
		}
		steps := cutFuzz(reqs, resps, ctl, role)
		clean, _ := fuzzPlay(t, steps, role, false)
		scribbled, _ := fuzzPlay(t, steps, role, true)
		if !reflect.DeepEqual(clean, scribbled) {
			t.Fatalf("a Conn kept a caller's buffer:\n%+v\n%+v", clean, scribbled)
		}
		// Without gaps, where segments end must not matter, unless frame
		// boundaries had to be found again (which depends on them).
		dirs := [2]Direction{Inbound, Outbound}
		if role == RoleClient {
			dirs = [2]Direction{Outbound, Inbound}
		}
		whole, wc := fuzzPlay(t, []step{{dir: dirs[0], t: 1, data: string(reqs)}, {dir: dirs[1], t: 2, data: string(resps)}, closeAt(3)}, role, false)
		cutUp, cc := fuzzPlay(t, cutPlain(reqs, resps, ctl, dirs), role, false)
		if wc.stats.NoPreface+cc.stats.NoPreface+wc.stats.Resyncs+cc.stats.Resyncs == 0 &&
			!reflect.DeepEqual(untimed(whole), untimed(cutUp)) {
			t.Fatalf("segment boundaries changed the records:\nwhole %+v\ncut   %+v", whole, cutUp)
		}
	})
}

// decider makes the choices of cutFuzz: from the fuzzer's control bytes
// first, then from splitmix64 seeded by them.
type decider struct {
	ctl []byte
	r   uint64
}

func newDecider(ctl []byte) *decider {
	d := &decider{ctl: ctl}
	for _, b := range ctl {
		d.r = d.r*31 + uint64(b)
	}
	return d
}

func (d *decider) n(k int) int {
	if len(d.ctl) > 0 {
		v := int(d.ctl[0])
		d.ctl = d.ctl[1:]
		return v % k
	}
	d.r += 0x9E3779B97F4A7C15
	z := d.r
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return int((z ^ (z >> 31)) % uint64(k))
}

// cutFuzz turns the two byte streams into segments as the kernel would
// report them, with now and then a capture shorter than the segment, a
// tail, extents, an inconsistent length, a segment in the wrong direction,
// a clock step backwards or a close.
func cutFuzz(reqs, resps, ctl []byte, role protocols.Role) []step {
	r := newDecider(ctl)
	var steps []step
	var ts uint64 = 1
	src := [2][]byte{reqs, resps}
	dirOf := [2]Direction{Inbound, Outbound}
	if role == RoleClient {
		dirOf = [2]Direction{Outbound, Inbound}
	}
	for len(src[0])+len(src[1]) > 0 {
		d := r.n(2)
		if len(src[d]) == 0 {
			d = 1 - d
		}
		var n int
		switch r.n(4) {
		case 0:
			n = 1 + r.n(8)
		case 1:
			n = 1 + r.n(64)
		case 2:
			n = 1 + r.n(1024)
		default:
			n = len(src[d])
		}
		n = min(n, len(src[d]))
		all := src[d][:n]
		src[d] = src[d][n:]
		s := step{dir: dirOf[d], data: string(all), t: ts}
		if r.n(32) == 0 {
			s.dir = 1 - s.dir
		}
		if r.n(5) == 0 {
			capture := r.n(n + 1)
			s.data, s.len = string(all[:capture]), n
			if r.n(3) > 0 {
				s.tail = string(all[n-min(16, n):])
			}
			for range r.n(4) {
				off := r.n(n)
				s.ext = append(s.ext, Extent{Off: off, Data: all[off : off+r.n(n-off)+1]})
			}
		}
		if r.n(64) == 0 {
			s.len = r.n(len(s.data) + 1)
		}
		steps = append(steps, s)
		switch r.n(64) {
		case 0:
			ts -= min(ts, uint64(r.n(5)))
		case 1:
			steps = append(steps, closeAt(ts))
		}
		ts += uint64(r.n(3))
	}
	if r.n(2) == 0 {
		steps = append(steps, closeAt(ts))
	}
	return steps
}

// cutPlain cuts reqs and then resps into segments without gaps.
func cutPlain(reqs, resps, ctl []byte, dirs [2]Direction) []step {
	r := newDecider(ctl)
	steps := []step{}
	for d, b := range [][]byte{reqs, resps} {
		for len(b) > 0 {
			n := min(len(b), 1+r.n(16))
			steps = append(steps, step{dir: dirs[d], data: string(b[:n]), t: uint64(len(steps) + 1)})
			b = b[n:]
		}
	}
	return append(steps, closeAt(uint64(len(steps)+1)))
}

// fuzzSink checks each record as it comes.
type fuzzSink struct {
	t   *testing.T
	got []rec
}

func (s *fuzzSink) Started(x *protocols.Exchange) {}
func (s *fuzzSink) Failed(string)                 {}
func (s *fuzzSink) Done(r protocols.Record) {
	x := r.(*Exchange)
	if err := checkRecord(x); err != "" {
		s.t.Fatalf("%s in %+v", err, summary(x))
	}
	s.got = append(s.got, summary(x))
}

// fuzzPlay plays steps, checking each record and the bounds on state.
func fuzzPlay(t *testing.T, steps []step, role protocols.Role, scribbleAfter bool) ([]rec, *Conn) {
	c := newTestConn(role)
	s := &fuzzSink{t: t}
	for _, st := range steps {
		if st.close {
			c.Close(st.t, s)
			if len(c.byID) != 0 {
				t.Fatalf("%d streams open after Close", len(c.byID))
			}
			continue
		}
		n := st.len
		if n == 0 {
			n = len(st.data)
		}
		data, tail := []byte(st.data), []byte(st.tail)
		ext := make([]Extent, len(st.ext))
		for i, e := range st.ext {
			ext[i] = Extent{Off: e.Off, Data: append([]byte(nil), e.Data...)}
		}
		c.FeedExtents(st.dir, &Segment{Data: data, Len: n, Tail: tail, Time: st.t}, ext, s)
		if scribbleAfter {
			scribble(data)
			scribble(tail)
			for _, e := range ext {
				scribble(e.Data)
			}
		}
		for i := range c.sides {
			sd := &c.sides[i]
			if cap(sd.block) > 2*maxBlock || sd.dec.Memory() > 4*hpack.HardCap+64<<10 {
				t.Fatalf("side %d holds a block of %d bytes and a decoder of %d", i, cap(sd.block), sd.dec.Memory())
			}
		}
		if len(c.byID) > maxStreams {
			t.Fatalf("%d streams open", len(c.byID))
		}
	}
	return s.got, c
}

// checkRecord returns what is wrong with x, or "".
func checkRecord(x *Exchange) string {
	switch {
	case x.Role != RoleServer && x.Role != RoleClient:
		return "bad role"
	case x.Kind != KindGRPC && x.Kind != KindHTTP:
		return "bad kind"
	case x.RequestStart > x.RequestEnd && x.RequestEnd != 0:
		return "request ends before it starts"
	case x.StreamID == 0 || x.StreamID%2 == 0:
		return "bad stream"
	}
	strs := []string{x.Traceparent, x.LinkOp, x.LinkTarget}
	if x.Kind == KindGRPC {
		r := &x.RPC
		if r.System != "grpc" || len(r.Method) > 3*maxPath {
			return "bad call"
		}
		strs = append(strs, r.Method, r.StatusCode, r.ErrorType, r.ServerAddress)
	} else {
		h := &x.HTTP
		switch {
		case h.Method == "" || h.Target == "" || len(h.Target) > 3*maxPath:
			return "HTTP record without method or target"
		case h.Version != "2":
			return "bad version"
		case h.Status != 0 && (h.Status < 100 || h.Status > 999):
			return "bad status"
		case h.RequestBodySize < 0 || h.ResponseBodySize < 0:
			return "negative body size"
		}
		strs = append(strs, h.Method, h.Target, h.Host, h.Scheme)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return "invalid UTF-8"
		}
	}
	return ""
}
