package http2

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	xhttp2 "golang.org/x/net/http2"
	xhpack "golang.org/x/net/http2/hpack"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// A capture is what testdata/recorder saw real peers exchange through its
// proxy: per connection, each read it made, with its time.
type capture struct {
	conns [][]capturedRead
}

type capturedRead struct {
	clientToServer bool
	close          bool
	t              uint64
	data           []byte
}

// loadCapture reads testdata/captures/name.cap.gz (the format is in
// testdata/recorder/main.go).
func loadCapture(t testing.TB, name string) *capture {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "captures", name+".cap.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(zr)
	head := make([]byte, len("H2CAP1\n"))
	if _, err := io.ReadFull(r, head); err != nil || string(head) != "H2CAP1\n" {
		t.Fatalf("%s: not a capture (%v)", name, err)
	}
	c := &capture{}
	for {
		conn, err := binary.ReadUvarint(r)
		if err == io.EOF {
			return c
		}
		if err != nil {
			t.Fatal(err)
		}
		dir, _ := r.ReadByte()
		ts, _ := binary.ReadUvarint(r)
		n, err := binary.ReadUvarint(r)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			t.Fatal(err)
		}
		for int(conn) >= len(c.conns) {
			c.conns = append(c.conns, nil)
		}
		c.conns[conn] = append(c.conns[conn], capturedRead{clientToServer: dir == 0, close: dir == 2, t: ts, data: data})
	}
}

// How a replay captures each read.
type captureMode int

const (
	captureWhole  captureMode = iota // every byte
	captureToday                     // the first 4 KiB and the last 16 bytes, as the kernel does
	captureWalked                    // that, and the frames the package doc asks the kernel to copy
)

func (m captureMode) String() string { return [...]string{"whole", "today", "walked"}[m] }

// steps turns connection i of the capture into the steps the watched
// process (of role) would give its parser.
func (c *capture) steps(i int, role protocols.Role, mode captureMode) []step {
	var steps []step
	walkers := [2]*walker{newWalker(true), newWalker(false)} // client's, server's
	for _, rd := range c.conns[i] {
		if rd.close {
			steps = append(steps, closeAt(rd.t))
			continue
		}
		dir := Inbound
		if rd.clientToServer == (role == RoleClient) {
			dir = Outbound
		}
		w := walkers[1]
		if rd.clientToServer {
			w = walkers[0]
		}
		all := string(rd.data)
		switch mode {
		case captureWhole:
			steps = append(steps, step{dir: dir, t: rd.t, data: all})
		case captureToday:
			steps = append(steps, captured(dir, rd.t, all, 4096))
		case captureWalked:
			s := captured(dir, rd.t, all, 4096)
			s.ext = w.extents(rd.data)
			steps = append(steps, s)
		}
	}
	return steps
}

// walker copies what the package doc asks the kernel to: it walks the
// frame headers of one direction across its syscalls, and copies each
// header and each header block, SETTINGS, RST_STREAM and GOAWAY frame,
// within the budget of one syscall.
type walker struct {
	left int    // payload bytes of the frame at hand still to come
	keep bool   // the frame at hand is copied whole
	hdr  []byte // a frame header split between two syscalls
	over int    // syscalls whose frames went over the budget
}

const (
	walkFrames = 256      // frames one syscall walks
	walkBytes  = 16 << 10 // bytes of frames one syscall copies past the prefix
	walkFrom   = 4096     // the prefix, captured anyway
)

func newWalker(client bool) *walker {
	w := &walker{}
	if client {
		w.left, w.keep = len(preface), true
	}
	return w
}

func keptFrame(typ uint8) bool {
	switch typ {
	case frameHeaders, framePushPromise, frameContinuation, frameSettings, frameRSTStream, frameGoAway:
		return true
	}
	return false
}

