package mysql

import (
	"reflect"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// replayModes are the ways a recorded session is fed: as recorded, whole
// or captured as the kernel does (4 KiB and the last 16 bytes of each
// syscall), and with the server's bytes read in buffers of other sizes.
var replayModes = []struct {
	name              string
	capture, readSize int
}{
	{"whole", 0, 0},
	{"captured", 4096, 0},
	{"reads of 1000", 4096, 1000},
	{"reads of 4096", 4096, 4096},
	{"reads of 8192", 4096, 8192},
	{"reads of 16384", 4096, 16384},
	{"reads of 65536", 4096, 65536},
}

// TestSessions replays the recorded sessions of the Go driver, PyMySQL
// and the mariadb client, in every replay mode: the records are exactly
// the expected ones, nothing is dropped or left unseen, and each
// exchange's times are those of its segments.
func TestSessions(t *testing.T) {
	for _, s := range sessions {
		chunks := readSession(t, s.name)
		for _, mode := range replayModes {
			t.Run(s.name+"/"+mode.name, func(t *testing.T) {
				checkSession(t, s.name, replay(chunks, mode.capture, mode.readSize))
			})
		}
	}
}

// TestLiveSessions runs the sessions against a MariaDB server started
// for the test and checks what the parser makes of the bytes, as the
// replay does: the recordings in testdata stay true to the server and
// clients installed.
func TestLiveSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MariaDB server")
	}
	recordSessions(t, func(t *testing.T, name string, chunks []chunk) {
		checkSession(t, name, replay(chunks, 4096, 0))
	})
}

// checkSession plays steps of a session and checks the records.
func checkSession(t *testing.T, name string, steps []step) {
	c := NewConn(&protocols.Options{QueryText: true})
	s := play(c, steps)
	want := sessionRecords[name]
	got := briefs(s.records)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%d records, want %d", len(got), len(want))
		for i := range max(len(got), len(want)) {
			var g, w brief
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("record %d:\n got %v\nwant %v", i, g, w)
			}
		}
	}
	st := c.Stats()
	if st.Dropped+st.Unmatched+st.EndUnseen+st.Unconfirmed+st.NotMySQL+st.UnknownStatement != 0 {
		t.Errorf("stats %+v, reasons %v", st, s.reasons)
	}
	if s.started != len(s.records) {
		t.Errorf("%d started, %d records", s.started, len(s.records))
	}
	checkTimes(t, steps, s.records)
}

// checkTimes checks that each record's request starts at a segment the
// client wrote, and that its response ends with the last segment the
// client read before it sent another command: the clients here wait for
// each response.
func checkTimes(t *testing.T, steps []step, recs []Record) {
	for i, r := range recs {
		var reqSeen bool
		var end uint64
		for _, s := range steps {
			switch {
			case s.close || s.t < r.RequestStart:
			case s.dir == Outbound && s.t == r.RequestStart:
				reqSeen = true
			case s.dir == Outbound && s.t > r.RequestStart:
			case s.dir == Inbound && end < s.t && !afterNextCommand(steps, r.RequestStart, s.t):
				end = s.t
			}
		}
		if !reqSeen || r.RequestEnd != r.RequestStart || r.ResponseEnd != end || r.ResponseStart == 0 || r.ResponseStart > r.ResponseEnd {
			t.Errorf("record %d (%s): request %d..%d response %d..%d, want response end %d",
				i, r.QueryText, r.RequestStart, r.RequestEnd, r.ResponseStart, r.ResponseEnd, end)
		}
	}
}

// afterNextCommand says whether a segment at time ts comes after the
// client sent another command (a packet with sequence id 0) following its
// request at time req.
func afterNextCommand(steps []step, req, ts uint64) bool {
	for _, s := range steps {
		if !s.close && s.dir == Outbound && len(s.data) >= 4 && s.data[3] == 0 && s.t > req && s.t < ts {
			return true
		}
	}
	return false
}

// repeat returns n copies of b.
func repeat(n int, b brief) []brief {
	out := make([]brief, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// concat joins lists of records.
func concat(parts ...[]brief) []brief {
	var out []brief
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
