package http2

import (
	"bytes"
	"strings"

	xhttp2 "golang.org/x/net/http2"
	xhpack "golang.org/x/net/http2/hpack"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/cardinality"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/routes"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Names the tests use for the protocol layer's types.
type (
	Segment   = protocols.Segment
	Direction = protocols.Direction
)

// testOptions are what the tests' connections record.
var testOptions = func() *protocols.Options {
	router, err := routes.New(nil, routes.Heuristic)
	if err != nil {
		panic(err)
	}
	return &protocols.Options{Routes: routes.NewLimiter(router, 1000), RPCMethods: cardinality.New(DefaultMaxMethods)}
}()

func newTestConn(role protocols.Role) *Conn {
	c := NewConn(testOptions, semconv.NewRPCMethods(100))
	c.Reset(role)
	return c
}

// wire writes the frames of one side of a connection with x/net's framer
// and HPACK encoder, as a real peer would.
type wire struct {
	out  bytes.Buffer
	fr   *xhttp2.Framer
	hbuf bytes.Buffer
	enc  *xhpack.Encoder
}

func newWire() *wire {
	w := &wire{}
	w.fr = xhttp2.NewFramer(&w.out, nil)
	w.fr.AllowIllegalWrites = true
	w.enc = xhpack.NewEncoder(&w.hbuf)
	return w
}

// take returns the bytes written so far and forgets them.
func (w *wire) take() string {
	s := w.out.String()
	w.out.Reset()
	return s
}

func (w *wire) preface() *wire { w.out.WriteString(preface); return w }

func (w *wire) settings(s ...xhttp2.Setting) *wire {
	must(w.fr.WriteSettings(s...))
	return w
}

func (w *wire) settingsAck() *wire { must(w.fr.WriteSettingsAck()); return w }

// block encodes fields, given as name, value pairs.
func (w *wire) block(fields ...string) []byte {
	w.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		must(w.enc.WriteField(xhpack.HeaderField{Name: fields[i], Value: fields[i+1]}))
	}
	return bytes.Clone(w.hbuf.Bytes())
}

func (w *wire) headers(stream uint32, end bool, fields ...string) *wire {
	must(w.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: stream, BlockFragment: w.block(fields...),
		EndStream: end, EndHeaders: true}))
	return w
}

// headersSplit writes a header block in a HEADERS frame (padded, with
// priority) and CONTINUATION frames of at most size bytes each.
func (w *wire) headersSplit(stream uint32, end bool, size int, fields ...string) *wire {
	b := w.block(fields...)
	first := b[:min(size, len(b))]
	b = b[len(first):]
	must(w.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: stream, BlockFragment: first, EndStream: end,
		EndHeaders: len(b) == 0, PadLength: 7, Priority: xhttp2.PriorityParam{StreamDep: 0, Weight: 15}}))
	for len(b) > 0 {
		part := b[:min(size, len(b))]
		b = b[len(part):]
		must(w.fr.WriteContinuation(stream, len(b) == 0, part))
	}
	return w
}

func (w *wire) data(stream uint32, end bool, n int) *wire {
	must(w.fr.WriteData(stream, end, make([]byte, n)))
	return w
}

func (w *wire) dataPadded(stream uint32, end bool, n int, pad byte) *wire {
	must(w.fr.WriteDataPadded(stream, end, make([]byte, n), make([]byte, pad)))
	return w
}

func (w *wire) rst(stream uint32, code xhttp2.ErrCode) *wire {
	must(w.fr.WriteRSTStream(stream, code))
	return w
}

func (w *wire) goAway(last uint32, code xhttp2.ErrCode) *wire {
	must(w.fr.WriteGoAway(last, code, []byte("bye")))
	return w
}

func (w *wire) ping() *wire { must(w.fr.WritePing(false, [8]byte{1})); return w }

func (w *wire) windowUpdate(stream, n uint32) *wire {
	must(w.fr.WriteWindowUpdate(stream, n))
	return w
}

