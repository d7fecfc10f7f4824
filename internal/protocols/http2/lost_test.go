package http2

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	xhttp2 "golang.org/x/net/http2"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2/hpack"
)

// lostScenario is a server's connection where one client write holds a
// 16 KiB DATA frame and then the HEADERS of the next call: the kernel's
// 4 KiB capture loses that HEADERS frame.
func lostScenario() (setup, calls []step) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	setup = []step{in(1, cw.take()), out(2, sw.take())}
	cw.headers(1, false, grpcRequest("/pkg.Svc/A")...)
	calls = append(calls, in(10, cw.take()))
	cw.data(1, true, grpcMessage(16<<10)).headers(3, false, grpcRequest("/pkg.Svc/B")...).data(3, true, grpcMessage(5))
	calls = append(calls, in(11, cw.take()))
	sw.headers(1, false, grpcResponse...).data(1, false, 10).headers(1, true, grpcOK...)
	sw.headers(3, false, grpcResponse...).data(3, false, 10).headers(3, true, "grpc-status", "7")
	calls = append(calls, out(20, sw.take()))
	// The next call names /pkg.Svc/B from the client's table, where the
	// lost HEADERS put it.
	cw.headers(5, false, grpcRequest("/pkg.Svc/B")...).data(5, true, grpcMessage(5))
	calls = append(calls, in(30, cw.take()))
	sw.headers(5, false, grpcResponse...).headers(5, true, grpcOK...)
	calls = append(calls, out(40, sw.take()))
	return setup, calls
}

// recapture replaces each step's segment by what a capture of size bytes
// keeps; walk adds the extents the package doc proposes.
func recapture(steps []step, size int, walk bool) []step {
	out := make([]step, len(steps))
	for i, s := range steps {
		if s.close {
			out[i] = s
			continue
		}
		if walk {
			out[i] = walked(s.dir, s.t, s.data, size, 0)
		} else {
			out[i] = captured(s.dir, s.t, s.data, size)
		}
	}
	return out
}

// TestCaptureToday: with the kernel's capture as it is, the lost HEADERS
// costs its call and the method of the next one, and nothing is wrong.
func TestCaptureToday(t *testing.T) {
	setup, calls := lostScenario()
	s := play(newTestConn(RoleServer), script(setup, recapture(calls, 4096, false), closeAt(50)))
	b := grpcCall(RoleServer, 5, "", "OK")
	b.Host, b.Port, b.Clipped = "", 0, true // :authority came from the lost table too
	check(t, s,
		at(grpcCall(RoleServer, 1, "pkg.Svc/A", "OK"), 10, 11, 20, 20),
		// The method of stream 5 came from the lost table: left out.
		// The response says it is a gRPC call, and how it ended.
		at(b, 30, 30, 40, 40))
	want := map[string]int{reasonFramingLost: 1, reasonTableLost: 1, reasonUnmatched: 2, reasonMethodUnknown: 1}
	if !reflect.DeepEqual(s.failed, want) {
		t.Fatalf("failed %v, want %v", s.failed, want)
	}
}

// TestCaptureWalked: with the capture the package doc proposes, every call
// is whole.
func TestCaptureWalked(t *testing.T) {
	setup, calls := lostScenario()
	s := play(newTestConn(RoleServer), script(setup, recapture(calls, 4096, true), closeAt(50)))
	check(t, s,
		at(grpcCall(RoleServer, 1, "pkg.Svc/A", "OK"), 10, 11, 20, 20),
		at(grpcCall(RoleServer, 3, "pkg.Svc/B", "PERMISSION_DENIED"), 11, 11, 20, 20),
		at(grpcCall(RoleServer, 5, "pkg.Svc/B", "OK"), 30, 30, 40, 40))
	if len(s.failed) != 0 {
		t.Fatalf("failed %v", s.failed)
	}
}

// TestMidConnection: a connection seen from its middle reports nothing it
// cannot decode; a size update to 0 makes its tables known again.
func TestMidConnection(t *testing.T) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	for i := range 3 { // calls before the receiver started
		unary(cw, sw, uint32(2*i+1), "/pkg.Svc/A", "0")
	}
	cw.take()
	sw.take()
	req, resp := unary(cw, sw, 7, "/pkg.Svc/A", "0")
	var steps []step
	steps = append(steps, in(10, req), out(11, resp))
	// Both encoders clear their tables (a SETTINGS_HEADER_TABLE_SIZE
	// change would make them): from then on all is known.
	cw.enc.SetMaxDynamicTableSize(0)
	cw.enc.SetMaxDynamicTableSize(4096)
	sw.enc.SetMaxDynamicTableSize(0)
	sw.enc.SetMaxDynamicTableSize(4096)
	req, resp = unary(cw, sw, 9, "/pkg.Svc/A", "0")
	steps = append(steps, in(20, req), out(21, resp))
	req, resp = unary(cw, sw, 11, "/pkg.Svc/C", "3")
	steps = append(steps, in(30, req), out(31, resp), closeAt(40))
	s := play(newTestConn(RoleServer), steps)
	check(t, s,
		at(grpcCall(RoleServer, 9, "pkg.Svc/A", "OK"), 20, 20, 21, 21),
		at(grpcCall(RoleServer, 11, "pkg.Svc/C", "INVALID_ARGUMENT"), 30, 30, 31, 31))
	want := map[string]int{reasonNoPreface: 2, reasonHeadersUnknown: 1}
	if !reflect.DeepEqual(s.failed, want) || s.started != 2 {
		t.Fatalf("failed %v, want %v; started %d", s.failed, want, s.started)
	}
}

