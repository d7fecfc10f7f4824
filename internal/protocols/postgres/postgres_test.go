package postgres

import (
	"reflect"
	"strings"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

var withText = &protocols.Options{QueryText: true}

// times are a record's request and response times.
type times struct{ reqStart, reqEnd, respStart, respEnd uint64 }

func timesOf(r *Record) times {
	return times{r.RequestStart, r.RequestEnd, r.ResponseStart, r.ResponseEnd}
}

func wantBriefs(t *testing.T, s *sink, want ...brief) {
	t.Helper()
	got := briefs(s.done)
	if len(got)+len(want) > 0 && !reflect.DeepEqual(got, want) {
		t.Errorf("records:\n got %v\nwant %v", got, want)
	}
}

func wantFailed(t *testing.T, s *sink, want map[string]int) {
	t.Helper()
	if len(want) == 0 && len(s.failed) == 0 {
		return
	}
	if !reflect.DeepEqual(s.failed, want) {
		t.Errorf("failed %v, want %v", s.failed, want)
	}
}

func TestSimpleQuery(t *testing.T) {
	steps := append(login("shop"),
		out(3, query("SELECT name FROM users WHERE id = 42")),
		in(4, rowDesc("name")+dataRow("bob")),
		in(5, complete("SELECT 1")+ready('I')),
	)
	s, c := play(t, withText, steps)
	if len(s.done) != 1 {
		t.Fatalf("%d records", len(s.done))
	}
	r := &s.done[0]
	want := Record{
		Exchange: protocols.Exchange{Role: protocols.RoleClient, RequestStart: 3, RequestEnd: 3, ResponseStart: 4, ResponseEnd: 5},
		DB: semconv.DB{System: semconv.PostgreSQL, Operation: "SELECT", Collection: "users", Namespace: "shop",
			QueryText: "SELECT name FROM users WHERE id = ?", Summary: "SELECT users"},
	}
	if !reflect.DeepEqual(*r, want) {
		t.Errorf("record\n got %+v\nwant %+v", *r, want)
	}
	if len(s.started) != 1 || s.started[0].RequestStart != 3 {
		t.Errorf("started %+v", s.started)
	}
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
}

func TestQueryTextOff(t *testing.T) {
	steps := append(login("shop"), out(3, query("DELETE FROM carts WHERE id = 'x'")),
		in(4, complete("DELETE 1")+ready('I')))
	s, _ := play(t, &protocols.Options{}, steps)
	wantBriefs(t, s, brief{Op: "DELETE", Coll: "carts", Summary: "DELETE carts", NS: "shop"})
}

func TestNamespaceIsUserWithoutDatabase(t *testing.T) {
	steps := []step{
		out(1, startup("user", "alice")),
		in(2, authOK+ready('I')),
		out(3, query("SELECT 1")),
		in(4, rowDesc("x")+dataRow("1")+complete("SELECT 1")+ready('I')),
	}
	s, _ := play(t, nil, steps)
	wantBriefs(t, s, brief{Op: "SELECT", Summary: "SELECT", NS: "alice"})
}

func TestSSLDeclinedThenPlaintext(t *testing.T) {
	steps := []step{
		out(1, sslReq),
		in(2, "N"),
		out(3, startup("user", "u", "database", "d")),
		in(4, msg('R', i32(5), "salt")),
		out(5, msg('p', "md5abcdef\x00")),
		in(6, authOK+backendKey+ready('I')),
		out(7, query("SELECT 1")),
		in(8, rowDesc("x")+dataRow("1")+complete("SELECT 1")+ready('I')),
	}
	s, c := play(t, nil, steps)
	wantBriefs(t, s, brief{Op: "SELECT", Summary: "SELECT", NS: "d"})
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
}

func TestEncryptedConnectionIsLeftAlone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		req, answ string
	}{{"ssl", sslReq, "S"}, {"gss", gssReq, "G"}} {
		t.Run(tc.name, func(t *testing.T) {
			steps := []step{
				out(1, tc.req), in(2, tc.answ),
				out(3, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), in(4, "\x16\x03\x03\x00\x7a\x02"),
				out(5, query("SELECT 1")), in(6, complete("SELECT 1")+ready('I')), closeAt(7),
			}
			s, c := play(t, nil, steps)
			wantBriefs(t, s)
			wantFailed(t, s, map[string]int{reasonEncrypted: 1})
			if c.Stats() != (Stats{Encrypted: 1}) {
				t.Errorf("stats %+v", c.Stats())
			}
		})
	}
}