func (w *wire) raw(typ xhttp2.FrameType, flags xhttp2.Flags, stream uint32, payload []byte) *wire {
	must(w.fr.WriteRawFrame(typ, flags, stream, payload))
	return w
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// grpcRequest is the head of a gRPC request as grpc-go sends it.
func grpcRequest(path string, extra ...string) []string {
	return append([]string{":method", "POST", ":scheme", "http", ":path", path, ":authority", "localhost:50051",
		"content-type", "application/grpc", "user-agent", "grpc-go/1.85.0", "te", "trailers"}, extra...)
}

var (
	grpcResponse = []string{":status", "200", "content-type", "application/grpc"}
	grpcOK       = []string{"grpc-status", "0", "grpc-message", ""}
)

// grpcMessage is the length of a gRPC message frame of a payload of n
// bytes.
func grpcMessage(n int) int { return 5 + n }

// step is one segment fed to a Conn, or a close.
type step struct {
	dir   Direction
	data  string
	len   int // bytes moved; 0 means len(data)
	tail  string
	ext   []Extent
	t     uint64
	close bool
}

func in(t uint64, data string) step  { return step{dir: Inbound, data: data, t: t} }
func out(t uint64, data string) step { return step{dir: Outbound, data: data, t: t} }
func closeAt(t uint64) step          { return step{close: true, t: t} }

// captured is a syscall that moved all but whose capture kept only its
// first capture bytes and its last 16, as the kernel does today.
func captured(dir Direction, t uint64, all string, capture int) step {
	if capture >= len(all) {
		return step{dir: dir, t: t, data: all}
	}
	return step{dir: dir, t: t, data: all[:capture], len: len(all), tail: all[len(all)-min(16, len(all)):]}
}

// walked is the same syscall captured as the package doc proposes: the
// first capture bytes, the last 16, and every frame header and header
// block frame as extents.
func walked(dir Direction, t uint64, all string, capture int, from int) step {
	s := captured(dir, t, all, capture)
	s.ext = frameExtents(all, from)
	return s
}

// frameExtents walks the frames of b from offset from, as the kernel
// would, and returns the extents it would copy.
func frameExtents(b string, from int) []Extent {
	var ext []Extent
	for off := from; off+frameHeaderLen <= len(b); {
		f := parseFrameHeader([]byte(b[off : off+frameHeaderLen]))
		end := off + frameHeaderLen
		switch f.typ {
		case frameHeaders, framePushPromise, frameContinuation, frameSettings, frameRSTStream, frameGoAway:
			end = min(off+frameHeaderLen+f.length, len(b))
		case frameData:
			if f.flags&flagPadded != 0 {
				end = min(end+1, len(b))
			}
		}
		ext = append(ext, Extent{Off: off, Data: []byte(b[off:end])})
		off += frameHeaderLen + f.length
	}
	return ext
}

// pieces splits all into segments of size bytes, the first at time t0 and
// each next one a nanosecond later.
func pieces(dir Direction, t0 uint64, all string, size int) []step {
	var steps []step
	for i := 0; i < len(all); i += size {
		steps = append(steps, step{dir: dir, t: t0, data: all[i:min(i+size, len(all))]})
		t0++
	}
	return steps
}

// script flattens steps and slices of steps.
func script(parts ...any) []step {
	var steps []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			steps = append(steps, p)
		case []step:
			steps = append(steps, p...)
		}
	}
	return steps
}

// sink records what a Conn reports.
type sink struct {
	got     []rec
	started int
	failed  map[string]int
	keep    func(x *Exchange) // if set, also called with each record
}

func (s *sink) Started(x *protocols.Exchange) {
	s.started++
	x.Tag = s.started
}

func (s *sink) Done(r protocols.Record) {
	x := r.(*Exchange)
	if s.keep != nil {
		s.keep(x)
	}
	s.got = append(s.got, summary(x))
}

func (s *sink) Failed(reason string) {
	if s.failed == nil {
		s.failed = map[string]int{}
	}
	s.failed[reason]++
}

// play feeds steps to c and returns what it reported.
func play(c *Conn, steps []step) *sink {
	s := &sink{}
	playInto(c, steps, s)
	return s
}

func playInto(c *Conn, steps []step, s protocols.Sink) {
	for _, st := range steps {
		if st.close {
			c.Close(st.t, s)
			continue
		}
		n := st.len
		if n == 0 {
			n = len(st.data)
		}
		// Fresh copies, scribbled over after the call: a Conn that kept
		// a reference to them would see garbage later.
		data, tail := []byte(st.data), []byte(st.tail)
		ext := make([]Extent, len(st.ext))
		for i, e := range st.ext {
			ext[i] = Extent{Off: e.Off, Data: bytes.Clone(e.Data)}
		}
		c.FeedExtents(st.dir, &Segment{Data: data, Len: n, Tail: tail, Time: st.t, Tid: 7}, ext, s)
		scribble(data)
		scribble(tail)
		for _, e := range ext {
			scribble(e.Data)
		}
	}
}

func scribble(b []byte) {
	for i := range b {
		b[i] = 0xA5
	}
}

// rec is what tests compare of a record.
type rec struct {
	Kind     Kind
	Role     protocols.Role
	Stream   uint32
	Method   string // HTTP method, or gRPC's rpc.method as sent
	Target   string // HTTP :path
	Host     string // HTTP :authority, or gRPC's server.address
	Port     int    // gRPC's server.port
	Status   int    // HTTP status
	Code     string // rpc.response.status_code
	Error    string // RPC error.type
	Unrec    bool   // gRPC UNIMPLEMENTED
	ReqBody  int64
	RespBody int64
	Times    [4]uint64
	TP       string
	Clipped  bool
}

func summary(x *Exchange) rec {
	r := rec{Kind: x.Kind, Role: x.Role, Stream: x.StreamID, TP: x.Traceparent, Clipped: x.Clipped,
		Times: [4]uint64{x.RequestStart, x.RequestEnd, x.ResponseStart, x.ResponseEnd}}
	if x.Kind == KindGRPC {
		r.Method, r.Host, r.Port = x.RPC.Method, x.RPC.ServerAddress, x.RPC.ServerPort
		r.Code, r.Error, r.Unrec = x.RPC.StatusCode, x.RPC.ErrorType, x.RPC.Unrecognized
		return r
	}
	r.Method, r.Target, r.Host, r.Status = x.HTTP.Method, x.HTTP.Target, x.HTTP.Host, x.HTTP.Status
	r.ReqBody, r.RespBody = x.HTTP.RequestBodySize, x.HTTP.ResponseBodySize
	return r
}

// untimed drops the times of recs, for comparisons across segmentations.
func untimed(recs []rec) []rec {
	out := make([]rec, len(recs))
	for i, r := range recs {
		r.Times = [4]uint64{}
		out[i] = r
	}
	return out
}

// grpcCall is an expected gRPC record.
func grpcCall(role protocols.Role, stream uint32, method, code string) rec {
	return rec{Kind: KindGRPC, Role: role, Stream: stream, Method: method, Host: "localhost", Port: 50051, Code: code}
}

func at(r rec, times ...uint64) rec { copy(r.Times[:], times); return r }

var _ = strings.Repeat