// truth is what a test sent on one stream.
type truth struct {
	kind   Kind
	path   string
	status int    // HTTP
	code   string // gRPC
}

// TestNeverWrong sends random calls and requests on connections cut and
// captured the way the kernel does today (and with random gaps), and
// checks that every field a record reports is the one that was sent.
func TestNeverWrong(t *testing.T) {
	for _, tc := range []struct {
		mode captureMode
		loss int // one event in loss is lost; 0: none
	}{{captureToday, 100}, {captureWalked, 0}, {captureWalked, 100}} {
		t.Run(fmt.Sprintf("%v/loss=%d", tc.mode, tc.loss), func(t *testing.T) { neverWrong(t, tc.mode, tc.loss) })
	}
}

func neverWrong(t *testing.T, mode captureMode, loss int) {
	r := rand.New(rand.NewPCG(5, 6))
	var reported, whole, total, lostEvents int
	for run := range 200 {
		truths, steps, lost := randomConnection(r, mode, loss)
		lostEvents += lost
		total += len(truths)
		s := &sink{}
		playInto(newTestConn(RoleServer), steps, s)
		for _, g := range s.got {
			tr, ok := truths[g.Stream]
			if !ok {
				t.Fatalf("run %d: a record for stream %d, never sent", run, g.Stream)
			}
			reported++
			if g.Kind != tr.kind {
				t.Fatalf("run %d stream %d: kind %v, sent %v", run, g.Stream, g.Kind, tr.kind)
			}
			switch tr.kind {
			case KindGRPC:
				if g.Method != "" && "/"+g.Method != tr.path || g.Code != "" && g.Code != tr.code {
					t.Fatalf("run %d stream %d: %+v, sent %+v", run, g.Stream, g, tr)
				}
				if g.Method != "" && g.Code != "" {
					whole++
				}
			case KindHTTP:
				if g.Target != tr.path || g.Method != "GET" || g.Status != 0 && g.Status != tr.status {
					t.Fatalf("run %d stream %d: %+v, sent %+v", run, g.Stream, g, tr)
				}
				whole++
			}
		}
	}
	t.Logf("%v capture: %d streams sent, %d reported, %d with method and status (%d events lost)", mode, total, reported, whole, lostEvents)
	if reported == 0 || whole == 0 {
		t.Fatal("nothing reported")
	}
	if mode == captureWalked && loss == 0 && (whole != total || reported != total) {
		t.Fatalf("the walked capture gave %d records, %d whole, of %d", reported, whole, total)
	}
}

