package http2

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	xhttp2 "golang.org/x/net/http2"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func check(t *testing.T, s *sink, want ...rec) {
	t.Helper()
	if !reflect.DeepEqual(s.got, want) {
		t.Fatalf("records:\n got %+v\nwant %+v\nfailed %v", s.got, want, s.failed)
	}
}

// unary writes a unary gRPC call on stream id: the client's request and
// the server's response, trailers and all.
func unary(cw, sw *wire, id uint32, path string, status string) (req, resp string) {
	cw.headers(id, false, grpcRequest(path)...).data(id, true, grpcMessage(10))
	sw.headers(id, false, grpcResponse...).data(id, false, grpcMessage(20)).headers(id, true, "grpc-status", status)
	return cw.take(), sw.take()
}

func TestDetect(t *testing.T) {
	p := Protocol
	server := newWire().settings(xhttp2.Setting{ID: xhttp2.SettingMaxConcurrentStreams, Val: 100},
		xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1 << 20}).take()
	for _, tc := range []struct {
		in   string
		want protocols.Verdict
	}{
		{preface, protocols.Request},
		{preface + "\x00\x00\x00\x04", protocols.Request},
		{"PRI * HT", protocols.Maybe},
		{"P", protocols.Maybe},
		{"PUT / HTTP/1.1\r\n", protocols.No},
		{server, protocols.Response},
		{server[:9], protocols.Response},
		{server[:4], protocols.Maybe},
		{"\x00\x00\x00\x04\x00\x00\x00\x00\x00", protocols.Response},                   // empty SETTINGS
		{"\x00\x00\x00\x04\x01\x00\x00\x00\x00", protocols.No},                         // an ACK is no server preface
		{"\x00\x00\x07\x04\x00\x00\x00\x00\x00", protocols.No},                         // not a multiple of 6
		{"\x00\x00\x06\x04\x00\x00\x00\x00\x01\x00\x03\x00\x00\x00\x64", protocols.No}, // stream 1
		{"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x63\x00\x00\x00\x64", protocols.No}, // setting 0x63
		{"\x00\x00\x04\x08\x00\x00\x00\x00\x00", protocols.No},                         // WINDOW_UPDATE
		{"\x4a\x00\x00\x00\x0a8.0.36\x00", protocols.No},                               // a MySQL greeting
		{"+PONG\r\n", protocols.No},
	} {
		if got := p.Detect([]byte(tc.in), 0); got != tc.want {
			t.Errorf("Detect(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestUnaryServer: a unary call read by a server, in one segment per
// flight, with a traceparent.
func TestUnaryServer(t *testing.T) {
	cw, sw := newWire(), newWire()
	cw.preface().settings().windowUpdate(0, 1<<20)
	cw.headers(1, false, grpcRequest("/pkg.Svc/Get", "traceparent", tp)...).data(1, true, grpcMessage(10))
	sw.settings(xhttp2.Setting{ID: xhttp2.SettingMaxFrameSize, Val: 1 << 20}).settingsAck()
	first := sw.take()
	sw.headers(1, false, grpcResponse...).data(1, false, grpcMessage(20)).headers(1, true, grpcOK...)
	s := play(newTestConn(protocols.RoleUnknown), []step{in(10, cw.take()), out(20, first), out(30, sw.take()), closeAt(40)})
	want := at(grpcCall(RoleServer, 1, "pkg.Svc/Get", "OK"), 10, 10, 30, 30)
	want.TP = tp
	check(t, s, want)
	if s.started != 1 || len(s.failed) != 0 {
		t.Fatalf("started %d, failed %v", s.started, s.failed)
	}
}

// TestUnaryClient: the same call written by a client, in many small
// segments, the response's frames split over several reads.
func TestUnaryClient(t *testing.T) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	c := newTestConn(protocols.RoleClient)
	s := play(c, script(out(1, cw.take()), in(2, sw.take())))
	req, resp := unary(cw, sw, 1, "/pkg.Svc/Get", "0")
	s2 := play(c, script(pieces(Outbound, 10, req, 7), pieces(Inbound, 100, resp, 5)))
	n := uint64(len(req)+6)/7 - 1
	m := uint64(len(resp)+4)/5 - 1
	check(t, s2, at(grpcCall(RoleClient, 1, "pkg.Svc/Get", "OK"), 10, 10+n, 100, 100+m))
	if len(s.got) != 0 {
		t.Fatal(s.got)
	}
}

// TestGRPCStatuses: statuses in trailers and in trailers-only responses,
// with the error classification of each role.
func TestGRPCStatuses(t *testing.T) {
	for _, role := range []protocols.Role{RoleServer, RoleClient} {
		cw, sw := newWire(), newWire()
		reqDir, respDir := Inbound, Outbound
		if role == RoleClient {
			reqDir, respDir = Outbound, Inbound
		}
		steps := []step{{dir: reqDir, t: 1, data: cw.preface().settings().take()}, {dir: respDir, t: 2, data: sw.settings().take()}}
		req, resp := unary(cw, sw, 1, "/pkg.Svc/Get", "5")
		steps = append(steps, step{dir: reqDir, t: 3, data: req}, step{dir: respDir, t: 4, data: resp})
		// Trailers-only: one HEADERS with :status and grpc-status.
		cw.headers(3, false, grpcRequest("/pkg.Svc/Nope")...).data(3, true, grpcMessage(0))
		sw.headers(3, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "12", "grpc-message", "unknown method")
		steps = append(steps, step{dir: reqDir, t: 5, data: cw.take()}, step{dir: respDir, t: 6, data: sw.take()})
		req, resp = unary(cw, sw, 5, "/pkg.Svc/Get", "14")
		steps = append(steps, step{dir: reqDir, t: 7, data: req}, step{dir: respDir, t: 8, data: resp})
		s := &sink{}
		var spans []ptrace.Span
		var keys []string
		s.keep = func(x *Exchange) {
			span := ptrace.NewSpan()
			conn := &protocols.ConnInfo{Service: "svc"}
			x.Fill(span, conn)
			spans = append(spans, span)
			k, _, ok := x.Metric(conn)
			if !ok {
				t.Fatal("no metric")
			}
			attrs := pcommon.NewMap()
			k.Family.Attributes(&k, attrs)
			keys = append(keys, fmt.Sprint(k.Family.Instruments[0].Name, " ", attrs.AsRaw()))
		}
		playInto(newTestConn(role), steps, s)
		nope := grpcCall(role, 3, "pkg.Svc/Nope", "UNIMPLEMENTED")
		nope.Unrec = true
		check(t, s, at(grpcCall(role, 1, "pkg.Svc/Get", "NOT_FOUND"), 3, 3, 4, 4),
			at(nope, 5, 5, 6, 6), at(grpcCall(role, 5, "pkg.Svc/Get", "UNAVAILABLE"), 7, 7, 8, 8))
		wantStatus := []ptrace.StatusCode{ptrace.StatusCodeError, ptrace.StatusCodeError, ptrace.StatusCodeError}
		wantErr := []any{"NOT_FOUND", "UNIMPLEMENTED", "UNAVAILABLE"}
		family := "rpc.client.call.duration"
		if role == RoleServer {
			wantStatus[0], wantErr[0] = ptrace.StatusCodeUnset, nil // NOT_FOUND is not a server's error
			family = "rpc.server.call.duration"
		}
		for i, span := range spans {
			attrs := span.Attributes().AsRaw()
			if span.Status().Code() != wantStatus[i] || attrs["error.type"] != wantErr[i] {
				t.Errorf("%v span %d: status %v, attributes %v", role, i, span.Status().Code(), attrs)
			}
		}
		if got := spans[1].Name(); got != "grpc" {
			t.Errorf("span name of an unknown method: %q", got)
		}
		if a := spans[1].Attributes().AsRaw(); a["rpc.method"] != "_OTHER" || a["rpc.method_original"] != "pkg.Svc/Nope" {
			t.Errorf("unknown method: %v", a)
		}
		if a := spans[0].Attributes().AsRaw(); spans[0].Name() != "pkg.Svc/Get" || a["rpc.system.name"] != "grpc" ||
			a["rpc.method"] != "pkg.Svc/Get" || a["rpc.response.status_code"] != "NOT_FOUND" ||
			a["server.address"] != "localhost" || a["server.port"] != int64(50051) {
			t.Errorf("span 0: %s %v", spans[0].Name(), a)
		}
		server := ""
		if role == RoleClient {
			server = " server.address:localhost server.port:50051"
		}
		want := family + " map[error.type:NOT_FOUND rpc.method:pkg.Svc/Get rpc.response.status_code:NOT_FOUND rpc.system.name:grpc" + server + "]"
		if role == RoleServer {
			want = family + " map[rpc.method:pkg.Svc/Get rpc.response.status_code:NOT_FOUND rpc.system.name:grpc]"
		}
		if keys[0] != want {
			t.Errorf("metric 0:\n got %s\nwant %s", keys[0], want)
		}
	}
}

// TestPlainHTTP: plain HTTP/2 requests: an informational response, pseudo
// headers out of their usual order, padding, priority, CONTINUATION, and
// a request body.
func TestPlainHTTP(t *testing.T) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	setup := []step{in(1, cw.take()), out(2, sw.take())}
	cw.headersSplit(1, false, 10, ":path", "/upload?x=1", ":authority", "example.com:8080", ":scheme", "http", ":method", "PUT",
		"expect", "100-continue", "content-type", "text/plain")
	sw.headers(1, false, ":status", "100")
	cw.dataPadded(1, false, 100, 20).data(1, true, 50)
	sw.headersSplit(1, false, 3, ":status", "201", "content-type", "text/plain").dataPadded(1, true, 7, 3)
	cw.headers(3, true, ":method", "GET", ":scheme", "http", ":authority", "example.com:8080", ":path", "/a")
	sw.headers(3, true, ":status", "404")
	req := cw.take()
	s := play(newTestConn(RoleServer), script(setup, in(10, req), out(20, sw.take())))
	check(t, s,
		rec{Kind: KindHTTP, Role: RoleServer, Stream: 1, Method: "PUT", Target: "/upload?x=1", Host: "example.com:8080",
			Status: 201, ReqBody: 150, RespBody: 7, Times: [4]uint64{10, 10, 20, 20}},
		rec{Kind: KindHTTP, Role: RoleServer, Stream: 3, Method: "GET", Target: "/a", Host: "example.com:8080",
			Status: 404, Times: [4]uint64{10, 10, 20, 20}})
	// The span and metric are HTTP's, version 2.
	var attrs map[string]any
	s2 := &sink{keep: func(x *Exchange) {
		span := ptrace.NewSpan()
		x.Fill(span, &protocols.ConnInfo{Service: "svc"})
		if attrs == nil {
			attrs = span.Attributes().AsRaw()
		}
	}}
	cw2, sw2 := newWire(), newWire()
	cw2.preface().settings().headers(1, true, ":method", "GET", ":scheme", "http", ":path", "/users/42", ":authority", "h:1")
	sw2.settings().headers(1, true, ":status", "200")
	playInto(newTestConn(RoleServer), []step{in(1, cw2.take()), out(2, sw2.take())}, s2)
	if attrs["network.protocol.version"] != "2" || attrs["http.request.method"] != "GET" || attrs["http.response.status_code"] != int64(200) ||
		attrs["url.path"] != "/users/42" {
		t.Fatalf("HTTP/2 span attributes: %v", attrs)
	}
}

// TestInterleaved: 100 concurrent streams on one connection, each a 64 KiB
// request and a 64 KiB response sent as 16 KiB DATA frames interleaved
// across streams, cut into segments of random sizes.
func TestInterleaved(t *testing.T) {
	const streams, msg, frame = 100, 64 << 10, 16 << 10
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	var setup []step
	setup = append(setup, in(1, cw.take()), out(2, sw.take()))
	for i := range streams {
		cw.headers(uint32(2*i+1), false, grpcRequest(fmt.Sprintf("/pkg.Svc/M%d", i%7))...)
	}
	for off := 0; off < grpcMessage(msg); off += frame {
		for i := range streams {
			n := min(frame, grpcMessage(msg)-off)
			cw.data(uint32(2*i+1), off+n == grpcMessage(msg), n)
		}
	}
	for i := range streams {
		sw.headers(uint32(2*i+1), false, grpcResponse...)
	}
	for off := 0; off < grpcMessage(msg); off += frame {
		for i := range streams {
			n := min(frame, grpcMessage(msg)-off)
			sw.data(uint32(2*i+1), false, n)
		}
	}
	for i := range streams {
		sw.headers(uint32(2*i+1), true, grpcOK...)
	}
	reqs, resps := cw.take(), sw.take()
	r := rand.New(rand.NewPCG(3, 4))
	var steps []step
	ts := uint64(10)
	for _, all := range []struct {
		dir Direction
		b   string
	}{{Inbound, reqs}, {Outbound, resps}} {
		for b := all.b; len(b) > 0; ts++ {
			n := min(len(b), 1+r.IntN(70000))
			steps = append(steps, step{dir: all.dir, t: ts, data: b[:n]})
			b = b[n:]
		}
	}
	s := play(newTestConn(RoleServer), script(setup, steps))
	if len(s.got) != streams || len(s.failed) != 0 {
		t.Fatalf("%d records, failed %v", len(s.got), s.failed)
	}
	for i, g := range s.got {
		want := grpcCall(RoleServer, uint32(2*i+1), fmt.Sprintf("pkg.Svc/M%d", i%7), "OK")
		g.Times = [4]uint64{}
		if g != want {
			t.Fatalf("record %d: %+v, want %+v", i, g, want)
		}
	}
}

// TestResetAndGoAway: streams ended by RST_STREAM either way, refused by
// a GOAWAY, and left open at the close.
func TestResetAndGoAway(t *testing.T) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	setup := []step{out(1, cw.take()), in(2, sw.take())}
	cw.headers(1, false, grpcRequest("/pkg.Svc/Slow")...).data(1, true, 5)
	cw.headers(3, false, grpcRequest("/pkg.Svc/Stream")...)
	cw.headers(5, true, ":method", "GET", ":scheme", "http", ":path", "/x", ":authority", "h")
	cw.headers(7, false, grpcRequest("/pkg.Svc/Late")...).headers(9, false, grpcRequest("/pkg.Svc/Later")...)
	cw.headers(11, false, grpcRequest("/pkg.Svc/Open")...)
	req := cw.take()
	cw.rst(1, xhttp2.ErrCodeCancel)
	cancel := cw.take()
	sw.headers(3, false, grpcResponse...).rst(3, xhttp2.ErrCodeRefusedStream).goAway(7, xhttp2.ErrCodeNo)
	sw.headers(5, false, ":status", "200").data(5, false, 10)
	resp := sw.take()
	s := play(newTestConn(RoleClient), []step{setup[0], setup[1], out(10, req), out(20, cancel), in(30, resp), closeAt(40)})
	late, later, open := grpcCall(RoleClient, 7, "pkg.Svc/Late", ""), grpcCall(RoleClient, 9, "pkg.Svc/Later", ""), grpcCall(RoleClient, 11, "pkg.Svc/Open", "")
	later.Error, open.Error = "REFUSED_STREAM", "REFUSED_STREAM"
	late.Error = semconv.NoResponse // at or below the GOAWAY's last stream: open until the close
	slow, stream := grpcCall(RoleClient, 1, "pkg.Svc/Slow", ""), grpcCall(RoleClient, 3, "pkg.Svc/Stream", "")
	slow.Error, stream.Error = "CANCEL", "REFUSED_STREAM"
	check(t, s,
		at(slow, 10, 10, 0, 20),
		at(stream, 10, 10, 30, 30),
		at(later, 10, 10, 0, 30), at(open, 10, 10, 0, 30),
		// At the close, by stream: the HTTP response began but never
		// ended, reported with its status as far as it went.
		rec{Kind: KindHTTP, Role: RoleClient, Stream: 5, Method: "GET", Target: "/x", Host: "h", Status: 200, RespBody: 10,
			Times: [4]uint64{10, 10, 30, 0}},
		at(late, 10, 10, 0, 0),
	)
}

