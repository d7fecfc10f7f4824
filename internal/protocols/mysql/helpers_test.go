package mysql

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// sink records what a Conn reports.
type sink struct {
	started int
	records []Record
	reasons map[string]int
}

func (s *sink) Started(*protocols.Exchange) { s.started++ }

func (s *sink) Done(r protocols.Record) {
	rec := *(r.(*Record))
	s.records = append(s.records, rec)
}

func (s *sink) Failed(reason string) {
	if s.reasons == nil {
		s.reasons = map[string]int{}
	}
	s.reasons[reason]++
}

// step is one segment fed to a Conn, or a close.
type step struct {
	dir   Direction
	data  string
	len   int // bytes moved; 0 means len(data)
	tail  string
	t     uint64
	close bool
}

// play feeds steps to c and returns what it reported. The bytes are fresh
// copies scribbled over after each call: a Conn that kept them would see
// garbage later.
func play(c *Conn, steps []step) *sink {
	s := &sink{}
	for _, st := range steps {
		if st.close {
			c.Close(st.t, s)
			continue
		}
		n := st.len
		if n == 0 {
			n = len(st.data)
		}
		data, tail := []byte(st.data), []byte(st.tail)
		c.Feed(st.dir, &protocols.Segment{Data: data, Len: n, Tail: tail, Time: st.t, Tid: 7}, s)
		scribble(data)
		scribble(tail)
	}
	return s
}

func scribble(b []byte) {
	for i := range b {
		b[i] = 0xA5
	}
}

// captured turns the bytes one syscall moved into the segment the kernel
// makes of them: the first capture bytes, and the last 16 as the tail.
func captured(dir Direction, t uint64, all string, capture int) step {
	if len(all) <= capture {
		return step{dir: dir, t: t, data: all}
	}
	return step{dir: dir, t: t, data: all[:capture], len: len(all), tail: all[len(all)-16:]}
}

// replay makes steps of a recorded session: each chunk one syscall at its
// own time, captured as the kernel would (capture 0: whole). readSize,
// when not 0, cuts the server's bytes into reads of that size instead of
// the recorded ones, as a client with that buffer would read them.
func replay(chunks []chunk, capture, readSize int) []step {
	var steps []step
	t := uint64(1000)
	var pendingIn string
	flushIn := func() {
		for len(pendingIn) > 0 {
			n := min(len(pendingIn), readSize)
			steps = append(steps, segmentOf(Inbound, t, pendingIn[:n], capture))
			t++
			pendingIn = pendingIn[n:]
		}
	}
	for _, ch := range chunks {
		if ch.dir == Inbound && readSize > 0 {
			pendingIn += string(ch.data)
			continue
		}
		flushIn()
		steps = append(steps, segmentOf(ch.dir, t, string(ch.data), capture))
		t++
	}
	flushIn()
	return append(steps, step{close: true, t: t})
}

func segmentOf(dir Direction, t uint64, all string, capture int) step {
	if capture == 0 {
		return step{dir: dir, t: t, data: all}
	}
	return captured(dir, t, all, capture)
}

// pkt frames a payload as a packet with sequence id seq.
func pkt(seq uint8, payload string) string {
	var h [4]byte
	binary.LittleEndian.PutUint32(h[:], uint32(len(payload)))
	h[3] = seq
	return string(h[:]) + payload
}

// lenencStr encodes s as a length-encoded string.
func lenencStr(s string) string {
	n := len(s)
	switch {
	case n < 251:
		return string([]byte{byte(n)}) + s
	case n < 1<<16:
		return string([]byte{0xfc, byte(n), byte(n >> 8)}) + s
	}
	return string([]byte{0xfd, byte(n), byte(n >> 8), byte(n >> 16)}) + s
}

// capMultiStatements is CLIENT_MULTI_STATEMENTS.
const capMultiStatements = 1 << 16