// randomConnection makes a server's connection of random gRPC calls and
// HTTP requests, written as a client and server would (several frames a
// write, calls interleaved), captured with the kernel's 4 KiB prefix and
// 16-byte tail (and the frames the package doc proposes, in walked mode),
// now and then with a segment's event lost whole.
func randomConnection(r *rand.Rand, mode captureMode, loss int) (map[uint32]truth, []step, int) {
	cw, sw := newWire(), newWire()
	cw.preface().settings()
	sw.settings()
	steps := []step{in(1, cw.take()), out(2, sw.take())}
	truths := map[uint32]truth{}
	paths := []string{"/pkg.Svc/A", "/pkg.Svc/B", "/other.S/Long" + strconv.Itoa(r.IntN(1000)), "/x/y"}
	ts := uint64(10)
	open := []uint32{}
	for i := range 30 {
		id := uint32(2*i + 1)
		path := paths[r.IntN(len(paths))]
		if r.IntN(4) == 0 {
			path = fmt.Sprintf("/pkg.Svc/New%d", r.IntN(50))
		}
		if r.IntN(5) == 0 {
			cw.headers(id, true, ":method", "GET", ":scheme", "http", ":path", path, ":authority", "h")
			truths[id] = truth{kind: KindHTTP, path: path, status: 200 + r.IntN(3)*100}
		} else {
			cw.headers(id, false, grpcRequest(path)...).data(id, true, grpcMessage(r.IntN(20000)))
			truths[id] = truth{kind: KindGRPC, path: path, code: []string{"OK", "NOT_FOUND", "INTERNAL"}[r.IntN(3)]}
		}
		open = append(open, id)
		if r.IntN(3) == 0 {
			steps = append(steps, in(ts, cw.take()))
			ts++
		}
		if r.IntN(3) == 0 || i == 29 {
			for _, id := range open {
				tr := truths[id]
				if tr.kind == KindHTTP {
					sw.headers(id, false, ":status", strconv.Itoa(tr.status)).data(id, true, r.IntN(9000))
					continue
				}
				code := map[string]string{"OK": "0", "NOT_FOUND": "5", "INTERNAL": "13"}[tr.code]
				sw.headers(id, false, grpcResponse...).data(id, false, grpcMessage(r.IntN(20000))).headers(id, true, "grpc-status", code)
			}
			open = open[:0]
			steps = append(steps, in(ts, cw.take()))
			ts++
			steps = append(steps, out(ts, sw.take()))
			ts++
		}
	}
	var cut []step
	lost := 0
	walkers := [2]*walker{newWalker(true), newWalker(false)} // Inbound: the client's
	for _, s := range steps {
		// The writer's writes are cut into reads of random sizes.
		for b := s.data; len(b) > 0; {
			n := min(len(b), 1+r.IntN(30000))
			st := captured(s.dir, s.t, b[:n], 4096)
			if mode == captureWalked {
				// The kernel walks every syscall, even one whose event
				// is lost later.
				st.ext = walkers[s.dir].extents([]byte(b[:n]))
			}
			if loss > 0 && r.IntN(loss) == 0 {
				st = step{dir: s.dir, t: s.t, len: n} // an event lost: only its size is known
				lost++
			}
			cut = append(cut, st)
			b = b[n:]
		}
	}
	return truths, append(cut, closeAt(ts)), lost
}