func TestExtendedUnnamed(t *testing.T) {
	steps := append(login("shop"),
		out(3, parseMsg("", "UPDATE users SET name = $1 WHERE id = $2")+bindMsg("", "")+describeMsg('P', "")+execMsg("")+syncMsg),
		in(4, parseOK+bindOK+noData),
		in(5, complete("UPDATE 1")+ready('I')),
	)
	s, _ := play(t, withText, steps)
	wantBriefs(t, s, brief{Op: "UPDATE", Coll: "users", Summary: "UPDATE users",
		Text: "UPDATE users SET name = $1 WHERE id = $2", NS: "shop"})
	if got := timesOf(&s.done[0]); got != (times{3, 3, 4, 5}) {
		t.Errorf("times %+v", got)
	}
}

// A statement prepared in one round trip and executed in later ones: the
// prepare makes no record, each execution one with the statement's text.
func TestPreparedStatementExecutedLater(t *testing.T) {
	steps := append(login("shop"),
		out(3, parseMsg("s1", "SELECT * FROM orders WHERE id = $1")+describeMsg('S', "s1")+syncMsg),
		in(4, parseOK+paramDesc(1)+rowDesc("id", "amount")+ready('I')),
	)
	for i := uint64(0); i < 3; i++ {
		steps = append(steps,
			out(5+2*i, bindMsg("", "s1")+execMsg("")+syncMsg),
			in(6+2*i, bindOK+dataRow("1", "9.5")+complete("SELECT 1")+ready('I')))
	}
	s, c := play(t, withText, steps)
	b := brief{Op: "SELECT", Coll: "orders", Summary: "SELECT orders", Text: "SELECT * FROM orders WHERE id = $1",
		NS: "shop", Prepared: true}
	wantBriefs(t, s, b, b, b)
	if got := timesOf(&s.done[2]); got != (times{9, 9, 10, 10}) {
		t.Errorf("times %+v", got)
	}
	// Closing the statement forgets it.
	more := []step{
		out(20, closeMsg('S', "s1")+syncMsg), in(21, closeOK+ready('I')),
		out(22, bindMsg("", "s1")+execMsg("")+syncMsg),
		in(23, errorResp("26000", "prepared statement \"s1\" does not exist")+ready('I')),
	}
	s = playOn(c, more)
	wantBriefs(t, s, brief{NS: "shop", Status: "26000", Prepared: true})
	wantFailed(t, s, map[string]int{reasonUnknownStmt: 1})
}

func TestNamedPortal(t *testing.T) {
	steps := append(login("shop"),
		out(3, query("BEGIN")), in(4, complete("BEGIN")+ready('T')),
		out(5, parseMsg("", "SELECT * FROM items")+bindMsg("cur1", "")+execMsg("cur1")+flushMsg),
		in(6, parseOK+bindOK+dataRow("1")+suspended),
		out(7, execMsg("cur1")+syncMsg),
		in(8, dataRow("2")+complete("SELECT 1")+ready('T')),
	)
	s, _ := play(t, nil, steps)
	b := brief{Op: "SELECT", Coll: "items", Summary: "SELECT items", NS: "shop"}
	bp := b
	bp.Prepared = true
	wantBriefs(t, s, brief{Op: "BEGIN", Summary: "BEGIN", NS: "shop"}, b, bp)
}