// Payloads used by many tests.
const (
	okPayload   = "\x00\x00\x00\x02\x00\x00\x00"
	eofPayload  = "\xfe\x00\x00\x02\x00"
	eofMore     = "\xfe\x00\x00\x0a\x00"
	okEndRows   = "\xfe\x00\x00\x02\x00\x00\x00"
	colDef      = "\x03def\x04otel\x05users\x05users\x02id\x02id\x0c?\x00\x0b\x00\x00\x00\x03\x03P\x00\x00\x00"
	greetingMDB = "\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x07\x00\x00\x00[!.e3nP%\x00\xfe\xf7\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00eP?*THK\"cODD\x00mysql_native_password\x00"
	greetingMy  = "\n8.0.36\x00\x07\x00\x00\x00[!.e3nP%\x00\xff\xff\xff\x02\x00\xff\xdf\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00eP?*THK\"cODD\x00caching_sha2_password\x00"
)

// loginPayload is a handshake response with the capabilities caps and
// the database db ("" for none).
func loginPayload(caps uint32, db string) string {
	return mariaLoginPayload(caps, 0, db)
}

// mariaLoginPayload is a handshake response of a MariaDB client with the
// extended capabilities maria.
func mariaLoginPayload(caps, maria uint32, db string) string {
	var b strings.Builder
	var c [4]byte
	if db != "" {
		caps |= capConnectWithDB
	}
	binary.LittleEndian.PutUint32(c[:], caps|capProtocol41|capSecureConnection|capPluginAuth)
	b.Write(c[:])
	b.WriteString("\x00\x00\x00\x01\x21")
	b.WriteString(strings.Repeat("\x00", 19))
	binary.LittleEndian.PutUint32(c[:], maria)
	b.Write(c[:])
	b.WriteString("app\x00\x14" + strings.Repeat("s", 20))
	if db != "" {
		b.WriteString(db + "\x00")
	}
	b.WriteString("mysql_native_password\x00")
	return b.String()
}

// textResult is a text result set of one column with rows, ended the
// client's way.
func textResult(rows []string, deprecateEOF bool) string {
	var b strings.Builder
	seq := uint8(1)
	next := func(payload string) {
		b.WriteString(pkt(seq, payload))
		seq++
	}
	next("\x01")
	next(colDef)
	if !deprecateEOF {
		next(eofPayload)
	}
	for _, r := range rows {
		next(lenencStr(r))
	}
	if deprecateEOF {
		next(okEndRows)
	} else {
		next(eofPayload)
	}
	return b.String()
}

func query(text string) string   { return pkt(0, "\x03"+text) }
func prepare(text string) string { return pkt(0, "\x16"+text) }

func execute(id uint32) string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], id)
	return pkt(0, "\x17"+string(b[:])+"\x00\x01\x00\x00\x00")
}

func prepareOK(id uint32, cols, params uint16) string {
	var b [11]byte
	binary.LittleEndian.PutUint32(b[0:], id)
	binary.LittleEndian.PutUint16(b[4:], cols)
	binary.LittleEndian.PutUint16(b[6:], params)
	return "\x00" + string(b[:])
}

func errPayload(code uint16, state, msg string) string {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], code)
	return "\xff" + string(b[:]) + "#" + state + msg
}

// brief is a record without the times, for comparisons of what was said.
type brief struct {
	Sys                               string
	Cmd                               byte
	Op, Coll, NS, Text, Summary, Code string
	Err                               bool
	State                             string
	NoResponse                        bool
}

func (b brief) String() string {
	return fmt.Sprintf("%s %#x op=%q coll=%q ns=%q text=%q sum=%q code=%q err=%v state=%q noresp=%v",
		b.Sys, b.Cmd, b.Op, b.Coll, b.NS, b.Text, b.Summary, b.Code, b.Err, b.State, b.NoResponse)
}

func briefs(recs []Record) []brief {
	out := make([]brief, len(recs))
	for i, r := range recs {
		out[i] = brief{Sys: r.System, Cmd: r.Command, Op: r.Operation, Coll: r.Collection, NS: r.Namespace, Text: r.QueryText,
			Summary: r.Summary, Code: r.StatusCode, Err: r.Error, State: r.SQLState, NoResponse: r.ResponseEnd == 0}
	}
	return out
}