func TestTraceBin(t *testing.T) {
	raw := []byte{0, 0}
	raw = append(raw, 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36)
	raw = append(raw, 1, 0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7, 2, 1)
	for _, enc := range []string{base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw)} {
		if got := traceBinToTraceparent([]byte(enc)); got != tp {
			t.Errorf("%s: %q", enc, got)
		}
	}
	for _, bad := range []string{"", "!!", base64.StdEncoding.EncodeToString(raw[:10]), base64.StdEncoding.EncodeToString(append([]byte{1}, raw[1:]...))} {
		if got := traceBinToTraceparent([]byte(bad)); got != "" {
			t.Errorf("%q: %q", bad, got)
		}
	}
	// Carried by a request, it becomes the Exchange's traceparent.
	cw, sw := newWire(), newWire()
	cw.preface().settings().headers(1, true, grpcRequest("/a.B/C", "grpc-trace-bin", base64.RawStdEncoding.EncodeToString(raw))...)
	sw.settings().headers(1, true, append(grpcResponse, grpcOK...)...)
	s := play(newTestConn(RoleServer), []step{in(1, cw.take()), out(2, sw.take())})
	if len(s.got) != 1 || s.got[0].TP != tp {
		t.Fatalf("%+v", s.got)
	}
}

// TestHeaderTableSize: a SETTINGS_HEADER_TABLE_SIZE of 0 makes the encoder
// clear its table; the decoder follows.
func TestHeaderTableSize(t *testing.T) {
	cw, sw := newWire(), newWire()
	cw.preface().settings(xhttp2.Setting{ID: xhttp2.SettingHeaderTableSize, Val: 0})
	sw.settings(xhttp2.Setting{ID: xhttp2.SettingHeaderTableSize, Val: 65536})
	sw.enc.SetMaxDynamicTableSizeLimit(0)
	cw.enc.SetMaxDynamicTableSizeLimit(65536)
	cw.enc.SetMaxDynamicTableSize(65536)
	var steps []step
	steps = append(steps, in(1, cw.take()), out(2, sw.take()))
	for i := range 50 {
		req, resp := unary(cw, sw, uint32(2*i+1), fmt.Sprintf("/pkg.Svc/%s", strings.Repeat("M", 1+i*20)), "0")
		steps = append(steps, in(uint64(10+i), req), out(uint64(100+i), resp))
	}
	s := play(newTestConn(RoleServer), steps)
	if len(s.got) != 50 || len(s.failed) != 0 {
		t.Fatalf("%d records, failed %v", len(s.got), s.failed)
	}
	for i, g := range s.got {
		if want := "pkg.Svc/" + strings.Repeat("M", 1+i*20); g.Method != want || g.Code != "OK" {
			t.Fatalf("record %d: %+v", i, g)
		}
	}
}