// TestHostile: what a hostile peer sends costs bounded memory, never
// panics, and is counted.
func TestHostile(t *testing.T) {
	t.Run("garbage after the preface", func(t *testing.T) {
		s := play(newTestConn(RoleServer), []step{in(1, preface+"GET / HTTP/1.1\r\n\r\n"+string(make([]byte, 5000)))})
		if s.failed[reasonNoPreface] != 1 || len(s.got) != 0 {
			t.Fatalf("%v %v", s.failed, s.got)
		}
	})
	t.Run("header block that never ends", func(t *testing.T) {
		cw := newWire()
		cw.preface().settings()
		c := newTestConn(RoleServer)
		play(c, []step{in(1, cw.take())})
		must(cw.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: cw.block(grpcRequest("/a.B/C")...)}))
		s := play(c, []step{in(2, cw.take())})
		frag := string(make([]byte, 16000))
		for i := range 100 {
			must(cw.fr.WriteContinuation(1, false, []byte(frag)))
			playInto(c, []step{in(uint64(3+i), cw.take())}, s)
			if n := cap(c.sides[Inbound].block); n > 2*maxBlock {
				t.Fatalf("block buffer of %d bytes", n)
			}
		}
		if s.failed[reasonBlockTooLarge] != 1 {
			t.Fatalf("%v", s.failed)
		}
		// A frame other than CONTINUATION ends the block, lost.
		cw.headers(3, true, ":method", "GET", ":scheme", "http", ":path", "/", ":authority", "h")
		playInto(c, []step{in(200, cw.take()), closeAt(300)}, s)
		// That request's fields are static entries and literals, known
		// without the table; it had no response.
		check(t, s, rec{Kind: KindHTTP, Role: RoleServer, Stream: 3, Method: "GET", Target: "/", Host: "h", Times: [4]uint64{200, 200, 0, 0}})
		if s.failed[reasonTableLost] == 0 || s.failed[reasonHeadersUnknown] != 1 {
			t.Fatalf("%v", s.failed)
		}
	})
	t.Run("1 MB header list", func(t *testing.T) {
		cw, sw := newWire(), newWire()
		cw.preface().settings()
		sw.settings()
		fields := grpcRequest("/a.B/C")
		for i := range 100 {
			fields = append(fields, fmt.Sprintf("x-h%d", i), string(make([]byte, 10000)))
		}
		cw.headersSplit(1, true, 16384, fields...)
		sw.headers(1, true, append(grpcResponse, grpcOK...)...)
		s := play(newTestConn(RoleServer), []step{in(1, cw.take()), out(2, sw.take()), closeAt(3)})
		// The block is over 256 KiB: not kept, the request unknown; the
		// response still says it was a gRPC call, which ended OK.
		b := grpcCall(RoleServer, 1, "", "OK")
		b.Host, b.Port, b.Clipped = "", 0, true
		check(t, s, at(b, 1, 1, 2, 2))
		if s.failed[reasonBlockTooLarge] != 1 {
			t.Fatalf("%v", s.failed)
		}
	})
	t.Run("table size bomb", func(t *testing.T) {
		cw, sw := newWire(), newWire()
		cw.preface().settings()
		sw.settings(xhttp2.Setting{ID: xhttp2.SettingHeaderTableSize, Val: 1 << 31})
		cw.enc.SetMaxDynamicTableSizeLimit(1 << 31)
		cw.enc.SetMaxDynamicTableSize(1 << 31)
		c := newTestConn(RoleServer)
		s := play(c, []step{in(1, cw.take()), out(2, sw.take())})
		for i := range 300 {
			id := uint32(2*i + 1)
			cw.headers(id, true, append(grpcRequest("/a.B/C"), fmt.Sprintf("x-%d", i), string(make([]byte, 4000)))...)
			sw.headers(id, true, append(grpcResponse, grpcOK...)...)
			playInto(c, []step{in(uint64(10+i), cw.take()), out(uint64(10+i), sw.take())}, s)
		}
		if n := c.sides[Inbound].dec.Memory(); n > 4*hpack.HardCap {
			t.Fatalf("decoder of %d bytes", n)
		}
		if len(s.got) != 300 {
			t.Fatalf("%d records", len(s.got))
		}
		// Once the table outgrows what is kept, its oldest entries (the
		// path, inserted first) are unknown: left out, never wrong.
		known := 0
		for _, g := range s.got {
			if g.Method != "a.B/C" && g.Method != "" || g.Code != "OK" {
				t.Fatalf("%+v", g)
			}
			if g.Method != "" {
				known++
			}
		}
		if known < 16 || known == 300 {
			t.Fatalf("%d of 300 with their method", known)
		}
	})
	t.Run("huge frame lengths", func(t *testing.T) {
		cw := newWire()
		cw.preface().settings()
		hdr := "\xff\xff\xff\x00\x00\x00\x00\x00\x01" // DATA of 16 MiB on stream 1
		c := newTestConn(RoleServer)
		s := play(c, []step{in(1, cw.take()), {dir: Inbound, t: 2, data: hdr, len: 1 << 30}})
		if c.sides[Inbound].st != stLost || len(s.got) != 0 {
			t.Fatalf("state %v, %v", c.sides[Inbound].st, s.got)
		}
		hdr = "\xff\xff\xff\x01\x04\x00\x00\x00\x01" // HEADERS of 16 MiB
		c = newTestConn(RoleServer)
		s = play(c, []step{in(1, preface+"\x00\x00\x00\x04\x00\x00\x00\x00\x00"), {dir: Inbound, t: 2, data: hdr + string(make([]byte, 4000)), len: 1<<24 + 9}})
		if s.failed[reasonBlockTooLarge] != 1 || cap(c.sides[Inbound].block) > maxBlock {
			t.Fatalf("%v, block %d", s.failed, cap(c.sides[Inbound].block))
		}
	})
	t.Run("RST flood", func(t *testing.T) {
		cw, sw := newWire(), newWire()
		cw.preface().settings()
		sw.settings()
		c := newTestConn(RoleServer)
		s := play(c, []step{in(1, cw.take()), out(2, sw.take())})
		for i := range 5000 {
			id := uint32(2*i + 1)
			cw.headers(id, false, grpcRequest("/a.B/C")...).rst(id, xhttp2.ErrCodeCancel).rst(id+1000000, xhttp2.ErrCodeCancel)
		}
		playInto(c, pieces(Inbound, 10, cw.take(), 1000), s)
		if len(s.got) != 5000 || len(c.byID) != 0 || len(c.slots) > 1 {
			t.Fatalf("%d records, %d open, %d slots", len(s.got), len(c.byID), len(c.slots))
		}
	})
	t.Run("too many streams", func(t *testing.T) {
		cw := newWire()
		cw.preface().settings()
		for i := range 1000 {
			cw.headers(uint32(2*i+1), false, grpcRequest("/a.B/C")...)
		}
		c := newTestConn(RoleServer)
		s := play(c, []step{in(1, cw.take())})
		if len(c.byID) != maxStreams || s.failed[reasonStreamOverflow] != 1000-maxStreams {
			t.Fatalf("%d open, %v", len(c.byID), s.failed)
		}
		playInto(c, []step{closeAt(2)}, s)
		if len(s.got) != maxStreams {
			t.Fatalf("%d records at the close", len(s.got))
		}
	})
}

var _ = protocols.RoleServer