// Several round trips written at once, answered at once.
func TestPipelinedSyncs(t *testing.T) {
	steps := append(login("shop"),
		out(3, parseMsg("", "INSERT INTO t VALUES ($1)")+bindMsg("", "")+execMsg("")+syncMsg+
			parseMsg("", "DELETE FROM u")+bindMsg("", "")+execMsg("")+syncMsg+
			bindMsg("", "")+execMsg("")+syncMsg),
		in(4, parseOK+bindOK+complete("INSERT 0 1")+ready('I')+parseOK+bindOK),
		in(5, complete("DELETE 3")+ready('I')+bindOK+complete("DELETE 0")+ready('I')),
	)
	s, c := play(t, nil, steps)
	ins := brief{Op: "INSERT", Coll: "t", Summary: "INSERT t", NS: "shop"}
	del := brief{Op: "DELETE", Coll: "u", Summary: "DELETE u", NS: "shop"}
	delp := del
	delp.Prepared = true
	wantBriefs(t, s, ins, del, delp)
	var got []times
	for i := range s.done {
		got = append(got, timesOf(&s.done[i]))
	}
	if want := []times{{3, 3, 4, 4}, {3, 3, 4, 5}, {3, 3, 5, 5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("times %v, want %v", got, want)
	}
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
}

// After an error the server skips to the Sync: the Executes it skipped
// make no record.
func TestErrorSkipsToSync(t *testing.T) {
	steps := append(login("shop"),
		out(3, parseMsg("", "INSERT INTO t VALUES (1)")+bindMsg("", "")+execMsg("")+
			parseMsg("", "SELECT * FROM t")+bindMsg("", "")+execMsg("")+syncMsg+
			query("SELECT 2")),
		in(4, parseOK+bindOK+errorResp("23505", "duplicate key")+ready('E')),
		in(5, rowDesc("x")+dataRow("2")+complete("SELECT 1")+ready('I')),
	)
	s, _ := play(t, nil, steps)
	wantBriefs(t, s,
		brief{Op: "INSERT", Coll: "t", Summary: "INSERT t", NS: "shop", Status: "23505"},
		brief{Op: "SELECT", Summary: "SELECT", NS: "shop"})
	wantFailed(t, s, map[string]int{reasonSkipped: 1})
	if r := s.done[0]; !r.Error || r.ErrorType != "23505" {
		t.Errorf("error fields %+v", r.DB)
	}
}

// An error before the client's Sync: what it sends until the Sync is
// skipped too.
func TestErrorBeforeSync(t *testing.T) {
	steps := append(login("shop"),
		out(3, parseMsg("", "SELEC 1")+bindMsg("", "")+execMsg("")+flushMsg),
		in(4, errorResp("42601", "syntax error")),
		out(5, parseMsg("", "SELECT 3")+bindMsg("", "")+execMsg("")+syncMsg),
		in(6, ready('I')),
		out(7, bindMsg("", "")+execMsg("")+syncMsg),
		in(8, bindOK+dataRow("1")+complete("SELECT 1")+ready('I')),
	)
	s, _ := play(t, nil, steps)
	// The Parse of "SELECT 3" was skipped, and the unnamed statement went
	// with the Parse that failed: the last Bind names no known text.
	wantBriefs(t, s,
		brief{NS: "shop", Status: "42601"},
		brief{NS: "shop", Prepared: true})
	wantFailed(t, s, map[string]int{reasonSkipped: 1, reasonUnknownStmt: 1})
}

// A prepare that fails is the statement's failure: a record.
func TestFailedPrepare(t *testing.T) {
	steps := append(login("shop"),
		out(3, parseMsg("s9", "SELECT * FROM nope")+describeMsg('S', "s9")+syncMsg),
		in(4, errorResp("42P01", "relation \"nope\" does not exist")+ready('I')),
	)
	s, _ := play(t, nil, steps)
	wantBriefs(t, s, brief{Op: "SELECT", Coll: "nope", Summary: "SELECT nope", NS: "shop", Status: "42P01"})
	if got := timesOf(&s.done[0]); got != (times{3, 3, 4, 4}) {
		t.Errorf("times %+v", got)
	}
}

// Several statements in one Query are one batch operation.
func TestMultiStatementQuery(t *testing.T) {
	cases := []struct {
		name, text string
		answer     string
		want       brief
		failed     map[string]int
	}{
		{"same", "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)",
			complete("INSERT 0 1") + complete("INSERT 0 1") + ready('I'),
			brief{Op: "BATCH INSERT", Coll: "t", Summary: "BATCH INSERT t", Batch: 2, NS: "db"}, nil},
		{"mixed", "BEGIN; UPDATE a SET x = 1; COMMIT;",
			complete("BEGIN") + complete("UPDATE 1") + complete("COMMIT") + ready('I'),
			brief{Op: "BATCH", Summary: "BATCH", Batch: 3, NS: "db"}, nil},
		{"error", "SELECT 1; SELEC 2; SELECT 3",
			rowDesc("x") + dataRow("1") + complete("SELECT 1") + errorResp("42601", "syntax") + ready('I'),
			brief{Op: "BATCH", Summary: "BATCH", Batch: 3, NS: "db", Status: "42601"}, nil},
		{"quoted semicolons", "SELECT ';', $$a;b$$, \"x;y\" /* ; */ FROM t -- ;\n",
			rowDesc("a") + complete("SELECT 0") + ready('I'),
			brief{Op: "SELECT", Coll: "t", Summary: "SELECT t", NS: "db"}, nil},
		{"server counts otherwise", "SELECT 1; SELECT 2",
			complete("SELECT 1") + ready('I'),
			brief{NS: "db"}, map[string]int{reasonSplit: 1}},
		{"empty", "",
			emptyQuery + ready('I'),
			brief{NS: "db"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps := append(login("db"), out(3, query(tc.text)), in(4, tc.answer))
			s, _ := play(t, nil, steps)
			wantBriefs(t, s, tc.want)
			wantFailed(t, s, tc.failed)
		})
	}
}

// Notices, parameter changes and notifications come anywhere.
func TestAsynchronousMessages(t *testing.T) {
	steps := append(login("db"),
		in(3, notification("jobs", "idle one")),
		out(4, query("DROP TABLE IF EXISTS x")),
		in(5, notice("table \"x\" does not exist, skipping")+complete("DROP TABLE")+
			paramStatus("TimeZone", "UTC")+notification("jobs", "2")+ready('I')),
		out(6, parseMsg("", "SELECT 1")+bindMsg("", "")+execMsg("")+syncMsg),
		in(7, parseOK+notice("n")+bindOK+dataRow("1")+notification("jobs", "3")+complete("SELECT 1")+ready('I')),
	)
	s, c := play(t, nil, steps)
	wantBriefs(t, s,
		brief{Op: "DROP", Coll: "x", Summary: "DROP TABLE x", NS: "db"},
		brief{Op: "SELECT", Summary: "SELECT", NS: "db"})
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
}

func TestCopy(t *testing.T) {
	rows := strings.Repeat(copyData("1\tone\n"), 3)
	t.Run("in", func(t *testing.T) {
		steps := append(login("db"),
			out(3, query("COPY items FROM STDIN")),
			in(4, copyInResp(2)),
			out(5, rows), out(6, rows+copyDone),
			in(7, complete("COPY 6")+ready('I')),
			out(8, query("SELECT 1")), in(9, rowDesc("x")+dataRow("1")+complete("SELECT 1")+ready('I')),
		)
		s, _ := play(t, nil, steps)
		wantBriefs(t, s, brief{Op: "COPY", Coll: "items", Summary: "COPY items", NS: "db"},
			brief{Op: "SELECT", Summary: "SELECT", NS: "db"})
		if got := timesOf(&s.done[0]); got != (times{3, 3, 4, 7}) {
			t.Errorf("times %+v", got)
		}
	})
	t.Run("out", func(t *testing.T) {
		steps := append(login("db"),
			out(3, query("COPY items TO STDOUT")),
			in(4, copyOutResp(2)+rows), in(5, rows+copyDone+complete("COPY 6")+ready('I')),
		)
		s, _ := play(t, nil, steps)
		wantBriefs(t, s, brief{Op: "COPY", Coll: "items", Summary: "COPY items", NS: "db"})
	})
	t.Run("both", func(t *testing.T) {
		steps := append(login("db"),
			out(3, query("START_REPLICATION SLOT s LOGICAL 0/0")),
			in(4, msg('W', "\x00", i16(0))+copyData("w...")),
			out(5, copyData("r...")), in(6, copyData("k...")),
			out(7, copyDone), in(8, copyDone+complete("START_REPLICATION")+ready('I')),
			out(9, query("SELECT 1")), in(10, rowDesc("x")+dataRow("1")+complete("SELECT 1")+ready('I')),
		)
		s, c := play(t, nil, steps)
		if len(s.done) != 2 || s.done[0].ResponseEnd != 8 || s.done[1].Operation != "SELECT" {
			t.Errorf("records %v", briefs(s.done))
		}
		if c.Stats() != (Stats{}) {
			t.Errorf("stats %+v", c.Stats())
		}
	})
	t.Run("in, extended, Sync sent before the data", func(t *testing.T) {
		steps := append(login("db"),
			out(3, parseMsg("", "COPY items FROM STDIN")+bindMsg("", "")+execMsg("")+syncMsg),
			in(4, parseOK+bindOK+copyInResp(2)),
			out(5, rows+copyDone+syncMsg),
			in(6, complete("COPY 3")+ready('I')),
			out(7, query("SELECT 1")), in(8, rowDesc("x")+dataRow("1")+complete("SELECT 1")+ready('I')),
		)
		s, c := play(t, nil, steps)
		wantBriefs(t, s, brief{Op: "COPY", Coll: "items", Summary: "COPY items", NS: "db"},
			brief{Op: "SELECT", Summary: "SELECT", NS: "db"})
		if c.Stats() != (Stats{}) {
			t.Errorf("stats %+v", c.Stats())
		}
	})
	t.Run("in, data lost in gaps", func(t *testing.T) {
		big := strings.Repeat(copyData("12345\tsome label\n"), 400) // 9.2 KB
		steps := append(login("db"),
			out(3, query("COPY items FROM STDIN")),
			in(4, copyInResp(2)),
			// The client writes 8 KiB chunks that do not end with a
			// message; the kernel captures 4 KiB of each.
			gapped(Outbound, 5, big[:8192], 4096),
			gapped(Outbound, 6, big[8192:]+copyDone, 4096),
			in(7, complete("COPY 400")+ready('I')),
			out(8, query("SELECT 1")), in(9, rowDesc("x")+dataRow("1")+complete("SELECT 1")+ready('I')),
		)
		s, c := play(t, nil, steps)
		wantBriefs(t, s, brief{Op: "COPY", Coll: "items", Summary: "COPY items", NS: "db"},
			brief{Op: "SELECT", Summary: "SELECT", NS: "db"})
		if c.Stats() != (Stats{StreamLost: 1}) {
			t.Errorf("stats %+v", c.Stats())
		}
	})
}

// gapped is a segment of which the kernel captured only the first
// capture bytes and the last 16.
func gapped(dir Direction, t uint64, data string, capture int) step {
	if len(data) <= capture {
		return step{dir: dir, data: data, t: t}
	}
	return step{dir: dir, data: data[:capture], len: len(data), tail: data[len(data)-16:], t: t}
}

// A gap inside one message keeps the framing.
func TestGapInsideMessages(t *testing.T) {
	long := "SELECT '" + strings.Repeat("x", 5000) + "' FROM t"
	steps := append(login("db"),
		gapped(Outbound, 3, query(long), 4096),
		gapped(Inbound, 4, rowDesc("v")+dataRow(strings.Repeat("y", 9000)), 4096),
		in(5, complete("SELECT 1")+ready('I')),
		out(6, query("SELECT 2")), in(7, rowDesc("x")+dataRow("2")+complete("SELECT 1")+ready('I')),
	)
	s, c := play(t, withText, steps)
	wantBriefs(t, s,
		brief{Op: "SELECT", NS: "db", Clipped: true},
		brief{Op: "SELECT", Summary: "SELECT", Text: "SELECT ?", NS: "db"})
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
}

// A gap over message boundaries in the server's answer loses its framing;
// the read that ends with ReadyForQuery finds it again, and, being the one
// owed, ends the operation.
func TestGapOverMessagesInAnswer(t *testing.T) {
	var rows strings.Builder
	for i := range 500 {
		rows.WriteString(dataRow("row", strings.Repeat("v", i%7)))
	}
	tests := []struct {
		name   string
		end    string
		want   []brief
		failed map[string]int
	}{
		{"success", complete("SELECT 500") + ready('I'),
			[]brief{{Op: "SELECT", Coll: "big", Summary: "SELECT big", NS: "db"}, {Op: "SELECT", Summary: "SELECT", NS: "db"}},
			map[string]int{reasonStreamLost: 1}},
		{"error", errorResp("22012", "division by zero") + ready('I'),
			[]brief{{Op: "SELECT", Summary: "SELECT", NS: "db"}},
			map[string]int{reasonStreamLost: 1, reasonResponseLost: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := rowDesc("a", "b") + rows.String()
			steps := append(login("db"),
				out(3, query("SELECT a, b FROM big")),
				gapped(Inbound, 4, body[:8192], 4096),
				gapped(Inbound, 5, body[8192:]+tc.end, 4096),
				out(6, query("SELECT 2")), in(7, rowDesc("x")+dataRow("2")+complete("SELECT 1")+ready('I')),
			)
			s, _ := play(t, nil, steps)
			wantBriefs(t, s, tc.want...)
			wantFailed(t, s, tc.failed)
			if tc.name == "success" {
				if got := timesOf(&s.done[0]); got != (times{3, 3, 4, 5}) {
					t.Errorf("times %+v", got)
				}
			}
		})
	}
}

// With two answers owed when the framing was lost, which one a
// ReadyForQuery ends is not known: both are dropped, and pairing starts
// again at the next quiet point.
func TestGapOverMessagesWithTwoOwed(t *testing.T) {
	var rows strings.Builder
	for range 500 {
		rows.WriteString(dataRow("row"))
	}
	body := rowDesc("a") + rows.String() + complete("SELECT 500") + ready('I')
	steps := append(login("db"),
		out(3, query("SELECT a FROM big")+query("SELECT a FROM big")),
		gapped(Inbound, 4, body, 4096),
		gapped(Inbound, 5, body, 4096),
		out(6, query("SELECT 2")), in(7, rowDesc("x")+dataRow("2")+complete("SELECT 1")+ready('I')),
	)
	s, c := play(t, nil, steps)
	wantBriefs(t, s, brief{Op: "SELECT", Summary: "SELECT", NS: "db"})
	if st := c.Stats(); st.ResponseLost != 2 || st.Resynced != 1 {
		t.Errorf("stats %+v", st)
	}
}

// A gap over message boundaries in what the client wrote hides what it
// asked: the requests before it are still answered, then pairing waits
// for a quiet point.
func TestGapOverMessagesInRequests(t *testing.T) {
	var batch strings.Builder
	for range 300 {
		batch.WriteString(bindMsg("", "s1") + execMsg(""))
	}
	batch.WriteString(syncMsg)
	var answers strings.Builder
	for range 300 {
		answers.WriteString(bindOK + complete("INSERT 0 1"))
	}
	answers.WriteString(ready('I'))
	steps := append(login("db"),
		out(3, parseMsg("s1", "INSERT INTO t VALUES ($1)")+syncMsg), in(4, parseOK+ready('I')),
		gapped(Outbound, 5, batch.String(), 4096),
		in(6, answers.String()),
		out(7, query("SELECT 2")), in(8, rowDesc("x")+dataRow("2")+complete("SELECT 1")+ready('I')),
	)
	s, c := play(t, nil, steps)
	// 4096 bytes hold 4096/(len(bind)+len(exec)) whole Executes, the last
	// message cut at the capture's end is lost with the rest.
	per := len(bindMsg("", "s1") + execMsg(""))
	n := 4096 / per
	var want []brief
	for range n {
		want = append(want, brief{Op: "INSERT", Coll: "t", Summary: "INSERT t", NS: "db", Prepared: true})
	}
	want = append(want, brief{Op: "SELECT", Summary: "SELECT", NS: "db"})
	wantBriefs(t, s, want...)
	if st := c.Stats(); st.StreamLost != 1 || st.Resynced != 1 || st.Unexpected != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestResponseNeverComes(t *testing.T) {
	steps := append(login("db"),
		out(3, query("SELECT pg_sleep(100)")),
		out(4, parseMsg("", "SELECT 1")+bindMsg("", "")+execMsg("")+syncMsg),
		closeAt(9),
	)
	s, _ := play(t, nil, steps)
	wantBriefs(t, s,
		brief{Op: "SELECT", Summary: "SELECT", NS: "db", NoResponse: true},
		brief{Op: "SELECT", Summary: "SELECT", NS: "db", NoResponse: true})
	if got := timesOf(&s.done[0]); got != (times{3, 3, 0, 0}) {
		t.Errorf("times %+v", got)
	}
}

// A response cut by the close: reported without its end.
func TestResponseCutByClose(t *testing.T) {
	steps := append(login("db"),
		out(3, query("SELECT * FROM t")),
		in(4, rowDesc("a")+dataRow("1")),
		closeAt(5),
	)
	s, _ := play(t, nil, steps)
	wantBriefs(t, s, brief{Op: "SELECT", Coll: "t", Summary: "SELECT t", NS: "db", NoResponse: true})
	if got := timesOf(&s.done[0]); got != (times{3, 3, 4, 0}) {
		t.Errorf("times %+v", got)
	}
}

// A connection seen from its middle: nothing is paired until a quiet
// point, a read that ends with ReadyForQuery followed by a write;
// statements prepared before are not known.
func TestConnectionSeenFromTheMiddle(t *testing.T) {
	answer := bindOK + dataRow("1") + complete("SELECT 1") + ready('I')
	steps := []step{
		// A request, then its answer: no quiet point came before it.
		out(1, bindMsg("", "stmtcache_1")+execMsg("")+syncMsg),
		in(2, answer[:20]),
		in(3, answer[20:]),
		// A quiet point: the next write is paired.
		out(4, bindMsg("", "stmtcache_1")+execMsg("")+syncMsg),
		in(5, answer),
		out(6, parseMsg("", "SELECT 2")+bindMsg("", "")+execMsg("")+syncMsg),
		in(7, parseOK+answer),
	}
	c := NewConn(nil)
	c.Reset(protocols.RoleClient)
	s := playOn(c, steps)
	wantBriefs(t, s,
		brief{Prepared: true},
		brief{Op: "SELECT", Summary: "SELECT"})
	if st := c.Stats(); st.StatementUnknown != 1 || st.Resynced != 1 {
		t.Errorf("stats %+v", st)
	}
	if got := timesOf(&s.done[0]); got != (times{4, 4, 5, 5}) {
		t.Errorf("times %+v", got)
	}
}

// A read that does not end with ReadyForQuery shows the server was not
// quiet: no pairing starts at the write after it.
func TestNoQuietPointWhileServerTalks(t *testing.T) {
	answer := rowDesc("x") + dataRow("1") + complete("SELECT 1") + ready('I')
	steps := []step{
		in(1, answer[3:]),                // ends with ReadyForQuery
		in(2, rowDesc("x")+dataRow("1")), // more: the server had more to say
		out(3, query("SELECT 3")),        // the answer to come: to this, or to an earlier request?
		in(4, complete("SELECT 1")+ready('I')),
		out(5, query("SELECT 5")),
		in(6, answer),
	}
	c := NewConn(nil)
	c.Reset(protocols.RoleClient)
	s := playOn(c, steps)
	wantBriefs(t, s, brief{Op: "SELECT", Summary: "SELECT"})
	if got := timesOf(&s.done[0]); got != (times{5, 5, 6, 6}) {
		t.Errorf("times %+v", got)
	}
}

// The caller closes a connection whose events were lost, and goes on
// feeding it: what was in flight is reported without an answer, and the
// rest is seen as from the middle.
func TestCloseAfterLostEvents(t *testing.T) {
	steps := append(login("db"),
		out(3, parseMsg("s1", "SELECT * FROM t WHERE id = $1")+syncMsg), in(4, parseOK+ready('I')),
		out(5, bindMsg("", "s1")+execMsg("")+syncMsg),
		closeAt(6),
		in(7, bindOK+complete("SELECT 0")+ready('I')),
		out(8, bindMsg("", "s1")+execMsg("")+syncMsg),
		in(9, bindOK+complete("SELECT 0")+ready('I')),
	)
	s, c := play(t, nil, steps)
	wantBriefs(t, s,
		brief{Op: "SELECT", Coll: "t", Summary: "SELECT t", NS: "db", Prepared: true, NoResponse: true},
		brief{NS: "db", Prepared: true})
	if st := c.Stats(); st.StatementUnknown != 1 || st.Resynced != 1 {
		t.Errorf("stats %+v", st)
	}
}

// An answer that does not fit what was asked stops pairing.
func TestUnexpectedAnswer(t *testing.T) {
	steps := append(login("db"),
		out(3, parseMsg("", "SELECT 1")+bindMsg("", "")+execMsg("")+syncMsg),
		in(4, bindOK+dataRow("1")+complete("SELECT 1")+ready('I')),
		out(5, query("SELECT 2")),
		in(6, rowDesc("x")+dataRow("2")+complete("SELECT 1")+ready('I')),
	)
	s, c := play(t, nil, steps)
	wantBriefs(t, s, brief{Op: "SELECT", Summary: "SELECT", NS: "db"})
	if st := c.Stats(); st.Unexpected != 1 || st.ResponseLost != 1 || st.Resynced != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestUnmatchedAnswer(t *testing.T) {
	steps := append(login("db"), in(3, complete("SELECT 1")+ready('I')))
	s, c := play(t, nil, steps)
	wantBriefs(t, s)
	if st := c.Stats(); st.Unmatched != 2 {
		t.Errorf("stats %+v", st)
	}
}

// More records in flight than kept: the rest are counted, and the answers
// still pair.
func TestPendingOverflow(t *testing.T) {
	var reqs, answers strings.Builder
	reqs.WriteString(parseMsg("s", "UPDATE t SET x = 1"))
	answers.WriteString(parseOK)
	for range maxRecords + 10 {
		reqs.WriteString(bindMsg("", "s") + execMsg(""))
		answers.WriteString(bindOK + complete("UPDATE 1"))
	}
	reqs.WriteString(syncMsg)
	answers.WriteString(ready('I'))
	steps := append(login("db"),
		out(3, reqs.String()), in(4, answers.String()),
		out(5, query("SELECT 2")), in(6, rowDesc("x")+dataRow("2")+complete("SELECT 1")+ready('I')),
	)
	s, c := play(t, nil, steps)
	if len(s.done) != maxRecords+1 {
		t.Fatalf("%d records", len(s.done))
	}
	if got := briefOf(&s.done[maxRecords]); got != (brief{Op: "SELECT", Summary: "SELECT", NS: "db"}) {
		t.Errorf("last record %v", got)
	}
	if st := c.Stats(); st.PendingOverflow != 10 {
		t.Errorf("stats %+v", st)
	}
}

func TestServerRoleIsIgnored(t *testing.T) {
	c := NewConn(nil)
	c.Reset(protocols.RoleServer)
	steps := append(login("db"), in(3, query("SELECT 1")), out(4, complete("SELECT 1")+ready('I')), closeAt(5))
	s := playOn(c, steps)
	wantBriefs(t, s)
	if c.Stats() != (Stats{ServerRole: 1}) {
		t.Errorf("stats %+v", c.Stats())
	}
	if !reflect.DeepEqual(s.failed, map[string]int{reasonServerRole: 1}) {
		t.Errorf("failed %v: the connection is counted once", s.failed)
	}
}

// Where segments end must not matter: a session cut at every byte, and
// fed one byte at a time, gives the same records.
func TestSegmentBoundaries(t *testing.T) {
	conn := readSession(t, "psycopg2")[0]
	whole, _ := play(t, withText, sessionSteps(conn))
	if len(whole.done) == 0 {
		t.Fatal("no records")
	}
	want := untimed(whole.done)
	for i, ch := range conn {
		for cut := 1; cut < len(ch.data); cut++ {
			steps := sessionSteps(conn)
			a, b := steps[i], steps[i]
			a.data, b.data = string(ch.data[:cut]), string(ch.data[cut:])
			steps = append(append(append([]step{}, steps[:i]...), a, b), steps[i+1:]...)
			got, _ := play(t, withText, steps)
			if !reflect.DeepEqual(untimed(got.done), want) {
				t.Fatalf("chunk %d cut at %d: records differ:\n%v\n%v", i, cut, briefs(got.done), briefs(whole.done))
			}
		}
	}
	var bytewise []step
	for _, st := range sessionSteps(conn) {
		if st.close {
			bytewise = append(bytewise, st)
			continue
		}
		for i := range len(st.data) {
			bytewise = append(bytewise, step{dir: st.dir, data: st.data[i : i+1], t: st.t})
		}
	}
	got, _ := play(t, withText, bytewise)
	if !reflect.DeepEqual(untimed(got.done), want) {
		t.Fatalf("byte by byte: records differ:\n%v\n%v", briefs(got.done), briefs(whole.done))
	}
}

// untimed strips what depends on segmentation, such as the kernel's
// context handed to a request.
func untimed(rs []Record) []Record {
	out := make([]Record, len(rs))
	for i, r := range rs {
		r.Chosen = out[i].Chosen
		out[i] = r
	}
	return out
}

// A Parse that reuses a name in use fails, and the name keeps its text.
func TestNamedStatementKeepsItsTextWhenReparseFails(t *testing.T) {
	steps := append(login("db"),
		out(3, parseMsg("s1", "SELECT a FROM t1")+syncMsg), in(4, parseOK+ready('I')),
		out(5, parseMsg("s1", "DELETE FROM t2")+syncMsg),
		in(6, errorResp("42P05", "prepared statement \"s1\" already exists")+ready('I')),
		out(7, bindMsg("", "s1")+execMsg("")+syncMsg),
		in(8, bindOK+dataRow("1")+complete("SELECT 1")+ready('I')),
	)
	s, _ := play(t, nil, steps)
	wantBriefs(t, s,
		brief{Op: "DELETE", Coll: "t2", Summary: "DELETE t2", NS: "db", Status: "42P05"},
		brief{Op: "SELECT", Coll: "t1", Summary: "SELECT t1", NS: "db", Prepared: true})
}

// A statement name longer than the server keeps is not remembered, and
// pairing goes on.
func TestLongStatementName(t *testing.T) {
	long := strings.Repeat("n", 100)
	steps := append(login("db"),
		out(3, parseMsg(long, "SELECT 1")+bindMsg("", long)+execMsg("")+syncMsg),
		in(4, parseOK+bindOK+dataRow("1")+complete("SELECT 1")+ready('I')),
		out(5, query("SELECT 2")), in(6, rowDesc("x")+dataRow("2")+complete("SELECT 1")+ready('I')),
	)
	s, c := play(t, nil, steps)
	wantBriefs(t, s, brief{NS: "db"}, brief{Op: "SELECT", Summary: "SELECT", NS: "db"})
	if st := c.Stats(); st != (Stats{StatementUnknown: 1}) {
		t.Errorf("stats %+v", st)
	}
}