func (w *walker) extents(b []byte) []Extent {
	var ext []Extent
	copied, frames := 0, 0
	add := func(off, n int) {
		if end := off + n; off < walkFrom {
			off = min(walkFrom, end) // the prefix has these bytes
			n = end - off
		}
		if n > 0 && copied+n <= walkBytes {
			if k := len(ext) - 1; k >= 0 && ext[k].Off+len(ext[k].Data) == off {
				ext[k].Data = b[ext[k].Off : off+n] // one run with the one before
			} else {
				ext = append(ext, Extent{Off: off, Data: b[off : off+n]})
			}
			copied += n
		} else if n > 0 {
			w.over++
		}
	}
	off := 0
	if len(w.hdr) > 0 {
		n := min(frameHeaderLen-len(w.hdr), len(b))
		add(0, n)
		w.hdr = append(w.hdr, b[:n]...)
		off = n
		if len(w.hdr) < frameHeaderLen {
			return ext
		}
		f := parseFrameHeader(w.hdr)
		w.hdr, w.left, w.keep = nil, f.length, keptFrame(f.typ)
	}
	if w.left > 0 {
		n := min(w.left, len(b)-off)
		if w.keep {
			add(off, n)
		}
		w.left -= n
		off += n
	}
	for off < len(b) {
		if frames++; frames > walkFrames {
			w.over++
			break
		}
		if len(b)-off < frameHeaderLen {
			w.hdr = append([]byte(nil), b[off:]...)
			add(off, len(b)-off)
			break
		}
		f := parseFrameHeader(b[off:])
		h := frameHeaderLen
		if f.typ == frameData && f.flags&flagPadded != 0 && f.length > 0 && off+h < len(b) {
			h++
		}
		add(off, h)
		off += frameHeaderLen
		n := min(f.length, len(b)-off)
		if keptFrame(f.typ) {
			add(off, n)
		}
		w.left, w.keep = f.length-n, keptFrame(f.typ)
		off += n
	}
	return ext
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// oracleFrame is a frame as x/net's framer read it: where it began and
// ended in its direction's bytes.
type oracleFrame struct {
	client     bool
	f          xhttp2.Frame
	start, end int // offsets in the direction's bytes
	dataLen    int // a DATA frame's data, read before the next frame
}

// oracle computes, with x/net's framer and HPACK decoder (an
// implementation independent of this package's), the records a capture's
// connection must give: the stitching rules of the package doc applied to
// every frame.
func oracle(t *testing.T, reads []capturedRead, role protocols.Role, skip [2]int) []rec {
	t.Helper()
	// Each direction's bytes, and the read (global index) of each byte.
	var bytesOf [2][]byte
	var readOf [2][]int
	for i, rd := range reads {
		if rd.close {
			continue
		}
		d := 1
		if rd.clientToServer {
			d = 0
		}
		bytesOf[d] = append(bytesOf[d], rd.data...)
		for range rd.data {
			readOf[d] = append(readOf[d], i)
		}
	}
	var frames []oracleFrame
	for d := range 2 {
		cr := &countingReader{r: bytes.NewReader(bytesOf[d][skip[d]:])}
		fr := xhttp2.NewFramer(nil, cr)
		fr.ReadMetaHeaders = xhpack.NewDecoder(4096, nil)
		fr.MaxHeaderListSize = 1 << 20
		for {
			start := cr.n
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			of := oracleFrame{client: d == 0, f: f, start: skip[d] + start, end: skip[d] + cr.n}
			if df, ok := f.(*xhttp2.DataFrame); ok {
				of.dataLen = len(df.Data())
			}
			frames = append(frames, of)
		}
	}
	// In the order the parser sees them: by the read with their last
	// byte, then by offset.
	key := func(of oracleFrame) (int, int) {
		d := 1
		if of.client {
			d = 0
		}
		return readOf[d][of.end-1], of.end
	}
	slices.SortStableFunc(frames, func(a, b oracleFrame) int {
		ra, oa := key(a)
		rb, ob := key(b)
		if ra != rb {
			return cmp.Compare(ra, rb)
		}
		if a.client != b.client {
			return 0
		}
		return cmp.Compare(oa, ob)
	})
	timeAt := func(of oracleFrame, off int) uint64 {
		d := 1
		if of.client {
			d = 0
		}
		return reads[readOf[d][off]].t
	}
	type state struct {
		r                  rec
		grpc, head, ended  bool
		status, grpcStatus int
		rst                bool
		rstCode            xhttp2.ErrCode
		reqEnded           bool
	}
	open := map[uint32]*state{}
	var got []rec
	finish := func(id uint32, st *state) {
		r := st.r
		if st.grpc {
			r.Kind = KindGRPC
			r.Target, r.Status, r.ReqBody, r.RespBody = "", 0, 0, 0
			switch {
			case st.grpcStatus >= 0:
				r.Code = semconv.GRPCStatusName(st.grpcStatus)
				r.Unrec = st.grpcStatus == 12
			case st.rst:
				r.Error = errorCodeName(uint32(st.rstCode))
			case !st.ended:
				r.Error = semconv.NoResponse
			}
		} else {
			r.Kind = KindHTTP
			r.Status = max(st.status, 0)
		}
		got = append(got, r)
		delete(open, id)
	}
	for _, of := range frames {
		id := of.f.Header().StreamID
		st := open[id]
		switch f := of.f.(type) {
		case *xhttp2.MetaHeadersFrame:
			if of.client {
				if st == nil {
					st = &state{status: -1, grpcStatus: -1}
					st.r = rec{Role: role, Stream: id}
					st.r.Times[0] = timeAt(of, of.start)
					open[id] = st
					authority := f.PseudoValue("authority")
					st.grpc = strings.HasPrefix(f.PseudoValue("path"), "/") && contentType([]byte(headerValue(f, "content-type"))) == ctGRPC
					if st.grpc {
						st.r.Method = f.PseudoValue("path")[1:]
						var x semconv.RPC
						x.SetAuthority(authority)
						st.r.Host, st.r.Port = x.ServerAddress, x.ServerPort
					} else {
						st.r.Method, st.r.Target, st.r.Host = f.PseudoValue("method"), f.PseudoValue("path"), authority
					}
					st.r.TP = headerValue(f, "traceparent")
				}
				if !st.reqEnded {
					st.r.Times[1] = timeAt(of, of.end-1)
				}
				st.reqEnded = st.reqEnded || f.StreamEnded()
				continue
			}
			if st == nil {
				continue
			}
			status, _ := strconv.Atoi(f.PseudoValue("status"))
			if !st.head {
				if status >= 100 && status < 200 && !f.StreamEnded() {
					continue
				}
				st.head, st.status = true, status
				st.r.Times[2] = timeAt(of, of.start)
			}
			if v := headerValue(f, "grpc-status"); v != "" {
				st.grpcStatus, _ = strconv.Atoi(v)
			}
			if f.StreamEnded() {
				st.ended = true
				st.r.Times[3] = timeAt(of, of.end-1)
				finish(id, st)
			}
		case *xhttp2.DataFrame:
			if st == nil {
				continue
			}
			if of.client {
				st.r.ReqBody += int64(of.dataLen)
				if !st.reqEnded {
					st.r.Times[1] = timeAt(of, of.end-1)
				}
				st.reqEnded = st.reqEnded || f.StreamEnded()
				continue
			}
			st.r.RespBody += int64(of.dataLen)
			if f.StreamEnded() {
				st.ended = true
				st.r.Times[3] = timeAt(of, of.end-1)
				finish(id, st)
			}
		case *xhttp2.RSTStreamFrame:
			if st == nil {
				continue
			}
			st.rst, st.rstCode = true, f.ErrCode
			st.r.Times[3] = timeAt(of, of.end-1)
			finish(id, st)
		}
	}
	ids := slices.Sorted(maps.Keys(open))
	for _, id := range ids {
		finish(id, open[id])
	}
	return got
}

func headerValue(f *xhttp2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

// scenario is what a recorder scenario did, call by call, as its client
// checked: the stream, the method or path, and the status.
type scenario map[uint32]string

var scenarios = map[string][]scenario{
	"grpcgo": {{
		1: "grpc.testing.TestService/UnaryCall OK", 3: "grpc.testing.TestService/UnaryCall NOT_FOUND",
		5: "grpc.testing.TestService/Nope UNIMPLEMENTED", 7: "grpc.testing.TestService/StreamingOutputCall OK",
		9: "grpc.testing.TestService/StreamingInputCall OK", 11: "grpc.testing.TestService/FullDuplexCall OK",
		13: "grpc.testing.TestService/StreamingOutputCall CANCEL", 15: "grpc.testing.TestService/UnaryCall INTERNAL",
		17: "grpc.testing.TestService/EmptyCall OK", 19: "grpc.testing.TestService/FullDuplexCall DATA_LOSS",
	}},
	"python": {{
		1: "demo.Greeter/Say OK", 3: "demo.Greeter/Say NOT_FOUND", 5: "demo.Greeter/Count OK",
		7: "demo.Greeter/Total OK", 9: "demo.Greeter/Chat OK", 11: "demo.Greeter/Nope UNIMPLEMENTED",
	}},
	"node": {{
		1: "GET /hello 200", 3: "POST /upload 201", 5: "GET /missing 404", 7: "GET /trailers 200",
		9: "GET /hello?i=? 200", 11: "GET /hello?i=? 200", 13: "GET /hello?i=? 200",
	}},
	"curl": {{1: "GET /hello 200"}, {1: "GET /missing 404"}, {1: "POST /echo 200"}},
	"goh2c": {{
		1: "GET /hello 200", 3: "GET /missing 404", 5: "POST /echo 200",
		7: "GET /hello?i=? 200", 9: "GET /hello?i=? 200", 11: "GET /hello?i=? 200", 13: "GET /hello?i=? 200", 15: "GET /hello?i=? 200",
	}},
}

// todayCounts are the records each capture's connections give with the
// kernel's capture of today (4 KiB and 16 bytes): where a read holds a
// header block past 4 KiB, what follows is lost until a size update or a
// full table (grpcgo_concurrent: 100 calls interleaved with 64 KiB
// messages keep only 3).
var todayCounts = map[string]int{"grpcgo": 10, "grpcgo_concurrent": 3, "python": 6, "node": 7, "curl": 1, "goh2c": 7}

// brief is a record as a scenario line: "method status".
func brief(r rec) string {
	if r.Kind == KindGRPC {
		code := r.Code
		if code == "" {
			code = r.Error
		}
		return r.Method + " " + code
	}
	target := r.Target
	if i := strings.Index(target, "?i="); i >= 0 {
		target = target[:i] + "?i=?"
	}
	return r.Method + " " + target + " " + strconv.Itoa(r.Status)
}

// TestCaptures replays the captures of real peers, as a server and as a
// client, captured whole and as the proposed kernel capture does: the
// records are exactly those x/net's framer finds in the bytes, and those
// the recorder's client saw. With today's kernel capture, what is reported
// is never wrong, and the losses are counted.
func TestCaptures(t *testing.T) {
	for _, name := range []string{"grpcgo", "grpcgo_concurrent", "python", "node", "curl", "goh2c"} {
		c := loadCapture(t, name)
		for i := range c.conns {
			for _, role := range []protocols.Role{RoleServer, RoleClient} {
				want := oracle(t, c.conns[i], role, [2]int{len(preface), 0})
				t.Run(fmt.Sprintf("%s/%d/%v", name, i, role), func(t *testing.T) {
					checkScenario(t, name, i, want)
					for _, mode := range []captureMode{captureWhole, captureWalked} {
						s := play(newTestConn(protocols.RoleUnknown), c.steps(i, role, mode))
						if !reflect.DeepEqual(s.got, want) || len(s.failed) != 0 {
							t.Fatalf("%v capture: %d records, %d wanted, failed %v\n got %+v\nwant %+v",
								mode, len(s.got), len(want), s.failed, s.got, want)
						}
					}
					s := play(newTestConn(protocols.RoleUnknown), c.steps(i, role, captureToday))
					for _, g := range s.got {
						if !consistent(g, want) {
							t.Fatalf("today's capture: %+v is in none of %+v", g, want)
						}
					}
					if n := todayCounts[name]; len(s.got) != n {
						t.Fatalf("today's capture: %d records, want %d; failed %v", len(s.got), n, s.failed)
					}
					t.Logf("today's capture: %d of %d records, failed %v", len(s.got), len(want), s.failed)
				})
			}
		}
	}
}

func checkScenario(t *testing.T, name string, conn int, got []rec) {
	t.Helper()
	if name == "grpcgo_concurrent" {
		// An EmptyCall, then 100 UnaryCalls of 64 KiB, all OK.
		if len(got) != 101 || brief(got[0]) != "grpc.testing.TestService/EmptyCall OK" {
			t.Fatalf("%d records, first %+v", len(got), got[0])
		}
		for _, r := range got[1:] {
			if brief(r) != "grpc.testing.TestService/UnaryCall OK" {
				t.Fatalf("%+v", r)
			}
		}
		return
	}
	sc := scenarios[name][conn]
	if len(got) != len(sc) {
		t.Fatalf("%d records, the scenario made %d", len(got), len(sc))
	}
	for _, r := range got {
		if brief(r) != sc[r.Stream] {
			t.Errorf("stream %d: %q, the scenario made %q", r.Stream, brief(r), sc[r.Stream])
		}
	}
}

// consistent reports whether r says nothing a record of want does not: it
// may leave out what was lost.
func consistent(r rec, want []rec) bool {
	for _, w := range want {
		if w.Stream != r.Stream || w.Kind != r.Kind || w.Role != r.Role {
			continue
		}
		switch {
		case r.Method != "" && r.Method != w.Method, r.Target != "" && r.Target != w.Target,
			r.Host != "" && r.Host != w.Host, r.Code != "" && r.Code != w.Code,
			r.Status != 0 && r.Status != w.Status, r.TP != "" && r.TP != w.TP,
			r.Times[0] != w.Times[0]:
			return false
		}
		return true
	}
	return false
}

// TestUpgradeCapture replays curl's h2c upgrade: the HTTP/1.1 parts are
// the HTTP/1 parser's, which hands the request over; stream 1 is the
// upgraded request with its HTTP/2 response.
func TestUpgradeCapture(t *testing.T) {
	c := loadCapture(t, "upgrade")
	reads := c.conns[0]
	for _, role := range []protocols.Role{RoleServer, RoleClient} {
		conn := newTestConn(role)
		var steps []step
		var reqTime uint64
		handed := [2]bool{}
		for _, rd := range reads {
			if rd.close {
				steps = append(steps, closeAt(rd.t))
				continue
			}
			d := 1
			if rd.clientToServer {
				d = 0
			}
			data := string(rd.data)
			if !handed[d] {
				// The HTTP/1 head ends the HTTP/1 part of the direction.
				end := strings.Index(data, "\r\n\r\n")
				if end < 0 {
					t.Fatalf("no HTTP/1 head in %q", data)
				}
				if d == 0 {
					reqTime = rd.t
				}
				data, handed[d] = data[end+4:], true
			}
			if data == "" {
				continue
			}
			dir := Inbound
			if rd.clientToServer == (role == RoleClient) {
				dir = Outbound
			}
			steps = append(steps, step{dir: dir, t: rd.t, data: data})
		}
		settings, err := base64.RawURLEncoding.DecodeString("AAMAAABkAAQCAAAAAAIAAAAA")
		if err != nil {
			t.Fatal(err)
		}
		req := &UpgradeRequest{Method: "GET", Target: "/hello", Host: "127.0.0.1:45243", Settings: settings}
		req.Exchange.Role, req.Exchange.RequestStart, req.Exchange.RequestEnd, req.Exchange.Tag = role, reqTime, reqTime, 1
		conn.Upgrade(req)
		s := play(conn, steps)
		if len(s.got) != 1 || len(s.failed) != 0 {
			t.Fatalf("%v: %+v, failed %v", role, s.got, s.failed)
		}
		g := s.got[0]
		g.Times = [4]uint64{}
		want := rec{Kind: KindHTTP, Role: role, Stream: 1, Method: "GET", Target: "/hello", Host: "127.0.0.1:45243", Status: 200, RespBody: 13}
		if g != want || s.got[0].Times[0] != reqTime || s.got[0].Times[3] == 0 {
			t.Fatalf("%v: %+v, want %+v", role, s.got[0], want)
		}
	}
}