// TestChosen: a segment's chosen context goes to the first request that
// begins in it, even when its frame header ends in the next segment, and
// to no other; the thread is the segment's the request began in.
func TestChosen(t *testing.T) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	c := newTestConn(RoleServer)
	s := &sink{}
	playInto(c, []step{in(1, cw.take()), out(2, sw.take())}, s)
	cw.headers(1, true, grpcRequest("/a.B/One")...).headers(3, true, grpcRequest("/a.B/Two")...)
	two := cw.take()
	cw.headers(5, true, grpcRequest("/a.B/Three")...)
	three := cw.take()
	chosen := func(b byte) tracecontext.Chosen {
		return tracecontext.Chosen{Kind: tracecontext.Served, Identity: tracecontext.Identity{SpanID: pcommon.SpanID{b}}}
	}
	type got struct {
		span byte
		tid  uint32
	}
	var gots []got
	s.keep = func(x *Exchange) { gots = append(gots, got{x.Chosen.SpanID[0], x.Tid}) }
	c.Feed(Inbound, &Segment{Data: []byte(two), Len: len(two), Time: 10, Tid: 1, Chosen: chosen(1)}, s)
	// The third request's frame header is cut between two segments.
	c.Feed(Inbound, &Segment{Data: []byte(three[:4]), Len: 4, Time: 11, Tid: 2, Chosen: chosen(2)}, s)
	c.Feed(Inbound, &Segment{Data: []byte(three[4:]), Len: len(three) - 4, Time: 12, Tid: 3, Chosen: chosen(3)}, s)
	sw.headers(1, true, append(grpcResponse, grpcOK...)...).headers(3, true, append(grpcResponse, grpcOK...)...)
	sw.headers(5, true, append(grpcResponse, grpcOK...)...)
	playInto(c, []step{out(20, sw.take())}, s)
	if want := []got{{1, 1}, {0, 1}, {2, 2}}; !reflect.DeepEqual(gots, want) {
		t.Fatalf("chosen span ids and threads %v, want %v", gots, want)
	}
}

// TestMethodBound: a peer that calls made-up methods does not make a
// series per method: past the limit of a service, and for methods the
// server does not know or that are not gRPC names, rpc.method is _OTHER
// and the method as sent is rpc.method_original.
func TestMethodBound(t *testing.T) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	steps := []step{in(1, cw.take()), out(2, sw.take())}
	for i := range 5 {
		req, resp := unary(cw, sw, uint32(2*i+1), fmt.Sprintf("/pkg.Svc/M%d", i), "0")
		steps = append(steps, in(uint64(10+i), req), out(uint64(20+i), resp))
	}
	req, resp := unary(cw, sw, 11, "/pkg.Svc/M0", "0") // kept: seen before
	steps = append(steps, in(30, req), out(31, resp))
	req, resp = unary(cw, sw, 13, "/not a method", "0")
	steps = append(steps, in(32, req), out(33, resp))
	c := NewConn(testOptions, semconv.NewRPCMethods(3))
	c.Reset(RoleServer)
	var got []string
	var keys []string
	s := &sink{keep: func(x *Exchange) {
		span := ptrace.NewSpan()
		conn := &protocols.ConnInfo{Service: "svc"}
		x.Fill(span, conn)
		a := span.Attributes().AsRaw()
		got = append(got, fmt.Sprint(span.Name(), " ", a["rpc.method"], " ", a["rpc.method_original"]))
		k, _, _ := x.Metric(conn)
		keys = append(keys, k.Str[1])
	}}
	playInto(c, steps, s)
	want := []string{
		"pkg.Svc/M0 pkg.Svc/M0 <nil>", "pkg.Svc/M1 pkg.Svc/M1 <nil>", "pkg.Svc/M2 pkg.Svc/M2 <nil>",
		"grpc _OTHER pkg.Svc/M3", "grpc _OTHER pkg.Svc/M4", "pkg.Svc/M0 pkg.Svc/M0 <nil>", "grpc _OTHER not a method",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spans:\n got %q\nwant %q", got, want)
	}
	for i, k := range keys {
		if m := strings.Fields(want[i])[1]; k != m {
			t.Errorf("metric %d: rpc.method %q, span %q", i, k, m)
		}
	}
	for m, ok := range map[string]bool{"a.B/C": true, "B/C": true, "pkg.v1.Svc/Do_It2": true, "/a/b": false, "a/b/c": false,
		"a.B/": false, "a b/c": false, "a.B/C?x": false, "": false} {
		if semconv.ValidGRPCMethod(m) != ok {
			t.Errorf("ValidGRPCMethod(%q) = %v", m, !ok)
		}
	}
}
